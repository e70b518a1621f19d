import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tempDir } from './db.ts';
import { type ServerProcess, startServerProcess } from './process.ts';

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

/** Runs a client with only the OS_* variables given (none inherited from the caller's shell). */
export function runClient(binary: string, args: string[], osEnv: Record<string, string>): Promise<CliResult> {
  const env: Record<string, string> = {
    PATH: '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    LANG: 'C.UTF-8',
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
