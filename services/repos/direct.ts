import type { Knex } from 'knex';
import type { Executor } from '../db.ts';

/** What the pg client and PGlite both offer on a pooled connection. */
interface Queryable {
  query(sql: string, values: readonly unknown[]): Promise<{ rows: unknown[] }>;
}

/**
 * Runs a SELECT (SQL text with $1…$n parameters, each used once and in order) on a connection of
 * knex's own pool, without knex's query runner. For the hottest read — a page of share ids and
 * revisions — the runner (pool bookkeeping, response processing, promise layers) cost about
 * 0.35 ms of CPU per statement on the 2-core test machine, more than the pg driver took for the
 * whole round trip. Same pool, same 'query' event for the metrics. Inside a transaction it goes
 * through knex, which owns that connection. Only for rows that need no knex post-processing.
 */
export async function selectRows<T>(ex: Executor, sql: string, values: unknown[]): Promise<T[]> {
  if (ex.isTransaction)
    return (await ex.raw(sql.replace(/\$\d+/g, '?'), values as Knex.RawBinding[])).rows as T[];
  const client = ex.client as Knex.Client & {
    acquireConnection(): Promise<Queryable>;
    releaseConnection(c: Queryable): Promise<void>;
  };
  const connection = await client.acquireConnection();
  try {
    client.emit('query', { sql, bindings: values, method: 'select' });
    return (await connection.query(sql, values)).rows as T[];
  } finally {
    await client.releaseConnection(connection);
  }
}
