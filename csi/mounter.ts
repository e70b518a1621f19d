/**
 * The node's mount table work, behind an interface (a fake can stand in for it): what is mounted
 * where (always read again from /proc/self/mountinfo, so a restarted plugin knows as much as the
 * one before it), whether a mount answers, the FUSE mount of a share (`abaca mount`, detached: it
 * outlives the plugin), bind mounts and unmounts.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../backends/replicated/processes.ts';
import { type MountEntry, readMounts } from '../client/mount/mountinfo.ts';

export type { MountEntry };

/** The `abaca` command of this package (from the sources or from their build in dist/). */
export const ABACA_BIN = path.join(packageRoot(), 'bin', 'abaca.js');

export type Health = { ok: true; stats: fs.StatsFs } | { ok: false; code: string; message: string };

export interface Mounter {
  mounts(): MountEntry[];
  /** The mounts on `dir`, the most recent last. */
  at(dir: string): MountEntry[];
  health(dir: string): Promise<Health>;
  mountShare(location: string, dir: string, readOnly: boolean, env: Record<string, string>): Promise<void>;
  bind(source: string, target: string, readOnly: boolean): Promise<void>;
  unmount(dir: string, lazy: boolean): Promise<void>;
}

export class CommandFailed extends Error {
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(message);
  }
}

function run(cmd: string, args: string[], env?: Record<string, string>, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: env ? { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env } : process.env,
    });
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
    });
    child.stderr!.on('data', (d) => {
      out += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new CommandFailed(`${cmd}: ${err.message}`, ''));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else {
        const last = out.trim().split('\n').filter(Boolean).pop() ?? '';
        reject(new CommandFailed(last || `${cmd} exited with ${code ?? signal}`, out));
      }
    });
  });
}

export class SystemMounter implements Mounter {
  mounts(): MountEntry[] {
    return readMounts();
  }

  at(dir: string): MountEntry[] {
    const p = path.resolve(dir);
    return this.mounts().filter((m) => m.mountPoint === p);
  }

  /** statfs with a bound: a FUSE server that hangs must not hang the plugin. */
  async health(dir: string): Promise<Health> {
    const probe = fs.promises.statfs(dir).then(
      (stats): Health => ({ ok: true, stats }),
      (err: NodeJS.ErrnoException): Health => ({ ok: false, code: err.code ?? 'EIO', message: err.message }),
    );
    const timeout = new Promise<Health>((resolve) =>
      setTimeout(
        () => resolve({ ok: false, code: 'ETIMEDOUT', message: `statfs ${dir} did not answer in 10 s` }),
        10_000,
      ).unref(),
    );
    return Promise.race([probe, timeout]);
  }

  async mountShare(
    location: string,
    dir: string,
    readOnly: boolean,
    env: Record<string, string>,
  ): Promise<void> {
    const args = [ABACA_BIN, 'mount', location, dir, '--no-token-cache', ...(readOnly ? ['--ro'] : [])];
    // Only the credentials and the locale go to the mount process: no OS_* of the plugin's own.
    await run(
      process.execPath,
      args,
      { HOME: process.env.HOME ?? '/root', LANG: 'C.UTF-8', ...env },
      120_000,
    );
  }

  async bind(source: string, target: string, readOnly: boolean): Promise<void> {
    await run('mount', ['--bind', source, target]);
    if (readOnly) {
      try {
        await run('mount', ['-o', 'remount,bind,ro', target]);
      } catch (err) {
        await run('umount', [target]).catch(() => {});
        throw err;
      }
    }
  }

  async unmount(dir: string, lazy: boolean): Promise<void> {
    await run('umount', lazy ? ['-l', dir] : [dir]);
  }
}
