/** What the benchmarks share: the database runs, and the table they print. */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import knexFactory from 'knex';
import { requestPasswordToken } from '../test/helpers/process.ts';

/**
 * Runs `bench` on PGlite (unless BENCH_PGLITE=0), then on a fresh database of BENCH_DATABASE_URL's
 * PostgreSQL server when that is set (dropped afterwards). `bench` gets the label and the server
 * environment to use.
 */
export async function onEachDatabase<R>(
  bench: (db: string, env: Record<string, string>) => Promise<R[]>,
): Promise<R[]> {
  const rows = process.env.BENCH_PGLITE === '0' ? [] : [...(await bench('PGlite', {}))];
  const pgUrl = process.env.BENCH_DATABASE_URL;
  if (!pgUrl) {
    console.log(
      'PostgreSQL: skipped (set BENCH_DATABASE_URL=postgres://user:pass@127.0.0.1/postgres to include it)',
    );
    return rows;
  }
  const name = `abaca_bench_${randomBytes(4).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: pgUrl, pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE DATABASE ${name}`);
  const u = new URL(pgUrl);
  u.pathname = `/${name}`;
  try {
    rows.push(...(await bench('PostgreSQL', { DATABASE_URL: u.toString() })));
  } finally {
    await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.destroy();
  }
  return rows;
}

/** The middle value of `xs` (the mean of the two middle ones for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface ResultRow {
  db: string;
  scenario: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

/** The server's own counts: SQL statements sent, and requests answered (aborted ones included). */
export async function serverCounts(url: string): Promise<{ queries: number; requests: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const queries = Number(/^abaca_db_queries_total (\d+)/m.exec(text)?.[1] ?? Number.NaN);
  let requests = 0;
  for (const m of text.matchAll(
    /^abaca_http_requests_total\{method="(GET|POST)",route="([^"]+)"[^}]*\} (\d+)/gm,
  ))
    if (m[2] !== '/metrics') requests += Number(m[3]);
  return { queries, requests };
}

/**
 * CPU time (user + system) a process and its live descendants (an abaca-server's API processes)
 * have used, in milliseconds, from /proc (NaN elsewhere). Per request it is steadier than req/s on
 * a machine shared with other work, which steals the cores from the server and the load generator
 * alike.
 */
export function processCpuMs(pid: number | undefined): number {
  try {
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th overall.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    let ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
    for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(' ')
      .filter(Boolean)) {
      const childMs = processCpuMs(Number(child));
      if (!Number.isNaN(childMs)) ms += childMs;
    }
    return ms;
  } catch {
    return Number.NaN;
  }
}

/** USER_HZ: 100 on every Linux architecture Node supports. */
const CLOCK_TICKS = 100;

export interface ExtraColumn {
  header: string;
  cell: (r: ResultRow) => string;
}

/**
 * Prints a dated header naming the machine and a table with each scenario's ratio to the
 * baseline (the scenario whose name starts with "baseline") of the same database.
 */
export function printTable(title: string, rows: ResultRow[], extras: ExtraColumn[] = []) {
  const cpus = os.cpus();
  console.log(
    `\n${title}, ${new Date().toISOString().slice(0, 10)}, ${cpus.length}× ${cpus[0]?.model.trim()}, ` +
      `Node ${process.version}\n`,
  );
  const header = [
    'database',
    'scenario',
    'req/s',
    'p50 ms',
    'p99 ms',
    'vs baseline',
    'non-2xx',
    ...extras.map((e) => e.header),
  ];
  const table = rows.map((r) => {
    const base = rows.find((b) => b.db === r.db && b.scenario.startsWith('baseline'));
    return [
      r.db,
      r.scenario,
      r.rps.toFixed(0),
      String(r.p50),
      String(r.p99),
      base ? `${((r.rps / base.rps) * 100).toFixed(0)}%` : '',
      String(r.errors),
      ...extras.map((e) => e.cell(r)),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ');
  console.log(line(header));
  for (const row of table) console.log(line(row));
}

/** A password token for `user` on project `project`, or an error that says why not. */
export async function passwordToken(
  url: string,
  user: string,
  project: string,
  password: string,
): Promise<string> {
  const res = await requestPasswordToken(url, password, user, project);
  if (res.status !== 201) throw new Error(`token for ${user}@${project}: ${res.status} ${await res.text()}`);
  return res.headers.get('x-subject-token') as string;
}

/** The JSON body of an answer that must be 2xx. */
export async function okJson(res: Response): Promise<Record<string, unknown>> {
  if (!res.ok) throw new Error(`${res.url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

/**
 * A project `name` with a member `<name>-user` (password 'bench-password') and no quota limits;
 * returns the user's name.
 */
export async function memberProject(url: string, admin: string, name: string): Promise<string> {
  const h = { 'content-type': 'application/json', 'X-Auth-Token': admin };
  const post = (p: string, body: unknown) =>
    fetch(`${url}${p}`, { method: 'POST', headers: h, body: JSON.stringify(body) }).then(okJson);
  const p = (await post('/identity/v3/projects', { project: { name } })) as { project: { id: string } };
  const u = (await post('/identity/v3/users', {
    user: { name: `${name}-user`, password: 'bench-password', default_project_id: p.project.id },
  })) as { user: { id: string } };
  const roles = (await okJson(await fetch(`${url}/identity/v3/roles?name=member`, { headers: h }))) as {
    roles: { id: string }[];
  };
  await fetch(`${url}/identity/v3/projects/${p.project.id}/users/${u.user.id}/roles/${roles.roles[0]?.id}`, {
    method: 'PUT',
    headers: h,
  });
  await okJson(
    await fetch(`${url}/v2/quota-sets/${p.project.id}`, {
      method: 'PUT',
      headers: { ...h, 'X-OpenStack-Manila-API-Version': '2.72' }, // quota-sets: 2.7 and later
      body: JSON.stringify({ quota_set: { shares: -1, gigabytes: -1 } }),
    }),
  );
  return `${name}-user`;
}
