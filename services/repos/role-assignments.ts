import type { Executor } from '../db.ts';
import { guarded } from './pg-errors.ts';

export type AssignmentType = 'UserProject' | 'UserDomain';

export interface RoleAssignmentRow {
  type: AssignmentType;
  actor_id: string;
  target_id: string;
  role_id: string;
}

export interface AssignmentFilter {
  type?: AssignmentType;
  actor_id?: string;
  target_id?: string;
  role_id?: string;
}

export const roleAssignmentsRepo = {
  async add(ex: Executor, row: RoleAssignmentRow): Promise<void> {
    await guarded('This role assignment', () =>
      ex('role_assignments').insert(row).onConflict(['type', 'actor_id', 'target_id', 'role_id']).ignore(),
    );
  },
  async remove(ex: Executor, row: RoleAssignmentRow): Promise<boolean> {
    return (await ex('role_assignments').where(row).delete().returning('role_id')).length > 0;
  },
  async exists(ex: Executor, row: RoleAssignmentRow): Promise<boolean> {
    return (await ex('role_assignments').where(row).first()) !== undefined;
  },
  async list(ex: Executor, filter: AssignmentFilter): Promise<RoleAssignmentRow[]> {
    const where = Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== undefined));
    return ex('role_assignments').where(where).orderBy(['type', 'actor_id', 'target_id', 'role_id']);
  },
  async removeTarget(ex: Executor, targetId: string): Promise<void> {
    await ex('role_assignments').where({ target_id: targetId }).delete();
  },
};
