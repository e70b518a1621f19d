/** What the benchmarks share: the database runs, and the table they print. */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import knexFactory from 'knex';

/**
 * Runs `bench` on PGlite, then on a fresh database of BENCH_DATABASE_URL's PostgreSQL server when
 * that is set (dropped afterwards). `bench` gets the label and the server environment to use.
 */
export async function onEachDatabase<R>(
  bench: (db: string, env: Record<string, string>) => Promise<R[]>,
): Promise<R[]> {
  const rows = [...(await bench('PGlite', {}))];
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

export interface ResultRow {
  db: string;
  scenario: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

/**
 * Prints a dated header naming the machine and a table with each scenario's ratio to the
 * baseline (the scenario whose name starts with "baseline") of the same database.
 */
export function printTable(
  title: string,
  rows: ResultRow[],
  extra?: { header: string; cell: (r: ResultRow) => string },
) {
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
    ...(extra ? [extra.header] : []),
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
      ...(extra ? [extra.cell(r)] : []),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ');
  console.log(line(header));
  for (const row of table) console.log(line(row));
}
