import type { Knex } from 'knex';
import type { Executor } from '../db.ts';
import { type PageQuery, paged } from './paging.ts';

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
  created_at: Date;
  updated_at: Date | null;
}

/** A share with what its views need besides the row. */
export interface Share extends ShareRow {
  share_type_name: string;
  /** The share type's extra specs (capability flags the share view reports). */
  share_type_specs: Record<string, string>;
  metadata: Record<string, string>;
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
  status?: string | undefined;
  shareTypeId?: string | undefined;
  availabilityZone?: string | undefined;
  metadata?: Record<string, string> | undefined;
  /** The share type's extra specs must include these (values compared case-insensitively). */
  extraSpecs?: Record<string, string> | undefined;
  exportLocationPath?: string | undefined;
  exportLocationId?: string | undefined;
}

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

function filtered(ex: Executor, q: ShareQuery): Knex.QueryBuilder {
  const b = ex('shares');
  if (q.projectId !== null) {
    const projectId = q.projectId;
    b.where((w) => {
      w.where('shares.project_id', projectId);
      if (q.includePublic) w.orWhere('shares.is_public', true);
    });
  }
  if (q.name !== undefined) b.where('shares.name', q.name);
  if (q.nameLike !== undefined) b.whereILike('shares.name', `%${escapeLike(q.nameLike)}%`);
  if (q.descriptionLike !== undefined)
    b.whereILike('shares.description', `%${escapeLike(q.descriptionLike)}%`);
  if (q.status !== undefined) b.where('shares.status', q.status);
  if (q.shareTypeId !== undefined) b.where('shares.share_type_id', q.shareTypeId);
  if (q.availabilityZone !== undefined) b.where('shares.availability_zone', q.availabilityZone);
  for (const [key, value] of Object.entries(q.metadata ?? {}))
    b.whereExists(ex('share_metadata').whereRaw('share_metadata.share_id = shares.id').where({ key, value }));
  for (const [key, value] of Object.entries(q.extraSpecs ?? {}))
    b.whereIn(
      'shares.share_type_id',
      ex('share_type_extra_specs')
        .select('share_type_id')
        .where({ key })
        .whereRaw('lower(value) = lower(?)', [value]),
    );
  if (q.exportLocationPath !== undefined || q.exportLocationId !== undefined)
    b.whereExists(
      ex('share_export_locations')
        .whereRaw('share_export_locations.share_id = shares.id')
        .where((w) => {
          if (q.exportLocationPath !== undefined) w.where('path', q.exportLocationPath);
          if (q.exportLocationId !== undefined) w.where('share_export_locations.id', q.exportLocationId);
        }),
    );
  return b;
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
  );
}

/**
 * A page of rows made Shares with two more queries, one for the page's metadata and one for its
 * share types (usually one or two), instead of subqueries per row: on PostgreSQL the per-row
 * subqueries cost 2–4 times the page itself (each row aggregated its type's specs and its metadata
 * again), on PGlite more. Shares of one type share one specs object; views only read it.
 */
async function withPageDetails(ex: Executor, rows: ShareRow[]): Promise<Share[]> {
  if (rows.length === 0) return [];
  const typeIds = [...new Set(rows.map((r) => r.share_type_id))];
  const [metadataRows, typeRows] = await Promise.all([
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
  ]);
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
    return share;
  });
}

export const sharesRepo = {
  async insert(
    ex: Executor,
    row: Omit<ShareRow, 'created_at' | 'updated_at' | 'access_rules_status'>,
  ): Promise<ShareRow> {
    const [created] = await ex('shares').insert(row).returning('*');
    return created as ShareRow;
  },
  async get(ex: Executor, id: string): Promise<Share | undefined> {
    return withDetails(ex, ex('shares').where('shares.id', id)).first();
  },
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
  async remove(ex: Executor, id: string): Promise<boolean> {
    return (await ex('shares').where({ id }).delete().returning('id')).length > 0;
  },
  /** One page, ordered by (sortKey, id) so pages never overlap; cost follows the page, not the table. */
  async list(ex: Executor, q: ShareQuery): Promise<Share[]> {
    const b = paged(filtered(ex, q).select('shares.*'), 'shares', q);
    return withPageDetails(ex, await b);
  },
  async count(ex: Executor, q: ShareQuery): Promise<number> {
    const [{ count }] = (await filtered(ex, q).count({ count: '*' })) as [{ count: string | number }];
    return Number(count);
  },
  async setMetadata(ex: Executor, shareId: string, metadata: Record<string, string>): Promise<void> {
    const rows = Object.entries(metadata).map(([key, value]) => ({ share_id: shareId, key, value }));
    if (rows.length) await ex('share_metadata').insert(rows).onConflict(['share_id', 'key']).merge(['value']);
  },
  async clearMetadata(ex: Executor, shareId: string): Promise<void> {
    await ex('share_metadata').where({ share_id: shareId }).delete();
  },
  async deleteMetadata(ex: Executor, shareId: string, key: string): Promise<void> {
    await ex('share_metadata').where({ share_id: shareId, key }).delete();
  },
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
  /** Shares still being created from a snapshot (it must stay until they are). */
  async creatingFrom(ex: Executor, snapshotId: string): Promise<string[]> {
    const rows: { id: string }[] = await ex('shares')
      .where({ snapshot_id: snapshotId, status: 'creating_from_snapshot' })
      .select('id');
    return rows.map((r) => r.id);
  },
};
