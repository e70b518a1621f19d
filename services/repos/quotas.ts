import type { Executor } from '../db.ts';

export interface QuotaKey {
  project_id: string;
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

export const quotasRepo = {
  async limits(ex: Executor, projectId: string, shareTypeId: string): Promise<Record<string, number>> {
    const rows = await ex('quotas').where({ project_id: projectId, share_type_id: shareTypeId });
    return Object.fromEntries(
      rows.map((r: { resource: string; hard_limit: number }) => [r.resource, r.hard_limit]),
    );
  },
  async setLimit(ex: Executor, key: QuotaKey, hardLimit: number): Promise<void> {
    await ex('quotas')
      .insert({ ...key, hard_limit: hardLimit })
      .onConflict(['project_id', 'share_type_id', 'resource'])
      .merge(['hard_limit']);
  },
  async deleteLimits(ex: Executor, projectId: string, shareTypeId: string): Promise<void> {
    await ex('quotas').where({ project_id: projectId, share_type_id: shareTypeId }).delete();
  },
  /** Usage rows for the keys, created at zero if missing and locked until the transaction ends. */
  /**
   * Usage rows for the keys, created at zero if missing and locked until the transaction ends.
   * Every writer of usage rows goes through here, one key at a time in one global order, so
   * concurrent transactions (API reservations, worker commits, deletes) never deadlock.
   */
  async lockUsages(ex: Executor, keys: QuotaKey[]): Promise<UsageRow[]> {
    const byName = new Map(keys.map((k) => [`${k.project_id}/${k.share_type_id}/${k.resource}`, k]));
    const sorted = [...byName.keys()].sort().map((name) => byName.get(name) as QuotaKey);
    const rows: UsageRow[] = [];
    for (const k of sorted) {
      const key = { project_id: k.project_id, share_type_id: k.share_type_id, resource: k.resource };
      await ex('quota_usages').insert(key).onConflict(['project_id', 'share_type_id', 'resource']).ignore();
      rows.push(await ex('quota_usages').where(key).forUpdate().first());
    }
    return rows;
  },
  async usages(ex: Executor, projectId: string, shareTypeId: string): Promise<UsageRow[]> {
    return ex('quota_usages').where({ project_id: projectId, share_type_id: shareTypeId });
  },
  async adjust(ex: Executor, key: QuotaKey, inUseDelta: number, reservedDelta: number): Promise<void> {
    await ex('quota_usages')
      .where({ project_id: key.project_id, share_type_id: key.share_type_id, resource: key.resource })
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
