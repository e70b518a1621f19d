import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import pg from 'pg';
import type { Db } from '../db.ts';

/**
 * Runs the list pages' plain SELECTs (SQL text with $1…$n parameters, each used once and in
 * order; rows that need no knex post-processing). A list request reads a page on every call, and
 * knex's query runner (pool bookkeeping, response processing, promise layers) costs more CPU than
 * the driver's whole round trip, so this reader borrows a connection from knex's pool and queries
 * it directly: the same pool and, on PGlite, the one connection knex owns (a query sent around
 * knex could land inside another request's transaction). On PostgreSQL it runs named prepared
 * statements: a statement whose texts come in a few shapes is parsed once per connection and,
 * after a few runs, planned once — planning the page query costs PostgreSQL more than running it.
 * Every query is reported as knex's own 'query' event, so the metrics count it.
 *
 * This is the one place outside knex's configuration that touches knex's client; repositories
 * see only this interface. Measurements: docs/benchmarks.md.
 */
export interface PageReader {
  select<T>(sql: string, values: unknown[], opts?: { prepared?: boolean }): Promise<T[]>;
}

interface Connection {
  query(sql: string, values: unknown[]): Promise<{ rows: unknown[] }>;
}

export function createPageReader(db: Db): PageReader {
  const client = db.client as Knex.Client & {
    acquireConnection(): Promise<Connection>;
    releaseConnection(connection: Connection): Promise<void>;
  };
  /** Statement names by text; as bounded as the texts callers prepare. */
  const names = new Map<string, string>();
  return {
    async select<T>(sql: string, values: unknown[], opts: { prepared?: boolean } = {}) {
      const connection = await client.acquireConnection();
      try {
        db.emit('query', { sql, bindings: values, method: 'select' });
        if (opts.prepared && connection instanceof pg.Client) {
          let name = names.get(sql);
          if (name === undefined) {
            name = `abaca_${createHash('sha1').update(sql).digest('hex').slice(0, 20)}`;
            names.set(sql, name);
          }
          return (await connection.query({ name, text: sql, values })).rows as T[];
        }
        return (await connection.query(sql, values)).rows as T[];
      } finally {
        await client.releaseConnection(connection);
      }
    },
  };
}
