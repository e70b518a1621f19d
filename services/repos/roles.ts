import type { Executor } from '../db.ts';
import { guarded } from './pg-errors.ts';
import { tableRepo } from './table.ts';

export interface RoleRow {
  id: string;
  name: string;
  description: string;
  options: Record<string, unknown>;
  extra: Record<string, unknown>;
  created_at: Date;
}

export interface RoleRef {
  id: string;
  name: string;
}

export const rolesRepo = {
  ...tableRepo<RoleRow>('roles', 'A role with this name'),
  async getByName(ex: Executor, name: string): Promise<RoleRow | undefined> {
    return ex('roles').where({ name }).first();
  },
  async addImplied(ex: Executor, priorId: string, impliedId: string): Promise<void> {
    await guarded('This role inference', () =>
      ex('implied_roles')
        .insert({ prior_role_id: priorId, implied_role_id: impliedId })
        .onConflict(['prior_role_id', 'implied_role_id'])
        .ignore(),
    );
  },
  /** The given roles plus every role they imply, transitively (admin ⊃ member ⊃ reader). */
  async expand(ex: Executor, roleIds: string[]): Promise<RoleRef[]> {
    if (roleIds.length === 0) return [];
    const { rows } = (await ex.raw(
      `WITH RECURSIVE r(id) AS (
         SELECT unnest(?::text[])
         UNION
         SELECT i.implied_role_id FROM implied_roles i JOIN r ON i.prior_role_id = r.id)
       SELECT roles.id, roles.name FROM roles JOIN r ON roles.id = r.id ORDER BY roles.name`,
      [roleIds],
    )) as { rows: RoleRef[] };
    return rows;
  },
};
