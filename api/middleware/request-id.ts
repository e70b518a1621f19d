import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';

const WELL_FORMED = /^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Every response carries `x-openstack-request-id: req-<uuid>` (oslo.middleware) and the same id
 * as `x-compute-request-id`, the compatibility header Manila's request-id middleware also sends and
 * tempest's share clients require on every response. A well-formed
 * inbound id is kept, so a client's id follows the request through our logs; anything else is
 * replaced by a fresh one.
 */
export function requestId(): Middleware {
  return async (ctx, next) => {
    const inbound = ctx.get('x-openstack-request-id');
    const id = WELL_FORMED.test(inbound) ? inbound.toLowerCase() : `req-${randomUUID()}`;
    ctx.state.requestId = id;
    ctx.set('x-openstack-request-id', id);
    ctx.set('x-compute-request-id', id);
    await next();
  };
}
