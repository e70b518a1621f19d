import { bodyParser } from '@koa/bodyparser';
import type { Middleware } from 'koa';
import { InvalidInput, PayloadTooLarge, UnsupportedMediaType } from '../../services/errors.ts';

const JSON_TYPE = /^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i;

/**
 * JSON request bodies only: another content type is a 415, malformed JSON a 400, a body over the
 * limit a 413. A body sent without a content type is read as JSON, as Manila does.
 */
export function jsonBody(limitBytes: number): Middleware {
  const parse = bodyParser({
    enableTypes: ['json'],
    jsonStrict: true,
    jsonLimit: limitBytes,
    detectJSON: (ctx) => !ctx.get('content-type'),
  });
  return async (ctx, next) => {
    const type = ctx.get('content-type');
    const hasBody = Number(ctx.get('content-length') || 0) > 0 || ctx.get('transfer-encoding') !== '';
    if (['POST', 'PUT', 'PATCH'].includes(ctx.method) && hasBody && type && !JSON_TYPE.test(type)) {
      throw new UnsupportedMediaType(type.split(';')[0] as string);
    }
    let parsed = false;
    try {
      await parse(ctx, async () => {
        parsed = true;
      });
    } catch (err) {
      const e = err as { status?: number; type?: string; message?: string };
      if (e.status === 413 || e.type === 'entity.too.large') throw new PayloadTooLarge(limitBytes);
      if (e.status === 415) throw new UnsupportedMediaType(type);
      if (e.status === 400)
        throw new InvalidInput(`Malformed JSON in request body: ${e.message ?? 'parse error'}.`);
      throw err;
    }
    if (!parsed) return;
    await next();
  };
}
