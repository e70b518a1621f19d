import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import type { OsServices } from '../services/os-services.ts';
import { parse } from './validation.ts';

const Query = z
  .object({
    binary: z.string().max(255).optional(),
    host: z.string().max(255).optional(),
    zone: z.string().max(255).optional(),
    status: z.enum(['enabled', 'disabled'], { error: 'must be enabled or disabled' }).optional(),
    state: z.enum(['up', 'down'], { error: 'must be up or down' }).optional(),
  })
  .strict();

const iso = (d: Date) => d.toISOString().replace('Z', '');

export function osServicesRouter(osServices: OsServices, auth: Middleware): Router {
  const r = new Router({ prefix: '/v2/services' });
  r.get('/', auth, async (ctx) => {
    const rows = await osServices.list(ctx.state.auth, parse(Query, ctx.query, 'query'));
    ctx.body = {
      services: rows.map((s) => ({
        id: s.id,
        binary: s.binary,
        host: s.host,
        zone: s.zone,
        status: s.status,
        state: s.state,
        updated_at: iso(s.updated_at),
      })),
    };
  });
  return r;
}
