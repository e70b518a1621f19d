import type { Executor } from '../db.ts';
import { guarded } from './pg-errors.ts';
import { tableRepo } from './table.ts';

export interface ShareGroupTypeRow {
  id: string;
  name: string;
  is_public: boolean;
  created_at: Date;
  updated_at: Date | null;
}

/** A share group type with its group specs and the ids of its share types, as services use it. */
export interface ShareGroupType extends ShareGroupTypeRow {
  group_specs: Record<string, string>;
  share_types: string[];
}

const base = tableRepo<ShareGroupTypeRow>('share_group_types', 'A share group type with this name');

async function complete(ex: Executor, rows: ShareGroupTypeRow[]): Promise<ShareGroupType[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const [specs, members] = await Promise.all([
    ex('share_group_type_specs').whereIn('share_group_type_id', ids).orderBy('key') as Promise<
      { share_group_type_id: string; key: string; value: string }[]
    >,
    ex('share_group_type_share_types')
      .whereIn('share_group_type_id', ids)
      .orderBy('share_type_id') as Promise<{ share_group_type_id: string; share_type_id: string }[]>,
  ]);
  return rows.map((r) => ({
    ...r,
    group_specs: Object.fromEntries(
      specs.filter((s) => s.share_group_type_id === r.id).map((s) => [s.key, s.value]),
    ),
    share_types: members.filter((m) => m.share_group_type_id === r.id).map((m) => m.share_type_id),
  }));
}

export const shareGroupTypesRepo = {
  insert: base.insert,
  remove: base.remove,
  async get(ex: Executor, id: string): Promise<ShareGroupType | undefined> {
    const row = await base.get(ex, id);
    return row ? (await complete(ex, [row]))[0] : undefined;
  },
  /**
   * Types visible under the given rule, by name: `projectId` null → all; otherwise the public
   * ones plus the private ones shared with that project. `isPublic` narrows further.
   */
  async list(
    ex: Executor,
    opts: { projectId: string | null; isPublic?: boolean | undefined },
  ): Promise<ShareGroupType[]> {
    const q = ex('share_group_types').orderBy('name');
    if (opts.isPublic !== undefined) q.where({ is_public: opts.isPublic });
    if (opts.projectId !== null) {
      const projectId = opts.projectId;
      q.where((w) =>
        w
          .where({ is_public: true })
          .orWhereIn(
            'id',
            ex('share_group_type_projects').select('share_group_type_id').where({ project_id: projectId }),
          ),
      );
    }
    return complete(ex, await q);
  },
  async addShareTypes(ex: Executor, id: string, shareTypeIds: string[]): Promise<void> {
    if (shareTypeIds.length === 0) return;
    await ex('share_group_type_share_types')
      .insert(shareTypeIds.map((share_type_id) => ({ share_group_type_id: id, share_type_id })))
      .onConflict(['share_group_type_id', 'share_type_id'])
      .ignore();
  },
  /** Whether any share group type names this share type (which then cannot be deleted). */
  async usesShareType(ex: Executor, shareTypeId: string): Promise<boolean> {
    return (
      (await ex('share_group_type_share_types').where({ share_type_id: shareTypeId }).first()) !== undefined
    );
  },
  async setSpecs(ex: Executor, id: string, specs: Record<string, string>): Promise<void> {
    const rows = Object.entries(specs).map(([key, value]) => ({ share_group_type_id: id, key, value }));
    if (rows.length === 0) return;
    await guarded('This group spec', () =>
      ex('share_group_type_specs').insert(rows).onConflict(['share_group_type_id', 'key']).merge(['value']),
    );
  },
  async deleteSpec(ex: Executor, id: string, key: string): Promise<boolean> {
    return (
      (await ex('share_group_type_specs').where({ share_group_type_id: id, key }).delete().returning('key'))
        .length > 0
    );
  },
  async listAccess(ex: Executor, id: string): Promise<string[]> {
    return (
      await ex('share_group_type_projects').where({ share_group_type_id: id }).orderBy('project_id')
    ).map((r: { project_id: string }) => r.project_id);
  },
  async hasAccess(ex: Executor, id: string, projectId: string): Promise<boolean> {
    return (
      (await ex('share_group_type_projects')
        .where({ share_group_type_id: id, project_id: projectId })
        .first()) !== undefined
    );
  },
  async addAccess(ex: Executor, id: string, projectId: string): Promise<void> {
    await guarded('Access to this share group type for this project', () =>
      ex('share_group_type_projects').insert({ share_group_type_id: id, project_id: projectId }),
    );
  },
  async removeAccess(ex: Executor, id: string, projectId: string): Promise<boolean> {
    return (
      (
        await ex('share_group_type_projects')
          .where({ share_group_type_id: id, project_id: projectId })
          .delete()
          .returning('project_id')
      ).length > 0
    );
  },
};
