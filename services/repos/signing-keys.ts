import type { Executor } from '../db.ts';

export interface SigningKeyRow {
  id: string;
  private_key: string;
  public_key: string;
  created_at: Date;
  retired_at: Date | null;
}

export const signingKeysRepo = {
  async listAll(ex: Executor): Promise<SigningKeyRow[]> {
    return ex('signing_keys').orderBy('created_at', 'desc');
  },
  async insert(ex: Executor, row: Omit<SigningKeyRow, 'created_at' | 'retired_at'>): Promise<void> {
    await ex('signing_keys').insert(row);
  },
  async retireAllBut(ex: Executor, keepId: string, at: Date): Promise<void> {
    await ex('signing_keys').whereNot({ id: keepId }).whereNull('retired_at').update({ retired_at: at });
  },
  async purgeRetiredBefore(ex: Executor, before: Date): Promise<number> {
    return (await ex('signing_keys').where('retired_at', '<', before).delete().returning('id')).length;
  },
};
