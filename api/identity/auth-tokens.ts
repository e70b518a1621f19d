import Router from '@koa/router';
import type { Middleware } from 'koa';
import type { Config } from '../../services/config.ts';
import { InvalidInput } from '../../services/errors.ts';
import { buildCatalog } from '../../services/identity/catalog.ts';
import type { Identity } from '../../services/identity/index.ts';
import { requireSelfOrAdmin } from '../../services/policy.ts';
import { parse } from '../validation.ts';
import * as view from '../views/identity.ts';
import { AuthBody } from './schemas.ts';

export function authTokensRouter(config: Config, identity: Identity, auth: Middleware): Router {
  const r = new Router({ prefix: '/identity/v3/auth' });
  const wantsCatalog = (q: Record<string, unknown>) => !('nocatalog' in q) || q.nocatalog === 'false';

  r.post('/tokens', async (ctx) => {
    const { auth: a } = parse(AuthBody, ctx.request.body);
    if (a.scope !== undefined && a.scope !== 'unscoped' && !('project' in a.scope))
      throw new InvalidInput('Only project-scoped and unscoped tokens are supported; scope to a project.');
    const t = await identity.tokens.issue({
      methods: a.identity.methods,
      password: a.identity.password,
      applicationCredential: a.identity.application_credential,
      scope: a.scope as 'unscoped' | { project: { id?: string; name?: string } } | undefined,
      source: ctx.ip,
    });
    ctx.status = 201;
    ctx.set('X-Subject-Token', t.token);
    ctx.body = view.token(config, t, wantsCatalog(ctx.query));
  });

  /** Validates X-Subject-Token for its owner or an admin. */
  async function subject(ctx: Parameters<Middleware>[0]) {
    const t = await identity.tokens.validate(ctx.get('x-subject-token') || undefined);
    requireSelfOrAdmin(ctx.state.auth, t.user.id, 'identity:validate_token');
    return t;
  }

  // GET also answers HEAD (check a token), as @koa/router registers both.
  r.get('/tokens', auth, async (ctx) => {
    const t = await subject(ctx);
    ctx.set('X-Subject-Token', t.token);
    ctx.body = view.token(config, t, wantsCatalog(ctx.query));
  });
  r.delete('/tokens', auth, async (ctx) => {
    await identity.tokens.revoke(await subject(ctx));
    ctx.status = 204;
  });
  r.get('/projects', auth, async (ctx) => {
    const rows = await identity.projects.listForUser(ctx.state.auth, ctx.state.auth.userId);
    ctx.body = {
      projects: rows.map((p) => view.project(config, p)),
      links: view.collectionLinks(config, 'auth/projects'),
    };
  });
  r.get('/catalog', auth, (ctx) => {
    ctx.body = { catalog: buildCatalog(config), links: view.collectionLinks(config, 'auth/catalog') };
  });
  return r;
}
