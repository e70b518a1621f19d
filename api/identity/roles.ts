import Router from '@koa/router';
import type { Middleware } from 'koa';
import type { Config } from '../../services/config.ts';
import type { Identity } from '../../services/identity/index.ts';
import { parse } from '../validation.ts';
import * as view from '../views/identity.ts';
import { NameFilter, RoleCreate, RoleUpdate } from './schemas.ts';

export function rolesRouter(config: Config, identity: Identity, auth: Middleware): Router {
  const r = new Router({ prefix: '/identity/v3/roles' });
  r.get('/', auth, async (ctx) => {
    const q = parse(NameFilter, ctx.query, 'query');
    const rows = await identity.roles.list(ctx.state.auth, { name: q.name });
    ctx.body = { roles: rows.map((x) => view.role(config, x)), links: view.collectionLinks(config, 'roles') };
  });
  r.post('/', auth, async (ctx) => {
    const { role } = parse(RoleCreate, ctx.request.body);
    const row = await identity.roles.create(ctx.state.auth, {
      name: role.name,
      description: role.description,
      options: role.options,
      extra: role.extra,
    });
    ctx.status = 201;
    ctx.body = { role: view.role(config, row) };
  });
  r.get('/:id', auth, async (ctx) => {
    ctx.body = { role: view.role(config, await identity.roles.get(ctx.state.auth, ctx.params.id!)) };
  });
  r.patch('/:id', auth, async (ctx) => {
    const { role } = parse(RoleUpdate, ctx.request.body);
    const row = await identity.roles.update(ctx.state.auth, ctx.params.id!, {
      name: role.name,
      description: role.description,
      options: role.options,
      extra: role.extra,
    });
    ctx.body = { role: view.role(config, row) };
  });
  r.delete('/:id', auth, async (ctx) => {
    await identity.roles.remove(ctx.state.auth, ctx.params.id!);
    ctx.status = 204;
  });
  return r;
}
