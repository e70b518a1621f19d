import type { Config } from '../config.ts';
import type { Db } from '../db.ts';
import { InvalidInput, NotFound, Unauthorized } from '../errors.ts';
import { newAuditId } from '../ids.ts';
import type { Auth } from '../policy.ts';
import { applicationCredentialsRepo } from '../repos/application-credentials.ts';
import { domainsRepo } from '../repos/domains.ts';
import { type ProjectRow, projectsRepo } from '../repos/projects.ts';
import { roleAssignmentsRepo } from '../repos/role-assignments.ts';
import { type RoleRef, rolesRepo } from '../repos/roles.ts';
import { type UserRow, usersRepo } from '../repos/users.ts';
import { InvalidTokenSignature, type KeyRing } from './key-ring.ts';
import { appCredentialKey, type LoginKeys, type LoginThrottle, userKey } from './login-throttle.ts';
import { verifySecret } from './passwords.ts';
import type { RevocationList } from './revocations.ts';

export const AUTH_METHODS = ['password', 'application_credential'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

export interface NameOrId {
  id?: string | undefined;
  name?: string | undefined;
}

/** An authentication request, as the API parsed it from Keystone's JSON. */
export interface AuthRequest {
  methods: string[];
  password?: { user: NameOrId & { domain?: NameOrId | undefined; password: string } } | undefined;
  applicationCredential?:
    | (NameOrId & { secret: string; user?: (NameOrId & { domain?: NameOrId | undefined }) | undefined })
    | undefined;
  /** undefined: no scope given (the user's default project, if any); 'unscoped': explicitly none. */
  scope?: { project: NameOrId & { domain?: NameOrId | undefined } } | 'unscoped' | undefined;
  /** The client's address: failed logins are throttled per address too. */
  source?: string | undefined;
}

interface DomainRef {
  id: string;
  name: string;
}

/** Everything a token says, which is everything its JSON body shows. */
export interface TokenInfo {
  token: string;
  methods: string[];
  user: { id: string; name: string; domain: DomainRef };
  project: { id: string; name: string; domain: DomainRef } | null;
  roles: RoleRef[];
  auditId: string;
  issuedAt: Date;
  expiresAt: Date;
  applicationCredential: { id: string; name: string; restricted: boolean } | null;
}

/** The compact claims signed into the JWS. */
interface Claims {
  sub: string;
  usr: { n: string; d: DomainRef };
  prj: { i: string; n: string; d: DomainRef } | null;
  rol: RoleRef[];
  mth: string[];
  aid: string;
  ac: { i: string; n: string; r: boolean } | null;
  iat: number;
  exp: number;
}

const BAD_CREDENTIALS =
  'The request you have made requires authentication: invalid user name, domain or password.';
const BAD_APP_CREDENTIAL =
  'The request you have made requires authentication: invalid application credential.';
const BAD_TOKEN =
  'The request you have made requires authentication: the token is missing, invalid, expired or revoked.';

export interface TokenServiceDeps {
  db: Db;
  config: Config;
  keys: KeyRing;
  revocations: RevocationList;
  throttle: LoginThrottle;
}

/** A throttling key for an account named by a request, whether or not it exists. */
function namedKey(kind: string, ref: NameOrId & { domain?: NameOrId | undefined }): string {
  if (ref.id) return `${kind}-id:${ref.id}`;
  const domain = ref.domain?.id ? `id=${ref.domain.id}` : `name=${ref.domain?.name ?? ''}`;
  return `${kind}-name:${domain}/${ref.name ?? ''}`;
}

export function createTokenService({ db, config, keys, revocations, throttle }: TokenServiceDeps) {
  const lifetimeMs = config.tokenLifetimeSeconds * 1000;

  async function findDomain(ref: NameOrId | undefined): Promise<DomainRef & { enabled: boolean }> {
    const d = ref?.id
      ? await domainsRepo.get(db, ref.id)
      : ref?.name
        ? await domainsRepo.getByName(db, ref.name)
        : undefined;
    if (!d) return { id: '', name: '', enabled: false };
    return d;
  }

  async function findUser(ref: NameOrId & { domain?: NameOrId | undefined }): Promise<UserRow | undefined> {
    if (ref.id) return usersRepo.get(db, ref.id);
    if (!ref.name) throw new InvalidInput('A user needs an id, or a name and a domain.');
    if (!ref.domain?.id && !ref.domain?.name)
      throw new InvalidInput(
        `User '${ref.name}' is given by name, so its domain (id or name) is required too.`,
      );
    const domain = await findDomain(ref.domain);
    return domain.id ? usersRepo.getByName(db, domain.id, ref.name) : undefined;
  }

  async function findProject(
    ref: NameOrId & { domain?: NameOrId | undefined },
  ): Promise<ProjectRow | undefined> {
    if (ref.id) return projectsRepo.get(db, ref.id);
    if (!ref.name) throw new InvalidInput('A project scope needs an id, or a name and a domain.');
    if (!ref.domain?.id && !ref.domain?.name)
      throw new InvalidInput(
        `Project '${ref.name}' is given by name, so its domain (id or name) is required too.`,
      );
    const domain = await findDomain(ref.domain);
    return domain.id ? projectsRepo.getByName(db, domain.id, ref.name) : undefined;
  }

  /** The user's effective roles on a project (implied roles expanded). */
  async function rolesOn(userId: string, projectId: string): Promise<RoleRef[]> {
    const direct = await roleAssignmentsRepo.list(db, {
      type: 'UserProject',
      actor_id: userId,
      target_id: projectId,
    });
    return rolesRepo.expand(
      db,
      direct.map((a) => a.role_id),
    );
  }

  async function sameProject(
    ref: NameOrId & { domain?: NameOrId | undefined },
    p: { id: string },
  ): Promise<boolean> {
    return (await findProject(ref))?.id === p.id;
  }

  async function domainRef(id: string): Promise<DomainRef & { enabled: boolean }> {
    const d = await domainsRepo.get(db, id);
    if (!d) throw new Unauthorized(BAD_CREDENTIALS);
    return d;
  }

  async function checkedProject(user: UserRow, project: ProjectRow | undefined, label: string) {
    const noAccess = new Unauthorized(`User ${user.id} has no access to project ${label}.`);
    if (!project) throw noAccess;
    const roles = await rolesOn(user.id, project.id);
    if (roles.length === 0) throw noAccess;
    const domain = await domainRef(project.domain_id);
    if (!project.enabled || !domain.enabled) throw new Unauthorized(`Project ${project.id} is disabled.`);
    return {
      project: { id: project.id, name: project.name, domain: { id: domain.id, name: domain.name } },
      roles,
    };
  }

  async function activeUser(user: UserRow | undefined, secretOk: boolean, badMessage: string) {
    if (!user || !secretOk) throw new Unauthorized(badMessage);
    const domain = await domainRef(user.domain_id);
    // Only a caller who proved the secret learns that the account is disabled.
    if (!user.enabled || !domain.enabled)
      throw new Unauthorized(`The account is disabled for user: ${user.id}.`);
    return { id: user.id, name: user.name, domain: { id: domain.id, name: domain.name } };
  }

  function mint(
    info: Omit<TokenInfo, 'token' | 'auditId' | 'issuedAt' | 'expiresAt'>,
    expiresAt?: Date,
  ): TokenInfo {
    const issuedAt = new Date();
    const exp = expiresAt ?? new Date(issuedAt.getTime() + lifetimeMs);
    const auditId = newAuditId();
    const claims: Claims = {
      sub: info.user.id,
      usr: { n: info.user.name, d: info.user.domain },
      prj: info.project ? { i: info.project.id, n: info.project.name, d: info.project.domain } : null,
      rol: info.roles,
      mth: info.methods,
      aid: auditId,
      ac: info.applicationCredential
        ? {
            i: info.applicationCredential.id,
            n: info.applicationCredential.name,
            r: info.applicationCredential.restricted,
          }
        : null,
      iat: issuedAt.getTime() / 1000,
      exp: exp.getTime() / 1000,
    };
    return { ...info, token: keys.sign(claims), auditId, issuedAt, expiresAt: exp };
  }

  async function withPassword(req: AuthRequest): Promise<TokenInfo> {
    const p = req.password;
    if (!p?.user) throw new InvalidInput("The 'password' method needs auth.identity.password.user.");
    const row = await findUser(p.user);
    const keys: LoginKeys = {
      account: row ? userKey(row.id) : namedKey('user', p.user),
      address: req.source,
    };
    const attempt = await throttle.begin(keys);
    const ok = await verifySecret(p.user.password, row?.password_hash);
    await attempt.done(ok && row !== undefined);
    const user = await activeUser(row, ok, BAD_CREDENTIALS);
    const u = row as UserRow;
    if (req.scope === 'unscoped')
      return mint({ methods: req.methods, user, project: null, roles: [], applicationCredential: null });
    if (req.scope === undefined) {
      // Keystone scopes to the default project when none is asked for and the user has a role there.
      const dflt = u.default_project_id ? await projectsRepo.get(db, u.default_project_id) : undefined;
      const scoped = dflt
        ? await checkedProject(u, dflt, dflt.id).catch((err) => {
            if (err instanceof Unauthorized) return null;
            throw err;
          })
        : null;
      if (scoped) return mint({ methods: req.methods, user, ...scoped, applicationCredential: null });
      return mint({ methods: req.methods, user, project: null, roles: [], applicationCredential: null });
    }
    const ref = req.scope.project;
    const scoped = await checkedProject(u, await findProject(ref), ref.id ?? ref.name ?? '');
    return mint({ methods: req.methods, user, ...scoped, applicationCredential: null });
  }

  async function withApplicationCredential(req: AuthRequest): Promise<TokenInfo> {
    const ac = req.applicationCredential;
    if (!ac)
      throw new InvalidInput(
        "The 'application_credential' method needs auth.identity.application_credential.",
      );
    let row = ac.id ? await applicationCredentialsRepo.get(db, ac.id) : undefined;
    if (!ac.id) {
      if (!ac.name || !ac.user)
        throw new InvalidInput(
          'An application credential needs an id, or a name and its user (id, or name and domain).',
        );
      const owner = await findUser(ac.user);
      row = owner ? await applicationCredentialsRepo.getByName(db, owner.id, ac.name) : undefined;
    }
    const keys: LoginKeys = {
      account: appCredentialKey(row?.id ?? ac.id ?? namedKey('user', ac.user ?? {}) + `/${ac.name ?? ''}`),
      address: req.source,
    };
    const attempt = await throttle.begin(keys);
    const ok = await verifySecret(ac.secret, row?.secret_hash);
    await attempt.done(ok && row !== undefined);
    if (row?.expires_at && row.expires_at.getTime() <= Date.now()) throw new Unauthorized(BAD_APP_CREDENTIAL);
    const owner = row ? await usersRepo.get(db, row.user_id) : undefined;
    const user = await activeUser(row && owner, ok, BAD_APP_CREDENTIAL);
    const cred = row!;
    const scoped = await checkedProject(owner!, await projectsRepo.get(db, cred.project_id), cred.project_id);
    // The credential fixes the project; a scope in the request (clients send one when OS_PROJECT_*
    // is set) is accepted only if it names that same project.
    if (req.scope === 'unscoped' || (req.scope && !(await sameProject(req.scope.project, scoped.project))))
      throw new Unauthorized(
        `Application credential ${cred.id} is bound to project ${cred.project_id}; the requested scope differs.`,
      );
    // The credential can never carry more than its user holds today.
    const granted = new Set((await rolesRepo.expand(db, cred.role_ids)).map((r) => r.id));
    const roles = scoped.roles.filter((r) => granted.has(r.id));
    if (roles.length === 0)
      throw new Unauthorized(
        `User ${user.id} no longer holds any role of application credential ${cred.id}.`,
      );
    const expiresAt =
      cred.expires_at && cred.expires_at.getTime() < Date.now() + lifetimeMs ? cred.expires_at : undefined;
    return mint(
      {
        methods: req.methods,
        user,
        project: scoped.project,
        roles,
        applicationCredential: { id: cred.id, name: cred.name, restricted: !cred.unrestricted },
      },
      expiresAt,
    );
  }

  /** Checks a token's signature, expiry and revocation; throws InvalidTokenSignature otherwise. */
  async function decode(token: string): Promise<TokenInfo> {
    const c = (await keys.verify(token)) as unknown as Claims;
    const info: TokenInfo = {
      token,
      methods: c.mth,
      user: { id: c.sub, name: c.usr.n, domain: c.usr.d },
      project: c.prj ? { id: c.prj.i, name: c.prj.n, domain: c.prj.d } : null,
      roles: c.rol,
      auditId: c.aid,
      issuedAt: new Date(c.iat * 1000),
      expiresAt: new Date(c.exp * 1000),
      applicationCredential: c.ac ? { id: c.ac.i, name: c.ac.n, restricted: c.ac.r } : null,
    };
    const revoked = await revocations.isRevoked({
      auditId: info.auditId,
      userId: info.user.id,
      projectId: info.project?.id ?? null,
      issuedAt: c.iat * 1000,
    });
    if (revoked) throw new InvalidTokenSignature('revoked');
    return info;
  }

  return {
    /** POST /v3/auth/tokens */
    async issue(req: AuthRequest): Promise<TokenInfo> {
      const unknown = req.methods.filter((m) => !(AUTH_METHODS as readonly string[]).includes(m));
      if (unknown.length > 0)
        throw new Unauthorized(
          `Unsupported authentication method: ${unknown.join(', ')}. Supported: ${AUTH_METHODS.join(', ')}.`,
        );
      if (req.methods.length !== 1)
        throw new Unauthorized('Authenticate with exactly one method: password or application_credential.');
      return req.methods[0] === 'password' ? withPassword(req) : withApplicationCredential(req);
    },

    /** The caller's token (X-Auth-Token) → who is calling. */
    async authenticate(token: string | undefined): Promise<Auth> {
      if (!token) throw new Unauthorized(BAD_TOKEN);
      let info: TokenInfo;
      try {
        info = await decode(token);
      } catch (err) {
        if (err instanceof InvalidTokenSignature) throw new Unauthorized(BAD_TOKEN);
        throw err;
      }
      const roles = info.roles.map((r) => r.name);
      return {
        userId: info.user.id,
        userName: info.user.name,
        userDomainId: info.user.domain.id,
        projectId: info.project?.id ?? null,
        projectName: info.project?.name ?? null,
        roles,
        isAdmin: roles.includes('admin'),
        auditId: info.auditId,
        applicationCredential: info.applicationCredential
          ? { id: info.applicationCredential.id, restricted: info.applicationCredential.restricted }
          : null,
        isStaticAdmin: false,
      };
    },

    /** GET/HEAD /v3/auth/tokens: the subject token, if valid; 404 otherwise (as Keystone). */
    async validate(subject: string | undefined): Promise<TokenInfo> {
      if (!subject) throw new InvalidInput('The X-Subject-Token header is required.');
      try {
        return await decode(subject);
      } catch (err) {
        if (err instanceof InvalidTokenSignature) throw new NotFound(`Could not find token: ${err.message}.`);
        throw err;
      }
    },

    /** DELETE /v3/auth/tokens */
    async revoke(info: TokenInfo): Promise<void> {
      await revocations.revokeToken(db, info.auditId, info.expiresAt);
    },
  };
}

export type TokenService = ReturnType<typeof createTokenService>;
