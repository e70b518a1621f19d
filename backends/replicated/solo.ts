/**
 * Solo mode: the replicated storage on one machine, run by abaca-server itself — three bricks and a
 * share server as supervised child processes under `<dataDir>/solo`, and the backend spec that
 * points the share API at them. A child that dies is logged and started again on the same port
 * (the share server heals a returning brick by itself); stopping the supervisor stops them all.
 *
 *   <dataDir>/solo/solo.json      ports and admin token, written at the first start and kept, so
 *                                 that export locations (and the bricks' addresses the shares
 *                                 record) stay the same across restarts
 *   <dataDir>/solo/brick1..3/     the bricks' directories
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type Proc, spawnDaemon } from './processes.ts';
import { type ClusterTls, clusterTlsEnv } from './protocol/tls.ts';

export const SOLO_BACKEND_NAME = 'solo';
const BRICKS = 3;

interface SoloState {
  version: 1;
  adminToken: string;
  /** Bricks' ports, in brick order, and the share server's; 0 until first bound. */
  brickPorts: number[];
  shareServerPort: number;
}

export interface SoloOptions {
  dataDir: string;
  /** Address the share server listens on (clients mount through it); bricks stay on loopback. */
  host: string;
  /** Pin the share server's port (else the one chosen at the first start is kept). */
  shareServerPort?: number;
  /** The API's identity endpoint (…/identity/v3): mounts must carry a token it accepts. */
  authUrl: string;
  /** The CA of the API's HTTPS certificate, trusted by the share server's token checks. */
  authCa?: string;
  /** Cluster TLS: the bricks and the share server are started with it (mutual TLS between them). */
  tls?: ClusterTls;
  /** Where supervision events go (a pino logger fits). */
  log: { info(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** Delay before a dead child is started again. */
  restartDelayMs?: number;
}

export interface SoloStorage {
  /** The backend spec for ABACA_BACKENDS (backends/drivers.ts). */
  backendSpec: { name: string; driver: 'replicated'; options: Record<string, unknown> };
  /** The running children, for tests (brick 0–2, then the share server). */
  processes(): Proc[];
  stop(): Promise<void>;
}

const BRICK_HOST = '127.0.0.1';

function loadState(file: string): SoloState {
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as SoloState;
  return {
    version: 1,
    adminToken: randomBytes(24).toString('base64url'),
    brickPorts: Array(BRICKS).fill(0),
    shareServerPort: 0,
  };
}

function saveState(file: string, state: SoloState): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

export async function startSolo(opts: SoloOptions): Promise<SoloStorage> {
  const dir = path.join(opts.dataDir, 'solo');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stateFile = path.join(dir, 'solo.json');
  const state = loadState(stateFile);
  if (opts.shareServerPort !== undefined) state.shareServerPort = opts.shareServerPort;
  let stopping = false;
  const children: Proc[] = [];

  const brickArgs = (i: number) => [
    '--dir',
    path.join(dir, `brick${i + 1}`),
    '--host',
    BRICK_HOST,
    '--port',
    String(state.brickPorts[i]),
    '--host-label',
    'solo',
    '--zone',
    'nova',
  ];
  const serverArgs = () => [
    '--bricks',
    state.brickPorts.map((p) => `${BRICK_HOST}:${p}`).join(','),
    '--host',
    opts.host,
    '--port',
    String(state.shareServerPort),
    '--auth-url',
    opts.authUrl,
  ];
  const env: Record<string, string> = {
    ABACA_ADMIN_TOKEN: state.adminToken,
    // Absolute paths: the children run in the package root, not in this process's directory.
    ...clusterTlsEnv(opts.tls),
    // The token checks use fetch, which trusts Node's CA store plus this file.
    ...(opts.authCa ? { NODE_EXTRA_CA_CERTS: opts.authCa } : {}),
  };

  /**
   * Starts child `slot` and keeps it running until stop(): a child that exits, or fails to start
   * again, is retried after a delay that doubles with each failure in a row (up to 30 s) and starts
   * over once a child has stayed up for a minute.
   */
  async function supervise(slot: number, name: string, bin: string, args: () => string[]): Promise<Proc> {
    const base = opts.restartDelayMs ?? 1000;
    let failures = 0;
    const again = () => {
      const delay = Math.min(30_000, base * 2 ** Math.min(failures, 10));
      failures++;
      setTimeout(() => {
        if (stopping) return;
        start().catch((err: Error) => {
          opts.log.error(
            {
              child: name,
              err: err.message.split('\n')[0],
              retryInMs: Math.min(30_000, base * 2 ** failures),
            },
            `solo storage: ${name} did not start again`,
          );
          again();
        });
      }, delay).unref();
    };
    const start = async (): Promise<Proc> => {
      const proc = await spawnDaemon(bin, args(), undefined, env);
      children[slot] = proc;
      const startedAt = Date.now();
      proc.exited.then((code) => {
        if (stopping) return;
        if (Date.now() - startedAt > 60_000) failures = 0;
        opts.log.error({ child: name, code }, `solo storage: ${name} exited; starting it again`);
        again();
      });
      return proc;
    };
    return start();
  }

  try {
    for (let i = 0; i < BRICKS; i++) {
      const p = await supervise(i, `brick${i + 1}`, 'abaca-brick.js', () => brickArgs(i));
      state.brickPorts[i] = p.port;
    }
    // Ports are known once the bricks listen: record them before the share server is told them.
    saveState(stateFile, state);
    const server = await supervise(BRICKS, 'share server', 'abaca-share-server.js', serverArgs);
    state.shareServerPort = server.port;
    saveState(stateFile, state);
  } catch (err) {
    stopping = true;
    await Promise.all(children.map((c) => c?.kill9()));
    throw new Error(
      `solo storage did not start (${(err as Error).message.split('\n')[0]}); its state is in ${dir}`,
    );
  }
  const shareServer = `${opts.host === '0.0.0.0' || opts.host === '::' ? '127.0.0.1' : opts.host}:${state.shareServerPort}`;
  opts.log.info({ shareServer, dir }, 'solo storage: three bricks and a share server running');
  return {
    backendSpec: {
      name: SOLO_BACKEND_NAME,
      driver: 'replicated',
      options: { shareServers: [shareServer], adminToken: state.adminToken },
    },
    processes: () => [...children],
    async stop() {
      stopping = true;
      await Promise.all(
        children.map(async (c) => {
          c.signal('SIGTERM');
          const done = await Promise.race([c.exited.then(() => true), sleep(5000).then(() => false)]);
          if (!done) await c.kill9();
        }),
      );
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
