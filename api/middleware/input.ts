import type { Middleware } from 'koa';
import { InvalidInput } from '../../services/errors.ts';
import { checkInput, textProblem } from '../validation.ts';

/**
 * The input rule at the edge: before any route runs, every string of the request — the decoded
 * path, each query key and value, each key and string of the JSON body — obeys textProblem() of
 * api/validation.ts, and the body is not nested deeper than any API defines. Field-specific rules
 * (lengths, enums, UUID filters) stay in each route's zod schema; this is the part every field
 * shares, checked once here so no route can forget it.
 */
export function inputRule(): Middleware {
  return async (ctx, next) => {
    let path: string;
    try {
      path = decodeURIComponent(ctx.path);
    } catch {
      throw new InvalidInput('Invalid request: the path is not valid percent-encoded UTF-8.');
    }
    const problem = textProblem(path);
    if (problem) throw new InvalidInput(`Invalid request: the path ${problem}.`);
    checkInput(ctx.query, 'query');
    checkInput(ctx.request.body, 'body');
    await next();
  };
}
