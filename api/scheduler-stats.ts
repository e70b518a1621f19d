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

/** Manila's pool capabilities (manila/scheduler/host_manager.py), from the backend's stats(). */
function detail(p: PoolView, now: string) {
  const c = p.stats.capabilities;
  return {
    ...summary(p),
    capabilities: {
      pool_name: p.pool,
      total_capacity_gb: p.poolStats.totalCapacityGiB,
      free_capacity_gb: p.poolStats.freeCapacityGiB,
      allocated_capacity_gb: p.poolStats.allocatedCapacityGiB,
      reserved_percentage: 0,
      reserved_snapshot_percentage: 0,
      qos: false,
      timestamp: now,
      share_backend_name: p.backend,
      storage_protocol: c.protocols.join('_'),
      driver_handles_share_servers: c.driverHandlesShareServers,
      snapshot_support: c.snapshotSupport,
      create_share_from_snapshot_support: c.createShareFromSnapshotSupport,
      revert_to_snapshot_support: c.revertToSnapshotSupport,
      mount_snapshot_support: c.mountSnapshotSupport,
      driver_name: p.stats.driver,
      driver_version: p.stats.driverVersion,
      vendor_name: p.stats.vendorName,
      availability_zone: p.availabilityZone,
      dedupe: false,
      compression: false,
      thin_provisioning: false,
      replication_type: null,
    },
  };
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
