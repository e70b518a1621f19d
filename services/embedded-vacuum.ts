import type { Logger } from 'pino';
import type { Db } from './db.ts';
import { type TableStats, tableStatsRepo } from './repos/table-stats.ts';

/** How often the tables' statistics are read (autovacuum_naptime's default). */
export const VACUUM_INTERVAL_MS = 60_000;

/** autovacuum's defaults: *_threshold + *_scale_factor × live rows. */
export function tableWork(t: TableStats): 'vacuum' | 'analyze' | null {
  if (t.deadRows > 50 + 0.2 * t.liveRows) return 'vacuum';
  if (t.changedSinceAnalyze > 50 + 0.1 * t.liveRows) return 'analyze';
  return null;
}

export interface EmbeddedVacuum {
  /** One pass over every table; returns what it did, by table. */
  runOnce(): Promise<Record<string, 'vacuum' | 'analyze'>>;
  start(): void;
  /** Stops the timer and waits for a pass in progress. */
  stop(): Promise<void>;
}

/**
 * PostgreSQL's autovacuum, for the embedded database. PGlite runs PostgreSQL without background
 * processes, so nothing would ever refresh the planner's statistics or reclaim dead rows: a project
 * grown from empty to thousands of shares kept the estimate of an empty table, and its list page was
 * planned as a hash join and sort over every share instead of an index scan of the page (timings in
 * docs/benchmarks.md). This does what autovacuum would,
 * with its default thresholds, from the server process: every `intervalMs` it reads the tables'
 * statistics and runs ANALYZE where more than 50 + 10 % of the rows changed since the last one, and
 * VACUUM (ANALYZE) where more than 50 + 20 % are dead. PGlite has one connection, so requests wait
 * while a table is processed (a time that grows with the table).
 */
export function createEmbeddedVacuum(db: Db, log: Logger, intervalMs = VACUUM_INTERVAL_MS): EmbeddedVacuum {
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<unknown> = Promise.resolve();
  const runOnce = async (): Promise<Record<string, 'vacuum' | 'analyze'>> => {
    const done: Record<string, 'vacuum' | 'analyze'> = {};
    for (const t of await tableStatsRepo.list(db)) {
      const work = tableWork(t);
      if (!work) continue;
      const started = performance.now();
      await tableStatsRepo.maintain(db, t, work === 'vacuum');
      done[t.table] = work;
      log.debug({ table: t.table, work, ms: Math.round(performance.now() - started) }, 'embedded vacuum');
    }
    return done;
  };
  let busy = false;
  const tick = (): void => {
    if (busy) return; // a long pass is not joined by a second one over the same tables
    busy = true;
    running = runOnce()
      .catch((err: unknown) => log.warn({ err }, 'embedded vacuum failed'))
      .finally(() => {
        busy = false;
      });
  };
  return {
    runOnce,
    start() {
      timer ??= setInterval(tick, intervalMs);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = null;
      await running;
    },
  };
}
