import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import type { AccessRuleService } from '../services/access-rules.ts';
import { InvalidInput, NotFound } from '../services/errors.ts';
import { parseDictLiteral } from '../services/python-literal.ts';
import { atLeast } from './middleware/microversion.ts';
import { Metadata, parse } from './validation.ts';
import * as view from './views/access-rules.ts';

const ListQuery = z
  .object({
    share_id: z.string({ error: 'is required: the rules of which share?' }).min(1).max(64),
    metadata: z.string().max(4096).optional(),
  })
  .strict();
const MetadataBody = z.object({ metadata: Metadata });

/** /v2/share-access-rules: rules by id and their metadata (Manila 2.45 and later). */
export function shareAccessRulesRouter(rules: AccessRuleService, auth: Middleware): Router {
  const r = new Router({ prefix: '/v2/share-access-rules' });
  // Manila answers 404 for an API that does not exist at the requested microversion.
  r.use(async (ctx, next) => {
    if (!atLeast(ctx.state.microversion, '2.45'))
      throw new NotFound('/v2/share-access-rules needs microversion 2.45 or later.');
    await next();
  });

  r.get('/', auth, async (ctx) => {
    const q = parse(ListQuery, ctx.query, 'query');
    const metadata = q.metadata ? parseDictLiteral(q.metadata, 'metadata') : {};
    // Manila's controller answers a share it cannot find with 400 here (the share_id is a filter).
    const list = await rules.listForShare(ctx.state.auth, q.share_id, metadata).catch((err) => {
      throw err instanceof NotFound ? new InvalidInput(`Share ${q.share_id} not found.`) : err;
    });
    ctx.body = { access_list: list.map((x) => view.accessListItem(x, ctx.state.microversion)) };
  });
  r.get('/:id', auth, async (ctx) => {
    const rule = await rules.get(ctx.state.auth, ctx.params.id!);
    ctx.body = { access: view.accessRule(rule, ctx.state.microversion) };
  });
  r.put('/:id/metadata', auth, async (ctx) => {
    const { metadata } = parse(MetadataBody, ctx.request.body);
    ctx.body = { metadata: await rules.setMetadata(ctx.state.auth, ctx.params.id!, metadata) };
  });
  r.delete('/:id/metadata/:key', auth, async (ctx) => {
    await rules.deleteMetadata(ctx.state.auth, ctx.params.id!, ctx.params.key!);
    // Manila answers 200 with no body; an explicit null keeps Koa from sending "OK".
    ctx.body = null;
    ctx.status = 200;
  });
  return r;
}
