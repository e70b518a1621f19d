import type { Middleware } from 'koa';
import type { Logger } from 'pino';

/**
 * A child logger per request, carrying request_id (and project_id once auth knows it), and one
 * access line per response.
 */
export function requestLogging(log: Logger): Middleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    ctx.state.log = log.child({ request_id: ctx.state.requestId });
    try {
      await next();
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const line = {
        method: ctx.method,
        path: ctx.path,
        status: ctx.status,
        ms: Math.round(ms * 10) / 10,
        project_id: ctx.state.auth?.projectId ?? undefined,
        user_id: ctx.state.auth?.userId ?? undefined,
      };
      if (ctx.status >= 500) ctx.state.log.error(line, 'request failed');
      else ctx.state.log.info(line, 'request');
    }
  };
}
