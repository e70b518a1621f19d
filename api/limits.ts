import Router from '@koa/router';
import type { Middleware } from 'koa';
import { Forbidden } from '../services/errors.ts';
import type { QuotaSetService } from '../services/quota-sets.ts';

/** Manila's absolute limits: each quota and its use, under the names the clients print. */
const NAMES: [string, string, string][] = [
  ['shares', 'maxTotalShares', 'totalSharesUsed'],
  ['gigabytes', 'maxTotalShareGigabytes', 'totalShareGigabytesUsed'],
  ['snapshots', 'maxTotalShareSnapshots', 'totalShareSnapshotsUsed'],
  ['snapshot_gigabytes', 'maxTotalSnapshotGigabytes', 'totalSnapshotGigabytesUsed'],
  ['share_networks', 'maxTotalShareNetworks', 'totalShareNetworksUsed'],
  ['share_replicas', 'maxTotalShareReplicas', 'totalShareReplicasUsed'],
  ['replica_gigabytes', 'maxTotalReplicaGigabytes', 'totalReplicaGigabytesUsed'],
  ['share_groups', 'maxTotalShareGroups', 'totalShareGroupsUsed'],
  ['share_group_snapshots', 'maxTotalShareGroupSnapshots', 'totalShareGroupSnapshotsUsed'],
];

export function limitsRouter(quotaSets: QuotaSetService, auth: Middleware): Router {
  const r = new Router({ prefix: '/v2/limits' });
  r.get('/', auth, async (ctx) => {
    const projectId = ctx.state.auth.projectId;
    if (!projectId) throw new Forbidden('Limits belong to a project: use a project-scoped token.');
    const detail = await quotaSets.detail(ctx.state.auth, projectId);
    const absolute: Record<string, number> = {};
    for (const [resource, max, used] of NAMES) {
      absolute[max] = detail[resource]?.limit ?? -1;
      absolute[used] = detail[resource]?.in_use ?? 0;
    }
    ctx.body = { limits: { rate: [], absolute } };
  });
  return r;
}
