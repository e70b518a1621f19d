import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import type { Config } from '../services/config.ts';
import { InvalidInput } from '../services/errors.ts';
import type { MessageService } from '../services/messages.ts';
import { MESSAGE_SORT_KEYS } from '../services/repos/messages.ts';
import { atLeast } from './middleware/microversion.ts';
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
    sort_key: z
      .enum(MESSAGE_SORT_KEYS, { error: `must be one of ${MESSAGE_SORT_KEYS.join(', ')}` })
      .optional(),
    sort_dir: z.enum(['asc', 'desc'], { error: 'must be asc or desc' }).optional(),
    created_since: z.string().max(64).optional(),
    created_before: z.string().max(64).optional(),
  })
  .strict();

const TIMESTAMP =
  /^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?)?(Z|[+-]\d\d:?\d\d)?$/i;

/** An ISO 8601 timestamp as oslo's parse_isotime reads it (a date, `T` or a space, UTC if no zone). */
export function parseTimestamp(value: string, key: string): Date {
  const m = TIMESTAMP.exec(value.trim());
  const d =
    m &&
    new Date(
      `${m[1]}-${m[2]}-${m[3]}T${m[4] ?? '00'}:${m[5] ?? '00'}:${m[6] ?? '00'}.${(m[7] ?? '0').slice(0, 3).padEnd(3, '0')}${m[8] ? (m[8].toUpperCase() === 'Z' ? 'Z' : m[8].replace(/^([+-]\d\d)(\d\d)$/, '$1:$2')) : 'Z'}`,
    );
  if (!d || Number.isNaN(d.getTime()))
    throw new InvalidInput(
      `${key} must be an ISO 8601 timestamp such as 2026-12-05T10:00:00, not ${JSON.stringify(value)}.`,
    );
  return d;
}

export function messagesRouter(config: Config, messages: MessageService, auth: Middleware): Router {
  const r = new Router({ prefix: '/v2/messages' });
  r.get('/', auth, async (ctx) => {
    const { limit, offset, sort_key, sort_dir, created_since, created_before, ...filter } = parse(
      Query,
      ctx.query,
      'query',
    );
    // The created_at window arrived at 2.52; earlier versions ignore it, as Manila.
    const window = atLeast(ctx.state.microversion, '2.52');
    const rows = await messages.list(ctx.state.auth, filter, {
      limit,
      offset,
      sortKey: sort_key,
      sortDir: sort_dir,
      createdSince: window && created_since ? parseTimestamp(created_since, 'created_since') : undefined,
      createdBefore: window && created_before ? parseTimestamp(created_before, 'created_before') : undefined,
    });
    ctx.body = { messages: rows.map((m) => view.message(config, m, ctx.state.auth)) };
  });
  r.get('/:id', auth, async (ctx) => {
    ctx.body = {
      message: view.message(config, await messages.get(ctx.state.auth, ctx.params.id!), ctx.state.auth),
    };
  });
  r.delete('/:id', auth, async (ctx) => {
    await messages.delete(ctx.state.auth, ctx.params.id!);
    ctx.status = 204;
  });
  return r;
}
