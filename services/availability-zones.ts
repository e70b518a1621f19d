import { randomUUID } from 'node:crypto';
import type { Db } from './db.ts';
import { type Auth, requireReader } from './policy.ts';
import { type AvailabilityZoneRow, availabilityZonesRepo } from './repos/availability-zones.ts';
import type { Repos } from './repos/index.ts';

/** Records the zones the configured backends are in, so each keeps a stable id across restarts. */
export async function ensureAvailabilityZones(db: Db, names: string[]): Promise<void> {
  for (const name of new Set(names)) await availabilityZonesRepo.ensure(db, randomUUID(), name);
}

export function createAvailabilityZoneService(deps: {
  db: Db;
  repos: Pick<Repos, 'availabilityZones'>;
  names: () => string[];
}) {
  const { db, repos, names } = deps;
  return {
    /** The zones that have a backend on this server. */
    async list(auth: Auth): Promise<AvailabilityZoneRow[]> {
      requireReader(auth, 'availability_zone:index');
      return (await repos.availabilityZones.list(db)).filter((r) => names().includes(r.name));
    },
  };
}
