/**
 * npm run bench:tls — what TLS costs, plaintext and TLS side by side in one run (docs/tls.md):
 *
 *   Native protocol, client → share server → 3 bricks (cluster TLS: mutual TLS on the brick
 *   links, TLS on the client port), the same daemons started twice:
 *     sequential write + fsync and sequential read through the client library (replica 3), with
 *     the CPU time all daemons used per GiB; 4 KiB creates/s with 4 clients (depth 4); connect +
 *     mount (handshake included), one after another.
 *   Share API (abaca-server, memory backend), HTTP and HTTPS:
 *     GET /v2 with keep-alive connections (the handshake amortised), and with a new connection per
 *     request (a handshake each), each with BENCH_TLS_CONCURRENCY (8) requests in flight.
 *
 * Modes alternate (plain, TLS, plain, TLS) and the better of two runs is kept, so that load from
 * elsewhere on the machine does not fall on one mode only.
 * Sizes: ABACA_BENCH_MIB (256), ABACA_BENCH_CREATES (per client, 500), BENCH_SECONDS (4 per API case).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { ReplicatedClient } from '../backends/replicated/client/client.ts';
import { type Proc, spawnDaemon } from '../backends/replicated/processes.ts';
import { type ClusterTls, clusterTlsFromEnv } from '../backends/replicated/protocol/tls.ts';
import { tempDir } from '../test/helpers/db.ts';
import { startServerProcess } from '../test/helpers/process.ts';
import { processCpuMs } from './lib.ts';

const MIB = 1024 * 1024;
const SIZE_MIB = Number(process.env['ABACA_BENCH_MIB'] ?? 256);
const CREATES = Number(process.env['ABACA_BENCH_CREATES'] ?? 500);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 4);
const CONCURRENCY = Number(process.env['BENCH_TLS_CONCURRENCY'] ?? 8);
const CONNECTS = 50;

const base = fs.mkdtempSync(path.join(process.env['ABACA_BENCH_DIR'] ?? os.tmpdir(), 'abaca-bench-tls-'));
const certs = path.join(base, 'pki');
execFileSync('sh', [path.join(import.meta.dirname, '..', 'scripts', 'tls-certs.sh'), certs, 'node'], {
  stdio: 'pipe',
});
const clusterEnv = {
  ABACA_CLUSTER_CA: path.join(certs, 'ca.pem'),
  ABACA_CLUSTER_CERT: path.join(certs, 'node.pem'),
  ABACA_CLUSTER_KEY: path.join(certs, 'node-key.pem'),
};
const noClusterTls = { ABACA_CLUSTER_CA: '', ABACA_CLUSTER_CERT: '', ABACA_CLUSTER_KEY: '' };
const pool = randomBytes(16 * MIB);
const procs: Proc[] = [];

const secs = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

interface NativeResult {
  writeMBs: number;
  readMBs: number;
  cpuSecPerGiBWrite: number;
  cpuSecPerGiBRead: number;
  creates: number;
  connectMs: number;
}

async function native(useTls: boolean, run: number): Promise<NativeResult> {
  const dir = path.join(base, `${useTls ? 'tls' : 'plain'}-${run}`);
  const env = useTls ? clusterEnv : noClusterTls;
  const tls: ClusterTls | undefined = useTls ? clusterTlsFromEnv(clusterEnv) : undefined;
  const bricks = await Promise.all(
    [1, 2, 3].map((i) =>
      spawnDaemon(
        'abaca-brick.js',
        ['--dir', path.join(dir, `b${i}`), '--host-label', `h${i}`],
        undefined,
        env,
      ),
    ),
  );
  const adminToken = randomUUID();
  const server = await spawnDaemon(
    'abaca-share-server.js',
    ['--bricks', bricks.map((b) => b.addr).join(','), '--brick-timeout-ms', '30000'],
    undefined,
    { ...env, ABACA_ADMIN_TOKEN: adminToken },
  );
  const daemons = [...bricks, server];
  procs.push(...daemons);
  const cpu = () => daemons.reduce((s, p) => s + processCpuMs(p.child.pid), 0);
  try {
    const connect = (share?: string) =>
      ReplicatedClient.connect({
        host: '127.0.0.1',
        port: server.port,
        share,
        timeoutMs: 120_000,
        adminToken,
        tls,
      });
    const admin = await connect();
    for (let i = 0; i < 100 && !(await admin.brickStatus()).every((b) => b['up']); i++)
      await new Promise((r) => setTimeout(r, 100));
    await admin.createShare('bench', 64 * 1024 * MIB);
    const c = await connect('bench');

    let cpu0 = cpu();
    let t0 = process.hrtime.bigint();
    await c.create('big');
    for (let off = 0; off < SIZE_MIB * MIB; off += pool.length) await c.writeAt('big', off, pool);
    await c.fsync('big');
    const writeMBs = (SIZE_MIB * MIB) / secs(t0) / 1e6;
    const cpuSecPerGiBWrite = (cpu() - cpu0) / 1000 / (SIZE_MIB / 1024);

    cpu0 = cpu();
    t0 = process.hrtime.bigint();
    let got = 0;
    for (let off = 0; off < SIZE_MIB * MIB; off += 16 * MIB) {
      const parts = await Promise.all(
        Array.from({ length: 16 }, (_, i) => c.read('big', off + i * MIB, MIB)),
      );
      for (const p of parts) got += p.length;
    }
    const readMBs = got / secs(t0) / 1e6;
    const cpuSecPerGiBRead = (cpu() - cpu0) / 1000 / (SIZE_MIB / 1024);

    const clients = await Promise.all([0, 1, 2, 3].map(() => connect('bench')));
    await c.mkdir('c');
    const body = pool.subarray(0, 4096);
    t0 = process.hrtime.bigint();
    await Promise.all(
      clients.map(async (cl, k) => {
        let next = 0;
        await Promise.all(
          Array.from({ length: 4 }, async () => {
            while (next < CREATES) await cl.createWith(`c/${k}-${next++}`, body, { excl: true });
          }),
        );
      }),
    );
    const creates = (4 * CREATES) / secs(t0);
    for (const cl of clients) cl.close();

    t0 = process.hrtime.bigint();
    for (let i = 0; i < CONNECTS; i++) (await connect('bench')).close();
    const connectMs = (secs(t0) * 1000) / CONNECTS;
    c.close();
    admin.close();
    return { writeMBs, readMBs, cpuSecPerGiBWrite, cpuSecPerGiBRead, creates, connectMs };
  } finally {
    await Promise.all(daemons.map((p) => p.kill9()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Requests/s of GET /v2 for SECONDS with CONCURRENCY in flight. */
async function apiLoad(url: string, agent: http.Agent): Promise<number> {
  const mod = url.startsWith('https') ? https : http;
  const end = Date.now() + SECONDS * 1000;
  let n = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = mod.get(`${url}/v2`, { agent }, (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 300 || res.statusCode === 200
            ? resolve()
            : reject(new Error(`${res.statusCode}`)),
        );
      });
      req.on('error', reject);
    });
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < end) {
        await one();
        n++;
      }
    }),
  );
  return n / secs(t0);
}

async function api(useTls: boolean): Promise<{ keepAlive: number; perRequest: number; cpuMsPerReq: number }> {
  const data = tempDir('abaca-bench-tls-api');
  const server = await startServerProcess({
    ABACA_DATA_DIR: data.path,
    ABACA_ADMIN_PASSWORD: 'bench-admin-password',
    ABACA_LOG_LEVEL: 'warn',
    ABACA_BACKENDS: JSON.stringify([{ name: 'mem', driver: 'memory', options: {} }]),
    ...(useTls
      ? { ABACA_TLS_CERT: clusterEnv.ABACA_CLUSTER_CERT, ABACA_TLS_KEY: clusterEnv.ABACA_CLUSTER_KEY }
      : {}),
  });
  try {
    const ca = fs.readFileSync(clusterEnv.ABACA_CLUSTER_CA);
    const agent = (keepAlive: boolean) =>
      useTls
        ? new https.Agent({ keepAlive, ca, maxSockets: CONCURRENCY })
        : new http.Agent({ keepAlive, maxSockets: CONCURRENCY });
    const warm = agent(true);
    await apiLoad(server.url, warm).catch(() => 0);
    warm.destroy();
    const ka = agent(true);
    const cpu0 = processCpuMs(server.child.pid);
    const keepAlive = await apiLoad(server.url, ka);
    const cpuMsPerReq = (processCpuMs(server.child.pid) - cpu0) / (keepAlive * SECONDS);
    ka.destroy();
    const fresh = agent(false);
    const perRequest = await apiLoad(server.url, fresh);
    fresh.destroy();
    return { keepAlive, perRequest, cpuMsPerReq };
  } finally {
    await server.stop();
    data.remove();
  }
}

function best<T extends object>(a: T, b: T, lowerIsBetter: Set<string>): T {
  const out: Record<string, number> = {};
  for (const k of Object.keys(a)) {
    const x = (a as Record<string, number>)[k]!;
    const y = (b as Record<string, number>)[k]!;
    out[k] = lowerIsBetter.has(k) ? Math.min(x, y) : Math.max(x, y);
  }
  return out as T;
}

async function main(): Promise<void> {
  console.log(
    `bench:tls — ${os.cpus().length} CPUs (${os.cpus()[0]?.model}), Node ${process.version}, ` +
      `${SIZE_MIB} MiB streams, ${CREATES} creates x 4 clients, ${SECONDS} s per API case, dir ${base}`,
  );
  const low = new Set(['cpuSecPerGiBWrite', 'cpuSecPerGiBRead', 'connectMs', 'cpuMsPerReq']);
  const n: NativeResult[] = [];
  for (let run = 0; run < 2; run++) for (const t of [false, true]) n.push(await native(t, run));
  const plain = best(n[0]!, n[2]!, low);
  const tls = best(n[1]!, n[3]!, low);
  const a = [];
  for (let run = 0; run < 2; run++) for (const t of [false, true]) a.push(await api(t));
  const aPlain = best(a[0]!, a[2]!, low);
  const aTls = best(a[1]!, a[3]!, low);

  const rows: Array<[string, number, number, string]> = [
    ['native: replica-3 sequential write + fsync', plain.writeMBs, tls.writeMBs, 'MB/s'],
    ['native: daemons CPU per GiB written', plain.cpuSecPerGiBWrite, tls.cpuSecPerGiBWrite, 'CPU s'],
    ['native: sequential read', plain.readMBs, tls.readMBs, 'MB/s'],
    ['native: daemons CPU per GiB read', plain.cpuSecPerGiBRead, tls.cpuSecPerGiBRead, 'CPU s'],
    ['native: 4 KiB creates, 4 clients', plain.creates, tls.creates, 'files/s'],
    ['native: connect + mount', plain.connectMs, tls.connectMs, 'ms'],
    ['API: GET /v2, keep-alive', aPlain.keepAlive, aTls.keepAlive, 'req/s'],
    ['API: server CPU per request (keep-alive)', aPlain.cpuMsPerReq, aTls.cpuMsPerReq, 'CPU ms'],
    ['API: GET /v2, new connection each', aPlain.perRequest, aTls.perRequest, 'req/s'],
  ];
  const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  console.log(`\n| Case | Plaintext | TLS | TLS / plaintext | Unit |\n| --- | ---: | ---: | ---: | --- |`);
  for (const [name, p, t, unit] of rows)
    console.log(`| ${name} | ${fmt(p)} | ${fmt(t)} | ${(t / p).toFixed(2)} | ${unit} |`);
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    await Promise.all(procs.map((p) => p.kill9()));
    fs.rmSync(base, { recursive: true, force: true });
  });
