import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import type { PoolFilter, PoolService, PoolView } from '../services/pools.ts';
import type { ShareTypeService } from '../services/share-types.ts';
import { atLeast } from './middleware/microversion.ts';
import { parse } from './validation.ts';

// Manila's filters: pool (or pool_name), host, backend as regexes; share_type (2.23) by id or name.
// Other parameters are ignored, as Manila ignores them.
const Query = z
  .object({
    pool: z.string().max(255).optional(),
    pool_name: z.string().max(255).optional(),
    host: z.string().max(255).optional(),
    backend: z.string().max(255).optional(),
    share_type: z.string().max(255).optional(),
  })
  .loose();

const summary = (p: PoolView) => ({ name: p.name, host: p.host, backend: p.backend, pool: p.pool });

/** Manila's pool capabilities (manila/scheduler/host_manager.py), as the scheduler matches them. */
function detail(p: PoolView, now: string) {
  return { ...summary(p), capabilities: { ...p.capabilities, timestamp: now } };
}

/** GET /v2/scheduler-stats/pools[/detail]: the backends' pools, as Manila's scheduler sees them (admin). */
export function schedulerStatsRouter(pools: PoolService, types: ShareTypeService, auth: Middleware): Router {
  const r = new Router({ prefix: '/v2/scheduler-stats/pools' });
  async function filter(ctx: Parameters<Middleware>[0]): Promise<PoolFilter> {
    const q = parse(Query, ctx.query, 'query');
    const byType = q.share_type !== undefined && atLeast(ctx.state.microversion, '2.23');
    return {
      pool_name: q.pool ?? q.pool_name,
      host: q.host,
      backend: q.backend,
      shareTypeSpecs: byType
        ? (await types.visibleByRef(ctx.state.auth, q.share_type!)).extra_specs
        : undefined,
    };
  }
  r.get('/', auth, async (ctx) => {
    ctx.body = { pools: (await pools.list(ctx.state.auth, await filter(ctx))).map(summary) };
  });
  r.get('/detail', auth, async (ctx) => {
    const now = new Date().toISOString().replace('Z', '');
    const list = await pools.list(ctx.state.auth, await filter(ctx));
    ctx.body = { pools: list.map((p) => detail(p, now)) };
  });
  return r;
}
