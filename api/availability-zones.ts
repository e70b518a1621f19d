import Router from '@koa/router';
import type { Middleware } from 'koa';
import type { createAvailabilityZoneService } from '../services/availability-zones.ts';
import { onlyVersions } from './middleware/microversion.ts';

const iso = (d: Date | null) => (d ? d.toISOString().replace('Z', '') : null);

export function availabilityZonesRouter(
  zones: ReturnType<typeof createAvailabilityZoneService>,
  auth: Middleware,
): Router {
  const r = new Router();
  const list: Middleware = async (ctx) => {
    const rows = await zones.list(ctx.state.auth);
    ctx.body = {
      availability_zones: rows.map((z) => ({
        id: z.id,
        name: z.name,
        created_at: iso(z.created_at),
        updated_at: iso(z.updated_at),
      })),
    };
  };
  // os-availability-zone until 2.6, availability-zones from 2.7 (Manila's rename).
  r.get('/v2/os-availability-zone', auth, onlyVersions('2.0', '2.6'), list);
  r.get('/v2/availability-zones', auth, onlyVersions('2.7'), list);
  return r;
}
