import Router from '@koa/router';
import type { Middleware } from 'koa';
import type { createAvailabilityZoneService } from '../services/availability-zones.ts';

const iso = (d: Date | null) => (d ? d.toISOString().replace('Z', '') : null);

export function availabilityZonesRouter(
  zones: ReturnType<typeof createAvailabilityZoneService>,
  auth: Middleware,
): Router {
  const r = new Router({ prefix: '/v2/availability-zones' });
  r.get('/', auth, async (ctx) => {
    const rows = await zones.list(ctx.state.auth);
    ctx.body = {
      availability_zones: rows.map((z) => ({
        id: z.id,
        name: z.name,
        created_at: iso(z.created_at),
        updated_at: iso(z.updated_at),
      })),
    };
  });
  return r;
}
