/**
 * Builds a backend from its configuration entry, validating the entry (and the driver's options) with
 * zod so a typo in the configuration fails at start-up with a message naming the field.
 */
import { z } from 'zod';
import { createLocalBackend } from './local.ts';
import { createMemoryBackend, MEMORY_BACKEND_OPS, type MemoryBackendOp } from './memory.ts';
import type { ShareOwnerStore } from './replicated/cluster.ts';
import { createReplicatedBackend, REPLICA_COUNT_SPEC, replicaCountOf } from './replicated/driver.ts';
import { clusterTlsFromEnv } from './replicated/protocol/tls.ts';
import { ACCESS_TYPES, type Backend, type BrickStore, SHARE_PROTOCOLS } from './types.ts';

export const BACKEND_DRIVERS = ['memory', 'local', 'replicated'] as const;
export type BackendDriver = (typeof BACKEND_DRIVERS)[number];

export class BackendConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackendConfigError';
  }
}

/** Manila's default availability zone. */
export const DEFAULT_AVAILABILITY_ZONE = 'nova';

const BackendSpecSchema = z.object({
  // It becomes the `backend` in a share's host `host@backend#pool`.
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'letters, digits, "_", "-", "." (at most 64, no "@" or "#")'),
  driver: z.string(),
  availabilityZone: z.string().min(1).max(255).default(DEFAULT_AVAILABILITY_ZONE),
  options: z.record(z.string(), z.unknown()).default({}),
});

export type BackendSpec = z.infer<typeof BackendSpecSchema> & { driver: BackendDriver };
export type BackendSpecInput = z.input<typeof BackendSpecSchema>;

const MemoryOptions = z.strictObject({
  pools: z
    .array(z.strictObject({ name: z.string().min(1), totalCapacityGiB: z.number().nonnegative() }))
    .min(1)
    .optional(),
  capabilities: z
    .strictObject({
      snapshotSupport: z.boolean(),
      createShareFromSnapshotSupport: z.boolean(),
      revertToSnapshotSupport: z.boolean(),
      mountSnapshotSupport: z.boolean(),
      protocols: z.array(z.enum(SHARE_PROTOCOLS)),
      accessTypes: z.array(z.enum(ACCESS_TYPES)),
    })
    .partial()
    .optional(),
  exportHost: z.string().min(1).optional(),
  adminExportLocation: z.boolean().optional(),
  /** Milliseconds each call of an operation waits (slow storage, for crash and timeout tests). */
  delays: z.partialRecord(z.enum(MEMORY_BACKEND_OPS), z.number().int().min(0).max(600_000)).optional(),
});

const LocalOptions = z.strictObject({
  rootDir: z.string().min(1),
  capacityGiB: z.number().positive(),
  reflink: z.enum(['auto', 'always', 'never']).optional(),
  protocols: z.array(z.enum(SHARE_PROTOCOLS)).min(1).optional(),
  /**
   * Milliseconds each call of an operation waits (slow storage, for crash and takeover tests):
   * before it does anything, or after its work is done (a worker killed then has changed the
   * storage without recording it).
   */
  delays: z.partialRecord(z.enum(MEMORY_BACKEND_OPS), z.number().int().min(0).max(600_000)).optional(),
  delayWhen: z.enum(['before', 'after']).optional(),
});

const ReplicatedOptions = z.strictObject({
  shareServers: z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'host:port')).min(1),
  exportAddresses: z
    .array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'host:port'))
    .min(1)
    .optional(),
  adminToken: z.string().min(16, 'at least 16 characters'),
  protocols: z.array(z.enum(SHARE_PROTOCOLS)).min(1).optional(),
  timeoutMs: z.number().int().min(1000).max(3_600_000).optional(),
  /** Cluster monitor (replicated/cluster.ts): probe interval and failover time, ms. */
  probeMs: z.number().int().min(50).max(60_000).optional(),
  failoverMs: z.number().int().min(200).max(600_000).optional(),
});

/**
 * What is wrong with an extra spec a driver reads itself (null when nothing is), so that a share
 * type asking for something no backend can do is refused when the type is written, not when a
 * share of it fails.
 */
export function driverSpecError(key: string, value: string): string | null {
  if (key === REPLICA_COUNT_SPEC) {
    const n = replicaCountOf({ [key]: value });
    return typeof n === 'string' ? n : null;
  }
  return null;
}

function format(prefix: string, error: z.ZodError): string {
  const issues = error.issues.map((i) => {
    const path = [prefix, ...i.path.map(String)].filter(Boolean).join('.');
    return path ? `${path}: ${i.message}` : i.message;
  });
  return issues.join('; ');
}

/** Validates a backend configuration entry; throws BackendConfigError naming every bad field. */
export function parseBackendSpec(input: unknown): BackendSpec {
  const parsed = BackendSpecSchema.safeParse(input);
  if (!parsed.success)
    throw new BackendConfigError(`Invalid backend configuration: ${format('', parsed.error)}`);
  const spec = parsed.data;
  if (!(BACKEND_DRIVERS as readonly string[]).includes(spec.driver))
    throw new BackendConfigError(
      `Backend ${spec.name}: unknown driver ${JSON.stringify(spec.driver)}; known drivers: ${BACKEND_DRIVERS.join(', ')}.`,
    );
  return spec as BackendSpec;
}

/** The backend with some calls slowed down, before or after they do their work. */
function withDelays<B extends Backend>(
  backend: B,
  delays: Partial<Record<MemoryBackendOp, number>>,
  when: 'before' | 'after',
): B {
  const ops = Object.entries(delays) as [MemoryBackendOp, number][];
  if (ops.length === 0) return backend;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const slowed = Object.create(backend) as B;
  for (const [op, ms] of ops) {
    const call = (backend[op] as (...args: unknown[]) => Promise<unknown>).bind(backend);
    Object.defineProperty(slowed, op, {
      value: async (...args: unknown[]) => {
        if (when === 'before') await sleep(ms);
        const result = await call(...args);
        if (when === 'after') await sleep(ms);
        return result;
      },
    });
  }
  return slowed;
}

/** Validates the entry and builds the backend (its storage is touched on first use, not here). */
/** What the API gives a backend beyond its spec: stores in its database, and its log. */
export interface BackendContext {
  /** The owner rows of a replicated backend's shares (services/repos/share-owners.ts). */
  owners?: (backend: string) => ShareOwnerStore;
  /** The bricks added, replaced and drained (services/repos/bricks.ts). */
  bricks?: BrickStore;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export async function createBackend(input: unknown, ctx: BackendContext = {}): Promise<Backend> {
  const spec = parseBackendSpec(input);
  const parseOptions = <T>(schema: z.ZodType<T>): T => {
    const r = schema.safeParse(spec.options);
    if (!r.success)
      throw new BackendConfigError(`Backend ${spec.name} (${spec.driver}): ${format('options', r.error)}`);
    return r.data;
  };
  switch (spec.driver) {
    case 'memory': {
      const { delays, ...options } = parseOptions(MemoryOptions);
      const backend = createMemoryBackend({ name: spec.name, ...options });
      for (const [op, delayMs] of Object.entries(delays ?? {}))
        backend.inject({ op: op as MemoryBackendOp, delayMs: delayMs as number });
      return backend;
    }
    case 'local': {
      const { delays, delayWhen, ...options } = parseOptions(LocalOptions);
      return withDelays(
        createLocalBackend({ name: spec.name, ...options }),
        delays ?? {},
        delayWhen ?? 'before',
      );
    }
    case 'replicated':
      // Cluster TLS comes from the same environment as the daemons' (admin calls need the certificate).
      return createReplicatedBackend({
        name: spec.name,
        ...parseOptions(ReplicatedOptions),
        tls: clusterTlsFromEnv(process.env, true),
        owners: ctx.owners?.(spec.name),
        log: ctx.log,
        ...(ctx.bricks ? { brickStore: ctx.bricks } : {}),
      });
  }
}
