import type { Middleware } from 'koa';
import { NotFound } from '../../services/errors.ts';
import type { Auth } from '../../services/policy.ts';

const WITH_PROJECT =
  /^\/v2\/([0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(\/.*|)$/i;

/**
 * Manila serves every route both as /v2/... and /v2/{project_id}/... (the endpoint in older
 * catalogs carries the project). Strip the project id so one set of routes serves both, and keep it
 * for checkProjectPath.
 */
export function projectPath(): Middleware {
  return async (ctx, next) => {
    const m = WITH_PROJECT.exec(ctx.path);
    if (m) {
      ctx.state.urlProjectId = (m[1] as string).toLowerCase();
      ctx.path = `/v2${m[2] || '/'}`;
    }
    await next();
  };
}

/** After authentication: a project id in the URL must be the caller's own, unless admin (404 otherwise). */
export function checkProjectPath(urlProjectId: string | undefined, auth: Auth): void {
  if (!urlProjectId || auth.isAdmin) return;
  const own = auth.projectId?.replaceAll('-', '').toLowerCase();
  if (urlProjectId.replaceAll('-', '') !== own)
    throw new NotFound(`Project ${urlProjectId} could not be found.`);
}
