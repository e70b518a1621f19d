import { randomUUID } from 'node:crypto';
import type { Executor } from './db.ts';
import { QuotaExceeded } from './errors.ts';
import type { Repos } from './repos/index.ts';
import type { QuotaKey } from './repos/quotas.ts';

/** Manila's quota resources and their default limits (-1 = unlimited). */
export const QUOTA_DEFAULTS = {
  shares: 50,
  gigabytes: 1000,
  snapshots: 50,
  snapshot_gigabytes: 1000,
  share_networks: 10,
  share_groups: 50,
  share_group_snapshots: 50,
  share_replicas: 100,
  replica_gigabytes: 1000,
  per_share_gigabytes: -1,
} as const;
export type QuotaResource = keyof typeof QUOTA_DEFAULTS;

export type Deltas = Partial<Record<QuotaResource, number>>;

/** The resources a per-share-type quota may limit (Manila's share-type quotas). */
export const SHARE_TYPE_QUOTA_RESOURCES: readonly QuotaResource[] = [
  'shares',
  'gigabytes',
  'snapshots',
  'snapshot_gigabytes',
  'share_replicas',
  'replica_gigabytes',
  'per_share_gigabytes',
];

/** The usage scopes a change counts in: the project, its share type, and the user who owns it. */
function scopesOf(scope: { shareTypeId: string; userId: string }): { user: string; type: string }[] {
  const scopes = [{ user: '', type: '' }];
  if (scope.shareTypeId !== '') scopes.push({ user: '', type: scope.shareTypeId });
  if (scope.userId !== '') scopes.push({ user: scope.userId, type: '' });
  return scopes;
}

function keysOf(projectId: string, scopes: { user: string; type: string }[], deltas: Deltas): QuotaKey[] {
  const keys: QuotaKey[] = [];
  for (const s of scopes)
    for (const [resource, delta] of Object.entries(deltas))
      if (delta && delta > 0)
        keys.push({ project_id: projectId, user_id: s.user, share_type_id: s.type, resource });
  return keys;
}

/**
 * Reservations follow Manila: reserve in the transaction that flips a status (usage.reserved grows),
 * commit when the task succeeds (reserved → in_use) or roll back when it fails. Usage rows are
 * locked FOR UPDATE while checking, so concurrent requests cannot both take the last unit. Usage
 * is counted per project, per share type and per user (the resource's owner), so a user's limit
 * holds as exactly as the project's.
 */
export function createQuotaService({ repos }: { repos: Pick<Repos, 'quotas'> }) {
  async function effectiveLimits(
    ex: Executor,
    projectId: string,
    shareTypeId: string,
  ): Promise<Record<string, number>> {
    const own = await repos.quotas.limits(ex, projectId, shareTypeId);
    // Project-wide limits fall back to the defaults; per-type limits exist only where set.
    return shareTypeId === '' ? { ...QUOTA_DEFAULTS, ...own } : own;
  }

  return {
    effectiveLimits,

    async reserve(
      ex: Executor,
      scope: { projectId: string; shareTypeId: string; userId: string; taskId: string },
      deltas: Deltas,
      status: 403 | 413 = 413,
    ): Promise<void> {
      const scopes = scopesOf(scope);
      const keys = keysOf(scope.projectId, scopes, deltas);
      const usages = await repos.quotas.lockUsages(ex, keys);
      for (const s of scopes) {
        // A user without limits of their own is bounded by the project's, checked in its scope.
        const limits =
          s.user === ''
            ? await effectiveLimits(ex, scope.projectId, s.type)
            : await repos.quotas.limits(ex, scope.projectId, '', s.user);
        for (const [resource, delta] of Object.entries(deltas)) {
          const limit = limits[resource];
          if (!delta || delta <= 0 || limit === undefined || limit < 0) continue;
          const u = usages.find(
            (x) => x.share_type_id === s.type && (x.user_id ?? '') === s.user && x.resource === resource,
          );
          const used = (u?.in_use ?? 0) + (u?.reserved ?? 0);
          if (used + delta > limit) {
            const where = s.user !== '' ? 'user' : s.type === '' ? 'project' : 'share type';
            throw new QuotaExceeded(
              `Quota exceeded for ${resource} (${where} limit ${limit}, ${used} in use or reserved, ${delta} requested).`,
              status,
            );
          }
        }
      }
      for (const key of keys) {
        const delta = deltas[key.resource as QuotaResource] as number;
        await repos.quotas.adjust(ex, key, 0, delta);
        await repos.quotas.addReservation(ex, { id: randomUUID(), task_id: scope.taskId, ...key, delta });
      }
    },

    /** The task succeeded: its reservations become usage. */
    async commit(ex: Executor, taskId: string): Promise<void> {
      const reservations = await repos.quotas.takeReservations(ex, taskId);
      await repos.quotas.lockUsages(ex, reservations);
      for (const r of reservations) await repos.quotas.adjust(ex, r, r.delta, -r.delta);
    },

    /** The task failed: give its reservations back. */
    async rollback(ex: Executor, taskId: string): Promise<void> {
      const reservations = await repos.quotas.takeReservations(ex, taskId);
      await repos.quotas.lockUsages(ex, reservations);
      for (const r of reservations) await repos.quotas.adjust(ex, r, 0, -r.delta);
    },

    /** Usage freed directly (a deleted share): project, share type and the owning user. */
    async release(
      ex: Executor,
      scope: { projectId: string; shareTypeId: string; userId: string },
      deltas: Deltas,
    ): Promise<void> {
      const keys = keysOf(scope.projectId, scopesOf(scope), deltas);
      await repos.quotas.lockUsages(ex, keys);
      for (const k of keys)
        await repos.quotas.adjust(ex, k, -(deltas[k.resource as QuotaResource] as number), 0);
    },
  };
}

export type QuotaService = ReturnType<typeof createQuotaService>;
