import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import pg from 'pg';
import type { Db } from '../db.ts';

/**
 * Runs the list pages' plain SELECTs (SQL text with $1…$n parameters, each used once and in
 * order; rows that need no knex post-processing). A list request reads a page on every call, so
 * this read is kept as cheap as the driver allows: on PostgreSQL it has a pool of its own
 * beside knex's and runs named prepared statements (a statement whose texts come in a few shapes
 * is parsed once per connection and, after a few runs, planned once — planning the page query
 * costs PostgreSQL more than running it), skipping knex's query runner; on PGlite, whose one
 * connection knex owns (a query sent around it could land inside another request's
 * transaction), it goes through knex, which there costs about the same. Every query is reported
 * as knex's own 'query' event, so the metrics count it. Measurements: docs/benchmarks.md.
 */
export interface PageReader {
  select<T>(sql: string, values: unknown[], opts?: { prepared?: boolean }): Promise<T[]>;
  close(): Promise<void>;
}

/** A reader for `db`; with `databaseUrl` (PostgreSQL) it opens its own pool of up to `poolMax`. */
export function createPageReader(db: Db, databaseUrl: string | null = null, poolMax = 10): PageReader {
  if (!databaseUrl)
    return {
      async select<T>(sql: string, values: unknown[]) {
        return (await db.raw(sql.replace(/\$\d+/g, '?'), values as Knex.RawBinding[])).rows as T[];
      },
      async close() {},
    };
  const pool = new pg.Pool({ connectionString: databaseUrl, max: poolMax, allowExitOnIdle: true });
  // An idle connection the server drops (a restart, a dropped test database) is replaced on demand.
  pool.on('error', () => {});
  /** Statement names by text; as bounded as the texts callers prepare. */
  const names = new Map<string, string>();
  return {
    async select<T>(sql: string, values: unknown[], opts: { prepared?: boolean } = {}) {
      db.emit('query', { sql, bindings: values, method: 'select' });
      if (!opts.prepared) return (await pool.query(sql, values)).rows as T[];
      let name = names.get(sql);
      if (name === undefined) {
        name = `abaca_${createHash('sha1').update(sql).digest('hex').slice(0, 20)}`;
        names.set(sql, name);
      }
      return (await pool.query({ name, text: sql, values })).rows as T[];
    },
    close: () => pool.end(),
  };
}
