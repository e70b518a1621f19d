import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import type { BrickService } from '../services/bricks.ts';
import { parse } from './validation.ts';
import { brickJobView, brickView } from './views/bricks.ts';

const Address = z.string().regex(/^[^\s:/]+:\d{1,5}$/, 'must be host:port');
const BackendName = z.string().min(1).max(255);

const AddBrick = z.strictObject({
  brick: z.strictObject({ address: Address, backend: BackendName.optional() }),
});

const BrickAction = z.union(
  [
    z.strictObject({ replace: z.strictObject({ new_address: Address }) }),
    z.strictObject({ remove: z.union([z.null(), z.strictObject({})]) }),
  ],
  { error: 'the action is {"replace": {"new_address": "host:port"}} or {"remove": null}' },
);

/**
 * The abaca vendor API for bricks (admin): GET /v2/abaca/bricks, POST /v2/abaca/bricks (add),
 * GET /v2/abaca/bricks/{id}, POST /v2/abaca/bricks/{id}/action (replace | remove, 202 with the
 * job; its progress shows in the brick's `job`). `{id}` is a brick id or its address.
 */
export function bricksRouter(bricks: BrickService, auth: Middleware): Router {
  const r = new Router({ prefix: '/v2/abaca/bricks' });
  r.get('/', auth, async (ctx) => {
    const q = parse(z.strictObject({ backend: BackendName.optional() }), ctx.query, 'query');
    ctx.body = { bricks: (await bricks.list(ctx.state.auth, q.backend)).map(brickView) };
  });
  r.post('/', auth, async (ctx) => {
    const b = parse(AddBrick, ctx.request.body).brick;
    ctx.body = { brick: brickView(await bricks.add(ctx.state.auth, b.address, b.backend)) };
  });
  r.get('/:id', auth, async (ctx) => {
    parse(z.strictObject({}), ctx.query, 'query');
    ctx.body = { brick: brickView(await bricks.get(ctx.state.auth, ctx.params.id!)) };
  });
  r.post('/:id/action', auth, async (ctx) => {
    const action = parse(BrickAction, ctx.request.body);
    const job =
      'replace' in action
        ? await bricks.replace(ctx.state.auth, ctx.params.id!, action.replace.new_address)
        : await bricks.remove(ctx.state.auth, ctx.params.id!);
    ctx.status = 202;
    ctx.body = { brick_job: brickJobView(job) };
  });
  return r;
}
