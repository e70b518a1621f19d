/**
 * npm run bench:pg-failover — what a PostgreSQL restart or failover does to the API tier: two
 * abaca-server processes on one database serve clients that create shares and read them back
 * without pause; BENCH_PG_RESTART_AT seconds in, the shell command BENCH_PG_RESTART restarts (or
 * fails over) the database. Prints, per second, requests answered and the status codes seen; the
 * window in which requests failed; the slowest request; then, once the load stops, whether every
 * share the API accepted reached `available`, how long that took, and what was left in the tasks
 * table. Nothing is retried by the clients: every failure a user would see is counted.
 *
 * Environment:
 *   BENCH_DATABASE_URL   postgres:// URL of a server whose user may create databases (required)
 *   BENCH_PG_RESTART     shell command run at BENCH_PG_RESTART_AT (required), for example
 *                        `pg_ctlcluster 15 main restart -m immediate` or a Patroni switchover
 *   BENCH_PG_RESTART_AT  seconds into the load (default 5)
 *   BENCH_SECONDS        length of the load (default 20)
 *   BENCH_CONNECTIONS    clients (default 8)
 *   BENCH_LEASE_SECONDS  the servers' ABACA_TASK_LEASE_SECONDS (default 30, the default)
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import knexFactory from 'knex';
import { tempDir } from '../test/helpers/db.ts';
import { type ServerProcess, startServerProcess } from '../test/helpers/process.ts';
import { passwordToken } from './lib.ts';

const PG_URL = process.env.BENCH_DATABASE_URL;
const RESTART = process.env.BENCH_PG_RESTART;
const RESTART_AT = Number(process.env.BENCH_PG_RESTART_AT ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const LEASE_SECONDS = Number(process.env.BENCH_LEASE_SECONDS ?? 30);
const PASSWORD = 'bench-admin-password';

interface Sample {
  start: number;
  end: number;
  what: 'create' | 'show';
  /** HTTP status, or the error code of a request that got no answer. */
  outcome: string;
}

async function main(): Promise<void> {
  if (!PG_URL || !RESTART) {
    console.log(
      'set BENCH_DATABASE_URL and BENCH_PG_RESTART (see the comment at the top of bench/pg-failover.ts)',
    );
    process.exitCode = 2;
    return;
  }
  const name = `abaca_bench_failover_${randomBytes(4).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: PG_URL, pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE DATABASE ${name}`);
  await admin.destroy();
  const u = new URL(PG_URL);
  u.pathname = `/${name}`;
  const storage = tempDir('abaca-bench-failover-storage');
  const data = [tempDir('abaca-bench-failover-a'), tempDir('abaca-bench-failover-b')];
  const env = (dir: string) => ({
    DATABASE_URL: u.toString(),
    ABACA_DATA_DIR: dir,
    ABACA_ADMIN_PASSWORD: PASSWORD,
    ABACA_LOG_LEVEL: 'warn',
    ABACA_TASK_LEASE_SECONDS: String(LEASE_SECONDS),
    ABACA_BACKENDS: JSON.stringify([
      // A create spends a moment in the backend, so tasks are in flight when the database goes.
      {
        name: 'shared',
        driver: 'local',
        options: { rootDir: storage.path, capacityGiB: 100_000, delays: { createShare: 300 } },
      },
    ]),
  });
  const servers: ServerProcess[] = [];
  try {
    servers.push(await startServerProcess(env(data[0]!.path)));
    servers.push(await startServerProcess(env(data[1]!.path)));
    const token = await passwordToken(servers[0]!.url, 'admin', 'admin', PASSWORD);
    const headers = {
      'content-type': 'application/json',
      'X-Auth-Token': token,
      'X-OpenStack-Manila-API-Version': '2.72',
    };
    const quota = await fetch(`${servers[0]!.url}/v2/quota-sets/${await projectOf(servers[0]!.url, token)}`, {
      method: 'PUT',
      headers,
      body: JSON.stringify({ quota_set: { shares: -1, gigabytes: -1 } }),
    });
    if (quota.status !== 200) throw new Error(`quota update: ${quota.status} ${await quota.text()}`);

    const t0 = Date.now();
    const samples: Sample[] = [];
    const accepted: string[] = [];
    const timed = async (what: Sample['what'], f: () => Promise<Response>): Promise<Response | null> => {
      const start = Date.now() - t0;
      try {
        const res = await f();
        samples.push({ start, end: Date.now() - t0, what, outcome: String(res.status) });
        return res;
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause;
        samples.push({ start, end: Date.now() - t0, what, outcome: cause?.code ?? (err as Error).name });
        return null;
      }
    };
    let restartMs: { start: number; end: number } | null = null;
    const restart = new Promise<void>((resolve) =>
      setTimeout(() => {
        const start = Date.now() - t0;
        console.log(`t=${(start / 1000).toFixed(1)} s: ${RESTART}`);
        // Not execSync: the clients run in this process and must keep timing their requests.
        spawn('sh', ['-c', RESTART], { stdio: 'inherit' }).once('exit', (code) => {
          restartMs = { start, end: Date.now() - t0 };
          console.log(`t=${(restartMs.end / 1000).toFixed(1)} s: restart command exited with ${code}`);
          resolve();
        });
      }, RESTART_AT * 1000),
    );
    const client = async (i: number) => {
      const via = servers[i % servers.length] as ServerProcess;
      for (let n = 0; Date.now() - t0 < SECONDS * 1000; n++) {
        const res = await timed('create', () =>
          fetch(`${via.url}/v2/shares`, {
            method: 'POST',
            headers,
            body: JSON.stringify({ share: { size: 1, share_proto: 'NFS', name: `c${i}-${n}` } }),
          }),
        );
        if (res?.status !== 200) {
          await res?.text();
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        const id = ((await res.json()) as { share: { id: string } }).share.id;
        accepted.push(id);
        const shown = await timed('show', () => fetch(`${via.url}/v2/shares/${id}`, { headers }));
        await shown?.text();
      }
    };
    await Promise.all([...Array.from({ length: CONNECTIONS }, (_, i) => client(i)), restart]);
    const loadEnd = Date.now() - t0;

    // Per second: requests finished and what they answered.
    console.log('\nsecond  answered  outcomes');
    for (let s = 0; s * 1000 < loadEnd; s++) {
      const inSecond = samples.filter((x) => x.end >= s * 1000 && x.end < (s + 1) * 1000);
      const counts = new Map<string, number>();
      for (const x of inSecond) counts.set(x.outcome, (counts.get(x.outcome) ?? 0) + 1);
      console.log(
        `${String(s).padStart(6)}  ${String(inSecond.length).padStart(8)}  ${[...counts]
          .map(([k, v]) => `${k}×${v}`)
          .join(' ')}`,
      );
    }
    const failed = samples.filter((x) => !x.outcome.startsWith('2'));
    const slowest = samples.reduce((m, x) => Math.max(m, x.end - x.start), 0);
    console.log(
      `\nrequests: ${samples.length}, failed: ${failed.length}${
        failed.length
          ? ` (first ended at ${(Math.min(...failed.map((x) => x.end)) / 1000).toFixed(2)} s, last at ${(
              Math.max(...failed.map((x) => x.end)) / 1000
            ).toFixed(2)} s; ${[...new Set(failed.map((x) => `${x.what} ${x.outcome}`))].join(', ')})`
          : ''
      }`,
    );
    console.log(`slowest request: ${slowest} ms`);

    // Every share the API accepted must get to available: the tasks outlive the outage.
    const settleStart = Date.now();
    const db = knexFactory({ client: 'pg', connection: u.toString(), pool: { min: 0, max: 1 } });
    try {
      let left: { status: string; n: string }[] = [];
      for (;;) {
        left = await db('shares')
          .whereNot({ status: 'available' })
          .groupBy('status')
          .select('status')
          .count({ n: '*' });
        if (left.length === 0 || Date.now() - settleStart > (LEASE_SECONDS + 60) * 1000) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      const total = Number(((await db('shares').count({ n: '*' })) as { n: string }[])[0]?.n);
      const tasks = await db('tasks').select('kind', 'state', 'error');
      console.log(
        `shares accepted (200): ${accepted.length}; rows: ${total}; not available after ${
          (Date.now() - settleStart) / 1000
        } s: ${left.length ? left.map((l) => `${l.status}×${l.n}`).join(' ') : 'none'}; tasks left: ${
          tasks.length ? JSON.stringify(tasks) : 'none'
        }`,
      );
    } finally {
      await db.destroy();
    }
    // What the servers logged at warn and above, by message (and error), with counts.
    const logged = new Map<string, number>();
    for (const s of servers)
      for (const line of s.stdout().split('\n')) {
        if (!line.startsWith('{')) continue;
        const l = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
        if ((l.level ?? 0) < 40) continue;
        const key = `${l.msg}${l.err?.message ? `: ${l.err.message.slice(0, 100)}` : ''}`;
        logged.set(key, (logged.get(key) ?? 0) + 1);
      }
    console.log('\nserver log, warn and above:');
    for (const [k, n] of logged) console.log(`  ${n}× ${k}`);
  } finally {
    await Promise.all(servers.map((s) => s.stop('SIGTERM')));
    const cleanup = knexFactory({ client: 'pg', connection: PG_URL, pool: { min: 0, max: 1 } });
    await cleanup.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await cleanup.destroy();
    storage.remove();
    for (const d of data) d.remove();
  }
}

async function projectOf(url: string, token: string): Promise<string> {
  const res = await fetch(`${url}/identity/v3/auth/tokens`, {
    headers: { 'X-Auth-Token': token, 'X-Subject-Token': token },
  });
  return ((await res.json()) as { token: { project: { id: string } } }).token.project.id;
}

await main();
