import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/** Everything the server reads from its environment, validated once at start-up. */
export interface Config {
  listenHost: string;
  listenPort: number;
  publicUrl: string;
  /** True when ABACA_PUBLIC_URL was given; otherwise publicUrl follows the bound address. */
  publicUrlExplicit: boolean;
  dataDir: string;
  databaseUrl: string | null;
  adminPassword: string | null;
  adminToken: string | null;
  region: string;
  tokenLifetimeSeconds: number;
  bodyLimitBytes: number;
  logLevel: string;
  revocationCacheSeconds: number;
  /** How long a worker's claim on a task lasts without renewal (a dead worker's task waits this long). */
  taskLeaseSeconds: number;
  /** Tasks the worker runs at once (different resources; one resource's tasks stay in order). */
  workerConcurrency: number;
  /**
   * Storage backends (specs as backends/drivers.ts reads them). Empty when ABACA_BACKENDS is not
   * set: the server then runs the replicated storage in solo mode and uses that (`solo`).
   */
  backends: unknown[];
  /** No ABACA_BACKENDS: run three bricks and a share server under the data dir (backends/replicated/solo.ts). */
  solo: { shareServerPort?: number } | null;
  /** Processes serving the API on the one listening address (Manila's osapi_share_workers). */
  apiWorkers: number;
  /**
   * HTTPS for the API (ABACA_TLS_CERT / ABACA_TLS_KEY, PEM files); `ca` (ABACA_TLS_CA) is the CA
   * clients should trust, written to the openrc as OS_CACERT. Null: plain HTTP.
   */
  tls: { cert: string; key: string; ca: string | null } | null;
  /** The share recycle bin (soft delete, 2.69): how long a share stays, how often expired ones are purged. */
  recycleBin: { retentionSeconds: number; purgeIntervalSeconds: number };
  /** Failed-login throttling (services/identity/login-throttle.ts). */
  login: {
    maxFailures: number;
    maxFailuresPerAddress: number;
    lockoutSeconds: number;
    lockoutMaxSeconds: number;
  };
}

const Env = z.object({
  ABACA_LISTEN: z
    .string()
    .regex(
      /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/,
      'ABACA_LISTEN must be host:port, for example 127.0.0.1:8786',
    )
    .default('127.0.0.1:8786'),
  ABACA_PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  ABACA_DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'DATABASE_URL must start with postgres:// or postgresql://')
    .optional(),
  ABACA_ADMIN_PASSWORD: z.string().min(8, 'ABACA_ADMIN_PASSWORD must be at least 8 characters').optional(),
  ABACA_ADMIN_TOKEN: z.string().min(16, 'ABACA_ADMIN_TOKEN must be at least 16 characters').optional(),
  ABACA_REGION: z.string().min(1).max(255).default('RegionOne'),
  ABACA_TOKEN_LIFETIME: z.coerce
    .number()
    .int()
    .min(60)
    .max(7 * 24 * 3600)
    .default(3600),
  ABACA_BODY_LIMIT: z.coerce
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024),
  ABACA_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  ABACA_REVOCATION_CACHE_SECONDS: z.coerce.number().min(0).max(300).default(2),
  ABACA_TASK_LEASE_SECONDS: z.coerce.number().min(1).max(3600).default(30),
  ABACA_WORKER_CONCURRENCY: z.coerce
    .number({ error: 'ABACA_WORKER_CONCURRENCY must be a whole number' })
    .int('ABACA_WORKER_CONCURRENCY must be a whole number')
    .min(1, 'ABACA_WORKER_CONCURRENCY must be at least 1')
    .max(256, 'ABACA_WORKER_CONCURRENCY must be at most 256')
    .default(8),
  ABACA_API_WORKERS: z.coerce
    .number({ error: 'ABACA_API_WORKERS must be a whole number' })
    .int('ABACA_API_WORKERS must be a whole number')
    .min(1, 'ABACA_API_WORKERS must be at least 1')
    .max(64, 'ABACA_API_WORKERS must be at most 64')
    .default(1),
  ABACA_LOGIN_MAX_FAILURES: z.coerce.number().int().min(0).max(1000).default(5),
  ABACA_LOGIN_MAX_FAILURES_PER_ADDRESS: z.coerce.number().int().min(0).max(100_000).default(20),
  ABACA_LOGIN_LOCKOUT_SECONDS: z.coerce.number().min(0.1).max(86_400).default(2),
  ABACA_LOGIN_LOCKOUT_MAX_SECONDS: z.coerce.number().min(1).max(86_400).default(900),
  // Manila's soft_deleted_share_retention_time (a week by default).
  ABACA_SOFT_DELETED_SHARE_RETENTION: z.coerce
    .number({ error: 'ABACA_SOFT_DELETED_SHARE_RETENTION must be a number of seconds' })
    .int('ABACA_SOFT_DELETED_SHARE_RETENTION must be a whole number of seconds')
    .min(0, 'ABACA_SOFT_DELETED_SHARE_RETENTION must be at least 0')
    .max(10 * 365 * 24 * 3600, 'ABACA_SOFT_DELETED_SHARE_RETENTION must be at most ten years')
    .default(7 * 24 * 3600),
  ABACA_RECYCLE_BIN_PURGE_INTERVAL: z.coerce
    .number({ error: 'ABACA_RECYCLE_BIN_PURGE_INTERVAL must be a number of seconds' })
    .min(0.1, 'ABACA_RECYCLE_BIN_PURGE_INTERVAL must be at least 0.1')
    .max(86_400, 'ABACA_RECYCLE_BIN_PURGE_INTERVAL must be at most 86400')
    .default(60),
  ABACA_BACKENDS: z
    .string()
    .transform((s, ctx) => {
      try {
        const v = JSON.parse(s);
        if (Array.isArray(v)) return v as unknown[];
      } catch {}
      ctx.addIssue({
        code: 'custom',
        message: 'must be a JSON array of backend specs: [{"name": …, "driver": …}]',
      });
      return z.NEVER;
    })
    .optional(),
  ABACA_TLS_CERT: z.string().min(1).optional(),
  ABACA_TLS_KEY: z.string().min(1).optional(),
  ABACA_TLS_CA: z.string().min(1).optional(),
  ABACA_SOLO_PORT: z.coerce
    .number({ error: 'ABACA_SOLO_PORT must be a port number' })
    .int('ABACA_SOLO_PORT must be a port number')
    .min(1, 'ABACA_SOLO_PORT must be 1-65535')
    .max(65535, 'ABACA_SOLO_PORT must be 1-65535')
    .optional(),
});

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = Env.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const sep = e.ABACA_LISTEN.lastIndexOf(':');
  const listenHost = e.ABACA_LISTEN.slice(0, sep).replace(/^\[|\]$/g, '');
  const listenPort = Number(e.ABACA_LISTEN.slice(sep + 1));
  if (listenPort > 65535)
    throw new ConfigError('Invalid configuration:\n  ABACA_LISTEN: port must be 0-65535');
  if (e.ABACA_API_WORKERS > 1 && !e.DATABASE_URL)
    throw new ConfigError(
      'Invalid configuration:\n  ABACA_API_WORKERS: more than one API process needs PostgreSQL (set DATABASE_URL); ' +
        'the embedded PGlite database belongs to a single process',
    );
  const tls = tlsFiles(e.ABACA_TLS_CERT, e.ABACA_TLS_KEY, e.ABACA_TLS_CA);
  return {
    listenHost,
    listenPort,
    publicUrl: (e.ABACA_PUBLIC_URL ?? defaultPublicUrl(listenHost, listenPort, tls !== null)).replace(
      /\/+$/,
      '',
    ),
    publicUrlExplicit: e.ABACA_PUBLIC_URL !== undefined,
    dataDir: path.resolve(e.ABACA_DATA_DIR),
    databaseUrl: e.DATABASE_URL ?? null,
    adminPassword: e.ABACA_ADMIN_PASSWORD ?? null,
    adminToken: e.ABACA_ADMIN_TOKEN ?? null,
    region: e.ABACA_REGION,
    tokenLifetimeSeconds: e.ABACA_TOKEN_LIFETIME,
    bodyLimitBytes: e.ABACA_BODY_LIMIT,
    logLevel: e.ABACA_LOG_LEVEL,
    revocationCacheSeconds: e.ABACA_REVOCATION_CACHE_SECONDS,
    taskLeaseSeconds: e.ABACA_TASK_LEASE_SECONDS,
    workerConcurrency: e.ABACA_WORKER_CONCURRENCY,
    backends: e.ABACA_BACKENDS ?? [],
    solo: e.ABACA_BACKENDS ? null : { shareServerPort: e.ABACA_SOLO_PORT },
    apiWorkers: e.ABACA_API_WORKERS,
    tls,
    recycleBin: {
      retentionSeconds: e.ABACA_SOFT_DELETED_SHARE_RETENTION,
      purgeIntervalSeconds: e.ABACA_RECYCLE_BIN_PURGE_INTERVAL,
    },
    login: {
      maxFailures: e.ABACA_LOGIN_MAX_FAILURES,
      maxFailuresPerAddress: e.ABACA_LOGIN_MAX_FAILURES_PER_ADDRESS,
      lockoutSeconds: e.ABACA_LOGIN_LOCKOUT_SECONDS,
      lockoutMaxSeconds: Math.max(e.ABACA_LOGIN_LOCKOUT_MAX_SECONDS, e.ABACA_LOGIN_LOCKOUT_SECONDS),
    },
  };
}

/** The API's TLS files, checked readable now so that a typo fails at start-up with its name. */
function tlsFiles(cert?: string, key?: string, ca?: string): Config['tls'] {
  if (!cert && !key) {
    if (ca)
      throw new ConfigError(
        'Invalid configuration:\n  ABACA_TLS_CA: needs ABACA_TLS_CERT and ABACA_TLS_KEY (HTTPS) too',
      );
    return null;
  }
  if (!cert || !key)
    throw new ConfigError(
      `Invalid configuration:\n  ${cert ? 'ABACA_TLS_KEY' : 'ABACA_TLS_CERT'}: HTTPS needs both ABACA_TLS_CERT and ABACA_TLS_KEY`,
    );
  const files: Array<[string, string | undefined]> = [
    ['ABACA_TLS_CERT', cert],
    ['ABACA_TLS_KEY', key],
    ['ABACA_TLS_CA', ca],
  ];
  for (const [name, file] of files) {
    if (file === undefined) continue;
    try {
      accessSync(file, constants.R_OK);
    } catch {
      throw new ConfigError(`Invalid configuration:\n  ${name}: cannot read ${file}`);
    }
  }
  return { cert: path.resolve(cert), key: path.resolve(key), ca: ca ? path.resolve(ca) : null };
}

export function defaultPublicUrl(host: string, port: number, https = false): string {
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `${https ? 'https' : 'http'}://${shown.includes(':') ? `[${shown}]` : shown}:${port}`;
}
