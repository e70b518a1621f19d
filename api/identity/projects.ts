import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import type { Config } from '../../services/config.ts';
import type { Identity } from '../../services/identity/index.ts';
import type { ProjectInput } from '../../services/identity/projects.ts';
import { parse, QueryBool } from '../validation.ts';
import * as view from '../views/identity.ts';
import { NameFilter, ProjectCreate, ProjectUpdate } from './schemas.ts';

const Filter = NameFilter.extend({ domain_id: z.string().max(64).optional(), enabled: QueryBool.optional() });

function input(
  p: Omit<ProjectInput, 'name'> & { name?: string | undefined; parent_id?: string | null | undefined },
): ProjectInput {
  return {
    name: p.name,
    domain_id: p.domain_id,
    parent_id: p.parent_id,
    description: p.description,
    enabled: p.enabled,
    tags: p.tags,
    options: p.options,
    extra: p.extra,
  };
}

export function projectsRouter(config: Config, identity: Identity, auth: Middleware): Router {
  const r = new Router({ prefix: '/identity/v3/projects' });
  r.get('/', auth, async (ctx) => {
    const q = parse(Filter, ctx.query, 'query');
    const rows = await identity.projects.list(ctx.state.auth, {
      name: q.name,
      domain_id: q.domain_id,
      enabled: q.enabled,
    });
    ctx.body = {
      projects: rows.map((p) => view.project(config, p)),
      links: view.collectionLinks(config, 'projects'),
    };
  });
  r.post('/', auth, async (ctx) => {
    const { project } = parse(ProjectCreate, ctx.request.body);
    const row = await identity.projects.create(ctx.state.auth, { ...input(project), name: project.name });
    ctx.status = 201;
    ctx.body = { project: view.project(config, row) };
  });
  r.get('/:id', auth, async (ctx) => {
    ctx.body = { project: view.project(config, await identity.projects.get(ctx.state.auth, ctx.params.id!)) };
  });
  r.patch('/:id', auth, async (ctx) => {
    const { project } = parse(ProjectUpdate, ctx.request.body);
    const row = await identity.projects.update(ctx.state.auth, ctx.params.id!, input(project));
    ctx.body = { project: view.project(config, row) };
  });
  r.delete('/:id', auth, async (ctx) => {
    await identity.projects.remove(ctx.state.auth, ctx.params.id!);
    ctx.status = 204;
  });
  return r;
}
