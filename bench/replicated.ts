/**
 * Benchmark of the built-in replicated backend, one run, printed side by side with ratios to the
 * raw disk measured in the same run:
 *   (1) raw disk: sequential write + fsync to the same filesystem
 *   (2) sequential write + fsync through the client library, replica 3
 *   (3) sequential read through the client library
 *   (4) 4 KiB file creates/s with 4 clients, without and with fsync (each file: one create-with-
 *       data operation, as `writeFile` sends it; with fsync, flushed on every replica before the ack),
 *       timed after an untimed ramp of ABACA_BENCH_RAMP (200) creates per client
 *   (5) heal after a brick returns (timed from the moment it listens again until heal info is
 *       empty: reconnect, claim and heal): N small files + one big file (files/s, MiB/s), and a
 *       partial (ranged) heal of the big file after 1 MiB of it changed
 * Sizes: ABACA_BENCH_MIB (1024), ABACA_BENCH_FILES (2000), ABACA_BENCH_CREATES (per client, 1000),
 * ABACA_BENCH_DEPTH (creates in flight per client, 4), ABACA_BENCH_DIR (os.tmpdir()),
 * ABACA_BENCH_CHUNK_KIB (1024, at most 16384) and ABACA_BENCH_WINDOW (16) for (2) and (3).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ReplicatedClient } from '../backends/replicated/client/client.ts';
import { type Proc, spawnDaemon } from '../backends/replicated/processes.ts';

const MIB = 1024 * 1024;
const SIZE_MIB = Number(process.env['ABACA_BENCH_MIB'] ?? 1024);
const FILES = Number(process.env['ABACA_BENCH_FILES'] ?? 2000);
const CREATES = Number(process.env['ABACA_BENCH_CREATES'] ?? 1000);
const DEPTH = Number(process.env['ABACA_BENCH_DEPTH'] ?? 4);
/** Untimed creates per client before (4) is timed (fio's ramp_time): compiled code, warm sockets. */
const RAMP = Number(process.env['ABACA_BENCH_RAMP'] ?? 200);
const CHUNK = Number(process.env['ABACA_BENCH_CHUNK_KIB'] ?? 1024) * 1024;
const WINDOW = Number(process.env['ABACA_BENCH_WINDOW'] ?? 16);
const base = fs.mkdtempSync(path.join(process.env['ABACA_BENCH_DIR'] ?? os.tmpdir(), 'abaca-bench-'));
const procs: Proc[] = [];
const pool = randomBytes(16 * MIB + CHUNK);
const chunkAt = (i: number): Buffer => pool.subarray((i % 16) * MIB, (i % 16) * MIB + CHUNK);

/** Number of CHUNK-sized pieces in `mib` MiB. */
function chunks(mib: number): number {
  return Math.ceil((mib * MIB) / CHUNK);
}

function secs(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function rawDisk(): number {
  const file = path.join(base, 'raw.bin');
  const fd = fs.openSync(file, 'w');
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < chunks(SIZE_MIB); i++) fs.writeSync(fd, chunkAt(i), 0, CHUNK, i * CHUNK);
  fs.fsyncSync(fd);
  const s = secs(t0);
  fs.closeSync(fd);
  fs.rmSync(file);
  return (SIZE_MIB * MIB) / s / 1e6;
}

/** The same filesystem's own small-file rate: 4 KiB files created and written by one process. */
function rawCreates(n: number, fsync: boolean): number {
  const dir = path.join(base, fsync ? 'raw-creates-sync' : 'raw-creates');
  fs.mkdirSync(dir);
  const body = pool.subarray(0, 4096);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const fd = fs.openSync(path.join(dir, `f${i}`), 'wx');
    fs.writeSync(fd, body);
    if (fsync) fs.fsyncSync(fd);
    fs.closeSync(fd);
  }
  // The files stay until the end: deleting them here would leave the replicated creates below
  // allocating inodes among just-freed ones, which ext4 without a journal skips one by one for a
  // minute (recently_deleted()), and so slow (4) with work of the bench's own making.
  return n / secs(t0);
}

/** Writes `mib` MiB to `p` and fsyncs it; returns the seconds the final fsync took. */
async function streamWrite(c: ReplicatedClient, p: string, mib: number): Promise<number> {
  await c.create(p);
  let next = 0;
  const n = chunks(mib);
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      await c.write(p, i * CHUNK, chunkAt(i));
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, worker));
  const t0 = process.hrtime.bigint();
  await c.fsync(p);
  return secs(t0);
}

async function streamRead(c: ReplicatedClient, p: string, mib: number): Promise<number> {
  let next = 0;
  let bytes = 0;
  const n = chunks(mib);
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      const got = await c.read(p, i * CHUNK, CHUNK);
      bytes += got.length;
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, worker));
  return bytes;
}

/** Each client creates `n` 4 KiB files named `<prefix><i>` in its own directory, DEPTH in flight. */
async function createFiles(
  clients: ReplicatedClient[],
  dir: string,
  prefix: string,
  n: number,
  fsync: boolean,
) {
  const body = pool.subarray(0, 4096);
  await Promise.all(
    clients.map(async (c, ci) => {
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < n)
          await c.createWith(`${dir}-${ci}/${prefix}${next++}`, body, { excl: true, sync: fsync });
      };
      await Promise.all(Array.from({ length: DEPTH }, worker));
    }),
  );
}

/** (4): files/s over CREATES files per client, after an untimed ramp of RAMP files per client. */
async function creates(clients: ReplicatedClient[], dir: string, fsync: boolean): Promise<number> {
  await Promise.all(clients.map((c, ci) => c.mkdir(`${dir}-${ci}`)));
  await createFiles(clients, dir, 'ramp', RAMP, fsync);
  const t0 = process.hrtime.bigint();
  await createFiles(clients, dir, 'f', CREATES, fsync);
  return (clients.length * CREATES) / secs(t0);
}

async function waitHealed(admin: ReplicatedClient, share: string): Promise<void> {
  for (;;) {
    const info = await admin.healInfo(share);
    if (info.every((b) => b.connected && b.count === 0)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main(): Promise<void> {
  console.log(
    `abaca replicated bench: ${SIZE_MIB} MiB in ${CHUNK / 1024} KiB chunks x ${WINDOW} in flight, ${FILES} heal files, ` +
      `${CREATES} creates x 4 clients (depth ${DEPTH}, after ${RAMP} untimed), dir ${base}`,
  );
  const raw = rawDisk();
  const rawCreate = rawCreates(CREATES, false);
  const rawCreateSync = rawCreates(Math.min(CREATES, 500), true);
  const dirs = [1, 2, 3].map((i) => path.join(base, `brick${i}`));
  const bricks = await Promise.all(
    dirs.map((d, i) =>
      spawnDaemon('abaca-brick.js', ['--dir', d, '--host-label', `h${i}`, '--zone', `z${i}`]),
    ),
  );
  procs.push(...bricks);
  const adminToken = randomUUID();
  const server = await spawnDaemon(
    'abaca-share-server.js',
    ['--bricks', bricks.map((b) => b.addr).join(','), '--brick-timeout-ms', '30000'],
    undefined,
    { ABACA_ADMIN_TOKEN: adminToken },
  );
  procs.push(server);
  const connect = (share?: string): Promise<ReplicatedClient> =>
    ReplicatedClient.connect({ host: '127.0.0.1', port: server.port, share, timeoutMs: 120_000, adminToken });
  const admin = await connect();
  await admin.createShare('bench', 64 * 1024 * MIB);
  const c = await connect('bench');

  let t0 = process.hrtime.bigint();
  const fsyncS = await streamWrite(c, 'big', SIZE_MIB);
  const write = (SIZE_MIB * MIB) / secs(t0) / 1e6;

  t0 = process.hrtime.bigint();
  const got = await streamRead(c, 'big', SIZE_MIB);
  const read = got / secs(t0) / 1e6;

  const clients = await Promise.all([0, 1, 2, 3].map(() => connect('bench')));
  const createsNoSync = await creates(clients, 'c', false);
  const createsSync = await creates(clients, 'cs', true);

  // (5) heal: brick 3 misses FILES small files and one big file, then returns.
  const b3 = bricks[2]!;
  await b3.kill9();
  await c.mkdir('heal');
  const body = pool.subarray(0, 4096);
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < FILES) {
        await c.createWith(`heal/f${next++}`, body, { excl: true });
      }
    }),
  );
  await streamWrite(c, 'heal-big', SIZE_MIB);
  const b3new = await spawnDaemon('abaca-brick.js', ['--dir', dirs[2]!, '--port', String(b3.port)]);
  procs.push(b3new);
  t0 = process.hrtime.bigint(); // from the moment the brick listens again: reconnect + heal
  await waitHealed(admin, 'bench');
  const healS = secs(t0);
  const healFiles = (FILES + 1) / healS;
  const healMiB = (FILES * 4096 + SIZE_MIB * MIB) / MIB / healS;

  // (5b) partial heal: 1 MiB in the middle of the big file changes while brick 3 is down.
  await b3new.kill9();
  await c.write('heal-big', Math.floor(SIZE_MIB / 2) * MIB, randomBytes(MIB));
  const b3again = await spawnDaemon('abaca-brick.js', ['--dir', dirs[2]!, '--port', String(b3.port)]);
  procs.push(b3again);
  t0 = process.hrtime.bigint();
  await waitHealed(admin, 'bench');
  const partialS = secs(t0);

  const rows: Array<[string, string, string, string]> = [
    ['(1) raw disk write 1 file + fsync', `${raw.toFixed(0)} MB/s`, '1.00', ''],
    [
      '(2) replica-3 sequential write + fsync',
      `${write.toFixed(0)} MB/s`,
      (write / raw).toFixed(2),
      `final fsync ${fsyncS.toFixed(2)} s; target >= 170 MB/s`,
    ],
    ['(3) replica-3 sequential read', `${read.toFixed(0)} MB/s`, (read / raw).toFixed(2), ''],
    ['(1b) raw disk 4 KiB creates, 1 process', `${rawCreate.toFixed(0)} files/s`, '1.00', ''],
    ['(1c) raw disk 4 KiB creates + fsync, 1 process', `${rawCreateSync.toFixed(0)} files/s`, '1.00', ''],
    [
      '(4) 4 KiB creates, 4 clients, no fsync',
      `${createsNoSync.toFixed(0)} files/s`,
      `${(createsNoSync / rawCreate).toFixed(2)} of (1b)`,
      'target >= 1000/s',
    ],
    [
      '(4) 4 KiB creates, 4 clients, fsync',
      `${createsSync.toFixed(0)} files/s`,
      `${(createsSync / rawCreateSync).toFixed(2)} of (1c)`,
      '',
    ],
    [
      `(5) heal ${FILES} x 4 KiB + ${SIZE_MIB} MiB`,
      `${healFiles.toFixed(0)} files/s, ${healMiB.toFixed(0)} MiB/s`,
      ((healMiB * MIB) / 1e6 / raw).toFixed(2),
      `${healS.toFixed(1)} s; target >= 100 files/s`,
    ],
    ['(5b) ranged heal: 1 MiB changed in the big file', `${partialS.toFixed(2)} s`, '', ''],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  console.log(`${'measurement'.padEnd(w0)}  ${'result'.padEnd(w1)}  ratio to (1)  note`);
  for (const r of rows) console.log(`${r[0].padEnd(w0)}  ${r[1].padEnd(w1)}  ${r[2].padEnd(12)}  ${r[3]}`);
  console.log(
    `load average at the end: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')} on ${os.cpus().length} CPUs`,
  );
  admin.close();
  c.close();
  for (const x of clients) x.close();
}

try {
  await main();
} finally {
  for (const p of procs) await p.kill9();
  fs.rmSync(base, { recursive: true, force: true });
}
