import type { Knex } from 'knex';
import type { Executor, Trx } from '../db.ts';
import type { Auth } from '../policy.ts';
import { type PageQuery, paged } from './paging.ts';
import { findInReach, withinReach } from './reach.ts';

export interface ShareGroupRow {
  id: string;
  project_id: string;
  user_id: string;
  name: string | null;
  description: string | null;
  status: string;
  share_group_type_id: string;
  /** `server@backend` once placed (Manila's group host has no pool). */
  host: string | null;
  availability_zone: string | null;
  source_share_group_snapshot_id: string | null;
  /** What the group's host offers for consistent group snapshots: 'host', 'pool' or null. */
  consistent_snapshot_support: string | null;
  created_at: Date;
  updated_at: Date | null;
}

/** A share group with the ids of the share types it may hold. */
export interface ShareGroup extends ShareGroupRow {
  share_types: string[];
}

export interface ShareGroupQuery extends PageQuery {
  /** Whose groups: one project, or every project (admin with all_tenants). */
  projectId: string | null;
  name?: string | undefined;
  nameLike?: string | undefined;
  description?: string | undefined;
  descriptionLike?: string | undefined;
  status?: string | undefined;
  shareGroupTypeId?: string | undefined;
  sourceShareGroupSnapshotId?: string | undefined;
  host?: string | undefined;
  availabilityZone?: string | undefined;
  createdSince?: Date | undefined;
  createdBefore?: Date | undefined;
}

/** Columns a list of groups may be ordered by (Manila's share group sort keys). */
export const SHARE_GROUP_SORT_KEYS = [
  'id',
  'name',
  'description',
  'status',
  'created_at',
  'updated_at',
  'project_id',
  'host',
  'availability_zone',
  'share_group_type_id',
  'source_share_group_snapshot_id',
] as const;

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

/** The group's columns and its share type ids, in one statement. */
const withTypes = (ex: Executor, b: Knex.QueryBuilder) =>
  b.select(
    'share_groups.*',
    ex.raw(
      `COALESCE((SELECT json_agg(share_type_id ORDER BY share_type_id) FROM share_group_share_types
                  WHERE share_group_share_types.share_group_id = share_groups.id), '[]'::json) AS share_types`,
    ),
  );

function inReach(ex: Executor, auth: Auth, id: string, lock: boolean): Promise<ShareGroup> {
  const b = withinReach(
    withTypes(ex, ex('share_groups')).where('share_groups.id', id),
    'share_groups',
    auth,
    'change',
  );
  return findInReach<ShareGroup>(b, 'Share group', id, lock);
}

export const shareGroupsRepo = {
  async insert(
    ex: Executor,
    row: Omit<ShareGroupRow, 'created_at' | 'updated_at'>,
    shareTypeIds: string[],
  ): Promise<void> {
    await ex('share_groups').insert(row);
    if (shareTypeIds.length)
      await ex('share_group_share_types').insert(
        shareTypeIds.map((share_type_id) => ({ share_group_id: row.id, share_type_id })),
      );
  },
  async get(ex: Executor, id: string): Promise<ShareGroup | undefined> {
    return withTypes(ex, ex('share_groups')).where('share_groups.id', id).first();
  },
  /** The group if it is of the caller's project (any for an admin), else NotFound. */
  owned: (ex: Executor, auth: Auth, id: string) => inReach(ex, auth, id, false),
  /** As owned, and locked until `trx` ends, in one statement: how every group mutation starts. */
  lockOwned: (trx: Trx, auth: Auth, id: string) => inReach(trx, auth, id, true),
  /** Locks the group for the worker, whoever owns it; undefined once gone. */
  async getForUpdate(ex: Executor, id: string): Promise<ShareGroup | undefined> {
    const row = await ex('share_groups').where({ id }).forUpdate().first();
    return row && shareGroupsRepo.get(ex, id);
  },
  async update(ex: Executor, id: string, patch: Partial<ShareGroupRow>): Promise<void> {
    await ex('share_groups')
      .where({ id })
      .update({ ...patch, updated_at: ex.fn.now() });
  },
  async remove(ex: Executor, id: string): Promise<boolean> {
    return (await ex('share_groups').where({ id }).delete().returning('id')).length > 0;
  },
  async list(ex: Executor, q: ShareGroupQuery): Promise<ShareGroup[]> {
    const b = withTypes(ex, ex('share_groups'));
    if (q.projectId !== null) b.where('share_groups.project_id', q.projectId);
    if (q.name !== undefined) b.where('share_groups.name', q.name);
    if (q.nameLike !== undefined) b.whereILike('share_groups.name', `%${escapeLike(q.nameLike)}%`);
    if (q.description !== undefined) b.where('share_groups.description', q.description);
    if (q.descriptionLike !== undefined)
      b.whereILike('share_groups.description', `%${escapeLike(q.descriptionLike)}%`);
    if (q.status !== undefined) b.where('share_groups.status', q.status);
    if (q.shareGroupTypeId !== undefined) b.where('share_groups.share_group_type_id', q.shareGroupTypeId);
    if (q.sourceShareGroupSnapshotId !== undefined)
      b.where('share_groups.source_share_group_snapshot_id', q.sourceShareGroupSnapshotId);
    if (q.host !== undefined) b.where('share_groups.host', q.host);
    if (q.availabilityZone !== undefined) b.where('share_groups.availability_zone', q.availabilityZone);
    if (q.createdSince !== undefined) b.where('share_groups.created_at', '>=', q.createdSince);
    if (q.createdBefore !== undefined) b.where('share_groups.created_at', '<=', q.createdBefore);
    return paged(b, 'share_groups', q);
  },
  /** How many groups of this group type exist (a type in use cannot be deleted). */
  async countOfType(ex: Executor, shareGroupTypeId: string): Promise<number> {
    const [row] = await ex('share_groups').where({ share_group_type_id: shareGroupTypeId }).count({ n: '*' });
    return Number(row?.n ?? 0);
  },
};
