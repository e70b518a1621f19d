import type { Knex } from 'knex';
import type { Executor, Trx } from '../db.ts';
import { isUuid } from '../ids.ts';
import type { Auth } from '../policy.ts';
import { metadataTable } from './metadata.ts';
import { type PageQuery, paged } from './paging.ts';
import { findInReach, withinReach } from './reach.ts';

export interface SnapshotRow {
  id: string;
  share_id: string;
  project_id: string;
  user_id: string;
  name: string | null;
  description: string | null;
  size: number;
  share_proto: string;
  status: string;
  provider_location: string | null;
  /** Set for a member of a share group snapshot: the snapshot API does not show those. */
  share_group_snapshot_id: string | null;
  created_at: Date;
  updated_at: Date | null;
}

/** A snapshot as the API shows it: the row and its metadata (2.73). */
export interface Snapshot extends SnapshotRow {
  metadata: Record<string, string>;
}

const snapshotMetadata = metadataTable('share_snapshot_metadata', 'snapshot_id');

/** The snapshot columns and its metadata. */
const withMetadata = (ex: Executor, b: Knex.QueryBuilder) =>
  b.select('share_snapshots.*', ex.raw(snapshotMetadata.selectFor('share_snapshots')));

export interface SnapshotQuery extends PageQuery {
  /** Whose snapshots: one project, or every project (admin with all_tenants). */
  projectId: string | null;
  name?: string | undefined;
  nameLike?: string | undefined;
  description?: string | undefined;
  descriptionLike?: string | undefined;
  status?: string | undefined;
  /** One snapshot (snapshot instances' snapshot_id filter). */
  id?: string | undefined;
  shareId?: string | undefined;
  size?: number | undefined;
  /** Snapshots having every one of these metadata items (2.73). */
  metadata?: Record<string, string> | undefined;
  /** Manila's usage filter: 'used' = a share has been created from the snapshot. */
  usage?: 'any' | 'used' | 'unused' | undefined;
}

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

function filtered(ex: Executor, q: SnapshotQuery): Knex.QueryBuilder {
  // A group snapshot's members are not share snapshots to the API (Manila keeps them apart).
  const b = withMetadata(ex, ex('share_snapshots')).whereNull('share_snapshots.share_group_snapshot_id');
  if (q.projectId !== null) b.where('project_id', q.projectId);
  if (q.name !== undefined) b.where('name', q.name);
  if (q.nameLike !== undefined) b.whereILike('name', `%${escapeLike(q.nameLike)}%`);
  if (q.description !== undefined) b.where('description', q.description);
  if (q.descriptionLike !== undefined) b.whereILike('description', `%${escapeLike(q.descriptionLike)}%`);
  if (q.status !== undefined) b.where('status', q.status);
  // A filter by an id that is not a uuid matches nothing (and must not reach a uuid column).
  if (q.id !== undefined) b.where('share_snapshots.id', isUuid(q.id) ? q.id : null);
  if (q.shareId !== undefined) b.where('share_id', isUuid(q.shareId) ? q.shareId : null);
  if (q.size !== undefined) b.where('size', q.size);
  for (const [key, value] of Object.entries(q.metadata ?? {}))
    b.whereExists(
      ex('share_snapshot_metadata')
        .whereRaw('share_snapshot_metadata.snapshot_id = share_snapshots.id')
        .where({ key, value }),
    );
  if (q.usage === 'used' || q.usage === 'unused') {
    const clones = ex('shares').whereRaw('shares.snapshot_id = share_snapshots.id');
    if (q.usage === 'used') b.whereExists(clones);
    else b.whereNotExists(clones);
  }
  return b;
}

function inReach(ex: Executor, auth: Auth, id: string, lock: boolean): Promise<Snapshot> {
  const b = withinReach(
    withMetadata(ex, ex('share_snapshots'))
      .where('share_snapshots.id', id)
      .whereNull('share_snapshots.share_group_snapshot_id'),
    'share_snapshots',
    auth,
    'change',
  );
  return findInReach<Snapshot>(b, 'Snapshot', id, lock);
}

export const snapshotsRepo = {
  async insert(
    ex: Executor,
    row: Omit<SnapshotRow, 'created_at' | 'updated_at' | 'share_group_snapshot_id'> &
      Partial<Pick<SnapshotRow, 'share_group_snapshot_id'>>,
  ): Promise<SnapshotRow> {
    const [created] = await ex('share_snapshots').insert(row).returning('*');
    return created as SnapshotRow;
  },
  async get(ex: Executor, id: string): Promise<SnapshotRow | undefined> {
    return ex('share_snapshots').where({ id }).first();
  },
  /** The snapshot if it is of the caller's project (any for an admin), else NotFound. */
  owned: (ex: Executor, auth: Auth, id: string) => inReach(ex, auth, id, false),
  /** As owned, and locked until `trx` ends, in one statement: how every snapshot mutation starts. */
  lockOwned: (trx: Trx, auth: Auth, id: string) => inReach(trx, auth, id, true),
  /** Locks the snapshot for the worker or a share it is used by, whoever owns it; undefined once gone. */
  async getForUpdate(ex: Executor, id: string): Promise<SnapshotRow | undefined> {
    return ex('share_snapshots').where({ id }).forUpdate().first();
  },
  async update(ex: Executor, id: string, patch: Partial<SnapshotRow>): Promise<SnapshotRow | undefined> {
    const [row] = await ex('share_snapshots')
      .where({ id })
      .update({ ...patch, updated_at: ex.fn.now() })
      .returning('*');
    return row as SnapshotRow | undefined;
  },
  async remove(ex: Executor, id: string): Promise<boolean> {
    return (await ex('share_snapshots').where({ id }).delete().returning('id')).length > 0;
  },
  /** One page ordered by (sortKey, id), like shares: cost follows the page. */
  async list(ex: Executor, q: SnapshotQuery): Promise<Snapshot[]> {
    return paged(filtered(ex, q), 'share_snapshots', q);
  },
  setMetadata: snapshotMetadata.set,
  clearMetadata: snapshotMetadata.clear,
  deleteMetadata: snapshotMetadata.remove,
  /** The members of a share group snapshot (snapshots of its group's shares), oldest first. */
  async members(ex: Executor, groupSnapshotId: string): Promise<SnapshotRow[]> {
    return ex('share_snapshots')
      .where({ share_group_snapshot_id: groupSnapshotId })
      .orderBy([{ column: 'created_at' }, { column: 'id' }]);
  },
  /** The share's snapshots, newest first (the first one is the only one a share may revert to). */
  async forShare(ex: Executor, shareId: string): Promise<SnapshotRow[]> {
    return ex('share_snapshots')
      .where({ share_id: shareId })
      .orderBy([
        { column: 'created_at', order: 'desc' },
        { column: 'id', order: 'desc' },
      ]);
  },
};
