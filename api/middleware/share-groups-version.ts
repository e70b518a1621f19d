import type { Middleware } from 'koa';
import { NotFound } from '../../services/errors.ts';
import { atLeast } from './microversion.ts';

export const EXPERIMENTAL_HEADER = 'x-openstack-manila-api-experimental';

/**
 * Share groups, their types and snapshots are there from 2.31; up to 2.54 they were experimental,
 * and Manila finds them only for a request that says so (`X-OpenStack-Manila-API-Experimental:
 * True`) — otherwise, and below 2.31, the URL is unknown (404). The header is echoed when sent.
 */
export const shareGroupsVersion: Middleware = async (ctx, next) => {
  const v = ctx.state.microversion;
  const experimental = ctx.get(EXPERIMENTAL_HEADER).toLowerCase() === 'true';
  if (!atLeast(v, '2.31') || (!atLeast(v, '2.55') && !experimental))
    throw new NotFound(
      `The resource could not be found: ${ctx.method} ${ctx.path} (share groups are API microversion 2.55 or later, or 2.31 to 2.54 with ${EXPERIMENTAL_HEADER}: True).`,
    );
  if (experimental) ctx.set(EXPERIMENTAL_HEADER, 'True');
  await next();
};
