import type { Executor } from '../db.ts';

export interface QuotaKey {
  project_id: string;
  /** '' (or absent) for the whole project, else one user's part of it (user quotas). */
  user_id?: string | undefined;
  /** '' for the project-wide limit, else a share type id. */
  share_type_id: string;
  resource: string;
}

export interface UsageRow extends QuotaKey {
  in_use: number;
  reserved: number;
}

export interface ReservationRow extends QuotaKey {
  id: string;
  task_id: string | null;
  delta: number;
}

/** Whose limits or usage: a project, one share type ('' all) and one user of the project ('' none). */
const where = (projectId: string, shareTypeId: string, userId: string) => ({
  project_id: projectId,
  user_id: userId,
  share_type_id: shareTypeId,
});
const keyOf = (k: QuotaKey) => ({
  project_id: k.project_id,
  user_id: k.user_id ?? '',
  share_type_id: k.share_type_id,
  resource: k.resource,
});

export const quotasRepo = {
  async limits(
    ex: Executor,
    projectId: string,
    shareTypeId: string,
    userId = '',
  ): Promise<Record<string, number>> {
    const rows = await ex('quotas').where(where(projectId, shareTypeId, userId));
    return Object.fromEntries(
      rows.map((r: { resource: string; hard_limit: number }) => [r.resource, r.hard_limit]),
    );
  },
  async setLimit(ex: Executor, key: QuotaKey, hardLimit: number): Promise<void> {
    await ex('quotas')
      .insert({ ...key, hard_limit: hardLimit })
      .onConflict(['project_id', 'user_id', 'share_type_id', 'resource'])
      .merge(['hard_limit']);
  },
  async deleteLimits(ex: Executor, projectId: string, shareTypeId: string, userId = ''): Promise<void> {
    await ex('quotas')
      .where(where(projectId, shareTypeId, userId))
      .delete();
  },
  /** Usage rows for the keys, created at zero if missing and locked until the transaction ends. */
  /**
   * Usage rows for the keys, created at zero if missing and locked until the transaction ends.
   * Every writer of usage rows goes through here, one key at a time in one global order, so
   * concurrent transactions (API reservations, worker commits, deletes) never deadlock.
   */
  async lockUsages(ex: Executor, keys: QuotaKey[]): Promise<UsageRow[]> {
    const byName = new Map(
      keys.map((k) => [`${k.project_id}/${k.user_id ?? ''}/${k.share_type_id}/${k.resource}`, k]),
    );
    const sorted = [...byName.keys()].sort().map((name) => byName.get(name) as QuotaKey);
    const rows: UsageRow[] = [];
    for (const k of sorted) {
      const key = keyOf(k);
      await ex('quota_usages')
        .insert(key)
        .onConflict(['project_id', 'user_id', 'share_type_id', 'resource'])
        .ignore();
      rows.push(await ex('quota_usages').where(key).forUpdate().first());
    }
    return rows;
  },
  async usages(ex: Executor, projectId: string, shareTypeId: string, userId = ''): Promise<UsageRow[]> {
    return ex('quota_usages').where(where(projectId, shareTypeId, userId));
  },
  async adjust(ex: Executor, key: QuotaKey, inUseDelta: number, reservedDelta: number): Promise<void> {
    await ex('quota_usages')
      .where(keyOf(key))
      .update({
        in_use: ex.raw('GREATEST(in_use + ?, 0)', [inUseDelta]),
        reserved: ex.raw('GREATEST(reserved + ?, 0)', [reservedDelta]),
      });
  },
  async addReservation(ex: Executor, row: ReservationRow): Promise<void> {
    await ex('quota_reservations').insert(row);
  },
  async takeReservations(ex: Executor, taskId: string): Promise<ReservationRow[]> {
    return ex('quota_reservations').where({ task_id: taskId }).delete().returning('*');
  },
};
