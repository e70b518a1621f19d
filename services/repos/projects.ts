import type { Executor } from '../db.ts';
import { tableRepo } from './table.ts';

export interface ProjectRow {
  id: string;
  name: string;
  domain_id: string;
  description: string;
  enabled: boolean;
  tags: string[];
  options: Record<string, unknown>;
  extra: Record<string, unknown>;
  created_at: Date;
}

export const projectsRepo = {
  ...tableRepo<ProjectRow>('projects', 'A project with this name in this domain'),
  async getByName(ex: Executor, domainId: string, name: string): Promise<ProjectRow | undefined> {
    return ex('projects').where({ domain_id: domainId, name }).first();
  },
  /** Projects on which the user holds at least one role. */
  async listForUser(
    ex: Executor,
    userId: string,
    filter: { name?: string | undefined; domain_id?: string | undefined; enabled?: boolean | undefined } = {},
  ): Promise<ProjectRow[]> {
    const where = Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== undefined));
    return ex('projects')
      .where(where)
      .whereIn(
        'id',
        ex('role_assignments').select('target_id').where({ type: 'UserProject', actor_id: userId }),
      )
      .orderBy('name');
  },
};
