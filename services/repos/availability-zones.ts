import type { Executor } from '../db.ts';

export interface AvailabilityZoneRow {
  id: string;
  name: string;
  created_at: Date;
  updated_at: Date | null;
}

export const availabilityZonesRepo = {
  async ensure(ex: Executor, id: string, name: string): Promise<void> {
    await ex('availability_zones').insert({ id, name }).onConflict('name').ignore();
  },
  async list(ex: Executor): Promise<AvailabilityZoneRow[]> {
    return ex('availability_zones').orderBy('name');
  },
};
