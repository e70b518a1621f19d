import type { Executor } from '../db.ts';
import { tableRepo } from './table.ts';

export interface UserRow {
  id: string;
  name: string;
  domain_id: string;
  password_hash: string | null;
  enabled: boolean;
  default_project_id: string | null;
  options: Record<string, unknown>;
  extra: Record<string, unknown>;
  password_changed_at: Date | null;
  created_at: Date;
}

export const usersRepo = {
  ...tableRepo<UserRow>('users', 'A user with this name in this domain'),
  async getByName(ex: Executor, domainId: string, name: string): Promise<UserRow | undefined> {
    return ex('users').where({ domain_id: domainId, name }).first();
  },
};
