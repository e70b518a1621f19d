import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import { NotFound } from '../services/errors.ts';
import type { SnapshotInstanceService } from '../services/snapshot-instances.ts';
import { onlyVersions } from './middleware/microversion.ts';
import { parse, ResetStatus } from './validation.ts';
import * as view from './views/snapshot-instances.ts';

const ListQuery = z.object({ snapshot_id: z.string().max(64).optional() }).strict();

/**
 * Snapshot instances (2.19+, admin only): GET /v2/snapshot-instances[/detail][/{id}] and the
 * reset_status action. An abaca snapshot is its own one instance (services/snapshot-instances.ts).
 */
export function snapshotInstancesRouter(instances: SnapshotInstanceService, auth: Middleware): Router {
  const r = new Router({ prefix: '/v2/snapshot-instances' });
  const since = onlyVersions('2.19');

  async function list(ctx: Parameters<Middleware>[0], detail: boolean) {
    const q = parse(ListQuery, ctx.query, 'query');
    const rows = await instances.list(ctx.state.auth, q.snapshot_id);
    ctx.body = {
      snapshot_instances: rows.map(detail ? view.snapshotInstanceDetail : view.snapshotInstanceSummary),
    };
  }
  r.get('/', auth, since, (ctx) => list(ctx, false));
  r.get('/detail', auth, since, (ctx) => list(ctx, true));
  r.get('/:id', auth, since, async (ctx) => {
    const s = await instances.get(ctx.state.auth, ctx.params.id!);
    ctx.body = { snapshot_instance: view.snapshotInstanceDetail(s) };
  });
  r.post('/:id/action', auth, since, async (ctx) => {
    const body = (ctx.request.body ?? {}) as Record<string, unknown>;
    const key = Object.keys(body)[0];
    if (key !== 'reset_status' || Object.keys(body).length !== 1)
      throw new NotFound(`Snapshot instance action '${key ?? ''}' is not known; known: reset_status.`);
    const { status } = parse(ResetStatus, body[key], 'reset_status');
    await instances.resetStatus(ctx.state.auth, ctx.params.id!, status);
    ctx.status = 202;
  });
  return r;
}
