import type { Executor } from '../db.ts';
import { guarded } from './pg-errors.ts';
import { tableRepo } from './table.ts';

export interface ShareTypeRow {
  id: string;
  name: string;
  description: string | null;
  is_public: boolean;
  created_at: Date;
  updated_at: Date | null;
}

/** A share type with its extra specs, as services work with it. */
export interface ShareType extends ShareTypeRow {
  extra_specs: Record<string, string>;
}

const base = tableRepo<ShareTypeRow>('share_types', 'A share type with this name');

async function withSpecs(ex: Executor, rows: ShareTypeRow[]): Promise<ShareType[]> {
  if (rows.length === 0) return [];
  const specs = await ex('share_type_extra_specs').whereIn(
    'share_type_id',
    rows.map((r) => r.id),
  );
  return rows.map((r) => ({
    ...r,
    extra_specs: Object.fromEntries(
      specs.filter((s: { share_type_id: string }) => s.share_type_id === r.id).map((s) => [s.key, s.value]),
    ),
  }));
}

export const shareTypesRepo = {
  insert: base.insert,
  update: base.update,
  remove: base.remove,
  /** What still uses this type: a share (whatever its status), or a share group type that names it. */
  async inUse(ex: Executor, id: string): Promise<'shares' | 'share group types' | null> {
    if ((await ex('shares').where({ share_type_id: id }).first('id')) !== undefined) return 'shares';
    if ((await ex('share_group_type_share_types').where({ share_type_id: id }).first()) !== undefined)
      return 'share group types';
    return null;
  },
  async get(ex: Executor, id: string): Promise<ShareType | undefined> {
    const row = await base.get(ex, id);
    return row ? (await withSpecs(ex, [row]))[0] : undefined;
  },
  async getByName(ex: Executor, name: string): Promise<ShareType | undefined> {
    const row = await ex('share_types').where({ name }).first();
    return row ? (await withSpecs(ex, [row]))[0] : undefined;
  },
  /**
   * Types visible under the given rule: `projectId` null → all; otherwise public types plus the
   * private ones shared with that project. `isPublic` narrows further (undefined → both).
   */
  async list(
    ex: Executor,
    opts: { projectId: string | null; isPublic?: boolean | undefined },
  ): Promise<ShareType[]> {
    const q = ex('share_types').orderBy('name');
    if (opts.isPublic !== undefined) q.where({ is_public: opts.isPublic });
    if (opts.projectId !== null) {
      const projectId = opts.projectId;
      q.where((w) =>
        w
          .where({ is_public: true })
          .orWhereIn(
            'id',
            ex('share_type_projects').select('share_type_id').where({ project_id: projectId }),
          ),
      );
    }
    return withSpecs(ex, await q);
  },
  async setSpecs(ex: Executor, id: string, specs: Record<string, string>): Promise<void> {
    const rows = Object.entries(specs).map(([key, value]) => ({ share_type_id: id, key, value }));
    if (rows.length === 0) return;
    await guarded('This extra spec', () =>
      ex('share_type_extra_specs').insert(rows).onConflict(['share_type_id', 'key']).merge(['value']),
    );
  },
  async deleteSpec(ex: Executor, id: string, key: string): Promise<boolean> {
    return (
      (await ex('share_type_extra_specs').where({ share_type_id: id, key }).delete().returning('key'))
        .length > 0
    );
  },
  async listAccess(ex: Executor, id: string): Promise<string[]> {
    return (await ex('share_type_projects').where({ share_type_id: id }).orderBy('project_id')).map(
      (r: { project_id: string }) => r.project_id,
    );
  },
  async hasAccess(ex: Executor, id: string, projectId: string): Promise<boolean> {
    return (
      (await ex('share_type_projects').where({ share_type_id: id, project_id: projectId }).first()) !==
      undefined
    );
  },
  async addAccess(ex: Executor, id: string, projectId: string): Promise<void> {
    await guarded('Access to this share type for this project', () =>
      ex('share_type_projects').insert({ share_type_id: id, project_id: projectId }),
    );
  },
  async removeAccess(ex: Executor, id: string, projectId: string): Promise<boolean> {
    return (
      (
        await ex('share_type_projects')
          .where({ share_type_id: id, project_id: projectId })
          .delete()
          .returning('project_id')
      ).length > 0
    );
  },
};
