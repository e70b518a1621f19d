import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import pg from 'pg';
import type { Executor } from '../db.ts';

/** What the pg client and PGlite both offer on a pooled connection. */
interface Queryable {
  query(sql: string, values: readonly unknown[]): Promise<{ rows: unknown[] }>;
}

/** Names of the prepared statements by text (as bounded as the texts callers may prepare). */
const statementNames = new Map<string, string>();

/**
 * Runs a SELECT (SQL text with $1…$n parameters, each used once and in order) on a connection of
 * knex's own pool, without knex's query runner. For the hottest read — a page of share ids and
 * revisions — the runner (pool bookkeeping, response processing, promise layers) cost about
 * 0.35 ms of CPU per statement on the 2-core test machine, more than the pg driver took for the
 * whole round trip. Same pool, same 'query' event for the metrics. Inside a transaction it goes
 * through knex, which owns that connection. Only for rows that need no knex post-processing.
 * `prepared` (PostgreSQL only) names the statement after its text — for statements whose texts
 * come in a few shapes only, since each connection keeps every one it has seen.
 */
export async function selectRows<T>(
  ex: Executor,
  sql: string,
  values: unknown[],
  opts: { prepared?: boolean } = {},
): Promise<T[]> {
  if (ex.isTransaction)
    return (await ex.raw(sql.replace(/\$\d+/g, '?'), values as Knex.RawBinding[])).rows as T[];
  const client = ex.client as Knex.Client & {
    acquireConnection(): Promise<Queryable>;
    releaseConnection(c: Queryable): Promise<void>;
  };
  const connection = await client.acquireConnection();
  try {
    client.emit('query', { sql, bindings: values, method: 'select' });
    if (opts.prepared && connection instanceof pg.Client) {
      // A named statement is parsed once per connection and, after a few runs, planned once:
      // planning this page query cost PostgreSQL 0.6 ms, more than running it (0.1–0.3 ms).
      let name = statementNames.get(sql);
      if (name === undefined) {
        name = `abaca_${createHash('sha1').update(sql).digest('hex').slice(0, 20)}`;
        statementNames.set(sql, name);
      }
      return (await connection.query({ name, text: sql, values })).rows as T[];
    }
    return (await connection.query(sql, values)).rows as T[];
  } finally {
    await client.releaseConnection(connection);
  }
}
