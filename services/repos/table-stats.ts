import type { Executor } from '../db.ts';

/** What PostgreSQL's cumulative statistics say about one table since its last vacuum/analyze. */
export interface TableStats {
  schema: string;
  table: string;
  liveRows: number;
  deadRows: number;
  changedSinceAnalyze: number;
}

export const tableStatsRepo = {
  async list(ex: Executor): Promise<TableStats[]> {
    const { rows } = await ex.raw(
      `SELECT schemaname, relname, n_live_tup, n_dead_tup, n_mod_since_analyze
         FROM pg_stat_user_tables ORDER BY relname`,
    );
    return (rows as Record<string, string | number>[]).map((r) => ({
      schema: String(r['schemaname']),
      table: String(r['relname']),
      liveRows: Number(r['n_live_tup']),
      deadRows: Number(r['n_dead_tup']),
      changedSinceAnalyze: Number(r['n_mod_since_analyze']),
    }));
  },
  /** VACUUM (with ANALYZE) or ANALYZE alone; neither may run inside a transaction. */
  async maintain(ex: Executor, t: Pick<TableStats, 'schema' | 'table'>, vacuum: boolean): Promise<void> {
    await ex.raw(vacuum ? 'VACUUM (ANALYZE) ??.??' : 'ANALYZE ??.??', [t.schema, t.table]);
  },
};
