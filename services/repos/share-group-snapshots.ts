import type { Knex } from 'knex';
import type { Executor, Trx } from '../db.ts';
import type { Auth } from '../policy.ts';
import { type PageQuery, paged } from './paging.ts';
import { findInReach, withinReach } from './reach.ts';

export interface ShareGroupSnapshotRow {
  id: string;
  project_id: string;
  user_id: string;
  share_group_id: string;
  name: string | null;
  description: string | null;
  status: string;
  created_at: Date;
  updated_at: Date | null;
}

export interface ShareGroupSnapshotQuery extends PageQuery {
  projectId: string | null;
  name?: string | undefined;
  nameLike?: string | undefined;
  description?: string | undefined;
  descriptionLike?: string | undefined;
  status?: string | undefined;
  shareGroupId?: string | undefined;
}

/** Columns a list of group snapshots may be ordered by. */
export const SHARE_GROUP_SNAPSHOT_SORT_KEYS = [
  'id',
  'name',
  'description',
  'status',
  'created_at',
  'updated_at',
  'project_id',
  'share_group_id',
] as const;

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

function inReach(ex: Executor, auth: Auth, id: string, lock: boolean): Promise<ShareGroupSnapshotRow> {
  const b = withinReach(
    ex('share_group_snapshots').select('share_group_snapshots.*').where('share_group_snapshots.id', id),
    'share_group_snapshots',
    auth,
    'change',
  );
  return findInReach<ShareGroupSnapshotRow>(b, 'Share group snapshot', id, lock);
}

export const shareGroupSnapshotsRepo = {
  async insert(ex: Executor, row: Omit<ShareGroupSnapshotRow, 'created_at' | 'updated_at'>): Promise<void> {
    await ex('share_group_snapshots').insert(row);
  },
  async get(ex: Executor, id: string): Promise<ShareGroupSnapshotRow | undefined> {
    return ex('share_group_snapshots').where({ id }).first();
  },
  owned: (ex: Executor, auth: Auth, id: string) => inReach(ex, auth, id, false),
  lockOwned: (trx: Trx, auth: Auth, id: string) => inReach(trx, auth, id, true),
  async getForUpdate(ex: Executor, id: string): Promise<ShareGroupSnapshotRow | undefined> {
    return ex('share_group_snapshots').where({ id }).forUpdate().first();
  },
  async update(ex: Executor, id: string, patch: Partial<ShareGroupSnapshotRow>): Promise<void> {
    await ex('share_group_snapshots')
      .where({ id })
      .update({ ...patch, updated_at: ex.fn.now() });
  },
  async remove(ex: Executor, id: string): Promise<boolean> {
    return (await ex('share_group_snapshots').where({ id }).delete().returning('id')).length > 0;
  },
  async list(ex: Executor, q: ShareGroupSnapshotQuery): Promise<ShareGroupSnapshotRow[]> {
    const b: Knex.QueryBuilder = ex('share_group_snapshots').select('share_group_snapshots.*');
    if (q.projectId !== null) b.where('project_id', q.projectId);
    if (q.name !== undefined) b.where('name', q.name);
    if (q.nameLike !== undefined) b.whereILike('name', `%${escapeLike(q.nameLike)}%`);
    if (q.description !== undefined) b.where('description', q.description);
    if (q.descriptionLike !== undefined) b.whereILike('description', `%${escapeLike(q.descriptionLike)}%`);
    if (q.status !== undefined) b.where('status', q.status);
    if (q.shareGroupId !== undefined) b.where('share_group_id', q.shareGroupId);
    return paged(b, 'share_group_snapshots', q);
  },
  /** The group's snapshots (a group with any cannot be deleted). */
  async ofGroup(ex: Executor, groupId: string): Promise<ShareGroupSnapshotRow[]> {
    return ex('share_group_snapshots').where({ share_group_id: groupId });
  },
};
