import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/db.ts';
import { REPO_ROOT, type ServerProcess, startServerProcess } from '../helpers/process.ts';

export const ADMIN_PASSWORD = 'cli-admin-password';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A server process with a data dir, a HOME and a cache dir of its own for the CLI runs. */
export interface CliServer {
  server: ServerProcess;
  url: string;
  /** The OS_* environment from the openrc the server wrote: its admin. */
  adminEnv: Record<string, string>;
  /** HOME of every CLI run (so ~/.config/openstack and ~/.cache are the test's own). */
  home: string;
  /** XDG_CACHE_HOME of every CLI run unless a test overrides it. */
  cacheHome: string;
  stop(): Promise<void>;
}

/** Parses `export NAME='value'` lines as the openrc abaca-server writes them. */
export function parseOpenrc(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2] as string;
    if (v.startsWith("'") && v.endsWith("'")) v = v.slice(1, -1).replaceAll("'\\''", "'");
    env[m[1] as string] = v;
  }
  return env;
}

export async function startCliServer(
  prefix: string,
  extraEnv: Record<string, string> = {},
): Promise<CliServer> {
  const data = tempDir(prefix);
  const server = await startServerProcess({
    ABACA_DATA_DIR: path.join(data.path, 'data'),
    ABACA_ADMIN_PASSWORD: ADMIN_PASSWORD,
    ABACA_LOG_LEVEL: 'warn',
    ...extraEnv,
  });
  const home = path.join(data.path, 'home');
  const cacheHome = path.join(data.path, 'cache');
  mkdirSync(home, { recursive: true });
  return {
    server,
    url: server.url,
    adminEnv: parseOpenrc(path.join(data.path, 'data', 'openrc')),
    home,
    cacheHome,
    async stop() {
      await server.stop();
      data.remove();
    },
  };
}

export interface RunOptions {
  cwd?: string;
  /** Written to the CLI's stdin, which is then closed. */
  input?: string;
  /** Replaces HOME / XDG_CACHE_HOME (given as part of env). */
  timeoutMs?: number;
}

/**
 * Runs `bin/abaca.js` as a subprocess with only the environment given (plus PATH, HOME and a
 * cache dir), so nothing leaks in from the shell that runs the tests.
 */
export function runAbaca(
  srv: CliServer,
  args: string[],
  env: Record<string, string>,
  opts: RunOptions = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/abaca.js'), ...args], {
      cwd: opts.cwd ?? srv.home,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: srv.home,
        XDG_CACHE_HOME: srv.cacheHome,
        LANG: 'C.UTF-8',
        ...env,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`abaca ${args.join(' ')} did not finish in time:\n${stdout}\n${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs the CLI and requires exit 0; `-f json` output comes back parsed. */
export async function abacaOk(
  srv: CliServer,
  args: string[],
  env: Record<string, string>,
  opts?: RunOptions,
  // biome-ignore lint/suspicious/noExplicitAny: CLI JSON is free-form; each test asserts on the fields it reads
): Promise<any> {
  const res = await runAbaca(srv, args, env, opts);
  assert.equal(res.code, 0, `abaca ${args.join(' ')} exited ${res.code}:\n${res.stderr}`);
  const i = args.indexOf('-f');
  return i >= 0 && args[i + 1] === 'json' ? JSON.parse(res.stdout) : res.stdout;
}

/** Runs the CLI and requires the given exit code; returns what it printed. */
export async function abacaFails(
  srv: CliServer,
  args: string[],
  env: Record<string, string>,
  code = 1,
  opts?: RunOptions,
): Promise<CliResult> {
  const res = await runAbaca(srv, args, env, opts);
  assert.equal(
    res.code,
    code,
    `abaca ${args.join(' ')} exited ${res.code}, expected ${code}:\n${res.stdout}\n${res.stderr}`,
  );
  // Errors are one line of text, never a stack trace.
  assert.doesNotMatch(res.stderr, /\n\s+at .+:\d+:\d+/, 'a stack trace was printed');
  return res;
}

export const REQUEST_ID = /\(Request-ID: req-[0-9a-f-]{36}\)/;

/**
 * A self-signed certificate (P-256, one day) for 127.0.0.1 made with openssl, as an operator
 * would make one for a test setup: returns the PEM files' paths.
 */
export function selfSignedCert(
  dir: string,
  name = 'server',
  cn = '127.0.0.1',
): { key: string; cert: string } {
  const key = path.join(dir, `${name}-key.pem`);
  const cert = path.join(dir, `${name}.pem`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  return { key, cert };
}
