import cluster from 'node:cluster';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { clusterTlsFromEnv } from '../backends/replicated/protocol/tls.ts';
import { startSolo } from '../backends/replicated/solo.ts';
import { ConfigError, defaultPublicUrl, loadConfig } from '../services/config.ts';
import { migrateLatest } from '../services/db.ts';
import { bootstrapIdentity, writeOpenrc } from '../services/identity/bootstrap.ts';
import { KeyRing } from '../services/identity/key-ring.ts';
import { createLogger } from '../services/logger.ts';
import { runPrimary } from './cluster.ts';
import { openDatabase, startServer } from './server.ts';

const USAGE = `Usage: abaca-server [command] [options]

Commands:
  serve (default)           migrate, bootstrap on an empty database, and serve the API
  migrate                   apply database migrations and exit
  bootstrap [--password P]  create the default domain, roles, admin project and admin user if
                            missing, and (re)set the admin password (P, else ABACA_ADMIN_PASSWORD,
                            else a generated one, printed); writes $ABACA_DATA_DIR/openrc
  rotate-keys               add a new token signing key; tokens signed by the previous key stay
                            valid until they expire

Configuration is read from the environment: ABACA_LISTEN, ABACA_PUBLIC_URL, ABACA_DATA_DIR,
DATABASE_URL, ABACA_ADMIN_PASSWORD, ABACA_ADMIN_TOKEN, ABACA_REGION, ABACA_TOKEN_LIFETIME,
ABACA_BODY_LIMIT, ABACA_LOG_LEVEL, ABACA_API_WORKERS, ABACA_BACKENDS (unset: the replicated storage
in solo mode under the data dir), ABACA_SOLO_PORT (see README.md); TLS: ABACA_TLS_CERT, ABACA_TLS_KEY,
ABACA_TLS_CA (HTTPS API), ABACA_CLUSTER_CA, ABACA_CLUSTER_CERT, ABACA_CLUSTER_KEY (bricks and share
servers; see docs/tls.md).`;

const out = (line: string) => process.stdout.write(`${line}\n`);

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { password: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    out(USAGE);
    return 0;
  }
  const command = positionals[0] ?? 'serve';
  const config = loadConfig();
  const log = createLogger(config.logLevel);

  if (command === 'serve') {
    // Solo mode (no ABACA_BACKENDS): this process runs the replicated storage; API processes it
    // forks get the backend through ABACA_BACKENDS and do not start it again.
    // The share server checks mount tokens with this server's identity API, so its address must be
    // known before either starts: with port 0, a free port is chosen here.
    // Cluster TLS (the solo children's and the replicated driver's): a bad setting stops here.
    let clusterTls: ReturnType<typeof clusterTlsFromEnv>;
    try {
      clusterTls = clusterTlsFromEnv(process.env, true);
    } catch (err) {
      throw new ConfigError(`Invalid configuration:\n  ${(err as Error).message}`);
    }
    if (config.solo && config.listenPort === 0) {
      config.listenPort = await freePort(config.listenHost);
      process.env['ABACA_LISTEN'] = `${config.listenHost}:${config.listenPort}`; // for forked API processes
    }
    const solo = config.solo
      ? await startSolo({
          dataDir: config.dataDir,
          host: config.listenHost,
          shareServerPort: config.solo.shareServerPort,
          authUrl: `${defaultPublicUrl(config.listenHost, config.listenPort, config.tls !== null)}/identity/v3`,
          authCa: config.tls?.ca ?? undefined,
          tls: clusterTls,
          log,
        })
      : null;
    if (solo) {
      config.backends = [solo.backendSpec];
      process.env['ABACA_BACKENDS'] = JSON.stringify(config.backends);
    }
    if (cluster.isPrimary && config.apiWorkers > 1) {
      await runPrimary(config, log, out, () => solo?.stop());
      return -1; // keep running
    }
    const running = await startServer(config, log, out, { clusterWorker: cluster.isWorker });
    // Plain text, whatever the log level: scripts and tests wait for this line (the primary prints
    // it for all API processes).
    if (cluster.isPrimary) out(`abaca-server listening on ${running.url}`);
    const stop = (signal: string) => {
      log.info({ signal }, 'shutting down: finishing in-flight requests');
      const force = setTimeout(() => {
        log.error('shutdown took longer than 15 s; exiting');
        process.exit(1);
      }, 15_000);
      force.unref();
      running
        .shutdown()
        .then(() => solo?.stop())
        .then(
          () => {
            log.info('stopped');
            process.exit(0);
          },
          (err) => {
            log.error({ err }, 'error during shutdown');
            process.exit(1);
          },
        );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    // An API process whose primary is gone (killed) stops too, instead of serving on alone.
    if (cluster.isWorker) process.once('disconnect', () => stop('primary gone'));
    return -1; // keep running
  }

  const db = await openDatabase(config);
  try {
    if (command === 'migrate') {
      let newer: string[] = [];
      const applied = await migrateLatest(db, { onNewerSchema: (n) => (newer = n) });
      if (newer.length)
        out(`database is newer than this server (it has ${newer.join(', ')}); nothing applied`);
      else out(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
      return 0;
    }
    if (command === 'bootstrap') {
      await migrateLatest(db);
      const password = values.password ?? config.adminPassword;
      const boot = await bootstrapIdentity(db, { password, resetPassword: true });
      if (boot.generated) out(`admin password: ${boot.password}`);
      out(`admin credentials written to ${writeOpenrc(config, boot.password as string)}`);
      return 0;
    }
    if (command === 'rotate-keys') {
      await migrateLatest(db);
      const keys = new KeyRing(db, config.tokenLifetimeSeconds);
      await keys.init();
      const { newKeyId, purged } = await keys.rotate();
      out(`new signing key ${newKeyId}; purged ${purged} key(s) no token can use any more`);
      return 0;
    }
    process.stderr.write(`abaca-server: unknown command '${command}'\n\n${USAGE}\n`);
    return 2;
  } finally {
    await db.destroy();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err) => {
    if (err instanceof ConfigError) process.stderr.write(`abaca-server: ${err.message}\n`);
    else
      process.stderr.write(
        `abaca-server: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
    process.exit(1);
  },
);

/** A port nothing listens on now (the kernel's choice for port 0), for a server that starts next. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
