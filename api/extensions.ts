import Router from '@koa/router';
import type { Middleware } from 'koa';
import { requireReader } from '../services/policy.ts';

/** When abaca first served each extension's API (the descriptors' `updated`). */
const SINCE = '2026-12-05T00:00:00Z';

/**
 * Manila's API extensions that abaca serves, as GET /v2/extensions lists them (alias, name,
 * description, updated, links): the contrib APIs of Manila's extension list that exist here.
 */
const EXTENSIONS = [
  ['os-admin-actions', 'AdminActions', 'Admin actions: reset_status, force_delete, reset_task_state.'],
  ['os-availability-zone', 'AvailabilityZones', 'Describe availability zones.'],
  ['os-quota-sets', 'Quotas', 'Quota management support.'],
  ['os-services', 'Services', 'Services support.'],
  ['os-share-actions', 'ShareActions', 'Share actions: access rules, extend, shrink, revert.'],
  ['os-share-type-access', 'ShareTypeAccess', 'Share type access support.'],
  ['os-types-manage', 'TypesManage', 'Share types manage support.'],
  ['types-extra-specs', 'TypesExtraSpecs', 'Share type extra specs support.'],
  ['scheduler-stats', 'Scheduler_stats', 'Scheduler stats support.'],
] as const;

export function extensionsRouter(auth: Middleware): Router {
  const r = new Router({ prefix: '/v2/extensions' });
  r.get('/', auth, (ctx) => {
    requireReader(ctx.state.auth, 'extensions:index');
    ctx.body = {
      extensions: EXTENSIONS.map(([alias, name, description]) => ({
        alias,
        name,
        description,
        updated: SINCE,
        links: [],
      })),
    };
  });
  return r;
}
