import type { Backend, BackendStats, PoolStats, ShareProtocol } from '../backends/types.ts';
import { formatHost } from './backend-calls.ts';
import { AZ_SPEC, BOOLEAN_SPECS, boolSpec, typeZones } from './extra-specs.ts';

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
  /** Ignore the type's `availability_zones` spec (a create below microversion 2.48, as Manila). */
  anyZoneOfType?: boolean;
}

/** A pool's capabilities as Manila's host manager reports them: what extra specs are matched against. */
export type Capabilities = Record<string, string | number | boolean | null>;

/**
 * Manila's capability dictionary for one pool (manila/scheduler/host_manager.py): the backend's
 * capabilities with the pool's capacity. scheduler-stats/pools/detail shows the same dictionary.
 */
export function poolCapabilities(
  backendName: string,
  stats: BackendStats,
  pool: PoolStats,
  availabilityZone: string,
): Capabilities {
  const c = stats.capabilities;
  return {
    pool_name: pool.name,
    total_capacity_gb: pool.totalCapacityGiB,
    free_capacity_gb: pool.freeCapacityGiB,
    allocated_capacity_gb: pool.allocatedCapacityGiB,
    reserved_percentage: 0,
    reserved_snapshot_percentage: 0,
    qos: false,
    share_backend_name: backendName,
    storage_protocol: c.protocols.join('_'),
    driver_handles_share_servers: c.driverHandlesShareServers,
    snapshot_support: c.snapshotSupport,
    create_share_from_snapshot_support: c.createShareFromSnapshotSupport,
    revert_to_snapshot_support: c.revertToSnapshotSupport,
    mount_snapshot_support: c.mountSnapshotSupport,
    driver_name: stats.driver,
    driver_version: stats.driverVersion,
    vendor_name: stats.vendorName,
    availability_zone: availabilityZone,
    dedupe: false,
    compression: false,
    thin_provisioning: false,
    replication_type: null,
  };
}

/** oslo's bool_from_string, lenient: true words are true, anything else false. */
const truthy = (v: unknown) =>
  typeof v === 'boolean' ? v : ['1', 't', 'true', 'on', 'y', 'yes'].includes(String(v).trim().toLowerCase());

/** Python's float(): numbers, numeric strings, inf and nan; anything else is a ValueError (null). */
function pyFloat(v: unknown): number | null {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') return null;
  const s = v.trim().toLowerCase();
  if (/^[+-]?(inf|infinity)$/.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
  if (/^[+-]?nan$/.test(s)) return Number.NaN;
  return s !== '' && /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/.test(s) ? Number(s) : null;
}

const numeric =
  (cmp: (a: number, b: number) => boolean) =>
  (a: unknown, b: string): boolean => {
    const x = pyFloat(a);
    const y = pyFloat(b);
    return x !== null && y !== null && cmp(x, y);
  };
const textual =
  (cmp: (a: string, b: string) => boolean) =>
  (a: unknown, b: string): boolean =>
    typeof a === 'string' && cmp(a, b);

/** Manila's extra spec operators (manila/scheduler/filters/extra_specs_ops.py). */
const OPERATORS: Record<string, (value: unknown, wanted: string) => boolean> = {
  '=': numeric((a, b) => a >= b),
  '<in>': (a, b) => typeof a === 'string' && a.includes(b),
  '<is>': (a, b) => truthy(a) === truthy(b),
  '==': numeric((a, b) => a === b),
  '!=': numeric((a, b) => a !== b),
  '>=': numeric((a, b) => a >= b),
  '<=': numeric((a, b) => a <= b),
  's==': textual((a, b) => a === b),
  's!=': textual((a, b) => a !== b),
  's<': textual((a, b) => a < b),
  's<=': textual((a, b) => a <= b),
  's>': textual((a, b) => a > b),
  's>=': textual((a, b) => a >= b),
};

/**
 * Whether a capability value satisfies an extra spec's value, as Manila's extra_specs_ops.match:
 * `<op> operand` with the operators above, `<or> a <or> b`, or else plain equality (a boolean
 * capability against a boolean word).
 */
export function matchSpec(value: unknown, req: string): boolean {
  const words = req.split(/\s+/).filter(Boolean);
  const op = words.shift();
  const method = op === undefined ? undefined : OPERATORS[op];
  if (op !== '<or>' && !method) {
    if (typeof value === 'boolean') {
      const s = req.trim().toLowerCase();
      if (['1', 't', 'true', 'on', 'y', 'yes'].includes(s)) return value;
      if (['0', 'f', 'false', 'off', 'n', 'no'].includes(s)) return !value;
      return false;
    }
    return value === req;
  }
  if (value === null || value === undefined) return false;
  if (op === '<or>') return words.filter((w) => w !== '<or>').some((w) => w === value);
  return words[0] !== undefined && (method as (v: unknown, w: string) => boolean)(value, words[0]);
}

/**
 * Why a pool's capabilities do not satisfy a share type's extra specs, or null when they do:
 * Manila's capabilities filter. Every spec that is not scoped (`key`) or is scoped `capabilities:`
 * must be a capability the pool reports, matching the spec's value; specs of any other scope
 * (`provisioning:`, `abaca:`, vendor scopes) are not capabilities. The boolean specs are compared
 * as booleans (`<is>`), as Manila's scheduler rewrites them. `availability_zones` is the zone
 * filter's, not a capability.
 */
export function unmetSpecs(capabilities: Capabilities, specs: Record<string, string>): string | null {
  const unmet: string[] = [];
  for (const [key, raw] of Object.entries(specs)) {
    const scope = key.split(':');
    if (scope.length > 1 && scope[0] !== 'capabilities') continue;
    if (scope[0] === 'capabilities') scope.shift();
    if (key === AZ_SPEC) continue;
    const req =
      (BOOLEAN_SPECS as readonly string[]).includes(key) && !raw.startsWith('<is>') ? `<is> ${raw}` : raw;
    let cap: unknown = capabilities;
    for (const name of scope)
      cap = cap !== null && typeof cap === 'object' ? (cap as Record<string, unknown>)[name] : undefined;
    if (cap === undefined || cap === null) {
      unmet.push(`does not report ${scope.join(':')} (${key}=${raw})`);
      continue;
    }
    const values = Array.isArray(cap) ? cap : [cap];
    if (!values.some((v) => matchSpec(v, req)))
      unmet.push(`${scope.join(':')} is ${String(cap)}, not ${raw}`);
  }
  return unmet.length ? unmet.join(', ') : null;
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
    if (wantedBackend !== undefined && !matchSpec(backend.name, wantedBackend)) {
      reasons.push(`${backend.name}: not share_backend_name ${wantedBackend}`);
      continue;
    }
    if (req.availabilityZone && req.availabilityZone !== availabilityZone) {
      reasons.push(`${backend.name}: in availability zone ${availabilityZone}`);
      continue;
    }
    const zones = req.anyZoneOfType ? undefined : typeZones(req.specs[AZ_SPEC] ?? '');
    if (zones?.length && !zones.includes(availabilityZone)) {
      reasons.push(
        `${backend.name}: in availability zone ${availabilityZone}, not the type's ${zones.join(', ')}`,
      );
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
    for (const pool of stats.pools) {
      const unmet = unmetSpecs(poolCapabilities(backend.name, stats, pool, availabilityZone), req.specs);
      if (unmet) {
        reasons.push(`${backend.name}#${pool.name}: ${unmet}`);
        continue;
      }
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

export interface GroupPlacementRequest {
  /** The extra specs of each share type the group may hold: one pool must satisfy them all. */
  typeSpecs: Record<string, string>[];
  groupSpecs: Record<string, string>;
  availabilityZone: string | null;
}

/**
 * Manila's share group scheduling, small: a pool qualifies when it satisfies the extra specs of
 * every share type of the group and the group type's group specs. Group specs are matched against
 * the pool's capabilities plus `consistent_snapshot_support` (Manila's
 * sg_consistent_snapshot_support), which abaca's backends do not offer (null): a group type asking
 * for consistent group snapshots finds no pool. The pool with the most free capacity wins.
 */
export async function scheduleGroup(
  backends: ConfiguredBackend[],
  req: GroupPlacementRequest,
  serverHost: string,
): Promise<{ placement: Placement | null; reasons: string[] }> {
  const reasons: string[] = [];
  let best: Placement | null = null;
  let bestFree = -1;
  for (const { backend, availabilityZone } of backends) {
    if (req.availabilityZone && req.availabilityZone !== availabilityZone) {
      reasons.push(`${backend.name}: in availability zone ${availabilityZone}`);
      continue;
    }
    // Every share type's availability_zones spec must allow the backend's zone.
    const outside = req.typeSpecs
      .map((specs) => typeZones(specs[AZ_SPEC] ?? ''))
      .find((zones) => zones.length && !zones.includes(availabilityZone));
    if (outside) {
      reasons.push(
        `${backend.name}: in availability zone ${availabilityZone}, not a share type's ${outside.join(', ')}`,
      );
      continue;
    }
    let stats: BackendStats;
    try {
      stats = await backend.stats();
    } catch (err) {
      reasons.push(`${backend.name}: unavailable (${(err as Error).message})`);
      continue;
    }
    for (const pool of stats.pools) {
      const caps = poolCapabilities(backend.name, stats, pool, availabilityZone);
      const unmet = [
        ...req.typeSpecs.map((specs) => unmetSpecs(caps, specs)),
        unmetSpecs({ ...caps, consistent_snapshot_support: null }, req.groupSpecs),
      ].filter((u): u is string => u !== null);
      if (unmet.length) {
        reasons.push(`${backend.name}#${pool.name}: ${unmet.join(', ')}`);
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
