import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tempDir } from './db.ts';
import {
  REPO_ROOT,
  requestPasswordToken,
  type ServerProcess,
  startServerProcess,
  waitFor,
} from './process.ts';

export const OPENSTACK = '/usr/bin/openstack';

/**
 * Whether the real OpenStack client (Debian's python3-openstackclient) is here. In CI it must be:
 * .ci/run installs it, so a missing client there is a failure, not a skip.
 */
export function openstackClientSkip(): string | false {
  if (existsSync(OPENSTACK)) return false;
  if (process.env.CI)
    throw new Error(`${OPENSTACK} is missing in CI: .ci/run must install python3-openstackclient`);
  return `needs ${OPENSTACK} (apt-get install python3-openstackclient)`;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Put first on the clients' PYTHONPATH: it hides eventlet, which the clients do not need (see the
 * file there) and whose import is a third of each command's CPU.
 */
const CLIENT_PYTHONPATH = `${REPO_ROOT}test/helpers/python-clients`;

/** Runs a client with only the OS_* variables given (none inherited from the caller's shell). */
export function runClient(binary: string, args: string[], osEnv: Record<string, string>): Promise<CliResult> {
  const env: Record<string, string> = {
    PATH: '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    LANG: 'C.UTF-8',
    PYTHONPATH: CLIENT_PYTHONPATH,
  };
  return new Promise((resolve) => {
    execFile(binary, args, { env: { ...env, ...osEnv }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export const MANILA = '/usr/bin/manila';
export const COMPAT_ADMIN_PASSWORD = 'compat-admin-password';

/** Runs a client and requires success; `-f json` output comes back parsed. */
// biome-ignore lint/suspicious/noExplicitAny: the clients' JSON is free-form; each test asserts on the fields it reads
export async function runOk(binary: string, args: string[], osEnv: Record<string, string>): Promise<any> {
  const res = await runClient(binary, args, osEnv);
  if (res.code !== 0) throw new Error(`${binary} ${args.join(' ')} failed (${res.code}): ${res.stderr}`);
  return args.includes('json') ? JSON.parse(res.stdout) : res.stdout;
}

/** A server process in a fresh data dir, and the OS_* environment that logs in as its admin. */
export interface CompatServer {
  server: ServerProcess;
  adminEnv: Record<string, string>;
  stop(): Promise<void>;
}

/** The OS_* environment that logs in as the admin of a server started with COMPAT_ADMIN_PASSWORD. */
export function compatAdminEnv(serverUrl: string): Record<string, string> {
  return {
    OS_AUTH_URL: `${serverUrl}/identity/v3`,
    OS_IDENTITY_API_VERSION: '3',
    OS_USERNAME: 'admin',
    OS_PASSWORD: COMPAT_ADMIN_PASSWORD,
    OS_PROJECT_NAME: 'admin',
    OS_USER_DOMAIN_NAME: 'Default',
    OS_PROJECT_DOMAIN_NAME: 'Default',
    OS_REGION_NAME: 'RegionOne',
  };
}

export async function startCompatServer(
  prefix: string,
  extraEnv: Record<string, string> = {},
): Promise<CompatServer> {
  const data = tempDir(prefix);
  const server = await startServerProcess({
    ABACA_DATA_DIR: data.path,
    ABACA_ADMIN_PASSWORD: COMPAT_ADMIN_PASSWORD,
    ...extraEnv,
  });
  return {
    server,
    adminEnv: compatAdminEnv(server.url),
    async stop() {
      await server.stop();
      data.remove();
    },
  };
}

/**
 * The server's API as its admin, straight over HTTP: for a compat test's set-up, polling and
 * clean-up, so that the real clients run only for the behaviour under test (each client command
 * costs about 1.5 s of CPU in Python start-up). Paths are relative to the server's root.
 */
export interface CompatApi {
  token: string;
  /** The project the token is scoped to. */
  projectId: string;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies, checked by the tests that read them
  call(method: string, path: string, body?: unknown): Promise<any>;
  /**
   * Polls `GET path` until `body[key][field]` (field: `status`, or `state` for access rules) is
   * `want`; fails at once on an error status that is not the one awaited.
   */
  waitStatus(path: string, key: string, want: string, field?: string): Promise<void>;
  /** Polls `GET path` until it is a 404. */
  waitGone(path: string, timeoutMs?: number): Promise<void>;
}

export async function compatApi(
  serverUrl: string,
  user = 'admin',
  password = COMPAT_ADMIN_PASSWORD,
  project = 'admin',
): Promise<CompatApi> {
  const res = await requestPasswordToken(serverUrl, password, user, project);
  if (res.status !== 201) throw new Error(`token for ${user}: ${res.status} ${await res.text()}`);
  const token = res.headers.get('x-subject-token') as string;
  const projectId = ((await res.json()) as { token: { project: { id: string } } }).token.project.id;
  const request = (method: string, path: string, body?: unknown) =>
    fetch(`${serverUrl}${path}`, {
      method,
      headers: {
        'X-Auth-Token': token,
        'Content-Type': 'application/json',
        'X-OpenStack-Manila-API-Version': '2.72',
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const call = async (method: string, path: string, body?: unknown) => {
    const r = await request(method, path, body);
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : {};
  };
  return {
    token,
    projectId,
    call,
    async waitStatus(path, key, want, field = 'status') {
      await waitFor(`${path} to be ${want}`, 60_000, async () => {
        const now = (await call('GET', path))[key][field] as string;
        if (now !== want && (now === 'error' || now.endsWith('_error')))
          throw new Error(`${path} is ${now}, not ${want}`);
        return now === want ? true : undefined;
      });
    },
    async waitGone(path, timeoutMs = 60_000) {
      await waitFor(`${path} to be gone`, timeoutMs, async () =>
        (await request('GET', path)).status === 404 ? true : undefined,
      );
    },
  };
}
