import type { Executor } from '../db.ts';
import { tableRepo } from './table.ts';

export interface DomainRow {
  id: string;
  name: string;
  description: string;
  enabled: boolean;
  extra: Record<string, unknown>;
  created_at: Date;
}

export const domainsRepo = {
  ...tableRepo<DomainRow>('domains', 'A domain with this name'),
  async getByName(ex: Executor, name: string): Promise<DomainRow | undefined> {
    return ex('domains').where({ name }).first();
  },
};
