/**
 * Where the CLI's connection settings come from, as python-openstackclient reads them:
 * `--os-*` flags, then the cloud named by `--os-cloud` / `OS_CLOUD` in clouds.yaml (with
 * secure.yaml merged in), then the `OS_*` environment (the openrc abaca-server writes).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { type Credentials, DEFAULT_SHARE_API_VERSION, type DomainRef } from './client/index.ts';
import { CommandError, UsageError } from './errors.ts';

/** The global options, as commander names them (camelCase of `--os-…`). */
export interface GlobalOptions {
  osCloud?: string;
  osAuthUrl?: string;
  osAuthType?: string;
  osUsername?: string;
  osUserId?: string;
  osPassword?: string;
  osProjectName?: string;
  osProjectId?: string;
  osUserDomainName?: string;
  osUserDomainId?: string;
  osProjectDomainName?: string;
  osProjectDomainId?: string;
  osDefaultDomain?: string;
  osRegionName?: string;
  osInterface?: string;
  osToken?: string;
  osEndpoint?: string;
  osApplicationCredentialId?: string;
  osApplicationCredentialName?: string;
  osApplicationCredentialSecret?: string;
  osShareApiVersion?: string;
  osCacert?: string;
  /** --insecure: do not verify HTTPS certificates. */
  insecure?: boolean;
  /** false with --no-token-cache. */
  tokenCache?: boolean;
  httpTimeout?: string;
  debug?: boolean;
}

export interface ResolvedConfig {
  credentials: Credentials;
  region: string | null;
  interface: string;
  shareEndpoint: string | null;
  identityEndpoint: string | null;
  microversion: string;
  /** The cloud's name when one was selected. */
  cloud: string | null;
  /** The clouds.yaml the cloud came from. */
  cloudsFile: string | null;
  /** Which setting gave the auth URL, for hints: `--os-auth-url`, `OS_AUTH_URL` or the clouds.yaml path. */
  authUrlSource: string | null;
  /** HTTPS verification: a CA bundle file to trust instead of Node's CAs, or none at all. */
  tls: { caFile: string | null; caFileSource: string | null; insecure: boolean };
}

type Key =
  | 'authUrl'
  | 'authType'
  | 'username'
  | 'userId'
  | 'password'
  | 'projectName'
  | 'projectId'
  | 'userDomainName'
  | 'userDomainId'
  | 'projectDomainName'
  | 'projectDomainId'
  | 'defaultDomain'
  | 'region'
  | 'interface'
  | 'token'
  | 'endpoint'
  | 'appCredId'
  | 'appCredName'
  | 'appCredSecret'
  | 'shareApiVersion'
  | 'cacert';

/** flag (GlobalOptions key), environment variables, clouds.yaml paths (`auth.x` or top-level). */
const SETTINGS: Record<Key, { flag: keyof GlobalOptions; env: string[]; cloud: string[] }> = {
  authUrl: { flag: 'osAuthUrl', env: ['OS_AUTH_URL'], cloud: ['auth.auth_url'] },
  authType: { flag: 'osAuthType', env: ['OS_AUTH_TYPE'], cloud: ['auth_type'] },
  username: { flag: 'osUsername', env: ['OS_USERNAME'], cloud: ['auth.username'] },
  userId: { flag: 'osUserId', env: ['OS_USER_ID'], cloud: ['auth.user_id'] },
  password: { flag: 'osPassword', env: ['OS_PASSWORD'], cloud: ['auth.password'] },
  projectName: {
    flag: 'osProjectName',
    env: ['OS_PROJECT_NAME', 'OS_TENANT_NAME'],
    cloud: ['auth.project_name', 'auth.tenant_name'],
  },
  projectId: {
    flag: 'osProjectId',
    env: ['OS_PROJECT_ID', 'OS_TENANT_ID'],
    cloud: ['auth.project_id', 'auth.tenant_id'],
  },
  userDomainName: {
    flag: 'osUserDomainName',
    env: ['OS_USER_DOMAIN_NAME'],
    cloud: ['auth.user_domain_name'],
  },
  userDomainId: { flag: 'osUserDomainId', env: ['OS_USER_DOMAIN_ID'], cloud: ['auth.user_domain_id'] },
  projectDomainName: {
    flag: 'osProjectDomainName',
    env: ['OS_PROJECT_DOMAIN_NAME'],
    cloud: ['auth.project_domain_name'],
  },
  projectDomainId: {
    flag: 'osProjectDomainId',
    env: ['OS_PROJECT_DOMAIN_ID'],
    cloud: ['auth.project_domain_id'],
  },
  defaultDomain: {
    flag: 'osDefaultDomain',
    env: ['OS_DEFAULT_DOMAIN', 'OS_DEFAULT_DOMAIN_ID'],
    cloud: ['auth.default_domain_id', 'auth.domain_id'],
  },
  region: { flag: 'osRegionName', env: ['OS_REGION_NAME'], cloud: ['region_name'] },
  interface: {
    flag: 'osInterface',
    env: ['OS_INTERFACE', 'OS_ENDPOINT_TYPE'],
    cloud: ['interface', 'endpoint_type'],
  },
  token: { flag: 'osToken', env: ['OS_TOKEN'], cloud: ['auth.token'] },
  endpoint: {
    flag: 'osEndpoint',
    env: ['OS_ENDPOINT', 'OS_URL'],
    cloud: ['auth.endpoint', 'sharev2_endpoint_override', 'shared_file_system_endpoint_override'],
  },
  appCredId: {
    flag: 'osApplicationCredentialId',
    env: ['OS_APPLICATION_CREDENTIAL_ID'],
    cloud: ['auth.application_credential_id'],
  },
  appCredName: {
    flag: 'osApplicationCredentialName',
    env: ['OS_APPLICATION_CREDENTIAL_NAME'],
    cloud: ['auth.application_credential_name'],
  },
  appCredSecret: {
    flag: 'osApplicationCredentialSecret',
    env: ['OS_APPLICATION_CREDENTIAL_SECRET'],
    cloud: ['auth.application_credential_secret'],
  },
  shareApiVersion: { flag: 'osShareApiVersion', env: ['OS_SHARE_API_VERSION'], cloud: ['share_api_version'] },
  cacert: { flag: 'osCacert', env: ['OS_CACERT'], cloud: ['cacert'] },
};

/**
 * Settings the environment still fills in when a cloud is selected (a cloud entry replaces the
 * rest of the OS_* variables, so a sourced openrc does not leak into another cloud).
 */
const ENV_FILLS_CLOUD: ReadonlySet<Key> = new Set([
  'password',
  'region',
  'interface',
  'shareApiVersion',
  'cacert',
]);

const TRUE = /^(1|t|true|y|yes|on)$/i;

/** --insecure, else the cloud's `verify: false` / `insecure: true`, else OS_INSECURE. */
function insecureSetting(
  flags: GlobalOptions,
  cloud: { entry: Record<string, unknown> } | null,
  env: NodeJS.ProcessEnv,
): boolean {
  if (flags.insecure === true) return true;
  const verify = cloud?.entry.verify;
  if (verify !== undefined && verify !== null)
    return verify === false || /^(0|f|false|n|no|off)$/i.test(String(verify));
  const insecure = cloud?.entry.insecure;
  if (insecure !== undefined && insecure !== null) return insecure === true || TRUE.test(String(insecure));
  return TRUE.test(env.OS_INSECURE ?? '');
}

/** clouds.yaml locations, in openstacksdk's order; the first that exists is used. */
export function cloudsFileCandidates(env: NodeJS.ProcessEnv, cwd: string): string[] {
  const configHome = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  const dirs = [cwd, path.join(configHome, 'openstack'), '/etc/openstack'];
  const files = dirs.flatMap((d) => [path.join(d, 'clouds.yaml'), path.join(d, 'clouds.yml')]);
  return env.OS_CLIENT_CONFIG_FILE ? [env.OS_CLIENT_CONFIG_FILE, ...files] : files;
}

function secureFileCandidates(env: NodeJS.ProcessEnv, cwd: string): string[] {
  const configHome = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  return [cwd, path.join(configHome, 'openstack'), '/etc/openstack'].flatMap((d) => [
    path.join(d, 'secure.yaml'),
    path.join(d, 'secure.yml'),
  ]);
}

const require = createRequire(import.meta.url);

function readYaml(file: string): Record<string, unknown> {
  let doc: unknown;
  try {
    // Loaded only when a clouds.yaml is read.
    doc = (require('yaml') as typeof import('yaml')).parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CommandError(`Cannot read ${file}: ${(err as Error).message.split('\n')[0]}`);
  }
  return doc && typeof doc === 'object' ? (doc as Record<string, unknown>) : {};
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      prev &&
      typeof prev === 'object' &&
      !Array.isArray(prev) &&
      v &&
      typeof v === 'object' &&
      !Array.isArray(v)
        ? deepMerge(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** Loads a cloud's entry from the first clouds.yaml found, with secure.yaml merged in. */
export function loadCloud(
  name: string,
  env: NodeJS.ProcessEnv,
  cwd: string,
): { entry: Record<string, unknown>; file: string } {
  const candidates = cloudsFileCandidates(env, cwd);
  const file = candidates.find((f) => existsSync(f));
  if (!file)
    throw new CommandError(
      `Cloud '${name}' was asked for, but there is no clouds.yaml (looked in ${candidates.join(', ')}).`,
    );
  const clouds = (readYaml(file).clouds ?? {}) as Record<string, unknown>;
  let entry = clouds[name] as Record<string, unknown> | undefined;
  if (!entry || typeof entry !== 'object') {
    const known = Object.keys(clouds);
    throw new CommandError(
      `Cloud '${name}' is not in ${file} (${known.length ? `it has: ${known.join(', ')}` : 'it defines no clouds'}).`,
    );
  }
  const secure = secureFileCandidates(env, cwd).find((f) => existsSync(f));
  if (secure) {
    const extra = ((readYaml(secure).clouds ?? {}) as Record<string, unknown>)[name];
    if (extra && typeof extra === 'object') entry = deepMerge(entry, extra as Record<string, unknown>);
  }
  return { entry, file };
}

function pick(o: Record<string, unknown>, dotted: string): string | undefined {
  let cur: unknown = o;
  for (const part of dotted.split('.')) {
    if (!cur || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  if (cur === undefined || cur === null || cur === '') return undefined;
  return String(cur);
}

type AuthKind = 'password' | 'application_credential' | 'token';

function authKind(type: string): AuthKind {
  const t = type.toLowerCase().replace(/[-_]/g, '');
  if (t === 'password' || t === 'v3password') return 'password';
  if (t === 'v3applicationcredential' || t === 'applicationcredential') return 'application_credential';
  if (t === 'token' || t === 'v3token' || t === 'admintoken' || t === 'tokenendpoint') return 'token';
  throw new UsageError(
    `Unsupported auth type '${type}': use password, v3applicationcredential, token or admin_token.`,
  );
}

/** Builds the credentials and endpoints from flags, the selected cloud and the environment. */
export function resolveConfig(
  flags: GlobalOptions,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): ResolvedConfig {
  const cloudName = flags.osCloud || env.OS_CLOUD || null;
  const cloud = cloudName ? loadCloud(cloudName, env, cwd) : null;
  const source: Partial<Record<Key, string>> = {};

  const get = (key: Key): string | undefined => {
    const s = SETTINGS[key];
    const fromFlag = flags[s.flag];
    if (typeof fromFlag === 'string' && fromFlag !== '') {
      source[key] = `--${s.flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      return fromFlag;
    }
    if (cloud) {
      for (const p of s.cloud) {
        const v = pick(cloud.entry, p);
        if (v !== undefined) {
          source[key] = cloud.file;
          return v;
        }
      }
      if (!ENV_FILLS_CLOUD.has(key)) return undefined;
    }
    for (const e of s.env)
      if (env[e]) {
        source[key] = e;
        return env[e];
      }
    return undefined;
  };

  const v = Object.fromEntries((Object.keys(SETTINGS) as Key[]).map((k) => [k, get(k)])) as Record<
    Key,
    string | undefined
  >;

  const microversion = v.shareApiVersion ?? DEFAULT_SHARE_API_VERSION;
  if (!/^2\.\d{1,3}$/.test(microversion))
    throw new UsageError(`Share API version '${microversion}' is not of the form 2.N (for example 2.72).`);

  // An explicit type wins; a token or secret given as a flag beats an OS_AUTH_TYPE from openrc.
  const explicit =
    flags.osAuthType ||
    (flags.osToken ? 'token' : flags.osApplicationCredentialSecret ? 'v3applicationcredential' : undefined) ||
    v.authType;
  const kind: AuthKind = explicit
    ? authKind(explicit)
    : v.appCredSecret
      ? 'application_credential'
      : v.token
        ? 'token'
        : 'password';

  const defaultDomain: DomainRef | undefined = v.defaultDomain ? { id: v.defaultDomain } : undefined;
  const userDomain: DomainRef | undefined = v.userDomainId
    ? { id: v.userDomainId }
    : v.userDomainName
      ? { name: v.userDomainName }
      : defaultDomain;
  const projectDomain: DomainRef | undefined = v.projectDomainId
    ? { id: v.projectDomainId }
    : v.projectDomainName
      ? { name: v.projectDomainName }
      : defaultDomain;

  const hint =
    'source the openrc that abaca-server writes ($ABACA_DATA_DIR/openrc), set OS_CLOUD to a clouds.yaml entry, or give OS_TOKEN with --os-endpoint';
  const need = (value: string | undefined, what: string, env: string, flag: string): string => {
    if (value) return value;
    throw new CommandError(
      `Missing ${what}: set ${env} or ${flag}${cloud ? ` (or add it to ${cloud.file})` : ''}.`,
    );
  };

  let credentials: Credentials;
  if (kind === 'token') {
    const token = need(v.token, 'token', 'OS_TOKEN', '--os-token');
    if (!v.endpoint && !v.authUrl)
      throw new CommandError(
        'A token needs the share endpoint (--os-endpoint / OS_ENDPOINT, for example http://127.0.0.1:8786/v2) or an auth URL (OS_AUTH_URL).',
      );
    credentials = { type: 'token', token, ...(v.authUrl ? { authUrl: v.authUrl } : {}) };
  } else {
    if (!v.authUrl) throw new CommandError(`No auth URL: ${hint}.`);
    if (kind === 'application_credential') {
      const secret = need(
        v.appCredSecret,
        'application credential secret',
        'OS_APPLICATION_CREDENTIAL_SECRET',
        '--os-application-credential-secret',
      );
      if (!v.appCredId && !v.appCredName)
        throw new CommandError(
          'Missing application credential id: set OS_APPLICATION_CREDENTIAL_ID or --os-application-credential-id.',
        );
      if (!v.appCredId && !v.username && !v.userId)
        throw new CommandError(
          'An application credential given by name needs its user: set OS_USERNAME (or OS_USER_ID) too.',
        );
      credentials = {
        type: 'application_credential',
        authUrl: v.authUrl,
        secret,
        ...(v.appCredId ? { id: v.appCredId } : { name: v.appCredName }),
        ...(v.userId ? { userId: v.userId } : v.username ? { username: v.username } : {}),
        ...(userDomain ? { userDomain } : {}),
      };
    } else {
      if (!v.username && !v.userId)
        throw new CommandError('Missing user name: set OS_USERNAME or --os-username (or OS_USER_ID).');
      const password = need(v.password, 'password', 'OS_PASSWORD', '--os-password');
      const project =
        v.projectId || v.projectName
          ? {
              ...(v.projectId ? { id: v.projectId } : { name: v.projectName }),
              ...(projectDomain ? { domain: projectDomain } : {}),
            }
          : undefined;
      credentials = {
        type: 'password',
        authUrl: v.authUrl,
        password,
        ...(v.userId ? { userId: v.userId } : { username: v.username }),
        ...(userDomain ? { userDomain } : {}),
        ...(project ? { project } : {}),
      };
    }
  }

  const shareEndpoint = v.endpoint ?? null;
  // With a bare token and no auth URL, identity lives on the same server: /v2 → /identity/v3.
  const identityEndpoint =
    kind === 'token' && !v.authUrl && shareEndpoint
      ? shareEndpoint.replace(/\/v2(\/.*)?\/*$/, '') + '/identity/v3'
      : null;

  return {
    credentials,
    region: v.region ?? null,
    interface: v.interface ?? 'public',
    shareEndpoint,
    identityEndpoint,
    microversion,
    cloud: cloudName,
    cloudsFile: cloud?.file ?? null,
    authUrlSource: source.authUrl ?? null,
    tls: {
      caFile: v.cacert ?? null,
      caFileSource: source.cacert ?? null,
      insecure: insecureSetting(flags, cloud, env),
    },
  };
}
