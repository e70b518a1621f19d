import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import type { Config } from '../../services/config.ts';
import type { Identity } from '../../services/identity/index.ts';
import type { UserInput } from '../../services/identity/users.ts';
import { parse, QueryBool } from '../validation.ts';
import * as view from '../views/identity.ts';
import { NameFilter, PasswordChange, UserCreate, UserUpdate } from './schemas.ts';

const Filter = NameFilter.extend({ domain_id: z.string().max(64).optional(), enabled: QueryBool.optional() });

function input(u: Omit<UserInput, 'name'> & { name?: string | undefined }): UserInput {
  return {
    name: u.name,
    domain_id: u.domain_id,
    password: u.password,
    enabled: u.enabled,
    default_project_id: u.default_project_id,
    options: u.options,
    extra: u.extra,
  };
}

export function usersRouter(config: Config, identity: Identity, auth: Middleware): Router {
  const r = new Router({ prefix: '/identity/v3/users' });
  r.get('/', auth, async (ctx) => {
    const q = parse(Filter, ctx.query, 'query');
    const rows = await identity.users.list(ctx.state.auth, {
      name: q.name,
      domain_id: q.domain_id,
      enabled: q.enabled,
    });
    ctx.body = { users: rows.map((u) => view.user(config, u)), links: view.collectionLinks(config, 'users') };
  });
  r.post('/', auth, async (ctx) => {
    const { user } = parse(UserCreate, ctx.request.body);
    const row = await identity.users.create(ctx.state.auth, { ...input(user), name: user.name });
    ctx.status = 201;
    ctx.body = { user: view.user(config, row) };
  });
  r.get('/:id', auth, async (ctx) => {
    ctx.body = { user: view.user(config, await identity.users.get(ctx.state.auth, ctx.params.id!)) };
  });
  r.patch('/:id', auth, async (ctx) => {
    const { user } = parse(UserUpdate, ctx.request.body);
    ctx.body = {
      user: view.user(config, await identity.users.update(ctx.state.auth, ctx.params.id!, input(user))),
    };
  });
  r.delete('/:id', auth, async (ctx) => {
    await identity.users.remove(ctx.state.auth, ctx.params.id!);
    ctx.status = 204;
  });
  r.post('/:id/password', auth, async (ctx) => {
    const { user } = parse(PasswordChange, ctx.request.body);
    await identity.users.changePassword(
      ctx.state.auth,
      ctx.params.id!,
      user.original_password,
      user.password,
      ctx.ip,
    );
    ctx.status = 204;
  });
  r.get('/:id/projects', auth, async (ctx) => {
    const q = parse(Filter, ctx.query, 'query');
    const rows = await identity.projects.listForUser(ctx.state.auth, ctx.params.id!, {
      name: q.name,
      domain_id: q.domain_id,
      enabled: q.enabled,
    });
    ctx.body = {
      projects: rows.map((p) => view.project(config, p)),
      links: view.collectionLinks(config, `users/${ctx.params.id}/projects`),
    };
  });
  return r;
}
