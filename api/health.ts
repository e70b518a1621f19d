import Router from '@koa/router';
import type { Registry } from 'prom-client';
import type { Db } from '../services/db.ts';
import { ServiceUnavailable } from '../services/errors.ts';

/** /healthz answers 200 when the database answers; /metrics is Prometheus text. */
export function healthRouter(
  db: Db,
  registry: Registry,
  metricsText: () => Promise<string> = () => registry.metrics(),
): Router {
  const r = new Router();
  r.get('/healthz', async (ctx) => {
    try {
      await db.raw('SELECT 1');
    } catch (err) {
      ctx.state.log?.warn({ err }, 'health check: database unreachable');
      throw new ServiceUnavailable('The database is not reachable.');
    }
    ctx.body = { status: 'ok' };
  });
  r.get('/metrics', async (ctx) => {
    ctx.type = registry.contentType;
    ctx.body = await metricsText();
  });
  return r;
}
