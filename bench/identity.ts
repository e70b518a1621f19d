/**
 * npm run bench:identity — token issue and token validation throughput with 50 concurrent clients
 * on loopback, against a real abaca-server process, on PGlite and (with BENCH_DATABASE_URL, a
 * postgres:// URL whose user may create databases) on PostgreSQL. The baseline, measured in the same
 * run, is GET /identity/v3: the same server answering a static document.
 *
 * Environment: BENCH_SECONDS (default 10 per scenario), BENCH_CONNECTIONS (default 50).
 */
import { tempDir } from '../test/helpers/db.ts';
import { type ServerProcess, startServerProcess } from '../test/helpers/process.ts';
import { onEachDatabase, printTable, type ResultRow, serverCounts } from './lib.ts';
import { GENERATOR, load } from './load.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const PASSWORD = 'bench-admin-password';

interface Row extends ResultRow {
  queriesPerRequest: number;
}

async function run(
  url: string,
  db: string,
  scenario: string,
  opts: {
    path: string;
    method?: 'GET' | 'POST';
    headers?: Record<string, string>;
    body?: string;
    expect: number;
  },
): Promise<Row> {
  const c0 = await serverCounts(url);
  const r = await load({ url: `${url}${opts.path}`, ...opts, connections: CONNECTIONS, seconds: SECONDS });
  const c1 = await serverCounts(url);
  return {
    db,
    scenario,
    rps: r.rps,
    p50: r.p50,
    p99: r.p99,
    errors: r.errors,
    queriesPerRequest: (c1.queries - c0.queries) / Math.max(c1.requests - c0.requests, 1),
  };
}

async function benchOne(db: string, env: Record<string, string>): Promise<Row[]> {
  const data = tempDir('abaca-bench-identity');
  let server: ServerProcess | null = null;
  try {
    server = await startServerProcess({
      ...env,
      ABACA_DATA_DIR: data.path,
      ABACA_ADMIN_PASSWORD: PASSWORD,
      ABACA_LOG_LEVEL: 'warn',
    });
    const auth = JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'admin', domain: { name: 'Default' }, password: PASSWORD } },
        },
        scope: { project: { name: 'admin', domain: { name: 'Default' } } },
      },
    });
    const res = await fetch(`${server.url}/identity/v3/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: auth,
    });
    const token = res.headers.get('x-subject-token') as string;
    const rows = [
      await run(server.url, db, 'baseline GET /identity/v3', { path: '/identity/v3', expect: 200 }),
      await run(server.url, db, 'validate GET /auth/tokens', {
        path: '/identity/v3/auth/tokens?nocatalog',
        headers: { 'x-auth-token': token, 'x-subject-token': token },
        expect: 200,
      }),
      await run(server.url, db, 'issue POST /auth/tokens', {
        path: '/identity/v3/auth/tokens',
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: auth,
        expect: 201,
      }),
    ];
    return rows;
  } finally {
    await server?.stop();
    data.remove();
  }
}

const rows = await onEachDatabase(benchOne);
console.log(`(${CONNECTIONS} connections, ${SECONDS} s per scenario; load: ${GENERATOR})`);
printTable('identity benchmark', rows, [
  { header: 'db queries/req', cell: (r) => (r as Row).queriesPerRequest.toFixed(3) },
]);
