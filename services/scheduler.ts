import type { Backend, BackendStats, ShareProtocol } from '../backends/types.ts';
import { formatHost } from './backend-calls.ts';
import { boolSpec } from './extra-specs.ts';

export interface ConfiguredBackend {
  backend: Backend;
  availabilityZone: string;
}

export interface Placement {
  backend: Backend;
  pool: string;
  availabilityZone: string;
  /** Manila's host string: `<server>@<backend>#<pool>`. */
  host: string;
}

export interface PlacementRequest {
  size: number;
  shareProto: ShareProtocol;
  specs: Record<string, string>;
  availabilityZone: string | null;
}

/** Which capability each boolean extra spec asks for. */
const CAPABILITY_SPECS = {
  snapshot_support: 'snapshotSupport',
  create_share_from_snapshot_support: 'createShareFromSnapshotSupport',
  revert_to_snapshot_support: 'revertToSnapshotSupport',
  mount_snapshot_support: 'mountSnapshotSupport',
} as const;

/**
 * Why a backend cannot serve a share type's specs (Manila's capabilities filter: the named
 * share_backend_name, the boolean capabilities asked for), or null when it can.
 */
export function unmetSpecs(
  backendName: string,
  capabilities: BackendStats['capabilities'],
  specs: Record<string, string>,
): string | null {
  const wantedBackend = specs.share_backend_name ?? specs['capabilities:share_backend_name'];
  if (wantedBackend !== undefined && wantedBackend !== backendName)
    return `not share_backend_name ${wantedBackend}`;
  const missing = Object.entries(CAPABILITY_SPECS).filter(
    ([spec, cap]) => boolSpec(specs, spec) === true && !capabilities[cap],
  );
  return missing.length ? `lacks ${missing.map(([s]) => s).join(', ')}` : null;
}

/**
 * Manila's filter scheduler, small: keep the backends whose availability zone, protocols and
 * capabilities satisfy the share type, then the pools with room for the share; pick the pool with
 * the most free capacity. Returns null with the reasons when nothing fits.
 */
export async function schedule(
  backends: ConfiguredBackend[],
  req: PlacementRequest,
  serverHost: string,
): Promise<{ placement: Placement | null; reasons: string[] }> {
  const reasons: string[] = [];
  if (boolSpec(req.specs, 'driver_handles_share_servers') === true) {
    return {
      placement: null,
      reasons: ['share types with driver_handles_share_servers=True are not supported'],
    };
  }
  let best: Placement | null = null;
  let bestFree = -1;
  for (const { backend, availabilityZone } of backends) {
    // A type may name its backend (Manila's capabilities filter on share_backend_name).
    const wantedBackend = req.specs.share_backend_name ?? req.specs['capabilities:share_backend_name'];
    if (wantedBackend !== undefined && wantedBackend !== backend.name) {
      reasons.push(`${backend.name}: not share_backend_name ${wantedBackend}`);
      continue;
    }
    if (req.availabilityZone && req.availabilityZone !== availabilityZone) {
      reasons.push(`${backend.name}: in availability zone ${availabilityZone}`);
      continue;
    }
    let stats: BackendStats;
    try {
      stats = await backend.stats();
    } catch (err) {
      reasons.push(`${backend.name}: unavailable (${(err as Error).message})`);
      continue;
    }
    if (!stats.capabilities.protocols.includes(req.shareProto)) {
      reasons.push(`${backend.name}: no ${req.shareProto}`);
      continue;
    }
    const missing = Object.entries(CAPABILITY_SPECS).filter(
      ([spec, cap]) => boolSpec(req.specs, spec) === true && !stats.capabilities[cap],
    );
    if (missing.length) {
      reasons.push(`${backend.name}: lacks ${missing.map(([s]) => s).join(', ')}`);
      continue;
    }
    for (const pool of stats.pools) {
      if (pool.freeCapacityGiB < req.size) {
        reasons.push(`${backend.name}#${pool.name}: ${pool.freeCapacityGiB} GiB free`);
        continue;
      }
      if (pool.freeCapacityGiB > bestFree) {
        bestFree = pool.freeCapacityGiB;
        best = {
          backend,
          pool: pool.name,
          availabilityZone,
          host: formatHost({ server: serverHost, backend: backend.name, pool: pool.name }),
        };
      }
    }
  }
  return { placement: best, reasons };
}
