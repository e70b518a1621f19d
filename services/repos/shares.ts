import type { Knex } from 'knex';
import type { Executor, Trx } from '../db.ts';
import { Forbidden } from '../errors.ts';
import { isUuid } from '../ids.ts';
import type { Auth } from '../policy.ts';
import { metadataTable } from './metadata.ts';
import type { PageReader } from './page-reader.ts';
import { type PageQuery, pageSql } from './paging.ts';
import { findInReach, type Reach, withinReach } from './reach.ts';

export interface ShareRow {
  id: string;
  project_id: string;
  user_id: string;
  name: string | null;
  description: string | null;
  size: number;
  share_proto: string;
  status: string;
  share_type_id: string;
  availability_zone: string | null;
  is_public: boolean;
  host: string | null;
  snapshot_id: string | null;
  access_rules_status: string;
  /** Manila's task_state (null: no long task); set only by an admin's reset_task_state. */
  task_state: string | null;
  /** In the recycle bin (Manila's soft delete, 2.69): hidden from lists, purged at the time below. */
  is_soft_deleted: boolean;
  scheduled_to_be_deleted_at: Date | null;
  /** The share group it belongs to (2.31), and the group snapshot member it was made from. */
  share_group_id: string | null;
  source_share_group_snapshot_member_id: string | null;
  created_at: Date;
  updated_at: Date | null;
  /** Renewed by the database on every change to the row or its metadata (bigint, as a string). */
  revision: string;
}

/** A share with what its views need besides the row. */
export interface Share extends ShareRow {
  share_type_name: string;
  /** The share type's extra specs (capability flags the share view reports). */
  share_type_specs: Record<string, string>;
  metadata: Record<string, string>;
  /** Paths of the export locations clients may see (not admin-only), preferred first (views ≤ 2.8). */
  export_paths: string[];
}

/**
 * A share's place in a list page: its id and the revision of everything its views show (the
 * share's row and metadata, and its type's name and extra specs), renewed by the database on
 * every change to any of them.
 */
export interface PageItem {
  id: string;
  revision: string;
}

export interface ExportLocationRow {
  id: string;
  share_id: string;
  path: string;
  preferred: boolean;
  is_admin_only: boolean;
  created_at: Date;
}

export interface ShareQuery extends PageQuery {
  /** Whose shares: one project, or every project (admin with all_tenants). */
  projectId: string | null;
  /** Also other projects' public shares (is_public=True). */
  includePublic: boolean;
  name?: string | undefined;
  nameLike?: string | undefined;
  descriptionLike?: string | undefined;
  description?: string | undefined;
  status?: string | undefined;
  /** Admin filters: the backend host (`server@backend#pool`), the source snapshot. */
  host?: string | undefined;
  snapshotId?: string | undefined;
  /** A share server: DHSS=False shares have none, so any value matches nothing. */
  shareServerId?: string | undefined;
  shareTypeId?: string | undefined;
  availabilityZone?: string | undefined;
  metadata?: Record<string, string> | undefined;
  /** The share type's extra specs must include these (values compared case-insensitively). */
  extraSpecs?: Record<string, string> | undefined;
  exportLocationPath?: string | undefined;
  exportLocationId?: string | undefined;
  /** The recycle bin (is_soft_deleted=True) instead of the shares outside it. */
  softDeleted?: boolean | undefined;
  /** Members of one share group (2.31); an id that is no UUID matches nothing. */
  shareGroupId?: string | undefined;
}

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

/** Columns a page of shares may be ordered by (the API's sort_key values). */
export const SHARE_SORT_KEYS = [
  'id',
  'name',
  'status',
  'size',
  'created_at',
  'updated_at',
  'share_proto',
  'project_id',
  'share_type_id',
  'availability_zone',
  'host',
] as const;
const SORTABLE = new Set<string>(SHARE_SORT_KEYS);

/**
 * The WHERE clause of a share query, as SQL text with $n parameters whose values it appends to
 * `values`. Written out instead of built with knex: a list request reads a page every time, and
 * building and compiling the query cost more CPU than the database took to answer it. Values only
 * ever travel as parameters.
 */
function whereSql(q: ShareQuery, values: unknown[]): string {
  const p = (v: unknown) => {
    values.push(v);
    return `$${values.length}`;
  };
  // A list shows the shares outside the recycle bin, or (is_soft_deleted=True) those in it.
  const conds: string[] = [q.softDeleted ? 'shares.is_soft_deleted' : 'NOT shares.is_soft_deleted'];
  if (q.projectId !== null)
    conds.push(
      q.includePublic
        ? `(shares.project_id = ${p(q.projectId)} OR shares.is_public)`
        : `shares.project_id = ${p(q.projectId)}`,
    );
  if (q.name !== undefined) conds.push(`shares.name = ${p(q.name)}`);
  if (q.nameLike !== undefined) conds.push(`shares.name ILIKE ${p(`%${escapeLike(q.nameLike)}%`)}`);
  if (q.descriptionLike !== undefined)
    conds.push(`shares.description ILIKE ${p(`%${escapeLike(q.descriptionLike)}%`)}`);
  if (q.description !== undefined) conds.push(`shares.description = ${p(q.description)}`);
  if (q.status !== undefined) conds.push(`shares.status = ${p(q.status)}`);
  if (q.host !== undefined) conds.push(`shares.host = ${p(q.host)}`);
  if (q.snapshotId !== undefined)
    conds.push(isUuid(q.snapshotId) ? `shares.snapshot_id = ${p(q.snapshotId)}` : 'FALSE');
  if (q.shareServerId !== undefined) conds.push('FALSE');
  if (q.shareGroupId !== undefined)
    conds.push(isUuid(q.shareGroupId) ? `shares.share_group_id = ${p(q.shareGroupId)}` : 'FALSE');
  if (q.shareTypeId !== undefined) conds.push(`shares.share_type_id = ${p(q.shareTypeId)}`);
  if (q.availabilityZone !== undefined) conds.push(`shares.availability_zone = ${p(q.availabilityZone)}`);
  for (const [key, value] of Object.entries(q.metadata ?? {}))
    conds.push(
      `EXISTS (SELECT 1 FROM share_metadata WHERE share_metadata.share_id = shares.id
                AND share_metadata.key = ${p(key)} AND share_metadata.value = ${p(value)})`,
    );
  for (const [key, value] of Object.entries(q.extraSpecs ?? {}))
    conds.push(
      `shares.share_type_id IN (SELECT share_type_id FROM share_type_extra_specs
                                 WHERE key = ${p(key)} AND lower(value) = lower(${p(value)}))`,
    );
  if (q.exportLocationPath !== undefined || q.exportLocationId !== undefined) {
    let match = '';
    if (q.exportLocationPath !== undefined) match += ` AND e.path = ${p(q.exportLocationPath)}`;
    // An id that is no UUID matches no export location (rather than failing the uuid cast).
    if (q.exportLocationId !== undefined)
      match += isUuid(q.exportLocationId) ? ` AND e.id = ${p(q.exportLocationId)}` : ' AND FALSE';
    conds.push(`EXISTS (SELECT 1 FROM share_export_locations e WHERE e.share_id = shares.id${match})`);
  }
  return ` WHERE ${conds.join(' AND ')}`;
}

/**
 * The columns of a Share: the row plus its type's name and extra specs and its metadata, gathered
 * by subqueries so one share is one round trip.
 */
function withDetails(ex: Executor, b: Knex.QueryBuilder): Knex.QueryBuilder {
  return b.select(
    'shares.*',
    ex.raw('(SELECT name FROM share_types WHERE share_types.id = shares.share_type_id) AS share_type_name'),
    ex.raw(
      `COALESCE((SELECT json_object_agg(key, value) FROM share_type_extra_specs
                  WHERE share_type_extra_specs.share_type_id = shares.share_type_id), '{}'::json) AS share_type_specs`,
    ),
    ex.raw(
      `COALESCE((SELECT json_object_agg(key, value) FROM share_metadata
                  WHERE share_metadata.share_id = shares.id), '{}'::json) AS metadata`,
    ),
    ex.raw(
      `COALESCE((SELECT json_agg(path ORDER BY preferred DESC, created_at) FROM share_export_locations
                  WHERE share_export_locations.share_id = shares.id AND NOT is_admin_only), '[]'::json) AS export_paths`,
    ),
  );
}

/**
 * A page of rows made Shares with two more queries, one for the page's metadata and one for its
 * share types (usually one or two), instead of subqueries per row, which would aggregate a type's
 * specs once per share and cost several times the page itself. Shares of one type share one specs
 * object; views only read it.
 */
async function withPageDetails(ex: Executor, rows: ShareRow[]): Promise<Share[]> {
  if (rows.length === 0) return [];
  const typeIds = [...new Set(rows.map((r) => r.share_type_id))];
  const [metadataRows, typeRows, exportRows] = await Promise.all([
    ex('share_metadata')
      .select('share_id', 'key', 'value')
      .whereRaw('share_id = ANY(?::uuid[])', [rows.map((r) => r.id)]) as Promise<
      { share_id: string; key: string; value: string }[]
    >,
    ex('share_types')
      .leftJoin('share_type_extra_specs', 'share_type_extra_specs.share_type_id', 'share_types.id')
      .select(
        'share_types.id',
        'share_types.name',
        'share_type_extra_specs.key',
        'share_type_extra_specs.value',
      )
      .whereRaw('share_types.id = ANY(?::uuid[])', [typeIds]) as Promise<
      { id: string; name: string; key: string | null; value: string | null }[]
    >,
    ex('share_export_locations')
      .select('share_id', 'path')
      .whereRaw('share_id = ANY(?::uuid[]) AND NOT is_admin_only', [rows.map((r) => r.id)])
      .orderBy([
        { column: 'preferred', order: 'desc' },
        { column: 'created_at', order: 'asc' },
      ]) as Promise<{ share_id: string; path: string }[]>,
  ]);
  const exportPaths = new Map<string, string[]>();
  for (const e of exportRows) exportPaths.set(e.share_id, [...(exportPaths.get(e.share_id) ?? []), e.path]);
  const metadata = new Map<string, Record<string, string>>();
  for (const m of metadataRows) {
    const forShare = metadata.get(m.share_id) ?? {};
    forShare[m.key] = m.value;
    metadata.set(m.share_id, forShare);
  }
  const types = new Map<string, { name: string; specs: Record<string, string> }>();
  for (const t of typeRows) {
    const type = types.get(t.id) ?? { name: t.name, specs: {} };
    if (t.key !== null) type.specs[t.key] = t.value as string;
    types.set(t.id, type);
  }
  // The rows are this call's own: completing them in place spares a copy of each.
  return rows.map((r) => {
    const share = r as Share;
    const type = types.get(r.share_type_id);
    share.share_type_name = type?.name as string;
    share.share_type_specs = type?.specs ?? {};
    share.metadata = metadata.get(r.id) ?? {};
    share.export_paths = exportPaths.get(r.id) ?? [];
    return share;
  });
}

function inReach(ex: Executor, auth: Auth, id: string, reach: Reach, lock: boolean): Promise<Share> {
  const b = withinReach(withDetails(ex, ex('shares').where('shares.id', id)), 'shares', auth, reach);
  return findInReach<Share>(b, 'Share', id, lock);
}

const shareMetadata = metadataTable('share_metadata', 'share_id');

export const sharesRepo = {
  async insert(
    ex: Executor,
    row: Omit<
      ShareRow,
      | 'created_at'
      | 'updated_at'
      | 'access_rules_status'
      | 'revision'
      | 'task_state'
      | 'is_soft_deleted'
      | 'scheduled_to_be_deleted_at'
      | 'share_group_id'
      | 'source_share_group_snapshot_member_id'
    > &
      Partial<Pick<ShareRow, 'share_group_id' | 'source_share_group_snapshot_member_id'>>,
  ): Promise<ShareRow> {
    const [created] = await ex('shares').insert(row).returning('*');
    return created as ShareRow;
  },
  async get(ex: Executor, id: string): Promise<Share | undefined> {
    // Ids come from URLs too (GET /v2/shares/{id}/heal): a non-UUID names no share.
    if (!isUuid(id)) return undefined;
    return withDetails(ex, ex('shares').where('shares.id', id)).first();
  },
  /** The share if the caller may see it (their project's, a public one, any for an admin), else NotFound. */
  visible: (ex: Executor, auth: Auth, id: string) => inReach(ex, auth, id, 'see', false),
  /** The share if the caller may change it (their project's, any for an admin), else NotFound. */
  owned: (ex: Executor, auth: Auth, id: string) => inReach(ex, auth, id, 'change', false),
  /**
   * As owned, and locked until `trx` ends, in one statement: how every share mutation starts, so
   * a delete committed a moment earlier is a NotFound and one a moment later waits for it. Another
   * project's public share is a Forbidden (the caller sees it), its private one a NotFound.
   */
  lockOwned: async (trx: Trx, auth: Auth, id: string): Promise<Share> => {
    const share = await inReach(trx, auth, id, 'see', true);
    // Another project's public share: seen, so not a 404; Manila's policy refuses the change (403).
    if (!auth.isAdmin && share.project_id !== auth.projectId)
      throw new Forbidden(`Share ${id} is another project's public share: it can be read, not changed.`);
    return share;
  },
  /** Locks the share for the worker, whoever owns it; undefined once it is gone. */
  async getForUpdate(ex: Executor, id: string): Promise<ShareRow | undefined> {
    return ex('shares').where({ id }).forUpdate().first();
  },
  async update(ex: Executor, id: string, patch: Partial<ShareRow>): Promise<ShareRow | undefined> {
    const [row] = await ex('shares')
      .where({ id })
      .update({ ...patch, updated_at: ex.fn.now() })
      .returning('*');
    return row as ShareRow | undefined;
  },
  /** Moves the share from status `from` to `to`; false (nothing changed) if it has left `from`. */
  async changeStatus(ex: Executor, id: string, from: string, to: string): Promise<boolean> {
    const n = await ex('shares').where({ id, status: from }).update({ status: to, updated_at: ex.fn.now() });
    return n > 0;
  },
  async remove(ex: Executor, id: string): Promise<boolean> {
    return (await ex('shares').where({ id }).delete().returning('id')).length > 0;
  },
  /**
   * One page of the shares `q` selects, in list order, as ids and revisions: the one statement a
   * list request always runs (the shares themselves come from `load`, for those a caller needs).
   */
  async page(reader: PageReader, q: ShareQuery): Promise<PageItem[]> {
    if (!SORTABLE.has(q.sortKey)) throw new Error(`shares cannot be sorted by ${q.sortKey}`);
    const values: unknown[] = [];
    const p = (v: unknown) => {
      values.push(v);
      return `$${values.length}`;
    };
    const where = whereSql(q, values);
    const { after, orderBy } = pageSql('shares', q, p);
    let sql = `SELECT shares.id, shares.revision || '.' || share_types.revision AS revision
                 FROM shares JOIN share_types ON share_types.id = shares.share_type_id${where}`;
    if (after) sql += ` AND ${after}`;
    sql += ` ORDER BY ${orderBy}`;
    if (q.limit !== undefined) sql += ` LIMIT ${p(q.limit)}`;
    if (q.offset !== undefined) sql += ` OFFSET ${p(q.offset)}`;
    // Metadata and extra-spec filters add a clause per key: texts without end, never prepared.
    return reader.select<PageItem>(sql, values, { prepared: !q.metadata && !q.extraSpecs });
  },
  /**
   * The shares with these ids, each with the revision it was read at (see PageItem); a share
   * deleted since its page was read is absent.
   */
  async load(ex: Executor, ids: string[]): Promise<{ share: Share; revision: string }[]> {
    if (ids.length === 0) return [];
    const rows: (ShareRow & { page_revision: string })[] = await ex('shares')
      .join('share_types', 'share_types.id', 'shares.share_type_id')
      .select('shares.*', ex.raw("shares.revision || '.' || share_types.revision AS page_revision"))
      .whereRaw('shares.id = ANY(?::uuid[])', [ids]);
    return (await withPageDetails(ex, rows)).map((share) => {
      const row = share as Share & { page_revision?: string };
      const revision = row.page_revision as string;
      delete row.page_revision;
      return { share, revision };
    });
  },
  async count(ex: Executor, q: ShareQuery): Promise<number> {
    const values: unknown[] = [];
    const where = whereSql(q, values).replace(/\$\d+/g, '?');
    const { rows } = await ex.raw(
      `SELECT count(*) AS count FROM shares${where}`,
      values as Knex.RawBinding[],
    );
    return Number((rows as { count: string | number }[])[0]?.count ?? 0);
  },
  setMetadata: shareMetadata.set,
  clearMetadata: shareMetadata.clear,
  deleteMetadata: shareMetadata.remove,
  async exportLocations(ex: Executor, shareId: string): Promise<ExportLocationRow[]> {
    return ex('share_export_locations')
      .where({ share_id: shareId })
      .orderBy([{ column: 'preferred', order: 'desc' }, { column: 'created_at' }]);
  },
  async replaceExportLocations(
    ex: Executor,
    shareId: string,
    locations: { id: string; path: string; preferred: boolean; is_admin_only: boolean }[],
  ): Promise<void> {
    await ex('share_export_locations').where({ share_id: shareId }).delete();
    if (locations.length)
      await ex('share_export_locations').insert(locations.map((l) => ({ ...l, share_id: shareId })));
  },
  /** Puts the share in the recycle bin, to be purged `retentionSeconds` from now (the database's clock). */
  async softDelete(ex: Executor, id: string, retentionSeconds: number): Promise<void> {
    await ex('shares')
      .where({ id })
      .update({
        is_soft_deleted: true,
        scheduled_to_be_deleted_at: ex.raw('now() + make_interval(secs => ?)', [retentionSeconds]),
        updated_at: ex.fn.now(),
      });
  },
  async restore(ex: Executor, id: string): Promise<void> {
    await ex('shares')
      .where({ id })
      .update({ is_soft_deleted: false, scheduled_to_be_deleted_at: null, updated_at: ex.fn.now() });
  },
  /**
   * Shares of the recycle bin whose time is up at `now` and that may be deleted, locked until `trx`
   * ends; rows another server is purging at the same moment are skipped, not waited for.
   */
  async expiredInRecycleBin(
    trx: Trx,
    now: Date,
    deletable: readonly string[],
    limit: number,
  ): Promise<string[]> {
    const rows: { id: string }[] = await trx('shares')
      .where('is_soft_deleted', true)
      .where('scheduled_to_be_deleted_at', '<=', now)
      .whereIn('status', deletable as string[])
      .orderBy('scheduled_to_be_deleted_at')
      .limit(limit)
      .forUpdate()
      .skipLocked()
      .select('id');
    return rows.map((r) => r.id);
  },
  /**
   * The shares of a share group, whatever their status (the group cannot go while it has any);
   * with `lock`, locked until `trx` ends (a group snapshot holds them so none starts deleting).
   */
  async inGroup(ex: Executor, groupId: string, { lock = false } = {}): Promise<ShareRow[]> {
    const b = ex('shares')
      .where({ share_group_id: groupId })
      .orderBy([{ column: 'created_at' }, { column: 'id' }]);
    return lock ? b.forUpdate() : b;
  },
  /** Shares still being created from a snapshot (it must stay until they are). */
  async creatingFrom(ex: Executor, snapshotId: string): Promise<string[]> {
    const rows: { id: string }[] = await ex('shares')
      .where({ snapshot_id: snapshotId })
      .whereIn('status', ['creating', 'creating_from_snapshot'])
      .select('id');
    return rows.map((r) => r.id);
  },
};
