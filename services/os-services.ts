import type { Db } from './db.ts';
import { type Auth, requireAdmin } from './policy.ts';
import type { Repos } from './repos/index.ts';
import type { ServiceRow } from './repos/os-services.ts';

/** A service is down when it has not sent a heartbeat for this long (Manila's service_down_time). */
export const SERVICE_DOWN_SECONDS = 60;
export const HEARTBEAT_SECONDS = 10;

export interface Service extends ServiceRow {
  state: 'up' | 'down';
}

/**
 * Manila's services: each server registers itself as the scheduler and API worker, and each of its
 * backends as a share service (`host@backend`), then heartbeats; `state` comes from the heartbeat.
 */
export function createOsServices({
  db,
  repos,
  host,
  backends,
}: {
  db: Db;
  repos: Pick<Repos, 'osServices'>;
  host: string;
  backends: { name: string; availabilityZone: string }[];
}) {
  const zones = [...new Set(backends.map((b) => b.availabilityZone))];
  const own = [
    { binary: 'manila-scheduler', host, zone: zones[0] ?? 'nova' },
    ...backends.map((b) => ({ binary: 'manila-share', host: `${host}@${b.name}`, zone: b.availabilityZone })),
  ];
  return {
    async heartbeat(): Promise<void> {
      for (const s of own) await repos.osServices.heartbeat(db, s);
    },
    async list(
      auth: Auth,
      filter: {
        binary?: string | undefined;
        host?: string | undefined;
        zone?: string | undefined;
        status?: 'enabled' | 'disabled' | undefined;
        state?: 'up' | 'down' | undefined;
      },
    ): Promise<Service[]> {
      requireAdmin(auth, 'service:index');
      const { state, ...rest } = filter;
      const now = Date.now();
      const rows = (await repos.osServices.list(db, rest)).map((r) => ({
        ...r,
        state: (now - r.updated_at.getTime() <= SERVICE_DOWN_SECONDS * 1000 ? 'up' : 'down') as 'up' | 'down',
      }));
      return state ? rows.filter((r) => r.state === state) : rows;
    },
  };
}

export type OsServices = ReturnType<typeof createOsServices>;
