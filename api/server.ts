import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import path from 'node:path';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { createBackend, parseBackendSpec } from '../backends/drivers.ts';
import { type Config, defaultPublicUrl } from '../services/config.ts';
import { type Db, migrateLatest, openDb } from '../services/db.ts';
import { createEmbeddedVacuum } from '../services/embedded-vacuum.ts';
import { bootstrapIdentity, writeOpenrc } from '../services/identity/bootstrap.ts';
import { createIdentity, type Identity } from '../services/identity/index.ts';
import { HEARTBEAT_SECONDS } from '../services/os-services.ts';
import type { Auth } from '../services/policy.ts';
import { createBrickStore } from '../services/repos/bricks.ts';
import { shareOwnerStore } from '../services/repos/share-owners.ts';
import type { ConfiguredBackend } from '../services/scheduler.ts';
import { createShareServices } from '../services/share-services.ts';
import { ensureDefaultShareType } from '../services/share-types.ts';
import { createApp } from './app.ts';
import { clusterMetrics } from './cluster.ts';
import { countDbQueries } from './middleware/metrics.ts';

export function openDatabase(config: Config): Promise<Db> {
  return openDb({ databaseUrl: config.databaseUrl, pgliteDir: path.join(config.dataDir, 'db') });
}

/** Who Keystone's admin_token acts as: the admin role on the bootstrap admin project. */
export function staticAdminAuth(adminUserId: string, adminProjectId: string): Auth {
  return {
    userId: adminUserId,
    userName: 'admin',
    userDomainId: 'default',
    projectId: adminProjectId,
    projectName: 'admin',
    roles: ['admin', 'member', 'reader'],
    isAdmin: true,
    auditId: 'static-admin-token',
    applicationCredential: null,
    isStaticAdmin: true,
  };
}

export interface RunningServer {
  server: Server;
  url: string;
  db: Db;
  identity: Identity;
  /** Stops accepting connections, lets in-flight requests finish, then closes the database. */
  shutdown(): Promise<void>;
}

/** What a database needs before it is served: migrations, the identity bootstrap, the default type. */
export async function prepareDatabase(db: Db, config: Config, log: Logger) {
  const applied = await migrateLatest(db, {
    onNewerSchema: (newer) =>
      log.warn(
        { migrations: newer },
        'database migrated by a newer release; serving with its schema (rolling upgrade)',
      ),
  });
  if (applied.length) log.info({ migrations: applied }, 'database migrated');
  const boot = await bootstrapIdentity(db, { password: config.adminPassword, resetPassword: false });
  await ensureDefaultShareType(db);
  return boot;
}

/** Writes the openrc (once the public URL is known) and prints a generated admin password once. */
export function announceAdmin(
  config: Config,
  boot: Awaited<ReturnType<typeof prepareDatabase>>,
  out: (line: string) => void,
): void {
  if (!boot.password) return;
  const file = writeOpenrc(config, boot.password);
  if (boot.generated)
    out(`abaca-server: created user 'admin' (project 'admin') with password: ${boot.password}`);
  out(`abaca-server: admin credentials written to ${file} (source it to use the openstack CLI)`);
}

export interface StartOptions {
  /** One of several API processes (api/cluster.ts): the primary announces, and gathers /metrics. */
  clusterWorker?: boolean;
}

/** Migrates, bootstraps identity, and listens. Prints the admin password once, on first start. */
export async function startServer(
  config: Config,
  log: Logger,
  out: (line: string) => void,
  opts: StartOptions = {},
): Promise<RunningServer> {
  const db = await openDatabase(config);
  const boot = await prepareDatabase(db, config, log);
  const identity = createIdentity(db, config);
  await identity.init();
  const backends: ConfiguredBackend[] = [];
  for (const spec of config.backends) {
    const parsed = parseBackendSpec(spec);
    backends.push({
      backend: await createBackend(spec, {
        owners: (name) => shareOwnerStore(db, name),
        // The brick registry, so added and removed bricks outlive the share servers' restarts.
        bricks: createBrickStore(db),
        log: (msg, fields) => log.info({ backend: parsed.name, ...fields }, msg),
      }),
      availabilityZone: parsed.availabilityZone,
    });
  }
  const stack = createShareServices({
    db,
    log,
    backends,
    leaseMs: config.taskLeaseSeconds * 1000,
    workerConcurrency: config.workerConcurrency,
    recycleBinRetentionSeconds: config.recycleBin.retentionSeconds,
  });
  await stack.init();
  const staticAdmin = config.adminToken
    ? { token: config.adminToken, auth: staticAdminAuth(boot.adminUserId, boot.adminProjectId) }
    : null;
  // Bind first: with port 0 the public URL (catalog, openrc) is known only once the port is.
  const server = config.tls
    ? createHttpsServer({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) })
    : createServer();
  // HTTP/1.1 keep-alive the same way over TLS (a handshake per request would cost far more).
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listenPort, config.listenHost, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.listenPort;
  const url = defaultPublicUrl(config.listenHost, port, config.tls !== null);
  if (!config.publicUrlExplicit) config.publicUrl = url;
  const registry = new Registry();
  countDbQueries(db, registry);
  const handle = createApp({
    config,
    db,
    identity,
    share: stack,
    log,
    registry,
    metricsText: opts.clusterWorker ? clusterMetrics(registry) : undefined,
    staticAdmin,
  }).callback();
  // Requests still being handled: server.close() waits for open connections only, and a client
  // that hung up leaves its request running — the database must outlive those too.
  const inFlight = new Set<Promise<void>>();
  server.on('request', (req, res) => {
    const handled: Promise<void> = Promise.resolve(handle(req, res)).finally(() => inFlight.delete(handled));
    inFlight.add(handled);
  });
  if (!opts.clusterWorker) announceAdmin(config, boot, out);
  stack.worker.start();
  const vacuum = config.databaseUrl ? null : createEmbeddedVacuum(db, log);
  vacuum?.start();
  const heartbeat = setInterval(() => {
    stack.osServices.heartbeat().catch((err: unknown) => log.warn({ err }, 'service heartbeat failed'));
  }, HEARTBEAT_SECONDS * 1000);
  // Manila's periodic purge of the recycle bin: shares whose retention has passed are deleted.
  const purge = setInterval(() => {
    stack.shares.purgeExpired().catch((err: unknown) => log.warn({ err }, 'recycle bin purge failed'));
  }, config.recycleBin.purgeIntervalSeconds * 1000);
  let closing: Promise<void> | null = null;
  return {
    server,
    url,
    db,
    identity,
    shutdown() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        await Promise.allSettled([...inFlight]);
        // The task in hand finishes; anything left is picked up at the next start (or by another server).
        clearInterval(heartbeat);
        clearInterval(purge);
        await stack.worker.stop();
        await vacuum?.stop();
        for (const b of backends) await b.backend.close();
        await db.destroy();
      })();
      return closing;
    },
  };
}
