import type { Executor } from '../db.ts';

export interface RevocationEventRow {
  id: number;
  audit_id: string | null;
  user_id: string | null;
  project_id: string | null;
  issued_before: Date;
  expires_at: Date;
}

export const revocationEventsRepo = {
  async insert(ex: Executor, row: Omit<RevocationEventRow, 'id'>): Promise<void> {
    await ex('revocation_events').insert(row);
  },
  async listActive(ex: Executor, now: Date): Promise<RevocationEventRow[]> {
    return ex('revocation_events').where('expires_at', '>', now).orderBy('id');
  },
  async purgeExpired(ex: Executor, now: Date): Promise<void> {
    await ex('revocation_events').where('expires_at', '<=', now).delete();
  },
};
