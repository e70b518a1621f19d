import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import type { OsServices } from '../services/os-services.ts';
import { onlyVersions } from './middleware/microversion.ts';
import { parse } from './validation.ts';

const Query = z
  .object({
    binary: z.string().max(255).optional(),
    host: z.string().max(255).optional(),
    zone: z.string().max(255).optional(),
    // Like Manila: a value no service has (or a parameter it does not know) filters, not fails.
    status: z.string().max(255).optional(),
    state: z.string().max(255).optional(),
  })
  .loose();

const UpdateBody = z.object({
  host: z.string().min(1).max(255),
  binary: z.string().min(1).max(255),
});

const iso = (d: Date) => d.toISOString().replace('Z', '');

export function osServicesRouter(osServices: OsServices, auth: Middleware): Router {
  const r = new Router();
  const list: Middleware = async (ctx) => {
    const { binary, host, zone, status, state } = parse(Query, ctx.query, 'query');
    const rows = await osServices.list(ctx.state.auth, { binary, host, zone, status, state });
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
  };
  /** PUT …/enable and …/disable with `{ host, binary }`: Manila's answer is the same keys and `disabled`. */
  const update =
    (disabled: boolean): Middleware =>
    async (ctx) => {
      const { host, binary } = parse(UpdateBody, ctx.request.body, 'body');
      await osServices.setDisabled(ctx.state.auth, { host, binary }, disabled, null);
      ctx.body = { host, binary, disabled };
    };
  // os-services until 2.6, services from 2.7 (Manila's rename).
  r.get('/v2/os-services', auth, onlyVersions('2.0', '2.6'), list);
  r.get('/v2/services', auth, onlyVersions('2.7'), list);
  r.put('/v2/os-services/disable', auth, onlyVersions('2.0', '2.6'), update(true));
  r.put('/v2/os-services/enable', auth, onlyVersions('2.0', '2.6'), update(false));
  r.put('/v2/services/disable', auth, onlyVersions('2.7'), update(true));
  r.put('/v2/services/enable', auth, onlyVersions('2.7'), update(false));
  return r;
}
