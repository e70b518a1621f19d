import { atLeast, type Microversion } from '../middleware/microversion.ts';

/** Quota keys that arrived with a later microversion (manila/api/views/quotas.py). */
const SINCE: Record<string, string> = {
  share_groups: '2.40',
  share_group_snapshots: '2.40',
  share_replicas: '2.53',
  replica_gigabytes: '2.53',
  per_share_gigabytes: '2.62',
};

/** A quota set as Manila renders it at `v`: the keys of later microversions left out. */
export function quotaSet<T>(id: string, values: Record<string, T>, v: Microversion) {
  const shown = Object.entries(values).filter(([key]) => {
    const since = SINCE[key];
    return since === undefined || atLeast(v, since);
  });
  return { quota_set: { id, ...Object.fromEntries(shown) } };
}
