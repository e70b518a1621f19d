import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import type { MessageService } from '../services/messages.ts';
import { parse, UuidFilter } from './validation.ts';
import * as view from './views/messages.ts';

const Query = z
  .object({
    resource_id: UuidFilter.optional(),
    resource_type: z.string().max(64).optional(),
    action_id: z.string().max(16).optional(),
    detail_id: z.string().max(16).optional(),
    message_level: z.string().max(16).optional(),
    request_id: z.string().max(64).optional(),
    limit: z.coerce.number({ error: 'must be a whole number' }).int().min(0).max(1000).optional(),
    offset: z.coerce.number({ error: 'must be a whole number' }).int().min(0).optional(),
  })
  .strict();

export function messagesRouter(messages: MessageService, auth: Middleware): Router {
  const r = new Router({ prefix: '/v2/messages' });
  r.get('/', auth, async (ctx) => {
    const { limit, offset, ...filter } = parse(Query, ctx.query, 'query');
    const rows = await messages.list(ctx.state.auth, filter, { limit, offset });
    ctx.body = { messages: rows.map((m) => view.message(m, ctx.state.auth)) };
  });
  r.get('/:id', auth, async (ctx) => {
    ctx.body = { message: view.message(await messages.get(ctx.state.auth, ctx.params.id!), ctx.state.auth) };
  });
  r.delete('/:id', auth, async (ctx) => {
    await messages.delete(ctx.state.auth, ctx.params.id!);
    ctx.status = 204;
  });
  return r;
}
