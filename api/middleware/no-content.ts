import type { Middleware } from 'koa';

/**
 * A 202 (or 204) a handler left without a body goes out with an empty body, as Manila's: Koa would
 * otherwise send the status text ("Accepted"), which clients that parse every body as JSON
 * (tempest's share clients) refuse.
 */
export function noContentBody(): Middleware {
  return async (ctx, next) => {
    await next();
    if ((ctx.status === 202 || ctx.status === 204) && (ctx.body === undefined || ctx.body === null)) {
      const status = ctx.status;
      ctx.body = null; // Koa marks an explicit null body: it sends no text and no content type
      ctx.status = status;
    }
  };
}
