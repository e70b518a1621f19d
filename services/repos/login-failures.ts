import type { Executor } from '../db.ts';

export interface LoginFailureRow {
  key: string;
  failures: number;
  locked_until: Date | null;
  updated_at: Date;
}

export const loginFailuresRepo = {
  async get(ex: Executor, keys: string[]): Promise<LoginFailureRow[]> {
    return ex('login_failures').whereIn('key', keys);
  },
  /** One more failure for `key`, in one statement (two API processes never lose a count). */
  async add(ex: Executor, key: string, now: Date): Promise<number> {
    const rows: Array<{ failures: number }> = await ex('login_failures')
      .insert({ key, failures: 1, locked_until: null, updated_at: now })
      .onConflict('key')
      .merge({ failures: ex.raw('login_failures.failures + 1'), updated_at: now })
      .returning('failures');
    return rows[0]!.failures;
  },
  async lock(ex: Executor, key: string, until: Date): Promise<void> {
    await ex('login_failures').where({ key }).update({ locked_until: until });
  },
  async clear(ex: Executor, keys: string[]): Promise<void> {
    await ex('login_failures').whereIn('key', keys).delete();
  },
  async purgeBefore(ex: Executor, before: Date): Promise<void> {
    await ex('login_failures').where('updated_at', '<', before).delete();
  },
};
