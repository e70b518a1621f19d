/**
 * npm run bench:footprint — what the default installation costs a machine, side by side in one run:
 *
 * - resident memory of `abaca-server` as `npm start` runs it (solo mode: the API and worker
 *   process, three bricks and a share server), idle a few seconds after it listens: on PGlite at
 *   the first start (fresh data dir) and after a restart, and on PostgreSQL (BENCH_DATABASE_URL, a
 *   fresh database dropped afterwards); per process, summed, and the tree's distinct pages
 *   (bench/memory.ts; a sum of RSS counts the node binary once per process);
 * - the same after BENCH_SHARES (1,000) shares and BENCH_SECONDS (10) of 50 clients listing a
 *   100-share page, with the server process's peak RSS during the load;
 * - wall time of `abaca --help` and of `abaca share list` with a cached token (the build in dist/,
 *   and the TypeScript sources through tsx as the bins ran them before there was a build), and of
 *   `openstack share list` (python3-openstackclient), each BENCH_RUNS (7) times, with `node -e 0`
 *   as the baseline; wall time, and CPU time (user + system, through /usr/bin/time when it is
 *   there), which a loaded machine inflates less.
 *
 * BENCH_ONLY=cli measures the CLI alone, against one PGlite server holding 20 shares.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import { tempDir } from '../test/helpers/db.ts';
import { REPO_ROOT, type ServerProcess, startServerProcess } from '../test/helpers/process.ts';
import { memberProject, okJson, passwordToken } from './lib.ts';
import { load } from './load.ts';
import { type TreeMemory, treeMemory } from './memory.ts';

const SHARES = Number(process.env.BENCH_SHARES ?? 1000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const SETTLE_MS = 5000;
const PASSWORD = 'bench-admin-password';
const OPENSTACK = '/usr/bin/openstack';
const TIME = '/usr/bin/time';
const ONLY_CLI = process.env.BENCH_ONLY === 'cli';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface MemoryRow {
  db: string;
  when: string;
  tree: TreeMemory;
  /** Peak RSS of the server process while the list was under load (MB). */
  peakMb?: number;
}

function rssMb(pid: number): number {
  const kb = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

async function start(env: Record<string, string>): Promise<ServerProcess> {
  return startServerProcess({ ABACA_ADMIN_PASSWORD: PASSWORD, ABACA_LOG_LEVEL: 'warn', ...env }, 180_000);
}

async function stop(server: ServerProcess): Promise<void> {
  await server.stop();
  await sleep(500); // the supervisor has stopped its children when the server exits
}

async function idle(server: ServerProcess): Promise<TreeMemory> {
  await sleep(SETTLE_MS);
  return treeMemory(server.child.pid as number);
}

/** Creates `count` shares, 20 at a time, and waits until none is 'creating'. */
async function fill(url: string, token: string, count: number): Promise<void> {
  const h = { 'content-type': 'application/json', 'X-Auth-Token': token };
  const body = JSON.stringify({ share: { size: 1, share_proto: 'NFS' } });
  for (let i = 0; i < count; i += 20)
    await Promise.all(
      Array.from({ length: Math.min(20, count - i) }, () =>
        fetch(`${url}/v2/shares`, { method: 'POST', headers: h, body }).then(okJson),
      ),
    );
  for (;;) {
    const r = (await okJson(
      await fetch(`${url}/v2/shares?status=creating&with_count=True&limit=1`, { headers: h }),
    )) as { count: number };
    if (r.count === 0) return;
    await sleep(500);
  }
}

/** Lists a 100-share page under load, sampling the server process's RSS. */
async function listUnderLoad(url: string, token: string, pid: number): Promise<number> {
  let peak = rssMb(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssMb(pid));
  }, 250);
  try {
    const r = await load({
      url: `${url}/v2/shares/detail?limit=100`,
      headers: { 'X-Auth-Token': token, 'X-OpenStack-Manila-API-Version': '2.72' },
      connections: 50,
      seconds: SECONDS,
      expect: 200,
    });
    console.log(`  list of 100 under load: ${r.rps.toFixed(0)} req/s, p99 ${r.p99} ms, ${r.errors} errors`);
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, rssMb(pid));
}

interface Timing {
  what: string;
  /** Wall time, ms. */
  runs: number[];
  /** CPU time (user + system), ms; empty without /usr/bin/time. */
  cpu: number[];
}

/** Wall and CPU time of a command, RUNS times (after one unmeasured run that warms the caches). */
function time(what: string, cmd: string, args: string[], env: NodeJS.ProcessEnv): Timing {
  const runs: number[] = [];
  const cpu: number[] = [];
  const timed = existsSync(TIME);
  for (let i = 0; i <= RUNS; i++) {
    const t0 = process.hrtime.bigint();
    const r = timed
      ? spawnSync(TIME, ['-f', 'cpu %U %S', cmd, ...args], { env, cwd: REPO_ROOT, encoding: 'utf8' })
      : spawnSync(cmd, args, { env, cwd: REPO_ROOT, encoding: 'utf8' });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${what}: exit ${r.status}: ${r.stderr}`);
    if (i === 0) continue;
    runs.push(ms);
    const m = /^cpu ([\d.]+) ([\d.]+)$/m.exec(r.stderr);
    if (m) cpu.push((Number(m[1]) + Number(m[2])) * 1000);
  }
  return { what, runs, cpu };
}

/** Only the CLI rows: one PGlite server with 20 shares of the load project. */
async function cliOnly(timings: Timing[]): Promise<void> {
  const data = tempDir('abaca-bench-footprint');
  try {
    const server = await start({ ABACA_DATA_DIR: data.path });
    try {
      const admin = await passwordToken(server.url, 'admin', 'admin', PASSWORD);
      const user = await memberProject(server.url, admin, 'load');
      await fill(server.url, await passwordToken(server.url, user, 'load', 'bench-password'), 20);
      timings.push(...cliTimings(server.url));
    } finally {
      await stop(server);
    }
  } finally {
    data.remove();
  }
}

async function onPglite(rows: MemoryRow[], timings: Timing[]): Promise<void> {
  const data = tempDir('abaca-bench-footprint');
  let server: ServerProcess | undefined;
  try {
    server = await start({ ABACA_DATA_DIR: data.path });
    rows.push({ db: 'PGlite', when: 'idle, first start', tree: await idle(server) });
    await stop(server);
    server = undefined;
    server = await start({ ABACA_DATA_DIR: data.path });
    rows.push({ db: 'PGlite', when: 'idle, after a restart', tree: await idle(server) });
    const after = await loaded('PGlite', server);
    rows.push(after);
    timings.push(...cliTimings(server.url));
  } finally {
    // Also when a step failed: a bench must not leave a server and its bricks running.
    if (server) await stop(server);
    data.remove();
  }
}

async function loaded(db: string, server: ServerProcess): Promise<MemoryRow> {
  const url = server.url;
  const admin = await passwordToken(url, 'admin', 'admin', PASSWORD);
  const user = await memberProject(url, admin, 'load');
  const token = await passwordToken(url, user, 'load', 'bench-password');
  const t0 = Date.now();
  await fill(url, token, SHARES);
  console.log(`${db}: ${SHARES} shares created in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  const peakMb = await listUnderLoad(url, token, server.child.pid as number);
  await sleep(SETTLE_MS);
  return {
    db,
    when: `${SHARES} shares, after the list under load`,
    tree: treeMemory(server.child.pid as number),
    peakMb,
  };
}

async function onPostgres(rows: MemoryRow[], pgUrl: string): Promise<void> {
  const name = `abaca_footprint_${Date.now().toString(36)}`;
  const adminDb = knexFactory({ client: 'pg', connection: pgUrl, pool: { min: 0, max: 1 } });
  await adminDb.raw(`CREATE DATABASE ${name}`);
  const u = new URL(pgUrl);
  u.pathname = `/${name}`;
  const data = tempDir('abaca-bench-footprint-pg');
  let server: ServerProcess | undefined;
  try {
    server = await start({ ABACA_DATA_DIR: data.path, DATABASE_URL: u.toString() });
    rows.push({ db: 'PostgreSQL', when: 'idle, first start', tree: await idle(server) });
    rows.push(await loaded('PostgreSQL', server));
  } finally {
    if (server) await stop(server);
    data.remove();
    await adminDb.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await adminDb.destroy();
  }
}

/** The CLI timings against the server at url, as the load project's user, with a token cache of their own. */
function cliTimings(url: string): Timing[] {
  const cache = tempDir('abaca-bench-footprint-cache');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: cache.path,
    XDG_CACHE_HOME: cache.path,
    OS_AUTH_URL: `${url}/identity/v3`,
    OS_USERNAME: 'load-user',
    OS_PASSWORD: 'bench-password',
    OS_PROJECT_NAME: 'load',
    OS_USER_DOMAIN_NAME: 'Default',
    OS_PROJECT_DOMAIN_NAME: 'Default',
    OS_IDENTITY_API_VERSION: '3',
  };
  const node = process.execPath;
  const bin = path.join(REPO_ROOT, 'bin/abaca.js');
  const source = ['--import', 'tsx', path.join(REPO_ROOT, 'cli/main.ts')];
  const list = ['share', 'list', '--limit', '20'];
  try {
    execFileSync(node, [bin, ...list], { env, stdio: 'ignore' }); // caches the token
    const out = [
      time('node -e 0 (baseline)', node, ['-e', '0'], env),
      time('abaca --help', node, [bin, '--help'], env),
      time('abaca --help, sources through tsx', node, [...source, '--help'], env),
      time('abaca share list --limit 20, cached token', node, [bin, ...list], env),
      time('abaca share list --limit 20, cached token, sources through tsx', node, [...source, ...list], env),
    ];
    if (existsSync(OPENSTACK))
      out.push(time('openstack share list --limit 20', OPENSTACK, list, { ...env, HOME: cache.path }));
    else console.log(`${OPENSTACK} not found (apt-get install python3-openstackclient): left out`);
    return out;
  } finally {
    cache.remove();
  }
}

function buildIsCurrent(): boolean {
  const r = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', 'import("./bin/entry.js").then((m) => console.log(m.buildIsCurrent()))'],
    { cwd: REPO_ROOT, encoding: 'utf8' },
  );
  return r.stdout.trim() === 'true';
}

const cpus = os.cpus();
const mb = (n: number) => n.toFixed(0);
const pgUrl = process.env.BENCH_DATABASE_URL;
if (!buildIsCurrent()) {
  console.log('dist/ is missing or older than the sources: running npm run build first');
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: REPO_ROOT, stdio: 'inherit' });
}
const rows: MemoryRow[] = [];
const timings: Timing[] = [];
if (ONLY_CLI) await cliOnly(timings);
else {
  await onPglite(rows, timings);
  if (pgUrl) await onPostgres(rows, pgUrl);
  else console.log('PostgreSQL: skipped (set BENCH_DATABASE_URL=postgres://user:pass@127.0.0.1/postgres)');
}

console.log(
  `\nbench:footprint, ${new Date().toISOString().slice(0, 10)}, ${cpus.length}× ${cpus[0]?.model.trim()}, ` +
    `Node ${process.version}, load average ${os.loadavg()[0]?.toFixed(1)}\n`,
);
if (rows.length) console.log('Resident memory, MB (per process: RSS / private)');
for (const r of rows) {
  const per = r.tree.processes.map((p) => `${p.command.split(' ')[0]} ${mb(p.rssMb)}/${mb(p.privateMb)}`);
  console.log(
    `${r.db.padEnd(10)} ${r.when.padEnd(40)} tree: ${r.tree.distinctMb === null ? 'n/a (not root)' : mb(r.tree.distinctMb)} distinct, ${mb(r.tree.sumRssMb)} summed RSS` +
      `${r.peakMb ? `; server peak during load ${mb(r.peakMb)}` : ''}\n${' '.repeat(11)}${per.join(', ')}`,
  );
}
console.log(`\nms, ${RUNS} runs: min / median / max of the wall time; CPU time (user + system)`);
const spread = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `${mb(s[0] as number)} / ${mb(s[Math.floor(s.length / 2)] as number)} / ${mb(s[s.length - 1] as number)}`;
};
for (const t of timings)
  console.log(`${t.what.padEnd(64)} wall ${spread(t.runs)}${t.cpu.length ? `; CPU ${spread(t.cpu)}` : ''}`);
