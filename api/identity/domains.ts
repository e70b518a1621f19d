import Router from '@koa/router';
import type { Middleware } from 'koa';
import type { Config } from '../../services/config.ts';
import type { Identity } from '../../services/identity/index.ts';
import { parse, QueryBool } from '../validation.ts';
import * as view from '../views/identity.ts';
import { DomainCreate, DomainUpdate, NameFilter } from './schemas.ts';

const Filter = NameFilter.extend({ enabled: QueryBool.optional() });

export function domainsRouter(config: Config, identity: Identity, auth: Middleware): Router {
  const r = new Router({ prefix: '/identity/v3/domains' });
  r.get('/', auth, async (ctx) => {
    const q = parse(Filter, ctx.query, 'query');
    const rows = await identity.domains.list(ctx.state.auth, { name: q.name, enabled: q.enabled });
    ctx.body = {
      domains: rows.map((d) => view.domain(config, d)),
      links: view.collectionLinks(config, 'domains'),
    };
  });
  r.post('/', auth, async (ctx) => {
    const { domain } = parse(DomainCreate, ctx.request.body);
    ctx.status = 201;
    ctx.body = { domain: view.domain(config, await identity.domains.create(ctx.state.auth, domain)) };
  });
  r.get('/:id', auth, async (ctx) => {
    ctx.body = { domain: view.domain(config, await identity.domains.get(ctx.state.auth, ctx.params.id!)) };
  });
  r.patch('/:id', auth, async (ctx) => {
    const { domain } = parse(DomainUpdate, ctx.request.body);
    ctx.body = {
      domain: view.domain(config, await identity.domains.update(ctx.state.auth, ctx.params.id!, domain)),
    };
  });
  r.delete('/:id', auth, async (ctx) => {
    await identity.domains.remove(ctx.state.auth, ctx.params.id!);
    ctx.status = 204;
  });
  return r;
}
