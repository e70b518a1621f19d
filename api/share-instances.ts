import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import { NotFound } from '../services/errors.ts';
import type { ShareInstanceService } from '../services/share-instances.ts';
import { onlyVersions } from './middleware/microversion.ts';
import { parseListQuery } from './shares.ts';
import { parse, ResetStatus } from './validation.ts';
import * as view from './views/share-instances.ts';
import { exportLocation } from './views/shares.ts';

const ListQuery = z
  .object({
    export_location_id: z.string().max(64).optional(),
    export_location_path: z.string().max(4096).optional(),
  })
  .loose();

/**
 * Share instances (2.3+, admin only): GET /v2/shares/{id}/instances, GET /v2/share_instances[/{id}],
 * their export locations and the reset_status / force_delete actions. An abaca share is its own
 * one instance (services/share-instances.ts).
 */
export function shareInstancesRouter(instances: ShareInstanceService, auth: Middleware): Router {
  const r = new Router();
  const since = onlyVersions('2.3');

  r.get('/v2/shares/:id/instances', auth, since, async (ctx) => {
    const rows = await instances.listForShare(ctx.state.auth, ctx.params.id!);
    ctx.body = { share_instances: rows.map((s) => view.shareInstance(s, ctx.state.microversion)) };
  });
  r.get('/v2/share_instances', auth, since, async (ctx) => {
    const f = parse(ListQuery, ctx.query, 'query');
    const q = parseListQuery(
      { export_location_id: f.export_location_id, export_location_path: f.export_location_path },
      ctx.state.microversion,
    );
    const rows = await instances.list(ctx.state.auth, q);
    ctx.body = { share_instances: rows.map((s) => view.shareInstance(s, ctx.state.microversion)) };
  });
  r.get('/v2/share_instances/:id', auth, since, async (ctx) => {
    const s = await instances.get(ctx.state.auth, ctx.params.id!);
    ctx.body = { share_instance: view.shareInstance(s, ctx.state.microversion) };
  });
  r.get('/v2/share_instances/:id/export_locations', auth, onlyVersions('2.9'), async (ctx) => {
    const rows = await instances.exportLocations(ctx.state.auth, ctx.params.id!);
    ctx.body = {
      export_locations: rows.map((e) => exportLocation(e, ctx.state.auth, ctx.state.microversion)),
    };
  });
  r.get('/v2/share_instances/:id/export_locations/:elId', auth, onlyVersions('2.9'), async (ctx) => {
    const rows = await instances.exportLocations(ctx.state.auth, ctx.params.id!);
    const e = rows.find((x) => x.id === ctx.params.elId);
    if (!e) throw new NotFound(`Export location ${ctx.params.elId} could not be found.`);
    ctx.body = {
      export_location: exportLocation(e, ctx.state.auth, ctx.state.microversion, { detail: true }),
    };
  });
  r.post('/v2/share_instances/:id/action', auth, since, async (ctx) => {
    const body = (ctx.request.body ?? {}) as Record<string, unknown>;
    const key = Object.keys(body)[0]?.replace(/^os-/, '');
    if (key === 'reset_status')
      await instances.resetStatus(
        ctx.state.auth,
        ctx.params.id!,
        parse(ResetStatus, Object.values(body)[0], 'reset_status').status,
      );
    else if (key === 'force_delete') await instances.forceDelete(ctx.state.auth, ctx.params.id!);
    else throw new NotFound(`Share instance action '${Object.keys(body)[0] ?? ''}' is not known.`);
    ctx.status = 202;
  });
  return r;
}
