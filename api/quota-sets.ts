import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import { InvalidInput } from '../services/errors.ts';
import { parseBool } from '../services/extra-specs.ts';
import type { QuotaSetService } from '../services/quota-sets.ts';
import { atLeast, type Microversion, onlyVersions } from './middleware/microversion.ts';
import { parse } from './validation.ts';
import * as view from './views/quota-sets.ts';

const Limit = z.coerce
  .number({ error: 'must be a whole number (-1 for unlimited)' })
  .int('must be a whole number (-1 for unlimited)')
  .min(-1, 'must be -1 (unlimited) or more')
  .max(2_147_483_647, 'is too large');
const UpdateBody = z.object({
  quota_set: z
    .object({ tenant_id: z.string().optional(), force: z.union([z.boolean(), z.string()]).optional() })
    .catchall(Limit),
});
const Query = z
  .object({ share_type: z.string().max(255).optional(), user_id: z.string().max(64).optional() })
  .loose();

/**
 * GET/PUT/DELETE /v2/quota-sets/{project}[/defaults|/detail]: named os-quota-sets until 2.6 and
 * quota-sets from 2.7, as Manila renamed it (the other name is a 404); detail from 2.25.
 */
export function quotaSetsRouter(quotaSets: QuotaSetService, auth: Middleware): Router {
  const r = new Router();
  const legacy = new Router({ prefix: '/v2/os-quota-sets' });
  legacy.use(onlyVersions('2.0', '2.6'));
  const current = new Router({ prefix: '/v2/quota-sets' });
  current.use(onlyVersions('2.7'));
  for (const router of [legacy, current]) routes(router);
  r.use(legacy.routes(), current.routes());
  return r;

  function routes(r: Router) {
    /** ?share_type= or ?user_id=: a share type's or a user's part of the project's quotas. */
    const of = (ctx: { query: unknown; state: { microversion: Microversion } }) => {
      const q = parse(Query, ctx.query, 'query');
      // Share-type quotas arrived at 2.39; before, Manila refuses the parameter.
      if (q.share_type !== undefined && !atLeast(ctx.state.microversion, '2.39'))
        throw new InvalidInput('The share_type parameter needs microversion 2.39 or later.');
      return { shareTypeRef: q.share_type, userId: q.user_id };
    };

    r.get('/:project/defaults', auth, (ctx) => {
      ctx.body = view.quotaSet(ctx.params.project!, quotaSets.defaults(), ctx.state.microversion);
    });
    r.get('/:project/detail', auth, onlyVersions('2.25'), async (ctx) => {
      const q = await quotaSets.detail(ctx.state.auth, ctx.params.project!, of(ctx));
      ctx.body = view.quotaSet(ctx.params.project!, q, ctx.state.microversion);
    });
    r.get('/:project', auth, async (ctx) => {
      const q = await quotaSets.show(ctx.state.auth, ctx.params.project!, of(ctx));
      ctx.body = view.quotaSet(ctx.params.project!, q, ctx.state.microversion);
    });
    r.put('/:project', auth, async (ctx) => {
      const { quota_set } = parse(UpdateBody, ctx.request.body);
      const { tenant_id: _t, force, ...values } = quota_set;
      const later = view.laterKeys(Object.keys(values), ctx.state.microversion);
      if (later.length)
        throw new InvalidInput(
          `Quota ${later.join(', ')} cannot be set before the microversion that brought it.`,
        );
      const q = await quotaSets.update(
        ctx.state.auth,
        ctx.params.project!,
        values as Record<string, number>,
        { ...of(ctx), force: force === undefined ? false : parseBool(force, 'force') },
      );
      ctx.body = view.quotaSet(ctx.params.project!, q, ctx.state.microversion);
    });
    r.delete('/:project', auth, async (ctx) => {
      await quotaSets.reset(ctx.state.auth, ctx.params.project!, of(ctx));
      ctx.status = 202;
    });
  }
}
