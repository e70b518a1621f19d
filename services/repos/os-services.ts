import type { Executor } from '../db.ts';

export interface ServiceRow {
  id: number;
  binary: string;
  host: string;
  zone: string;
  status: 'enabled' | 'disabled';
  created_at: Date;
  updated_at: Date;
}

export const osServicesRepo = {
  /** Registers (or refreshes) a service: the heartbeat is updated_at. */
  async heartbeat(ex: Executor, row: { binary: string; host: string; zone: string }): Promise<void> {
    await ex('services')
      .insert({ ...row, updated_at: ex.fn.now() })
      .onConflict(['binary', 'host'])
      .merge({ zone: row.zone, updated_at: ex.fn.now() });
  },
  async list(
    ex: Executor,
    filter: {
      binary?: string | undefined;
      host?: string | undefined;
      zone?: string | undefined;
      status?: string | undefined;
    },
  ): Promise<ServiceRow[]> {
    return ex('services')
      .where(Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== undefined)))
      .orderBy('id');
  },
};
