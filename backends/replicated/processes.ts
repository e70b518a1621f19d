/**
 * Starting the daemons as child processes (tests, the bench, and later solo mode): spawn a bin
 * entry, wait for its "listening on <addr>" line, and stop it by pid.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package's root, where bin/ is: the nearest folder above this module with a package.json —
 * whether this runs from the sources or from their build in dist/ (bin/entry.js).
 */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return dir;
}

const ROOT = packageRoot();

export class Proc {
  exited: Promise<number | null>;
  constructor(
    readonly child: ChildProcess,
    readonly addr: string,
  ) {
    this.exited = new Promise((r) => {
      if (child.exitCode !== null || child.signalCode !== null) r(child.exitCode);
      else child.once('exit', (code) => r(code));
    });
  }
  get port(): number {
    return Number(this.addr.slice(this.addr.lastIndexOf(':') + 1));
  }
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  signal(sig: NodeJS.Signals): void {
    if (this.alive && this.child.pid) process.kill(this.child.pid, sig);
  }
  async kill9(): Promise<void> {
    if (!this.alive) return;
    this.signal('SIGCONT');
    this.signal('SIGKILL');
    await this.exited;
  }
}

/** Spawns a bin entry and resolves once it prints "<name> listening on <addr>". */
/** `prefix` runs it through another command (e.g. ip netns exec NS); `env` adds variables. */
export function spawnDaemon(
  bin: string,
  args: string[],
  prefix?: string[],
  env?: Record<string, string>,
): Promise<Proc> {
  const cmd = prefix ? prefix[0]! : process.execPath;
  const full = prefix
    ? [...prefix.slice(1), process.execPath, path.join(ROOT, 'bin', bin), ...args]
    : [path.join(ROOT, 'bin', bin), ...args];
  // stdin stays an open pipe: the daemon exits when it closes, i.e. when this process dies.
  full.push('--exit-on-stdin-close');
  const child = spawn(cmd, full, {
    stdio: ['pipe', 'pipe', 'pipe'],
    cwd: ROOT,
    env: env ? { ...process.env, ...env } : process.env,
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${bin} did not start: ${out} ${err}`));
    }, 30_000);
    let listening = false;
    child.stdout!.on('data', (d: Buffer) => {
      if (listening) return; // a long-lived daemon's output is not kept
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) {
        listening = true;
        clearTimeout(timer);
        resolve(new Proc(child, m[1]!));
      }
    });
    child.stderr!.on('data', (d: Buffer) => {
      // Only the tail is kept, for the error message if it exits before listening.
      err = (err + d.toString()).slice(-8192);
      if (process.env['ABACA_VERBOSE']) process.stderr.write(d);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${bin} exited with ${code}: ${err}`));
    });
  });
}
