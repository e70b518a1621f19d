import type { Executor } from '../db.ts';
import { tableRepo } from './table.ts';

export interface ApplicationCredentialRow {
  id: string;
  name: string;
  user_id: string;
  project_id: string;
  secret_hash: string;
  description: string;
  expires_at: Date | null;
  unrestricted: boolean;
  role_ids: string[];
  created_at: Date;
}

export const applicationCredentialsRepo = {
  ...tableRepo<ApplicationCredentialRow>(
    'application_credentials',
    'An application credential with this name for this user',
  ),
  async getByName(ex: Executor, userId: string, name: string): Promise<ApplicationCredentialRow | undefined> {
    return ex('application_credentials').where({ user_id: userId, name }).first();
  },
};
