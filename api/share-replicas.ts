import Router from '@koa/router';
import type { Middleware } from 'koa';
import { NotFound } from '../services/errors.ts';
import { onlyVersions } from './middleware/microversion.ts';

/**
 * Share replicas (2.11+). abaca has no share replication (its backends replicate every share
 * internally, below the API), so no share has API-level replicas: the lists are empty and any
 * replica id is unknown. Clients that clean up a share by first listing its replicas — tempest's
 * share tests do — then go on to delete the share itself.
 */
export function shareReplicasRouter(auth: Middleware): Router {
  const r = new Router({ prefix: '/v2/share-replicas' });
  const since = onlyVersions('2.11');
  const empty: Middleware = (ctx) => {
    ctx.body = { share_replicas: [] };
  };
  r.get('/', auth, since, empty);
  r.get('/detail', auth, since, empty);
  r.get('/:id', auth, since, (ctx) => {
    throw new NotFound(`Share replica ${ctx.params.id} could not be found.`);
  });
  return r;
}
