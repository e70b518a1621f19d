import { BRICK_STATES, type BrickRecord, type BrickState, type BrickStore } from '../../backends/types.ts';
import type { Db, Executor } from '../db.ts';

export interface BrickRow {
  backend: string;
  address: string;
  brick_id: string | null;
  state: string;
  replaced_by: string | null;
  updated_at: Date;
}

const toRecord = (r: BrickRow): BrickRecord => ({
  address: r.address,
  brickId: r.brick_id,
  state: (BRICK_STATES as readonly string[]).includes(r.state) ? (r.state as BrickState) : 'active',
  replacedBy: r.replaced_by,
});

/** The brick registry of each backend (bricks added, replaced, drained). */
export const bricksRepo = {
  async list(ex: Executor, backend: string): Promise<BrickRecord[]> {
    const rows: BrickRow[] = await ex('backend_bricks').where({ backend }).orderBy('address');
    return rows.map(toRecord);
  },
  /** Inserts or updates one brick's record, in one statement. */
  async save(ex: Executor, backend: string, r: BrickRecord, now = new Date()): Promise<void> {
    const row = { brick_id: r.brickId, state: r.state, replaced_by: r.replacedBy, updated_at: now };
    await ex('backend_bricks')
      .insert({ backend, address: r.address, ...row })
      .onConflict(['backend', 'address'])
      .merge(row);
  },
};

/** The BrickStore a backend driver is given (backends never see knex: this closes over it). */
export function createBrickStore(db: Db): BrickStore {
  return {
    list: (backend) => bricksRepo.list(db, backend),
    save: (backend, record) => bricksRepo.save(db, backend, record),
  };
}
