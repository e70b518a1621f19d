import type { Backend, StorageComponent } from '../backends/types.ts';
import { viaBackend } from './backend-calls.ts';
import type { Db } from './db.ts';
import { NotFound, NotSupported } from './errors.ts';
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
  backends: {
    name: string;
    availabilityZone: string;
    components?: () => Promise<StorageComponent[]>;
    setComponentDisabled?: Backend['setComponentDisabled'];
  }[];
}) {
  const zones = [...new Set(backends.map((b) => b.availabilityZone))];
  const own = [
    { binary: 'manila-scheduler', host, zone: zones[0] ?? 'nova' },
    ...backends.map((b) => ({ binary: 'manila-share', host: `${host}@${b.name}`, zone: b.availabilityZone })),
  ];
  /**
   * The processes backends are made of (a replicated backend's bricks and share servers), asked
   * now: their state is what the backend sees at this moment, not a heartbeat. Their ids follow
   * the registered services' and are stable while the backends' layout is.
   */
  async function storageRows(now: number): Promise<Service[]> {
    const out: Service[] = [];
    for (const b of backends) {
      if (!b.components) continue;
      for (const c of await b.components())
        out.push({
          id: STORAGE_ID_BASE + out.length,
          binary: c.binary,
          host: `${host}@${b.name}:${c.host}`,
          zone: c.zone || b.availabilityZone,
          status: c.disabled ? 'disabled' : 'enabled',
          state: c.up ? 'up' : 'down',
          created_at: new Date(now),
          updated_at: new Date(now),
        });
    }
    return out;
  }

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
        status?: string | undefined;
        state?: string | undefined;
      },
    ): Promise<Service[]> {
      requireAdmin(auth, 'service:index');
      const { state, ...rest } = filter;
      const now = Date.now();
      const rows: Service[] = (await repos.osServices.list(db, rest)).map((r) => ({
        ...r,
        state: (now - r.updated_at.getTime() <= SERVICE_DOWN_SECONDS * 1000 ? 'up' : 'down') as 'up' | 'down',
      }));
      rows.push(...(await storageRows(now)).filter((r) => matches(r, rest)));
      return state ? rows.filter((r) => r.state === state) : rows;
    },

    /**
     * Manila's service enable/disable, for the processes a backend is made of (`host@backend:…`
     * rows): a disabled abaca-share-server gets no new shares and hands its shares to the others.
     */
    async setDisabled(
      auth: Auth,
      service: { host: string; binary: string },
      disabled: boolean,
      reason: string | null,
    ): Promise<void> {
      requireAdmin(auth, 'service:update');
      for (const b of backends) {
        const prefix = `${host}@${b.name}:`;
        if (!service.host.startsWith(prefix) || !b.setComponentDisabled) continue;
        const component = { binary: service.binary, host: service.host.slice(prefix.length) };
        await viaBackend(() => b.setComponentDisabled!(component, disabled, reason));
        return;
      }
      if (own.some((s) => s.host === service.host && s.binary === service.binary))
        throw new NotSupported(
          `${service.binary} on ${service.host} cannot be disabled: only the share servers (abaca-share-server) of a replicated backend with several can.`,
        );
      throw new NotFound(`Unknown service: ${service.binary} on ${service.host}.`);
    },
  };
}

/** Ids of the rows for backends' processes start here, far above registered services' ids. */
const STORAGE_ID_BASE = 100_000;

function matches(r: Service, f: Partial<Record<'binary' | 'host' | 'zone' | 'status', string>>): boolean {
  return Object.entries(f).every(([k, v]) => v === undefined || r[k as keyof ServiceRow] === v);
}

export type OsServices = ReturnType<typeof createOsServices>;
