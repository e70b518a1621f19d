import type { Middleware } from 'koa';
import { NotFound } from '../../services/errors.ts';

/**
 * An empty id in a share API URL names nothing: `GET /v2/shares/` (get with an empty id),
 * `/v2/types//extra_specs`. Manila answers 404; without this the router would take `/v2/shares/`
 * for the list, or answer 405. A POST keeps a trailing slash (a create sent to `/v2/shares/`), and
 * `/v2/` is the version document.
 */
export function emptyId(): Middleware {
  return async (ctx, next) => {
    const p = ctx.path;
    const empty =
      p.slice(1).includes('//') || (p.endsWith('/') && ctx.method !== 'POST' && p.split('/').length > 3);
    if (empty) throw new NotFound(`The URL ${p} has an empty id: it names no resource.`);
    await next();
  };
}
