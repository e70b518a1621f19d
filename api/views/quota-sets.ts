import { atLeast, type Microversion } from '../middleware/microversion.ts';

/** Quota keys that arrived with a later microversion (manila/api/views/quotas.py). */
const SINCE: Record<string, string> = {
  share_groups: '2.40',
  share_group_snapshots: '2.40',
  share_replicas: '2.53',
  replica_gigabytes: '2.53',
  per_share_gigabytes: '2.62',
};

/** The keys of `keys` that microversion `v` does not know yet. */
export function laterKeys(keys: string[], v: Microversion): string[] {
  return keys.filter((key) => {
    const since = SINCE[key];
    return since !== undefined && !atLeast(v, since);
  });
}

/** A quota set as Manila renders it at `v`: the keys of later microversions left out. */
export function quotaSet<T>(id: string, values: Record<string, T>, v: Microversion) {
  const later = laterKeys(Object.keys(values), v);
  const shown = Object.entries(values).filter(([key]) => !later.includes(key));
  return { quota_set: { id, ...Object.fromEntries(shown) } };
}
