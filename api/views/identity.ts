import type { Config } from '../../services/config.ts';
import type { ApplicationCredential } from '../../services/identity/application-credentials.ts';
import { buildCatalog, identityUrl } from '../../services/identity/catalog.ts';
import type { Assignment, NamedRef } from '../../services/identity/role-assignments.ts';
import type { TokenInfo } from '../../services/identity/tokens.ts';
import type { DomainRow } from '../../services/repos/domains.ts';
import type { ProjectRow } from '../../services/repos/projects.ts';
import type { RoleRow } from '../../services/repos/roles.ts';
import type { UserRow } from '../../services/repos/users.ts';

/** Keystone prints times with microseconds: 2026-11-22T00:30:52.000000Z */
export function keystoneTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** The identity version document (reference/manila-api.md §1.1). */
export function versionV3(config: Config) {
  return {
    id: 'v3.14',
    status: 'stable',
    updated: '2020-04-07T00:00:00Z',
    links: [{ rel: 'self', href: `${identityUrl(config)}/` }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
  };
}

export function token(config: Config, t: TokenInfo, withCatalog: boolean) {
  return {
    token: {
      methods: t.methods,
      expires_at: keystoneTime(t.expiresAt),
      issued_at: keystoneTime(t.issuedAt),
      audit_ids: [t.auditId],
      user: { id: t.user.id, name: t.user.name, domain: t.user.domain, password_expires_at: null },
      ...(t.project
        ? { project: { id: t.project.id, name: t.project.name, domain: t.project.domain }, is_domain: false }
        : {}),
      ...(t.project ? { roles: t.roles } : {}),
      ...(t.applicationCredential
        ? {
            application_credential: {
              id: t.applicationCredential.id,
              name: t.applicationCredential.name,
              restricted: t.applicationCredential.restricted,
            },
          }
        : {}),
      ...(withCatalog && t.project ? { catalog: buildCatalog(config) } : {}),
    },
  };
}

const self = (config: Config, path: string) => ({ self: `${identityUrl(config)}/${path}` });

/** The `links` block of a Keystone collection (no paging: every list is returned whole). */
export function collectionLinks(config: Config, path: string) {
  return { ...self(config, path), previous: null, next: null };
}

export function domain(config: Config, d: DomainRow) {
  return {
    ...d.extra,
    id: d.id,
    name: d.name,
    description: d.description,
    enabled: d.enabled,
    tags: [],
    options: {},
    links: self(config, `domains/${d.id}`),
  };
}

export function project(config: Config, p: ProjectRow) {
  return {
    ...p.extra,
    id: p.id,
    name: p.name,
    domain_id: p.domain_id,
    description: p.description,
    enabled: p.enabled,
    parent_id: p.domain_id,
    is_domain: false,
    tags: p.tags,
    options: p.options,
    links: self(config, `projects/${p.id}`),
  };
}

export function user(config: Config, u: UserRow) {
  return {
    ...u.extra,
    id: u.id,
    name: u.name,
    domain_id: u.domain_id,
    enabled: u.enabled,
    ...(u.default_project_id ? { default_project_id: u.default_project_id } : {}),
    password_expires_at: null,
    options: u.options,
    links: self(config, `users/${u.id}`),
  };
}

export function role(config: Config, r: RoleRow) {
  return {
    ...r.extra,
    id: r.id,
    name: r.name,
    domain_id: null,
    description: r.description,
    options: r.options,
    links: self(config, `roles/${r.id}`),
  };
}

export function roleAssignment(config: Config, a: Assignment, names: Map<string, NamedRef> | null) {
  const named = (id: string) => ({ id, ...names?.get(id) });
  return {
    role: names ? { id: a.role.id, name: a.role.name } : { id: a.role.id },
    user: named(a.userId),
    scope: a.type === 'UserProject' ? { project: named(a.targetId) } : { domain: named(a.targetId) },
    links: {
      // An implied role has no grant of its own: link the grant that implies it, as Keystone does.
      assignment: `${identityUrl(config)}/projects/${a.targetId}/users/${a.userId}/roles/${a.priorRoleId ?? a.role.id}`,
      ...(a.priorRoleId ? { prior_role: `${identityUrl(config)}/roles/${a.priorRoleId}` } : {}),
    },
  };
}

export function applicationCredential(config: Config, c: ApplicationCredential) {
  return {
    id: c.id,
    name: c.name,
    user_id: c.user_id,
    project_id: c.project_id,
    description: c.description,
    expires_at: c.expires_at ? keystoneTime(c.expires_at) : null,
    unrestricted: c.unrestricted,
    roles: c.roles,
    access_rules: [],
    ...(c.secret !== undefined ? { secret: c.secret } : {}),
    links: self(config, `users/${c.user_id}/application_credentials/${c.id}`),
  };
}
