/** Test helpers for `abaca mount`: real mounts served by `abaca mount --foreground` child processes. */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const ABACA = path.join(ROOT, 'bin/abaca.js');

/** Why these tests cannot run here, or false. CI runs as root with /dev/fuse. */
export const fuseSkip: string | false =
  process.getuid?.() !== 0
    ? 'mounting FUSE needs root'
    : !fs.existsSync('/dev/fuse')
      ? 'no /dev/fuse on this machine'
      : false;

export interface Mount {
  dir: string;
  child: ChildProcess;
  /** Everything the mount process wrote to stderr so far. */
  output(): string;
  /** Resolves when the process serving the mount has ended. */
  exited: Promise<void>;
  /** Unmounts (lazily) and waits for the process to end. */
  stop(): Promise<void>;
}

const mounts: Mount[] = [];

/** `abaca mount SOURCE DIR --foreground ARGS…`; resolves once it says "mounted". */
export async function mount(
  source: string,
  dir: string,
  args: string[] = [],
  env: Record<string, string> = {},
  /** A command to run it through, e.g. ['nsenter', '--net=/run/netns/NS']. */
  prefix: string[] = [],
): Promise<Mount> {
  fs.mkdirSync(dir, { recursive: true });
  const argv = [process.execPath, ABACA, 'mount', source, dir, '--foreground', ...args];
  const cmd = [...prefix, ...argv];
  const child = spawn(cmd[0]!, cmd.slice(1), {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d) => {
      out += d;
      if (/^mounted /m.test(out)) resolve();
    });
    child.on('exit', (code) => reject(new Error(`abaca mount exited ${code}: ${out}`)));
  });
  const m: Mount = {
    dir,
    child,
    output: () => out,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        spawnSync('umount', ['-l', dir]);
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      spawnSync('umount', ['-l', dir]);
    },
  };
  mounts.push(m);
  return m;
}

/**
 * The mount's counters (`kill -USR1`): the first line it prints afterwards that contains `marker`.
 */
export async function counterLine(m: Mount, marker: string): Promise<string> {
  const before = m.output().length;
  m.child.kill('SIGUSR1');
  for (let i = 0; i < 50; i++) {
    const line = m
      .output()
      .slice(before)
      .split('\n')
      .find((l) => l.includes(marker));
    if (line) return line;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no counters from the mount: ${m.output().slice(before)}`);
}

/** Unmounts every mount this file made (call in after()). */
export async function unmountAll(): Promise<void> {
  await Promise.all(mounts.splice(0).map((m) => m.stop()));
}

/** Runs a command to its end with exactly the environment given: its exit code, stdout and stderr. */
export function runCommand(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 60_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => {
      stdout += d;
    });
    child.stderr!.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** Runs `abaca ARGS…` to the end, with `env` added to this process's: its exit code, stdout and stderr. */
export function abaca(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCommand(process.execPath, [ABACA, ...args], { ...process.env, ...env }, timeoutMs);
}

/** Why a test with network namespaces cannot run here (no FUSE, `ip netns` or nsenter), or false. */
export function netnsSkip(): string | false {
  if (fuseSkip) return fuseSkip;
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return 'ip netns is not available';
  if (spawnSync('nsenter', ['--version']).status !== 0) return 'nsenter is not available';
  return false;
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** The error code of a synchronous fs call, or 'ok'. */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return errCode(err);
  }
}

const ERRNO_NAMES = new Map(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));

/** An fs error's code; libuv has no name for some (EDQUOT, ESTALE), so those are named from errno. */
export function errCode(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const byErrno = e.errno === undefined ? undefined : ERRNO_NAMES.get(-e.errno);
  if (byErrno && (e.code === undefined || e.code === 'UNKNOWN' || e.code.startsWith('Unknown')))
    return byErrno;
  return e.code ?? String(err);
}

export interface Py {
  /** Lines the script printed so far. */
  lines: string[];
  /** Resolves once the script printed `line`. */
  said(line: string): Promise<void>;
  exit: Promise<{ code: number | null; stderr: string }>;
  kill(): void;
}

/** Runs a python3 script with `import fcntl, os, sys, time` and args; its stdout lines are kept. */
export function py(script: string, ...args: string[]): Py {
  const child = spawn('python3', ['-u', '-c', `import fcntl, os, sys, time, errno\n${script}`, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let buf = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exit = new Promise<{ code: number | null; stderr: string }>((r) =>
    child.on('close', (code) => r({ code, stderr })),
  );
  return {
    lines,
    exit,
    kill: () => child.kill('SIGKILL'),
    said: (line) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (lines.includes(line)) resolve();
          else waiters.push(check);
        };
        exit.then((e) => {
          if (!lines.includes(line))
            reject(new Error(`script ended (${e.code}) before '${line}': ${e.stderr}`));
        });
        check();
      }),
  };
}
