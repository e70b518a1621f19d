import type { Middleware } from 'koa';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Db } from '../../services/db.ts';

/** Request count and latency by method, matched route and status. */
export function requestMetrics(registry: Registry): Middleware {
  const labelNames = ['method', 'route', 'status'] as const;
  const count = new Counter({
    name: 'abaca_http_requests_total',
    help: 'HTTP requests answered, by method, route and status',
    labelNames,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'abaca_http_request_duration_seconds',
    help: 'HTTP request latency in seconds, by method, route and status',
    labelNames,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  return async (ctx, next) => {
    const end = latency.startTimer();
    try {
      await next();
    } finally {
      // The route template, never the raw path: ids in paths would explode the label set.
      const labels = {
        method: ctx.method,
        route: (ctx as { _matchedRoute?: string })._matchedRoute ?? 'unmatched',
        status: String(ctx.status),
      };
      count.inc(labels);
      end(labels);
    }
  };
}

/** Counts SQL statements sent to the database (so a benchmark can show queries per request). */
export function countDbQueries(db: Db, registry: Registry): void {
  const queries = new Counter({
    name: 'abaca_db_queries_total',
    help: 'SQL statements sent to the database',
    registers: [registry],
  });
  db.on('query', () => queries.inc());
}
