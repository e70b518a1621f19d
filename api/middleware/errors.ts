import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import { ApiError, BadMethod, databaseFault, faultName, NotSupported } from '../../services/errors.ts';

const KEYSTONE_TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Request Entity Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/**
 * The one place errors become responses: a Manila fault body `{"<faultName>": {code, message}}`.
 * Identity routes also carry Keystone's `{"error": {code, message, title}}`, which keystoneauth
 * reads to show the message. Unexpected errors are a 500 with a generic message; the stack is
 * logged once, here.
 */
export function errorHandler(log: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      // The router leaves these without a body: turn them into faults like any other error.
      if (ctx.body === undefined || ctx.body === null) {
        if (ctx.status === 404)
          throw new ApiError(404, `The resource could not be found: ${ctx.method} ${ctx.path}.`);
        if (ctx.status === 405) throw new BadMethod(ctx.method, ctx.response.get('Allow').split(/,\s*/));
        if (ctx.status === 501) throw new NotSupported(`The method ${ctx.method} is not implemented.`);
      }
    } catch (err) {
      // A database error that reached here slipped past the input rule and the repositories: the
      // client's own mistakes still answer 4xx (logged as a warning so the gap gets closed), and a
      // database that cannot be reached (a restart, a failover) a 503 to retry.
      const fromDb = err instanceof ApiError ? undefined : databaseFault(err);
      const known = err instanceof ApiError ? err : (fromDb ?? null);
      const status = known?.status ?? 500;
      const message =
        known?.message ??
        'The server has either erred or is incapable of performing the requested operation.';
      const rlog = ctx.state.log ?? log;
      if (fromDb?.status === 503) rlog.warn({ err, request_id: ctx.state.requestId }, 'database unavailable');
      else if (fromDb)
        rlog.warn({ err, request_id: ctx.state.requestId }, 'database error from client input');
      else if (!known) rlog.error({ err, request_id: ctx.state.requestId }, 'unhandled error');
      for (const [k, v] of Object.entries(known?.headers ?? {})) ctx.set(k, v);
      ctx.status = status;
      const body: Record<string, unknown> = { [faultName(status)]: { code: status, message } };
      if (ctx.path === '/identity' || ctx.path.startsWith('/identity/')) {
        body.error = { code: status, message, title: KEYSTONE_TITLES[status] ?? 'Error' };
      }
      ctx.body = body;
      ctx.state.errorMessage = message;
    }
  };
}
