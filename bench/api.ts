/**
 * npm run bench:api — share API throughput with 50 concurrent clients on loopback against a real
 * abaca-server (memory backend, so the numbers are the API's own): GET /v2/shares/detail with 100
 * and with 10,000 shares in the project (a page of 100 — the cost must follow the page, not the
 * table), GET /v2/shares/{id}, and POST /v2/shares with the worker taking each share to available.
 * Baseline in the same run: GET /v2 (version document). Two ceilings in the same run: a bare
 * node:http server answering the same detail page, with JSON.stringify per request and as text
 * made once. PGlite (one API process), and PostgreSQL with BENCH_DATABASE_URL (a postgres:// URL
 * whose user may create databases) with BENCH_API_WORKERS API processes (default: one per CPU),
 * then again with one. The load generator is wrk when installed (bench/load.ts).
 *
 * Environment: BENCH_SECONDS (default 10), BENCH_CONNECTIONS (default 50), BENCH_LARGE (10000),
 * BENCH_PGLITE=0 to measure PostgreSQL only, BENCH_API_WORKERS, BENCH_GENERATOR=autocannon.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tempDir } from '../test/helpers/db.ts';
import { type ServerProcess, startServerProcess } from '../test/helpers/process.ts';
import {
  memberProject,
  onEachDatabase,
  passwordToken,
  printTable,
  processCpuMs,
  type ResultRow,
  serverCounts,
} from './lib.ts';
import { GENERATOR, load } from './load.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const LARGE = Number(process.env.BENCH_LARGE ?? 10_000);
/** API processes of the server on PostgreSQL (ABACA_API_WORKERS); PGlite serves one process. */
const API_WORKERS = Number(process.env.BENCH_API_WORKERS ?? os.cpus().length);
const PASSWORD = 'bench-admin-password';

interface Row extends ResultRow {
  /** SQL statements per request (the worker's and the revocation list's included). */
  queriesPerRequest: number;
  /** CPU time of the server process per request (its worker's included). */
  serverCpuMs: number;
}

/** What a scenario loads: a server process, and whether it counts its requests in /metrics. */
interface Target {
  url: string;
  pid: number | undefined;
  metrics: boolean;
}

const abaca = (server: ServerProcess): Target => ({ url: server.url, pid: server.child.pid, metrics: true });

async function run(
  target: Target,
  db: string,
  scenario: string,
  url: string,
  opts: { headers: Record<string, string>; method?: 'GET' | 'POST'; body?: string; expect: number },
): Promise<Row> {
  const counts = async () =>
    target.metrics ? serverCounts(target.url) : { queries: Number.NaN, requests: Number.NaN };
  const c0 = await counts();
  const cpu0 = processCpuMs(target.pid);
  const r = await load({ url, ...opts, connections: CONNECTIONS, seconds: SECONDS });
  const cpu1 = processCpuMs(target.pid);
  const c1 = await counts();
  const requests = target.metrics ? Math.max(c1.requests - c0.requests, 1) : r.total;
  return {
    db,
    scenario,
    rps: r.rps,
    p50: r.p50,
    p99: r.p99,
    errors: r.errors,
    queriesPerRequest: (c1.queries - c0.queries) / requests,
    serverCpuMs: (cpu1 - cpu0) / requests,
  };
}

function token(url: string, project: string, user = 'admin', password = PASSWORD): Promise<string> {
  return passwordToken(url, user, project, password);
}

/** Waits until the worker has taken every share of the project out of 'creating'. */
async function settled(url: string, t: string): Promise<void> {
  for (;;) {
    const res = await fetch(`${url}/v2/shares?status=creating&with_count=True&limit=1`, {
      headers: { 'X-Auth-Token': t },
    });
    if (((await res.json()) as { count: number }).count === 0) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Makes a project with a member and fills it with `count` available shares (through the API). */
async function project(url: string, admin: string, name: string, count: number): Promise<string> {
  const user = await memberProject(url, admin, name);
  const t = await token(url, name, user, 'bench-password');
  const body = JSON.stringify({ share: { size: 1, share_proto: 'NFS' } });
  const sh = { 'content-type': 'application/json', 'X-Auth-Token': t };
  for (let i = 0; i < count; i += 50)
    await Promise.all(
      Array.from({ length: Math.min(50, count - i) }, () =>
        fetch(`${url}/v2/shares`, { method: 'POST', headers: sh, body }),
      ),
    );
  await settled(url, t);
  return t;
}

/**
 * The ceilings' server: answers every request with the page in argv[1] — JSON.stringify of it per
 * request ("stringify"), or its text made once ("text", which is what abaca sends from the JSON it
 * keeps per share).
 */
const CEILING_SERVER = `
const http = require('node:http');
const text = require('node:fs').readFileSync(process.argv[1], 'utf8');
const page = JSON.parse(text);
const perRequest = process.argv[2] === 'stringify';
const server = http.createServer((req, res) => {
  const body = perRequest ? JSON.stringify(page) : text;
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 5000;
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

/** Loads a ceiling server with the given detail page. */
async function ceiling(db: string, page: string, dir: string, mode: 'stringify' | 'text'): Promise<Row> {
  const file = path.join(dir, 'page.json');
  writeFileSync(file, page);
  const child = spawn(process.execPath, ['-e', CEILING_SERVER, file, mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<string>((resolve, reject) => {
      child.stdout.once('data', (d) => resolve(String(d).trim()));
      child.once('exit', (code) => reject(new Error(`ceiling server exited with ${code}`)));
    });
    const url = `http://127.0.0.1:${port}`;
    const scenario =
      mode === 'stringify'
        ? 'ceiling: bare node:http, JSON.stringify of that page'
        : 'ceiling: bare node:http, that page as ready text';
    return await run({ url, pid: child.pid, metrics: false }, db, scenario, url, {
      headers: {},
      expect: 200,
    });
  } finally {
    child.kill();
  }
}

const SERVER_ENV = {
  ABACA_ADMIN_PASSWORD: PASSWORD,
  ABACA_LOG_LEVEL: 'warn',
  ABACA_BACKENDS: JSON.stringify([
    { name: 'mem', driver: 'memory', options: { pools: [{ name: 'p', totalCapacityGiB: 10_000_000 }] } },
  ]),
};

const headers = (t: string) => ({ 'X-Auth-Token': t, 'X-OpenStack-Manila-API-Version': '2.72' });

async function benchOne(dbName: string, env: Record<string, string>): Promise<Row[]> {
  const data = tempDir('abaca-bench-api');
  const workers = env.DATABASE_URL ? API_WORKERS : 1;
  const db = `${dbName}, ${workers} API process${workers > 1 ? 'es' : ''}`;
  let server: ServerProcess | null = null;
  try {
    server = await startServerProcess({
      ...env,
      ...SERVER_ENV,
      ABACA_DATA_DIR: data.path,
      ABACA_API_WORKERS: String(workers),
    });
    const url = server.url;
    const admin = await token(url, 'admin');
    const small = await project(url, admin, 'small', 100);
    const t0 = Date.now();
    const large = await project(url, admin, 'large', LARGE);
    console.log(`${db}: seeded ${LARGE} shares in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const h = headers;
    const first = (await (await fetch(`${url}/v2/shares?limit=1`, { headers: h(small) })).json()) as {
      shares: { id: string }[];
    };
    const anyShare = first.shares[0]?.id;
    const page = await (await fetch(`${url}/v2/shares/detail`, { headers: h(small) })).text();
    // The scenarios measured with every server shape, by the label of their rows.
    const baseline = (s: ServerProcess, label: string) =>
      run(abaca(s), label, 'baseline GET /v2', `${s.url}/v2`, { headers: {}, expect: 200 });
    const detail = (s: ServerProcess, label: string) =>
      run(abaca(s), label, 'GET /v2/shares/detail (100 shares)', `${s.url}/v2/shares/detail`, {
        headers: h(small),
        expect: 200,
      });
    const show = (s: ServerProcess, label: string) =>
      run(abaca(s), label, 'GET /v2/shares/{id}', `${s.url}/v2/shares/${anyShare}`, {
        headers: h(small),
        expect: 200,
      });
    const create = (s: ServerProcess, label: string) =>
      run(abaca(s), label, 'POST /v2/shares (+ worker)', `${s.url}/v2/shares`, {
        headers: { ...h(large), 'content-type': 'application/json' },
        method: 'POST',
        body: JSON.stringify({ share: { size: 1, share_proto: 'NFS' } }),
        expect: 200,
      });
    const rows = [
      await baseline(server, db),
      await detail(server, db),
      await run(
        abaca(server),
        db,
        `GET /v2/shares/detail?limit=100 (${LARGE} shares)`,
        `${url}/v2/shares/detail?limit=100`,
        { headers: h(large), expect: 200 },
      ),
      await ceiling(db, page, data.path, 'stringify'),
      await ceiling(db, page, data.path, 'text'),
      await show(server, db),
      await create(server, db),
    ];
    if (workers > 1) {
      // The same database served by one API process, for comparison.
      await server.stop();
      server = await startServerProcess({ ...env, ...SERVER_ENV, ABACA_DATA_DIR: data.path });
      const one = `${dbName}, 1 API process`;
      rows.push(
        await baseline(server, one),
        await detail(server, one),
        await show(server, one),
        await create(server, one),
      );
    }
    return rows;
  } finally {
    await server?.stop();
    data.remove();
  }
}

const rows = await onEachDatabase(benchOne);
console.log(
  `(${CONNECTIONS} connections, ${SECONDS} s per scenario, ${LARGE} shares in the large project; load: ${GENERATOR})`,
);
printTable('share API benchmark', rows, [
  {
    header: 'db queries/req',
    cell: (r) => (Number.isNaN((r as Row).queriesPerRequest) ? '' : (r as Row).queriesPerRequest.toFixed(2)),
  },
  { header: 'server CPU ms/req', cell: (r) => (r as Row).serverCpuMs.toFixed(2) },
]);
