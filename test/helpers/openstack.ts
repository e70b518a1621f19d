import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';

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
