import Router from '@koa/router';
import type { Middleware } from 'koa';
import type { Config } from '../../services/config.ts';
import type { Identity } from '../../services/identity/index.ts';
import { parse } from '../validation.ts';
import * as view from '../views/identity.ts';
import { ApplicationCredentialCreate, NameFilter } from './schemas.ts';

export function applicationCredentialsRouter(config: Config, identity: Identity, auth: Middleware): Router {
  const r = new Router({ prefix: '/identity/v3/users/:userId/application_credentials' });
  r.get('/', auth, async (ctx) => {
    const q = parse(NameFilter, ctx.query, 'query');
    const rows = await identity.applicationCredentials.list(ctx.state.auth, ctx.params.userId!, {
      name: q.name,
    });
    ctx.body = {
      application_credentials: rows.map((c) => view.applicationCredential(config, c)),
      links: view.collectionLinks(config, `users/${ctx.params.userId}/application_credentials`),
    };
  });
  r.post('/', auth, async (ctx) => {
    const { application_credential: c } = parse(ApplicationCredentialCreate, ctx.request.body);
    const row = await identity.applicationCredentials.create(ctx.state.auth, ctx.params.userId!, {
      name: c.name,
      secret: c.secret,
      description: c.description,
      expires_at: c.expires_at,
      roles: c.roles,
      unrestricted: c.unrestricted ?? undefined,
    });
    ctx.status = 201;
    ctx.body = { application_credential: view.applicationCredential(config, row) };
  });
  r.get('/:id', auth, async (ctx) => {
    const row = await identity.applicationCredentials.get(ctx.state.auth, ctx.params.userId!, ctx.params.id!);
    ctx.body = { application_credential: view.applicationCredential(config, row) };
  });
  r.delete('/:id', auth, async (ctx) => {
    await identity.applicationCredentials.remove(ctx.state.auth, ctx.params.userId!, ctx.params.id!);
    ctx.status = 204;
  });
  return r;
}
