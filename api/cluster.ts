import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { type Config, defaultPublicUrl } from '../services/config.ts';
import { announceAdmin, openDatabase, prepareDatabase } from './server.ts';

/**
 * ABACA_API_WORKERS > 1: this process (the primary) prepares the database once, then runs that
 * many worker processes, each a whole abaca-server (API, task worker, heartbeat) on the same
 * listening address — the kernel socket is the primary's and connections are handed to the
 * workers in turn. The primary serves nothing itself: it prints the listening line once every
 * worker listens, replaces a worker that dies (giving up if they keep dying), gathers /metrics
 * from all workers, and on SIGTERM/SIGINT stops them all gracefully before it exits.
 */

/** More deaths than this within RESTART_WINDOW_MS and the primary stops instead of restarting. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;
const METRICS_REQUEST = 'abaca:metrics';

interface MetricsMessage {
  type: typeof METRICS_REQUEST;
  id: number;
  text?: string;
  error?: string;
}

const isMetricsMessage = (m: unknown): m is MetricsMessage =>
  typeof m === 'object' && m !== null && (m as { type?: unknown }).type === METRICS_REQUEST;

export async function runPrimary(
  config: Config,
  log: Logger,
  out: (line: string) => void,
  /** Stops what the primary runs besides the API processes (solo storage), after them. */
  afterWorkers: () => Promise<void> | undefined = () => undefined,
): Promise<void> {
  const db = await openDatabase(config);
  let boot: Awaited<ReturnType<typeof prepareDatabase>>;
  try {
    boot = await prepareDatabase(db, config, log);
  } finally {
    await db.destroy();
  }
  // Aggregates what each worker's registry holds (counters and histograms summed).
  const aggregator = new AggregatorRegistry();
  let stopping = false;
  const deaths: number[] = [];
  let listening = 0;
  let announced = false;

  const fork = (): Worker => {
    const worker = cluster.fork();
    worker.on('message', (m: unknown) => {
      if (!isMetricsMessage(m) || m.text !== undefined) return;
      aggregator.clusterMetrics().then(
        (text) => worker.send({ type: METRICS_REQUEST, id: m.id, text }),
        (err: Error) => worker.send({ type: METRICS_REQUEST, id: m.id, error: err.message }),
      );
    });
    return worker;
  };

  cluster.on('listening', (_worker, address) => {
    listening++;
    if (announced || listening < config.apiWorkers) return;
    announced = true;
    const url = config.publicUrlExplicit
      ? config.publicUrl
      : defaultPublicUrl(config.listenHost, address.port, config.tls !== null);
    if (!config.publicUrlExplicit) config.publicUrl = url;
    announceAdmin(config, boot, out);
    out(`abaca-server listening on ${url} (${config.apiWorkers} API processes)`);
  });

  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    const now = Date.now();
    deaths.push(now);
    while (deaths.length && (deaths[0] as number) < now - RESTART_WINDOW_MS) deaths.shift();
    log.error({ pid: worker.process.pid, code, signal }, 'API process died');
    if (deaths.length > MAX_RESTARTS) {
      log.fatal(`${deaths.length} API processes died within a minute; stopping`);
      stop(1);
      return;
    }
    fork();
  });

  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    let left = workers.length;
    const exit = () => {
      Promise.resolve(afterWorkers()).finally(() => process.exit(code));
    };
    if (left === 0) exit();
    for (const w of workers) {
      w.once('exit', () => {
        if (--left === 0) exit();
      });
      w.process.kill('SIGTERM');
    }
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const)
    process.once(signal, () => {
      log.info({ signal }, 'shutting down: stopping the API processes');
      stop(0);
    });

  for (let i = 0; i < config.apiWorkers; i++) fork();
}

/**
 * In a worker: /metrics text for all workers, gathered by the primary (each worker's registry alone
 * would show a share of the requests, depending on which worker answered the scrape).
 */
export function clusterMetrics(registry: Registry): () => Promise<string> {
  // Constructing one installs prom-client's answer to the primary's requests in this worker.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
  let next = 0;
  const waiting = new Map<number, { resolve: (t: string) => void; reject: (e: Error) => void }>();
  process.on('message', (m: unknown) => {
    if (!isMetricsMessage(m) || (m.text === undefined && m.error === undefined)) return;
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.text !== undefined) w?.resolve(m.text);
    else w?.reject(new Error(`metrics from the other API processes: ${m.error}`));
  });
  return () =>
    new Promise((resolve, reject) => {
      const id = next++;
      waiting.set(id, { resolve, reject });
      process.send?.({ type: METRICS_REQUEST, id } satisfies MetricsMessage);
    });
}
