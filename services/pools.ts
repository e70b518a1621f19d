import type { BackendStats, PoolStats } from '../backends/types.ts';
import { formatHost } from './backend-calls.ts';
import { InvalidInput, ServiceUnavailable } from './errors.ts';
import { type Auth, requireAdmin } from './policy.ts';
import { type Capabilities, type ConfiguredBackend, poolCapabilities, unmetSpecs } from './scheduler.ts';

/** One pool as Manila's scheduler-stats show it: `host@backend#pool` and, in detail, its capabilities. */
export interface PoolView {
  name: string;
  host: string;
  backend: string;
  pool: string;
  availabilityZone: string;
  stats: BackendStats;
  poolStats: PoolStats;
  /** What the scheduler matches share types against (Manila's pool capabilities). */
  capabilities: Capabilities;
}

export interface PoolFilter {
  /** Manila treats these as regular expressions matched against the whole value. */
  pool_name?: string | undefined;
  host?: string | undefined;
  backend?: string | undefined;
  /** A share type's extra specs: only pools whose backend can serve the type. */
  shareTypeSpecs?: Record<string, string> | undefined;
}

function pattern(value: string | undefined, key: string): RegExp | undefined {
  if (value === undefined) return undefined;
  try {
    return new RegExp(`^(?:${value})$`);
  } catch {
    throw new InvalidInput(`${key} must be a regular expression, not ${JSON.stringify(value)}.`);
  }
}

/**
 * Manila's scheduler-stats/pools: the pools every configured backend reports now (stats() is what
 * the scheduler reads too), for admins.
 */
export function createPoolService(deps: { backends: ConfiguredBackend[]; serverHost: string }) {
  return {
    async list(auth: Auth, filter: PoolFilter): Promise<PoolView[]> {
      requireAdmin(auth, 'scheduler_stats:pools:index');
      const want = {
        pool: pattern(filter.pool_name, 'pool_name'),
        host: pattern(filter.host, 'host'),
        backend: pattern(filter.backend, 'backend'),
      };
      const out: PoolView[] = [];
      for (const { backend, availabilityZone } of deps.backends) {
        let stats: BackendStats;
        try {
          stats = await backend.stats();
        } catch (err) {
          // One backend down must not hide the others: its pools are missing, and the log says why.
          if (deps.backends.length === 1)
            throw new ServiceUnavailable(
              `Backend ${backend.name} did not report its pools: ${(err as Error).message}`,
            );
          continue;
        }
        for (const p of stats.pools) {
          const view: PoolView = {
            name: formatHost({ server: deps.serverHost, backend: backend.name, pool: p.name }),
            host: deps.serverHost,
            backend: backend.name,
            pool: p.name,
            availabilityZone,
            stats,
            poolStats: p,
            capabilities: poolCapabilities(backend.name, stats, p, availabilityZone),
          };
          if (want.pool && !want.pool.test(view.pool)) continue;
          if (want.host && !want.host.test(view.host)) continue;
          if (want.backend && !want.backend.test(view.backend)) continue;
          if (filter.shareTypeSpecs && unmetSpecs(view.capabilities, filter.shareTypeSpecs)) continue;
          out.push(view);
        }
      }
      return out;
    },
  };
}

export type PoolService = ReturnType<typeof createPoolService>;
