/**
 * Snapshot, revert and clone on the built-in replicated backend, as a client of the share server
 * sees them: three real bricks and one share server on loopback (replica 3), the bricks' directories
 * on a fresh loop file system per case, the share's data written through ReplicatedClient and
 * checked on every replica's disk before anything is timed. Cases (ABACA_BENCH_CASES, default
 * "a,b,c"):
 *   (a) one file of ABACA_BENCH_BIG_MIB MiB (1024)
 *   (b) ABACA_BENCH_SMALL_FILES files of 4 KiB (10,000), 1,000 per directory
 *   (c) 100 MiB in 1,000 files, 100 per directory
 * For each, in the same run:
 *   cp -a      `cp -a --reflink=never` of one replica's data/ (a plain full copy, as the local rows), timed once per round
 *   snapshot   client.createSnapshot (barrier, catalog, every replica's tree, fsyncs)
 *   write      the first change after the snapshot (untimed for the targets, shown because on a
 *              hard-link tree the copy-on-write cost lands here): (a) 1 MiB at offset 0, (b)/(c)
 *              1% of the files rewritten and one new file
 *   revert     client.revertToSnapshot to that snapshot, undoing the change
 *   clone      client.cloneShare from that snapshot
 * each ABACA_BENCH_REPEAT times (3; median, min and max shown), with the method every brick
 * reported in the call's answer. The file system is synced (untimed) before each timed step.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ReplicatedClient } from '../backends/replicated/client/client.ts';
import { type Proc, spawnDaemon } from '../backends/replicated/processes.ts';
import { median } from './lib.ts';
import { type FsKind, run, type ScratchFs, secs, syncFs } from './loop-fs.ts';

const MIB = 1024 * 1024;
const CASES = (process.env['ABACA_BENCH_CASES'] ?? 'a,b,c').split(',');
const REPEAT = Number(process.env['ABACA_BENCH_REPEAT'] ?? 3);
const BIG_MIB = Number(process.env['ABACA_BENCH_BIG_MIB'] ?? 1024);
const SMALL_FILES = Number(process.env['ABACA_BENCH_SMALL_FILES'] ?? 10_000);
/** Chunk of the big file's writes and pipelined writes in flight (as bench/replicated.ts). */
const CHUNK = MIB;
const WINDOW = 16;
/** Clients writing the small files, and creates in flight per client. */
const WRITERS = 4;
const DEPTH = 8;

interface Case {
  key: string;
  label: string;
  files: number;
  fileBytes: number;
  perDir: number;
}

const ALL_CASES: Case[] = [
  { key: 'a', label: `(a) 1 × ${BIG_MIB} MiB`, files: 1, fileBytes: BIG_MIB * MIB, perDir: 1 },
  { key: 'b', label: `(b) ${SMALL_FILES} × 4 KiB`, files: SMALL_FILES, fileBytes: 4096, perDir: 1000 },
  // 100 MiB in 1,000 files: 102.4 KiB each, rounded up to a byte.
  {
    key: 'c',
    label: '(c) 1000 × 100 KiB',
    files: 1000,
    fileBytes: Math.ceil((100 * MIB) / 1000),
    perDir: 100,
  },
];

type Op = 'cp -a' | 'snapshot' | 'write' | 'revert' | 'clone';

interface Row {
  fs: string;
  kind: FsKind;
  c: Case;
  op: Op;
  methods: string;
  times: number[];
  /** Brick-side milliseconds (snapshot: the slowest replica's own time for its tree). */
  brickMs: number[];
  cp: number;
}

const pool = randomBytes(16 * MIB + CHUNK);
const chunkAt = (i: number): Buffer => pool.subarray((i % 16) * MIB, (i % 16) * MIB + CHUNK);
const bodyAt = (i: number, n: number): Buffer => {
  const at = (i * 4099) % (pool.length - n);
  return pool.subarray(at, at + n);
};

const fileName = (c: Case, i: number): string =>
  c.files === 1 ? 'big.bin' : `d${Math.floor(i / c.perDir)}/f${i}`;

/** Writes the case's data through the client library, as an application would. */
async function writeData(clients: ReplicatedClient[], c: Case): Promise<void> {
  const first = clients[0]!;
  if (c.files === 1) {
    const p = fileName(c, 0);
    await first.create(p);
    const n = Math.ceil(c.fileBytes / CHUNK);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < n) {
        const i = next++;
        await first.write(p, i * CHUNK, chunkAt(i).subarray(0, Math.min(CHUNK, c.fileBytes - i * CHUNK)));
      }
    };
    await Promise.all(Array.from({ length: WINDOW }, worker));
    await first.fsync(p);
    return;
  }
  for (let d = 0; d * c.perDir < c.files; d++) await first.mkdir(`d${d}`);
  let next = 0;
  await Promise.all(
    clients.flatMap((cl) =>
      Array.from({ length: DEPTH }, async () => {
        while (next < c.files) {
          const i = next++;
          await cl.createWith(fileName(c, i), bodyAt(i, c.fileBytes), { excl: true });
        }
      }),
    ),
  );
}

/** The change a revert has to undo (see the header); returns its seconds. */
async function change(cl: ReplicatedClient, c: Case, round: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  if (c.files === 1) await cl.write(fileName(c, 0), 0, bodyAt(round + 1, MIB));
  else {
    const n = Math.max(1, Math.floor(c.files / 100));
    await Promise.all(
      Array.from({ length: n }, (_, k) =>
        cl.createWith(fileName(c, (k * 97 + round) % c.files), bodyAt(k + round + 7, c.fileBytes)),
      ),
    );
    await cl.createWith(`new-${round}`, bodyAt(round, 4096), { excl: true });
  }
  return secs(t0);
}

/** Every replica answered every operation (heal info clean: no dirty or pending markers). */
async function settled(admin: ReplicatedClient, share: string): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const info = await admin.healInfo(share);
    if (info.every((b) => b.connected && b.count === 0)) return;
    if (Date.now() - t0 > 120_000) throw new Error(`share ${share}: replicas not settled after 120 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Files and bytes of one replica's data/ as they are on the brick's disk. */
function onDisk(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) walk(f);
      else if (e.isFile()) {
        files++;
        bytes += fs.lstatSync(f).size;
      }
    }
  };
  walk(dir);
  return { files, bytes };
}

const methodsOf = (m: unknown): string =>
  [...new Set(Object.values((m ?? {}) as Record<string, string>))].sort().join('/') || '?';

async function measureCase(scratch: ScratchFs, kind: FsKind, c: Case): Promise<Row[]> {
  const dataMiB = (c.files * c.fileBytes) / MIB;
  // Three replicas, the cp -a copy, three copy-on-write copies (a hard-link tree's first write to
  // each shared file), metadata and room to spare.
  const imgMiB = Math.ceil(8 * dataMiB + 1024);
  const mnt = scratch.make(kind, imgMiB, `repl-${kind}-${c.key}`, c.files === 1 ? 64 : 4);
  const procs: Proc[] = [];
  const clients: ReplicatedClient[] = [];
  try {
    const bricks = await Promise.all(
      [1, 2, 3].map((i) =>
        spawnDaemon('abaca-brick.js', [
          '--dir',
          path.join(mnt, `brick${i}`),
          '--host-label',
          `h${i}`,
          '--zone',
          `z${i}`,
        ]),
      ),
    );
    procs.push(...bricks);
    const adminToken = randomUUID();
    const server = await spawnDaemon(
      'abaca-share-server.js',
      ['--bricks', bricks.map((b) => b.addr).join(','), '--brick-timeout-ms', '60000'],
      undefined,
      { ABACA_ADMIN_TOKEN: adminToken },
    );
    procs.push(server);
    const connect = async (share?: string): Promise<ReplicatedClient> => {
      const cl = await ReplicatedClient.connect({
        host: '127.0.0.1',
        port: server.port,
        share,
        timeoutMs: 600_000,
        adminToken,
      });
      clients.push(cl);
      return cl;
    };
    const admin = await connect();
    const shareBytes = Math.ceil(c.files * c.fileBytes * 1.1) + 64 * MIB;
    await admin.createShare('src', shareBytes);
    const writers = await Promise.all(Array.from({ length: WRITERS }, () => connect('src')));
    let t0 = process.hrtime.bigint();
    await writeData(writers, c);
    await settled(admin, 'src');
    const writeS = secs(t0);
    const dataDirs = [1, 2, 3].map((i) => path.join(mnt, `brick${i}`, 'shares', 'src', 'data'));
    for (const d of dataDirs) {
      const got = onDisk(d);
      if (got.files !== c.files || got.bytes !== c.files * c.fileBytes)
        throw new Error(
          `${d}: ${got.files} files, ${got.bytes} bytes on disk; expected ${c.files}, ${c.files * c.fileBytes}`,
        );
    }

    // The copy is timed in every round, beside the snapshot, so both see the same load; each copy is
    // removed (untimed) before the next round.
    const cpTimes: number[] = [];
    const timeCopy = (): void => {
      const to = path.join(mnt, 'cp-copy');
      syncFs(mnt);
      const t = process.hrtime.bigint();
      run('cp', ['-a', '--reflink=never', dataDirs[0]!, to]);
      cpTimes.push(secs(t));
      fs.rmSync(to, { recursive: true, force: true });
    };
    timeCopy();

    const label = scratch.label(kind, mnt);
    const row = (op: Op): Row => ({ fs: label, kind, c, op, methods: '', times: [], brickMs: [], cp: 0 });
    const rows = {
      snapshot: row('snapshot'),
      write: row('write'),
      revert: row('revert'),
      clone: row('clone'),
    };
    const methods = { snapshot: new Set<string>(), revert: new Set<string>(), clone: new Set<string>() };
    const c1 = writers[0]!;
    for (let r = 0; r < REPEAT; r++) {
      const snap = `snap${r}`;
      if (r > 0) timeCopy();
      syncFs(mnt);
      t0 = process.hrtime.bigint();
      const made = await admin.createSnapshot('src', snap);
      rows.snapshot.times.push(secs(t0));
      methods.snapshot.add(methodsOf(made['methods']));
      rows.snapshot.brickMs.push(Number((made['snapshot'] as { ms?: number } | undefined)?.ms ?? Number.NaN));

      rows.write.times.push(await change(c1, c, r));
      await settled(admin, 'src');

      syncFs(mnt);
      t0 = process.hrtime.bigint();
      const reverted = await admin.revertToSnapshot('src', snap);
      rows.revert.times.push(secs(t0));
      methods.revert.add(methodsOf(reverted['methods']));

      syncFs(mnt);
      t0 = process.hrtime.bigint();
      const cloned = await admin.cloneShare(`clone${r}`, shareBytes, { from: 'src', snapshot: snap });
      rows.clone.times.push(secs(t0));
      methods.clone.add(String(cloned['method'] ?? '?'));
      // The writers' connections were to the tree before the revert: reconnect for the next change.
      if (r + 1 < REPEAT) writers[0] = await connect('src');
    }
    rows.snapshot.methods = [...methods.snapshot].join(', ');
    rows.revert.methods = [...methods.revert].join(', ');
    rows.clone.methods = [...methods.clone].join(', ');
    const linked = [...methods.snapshot].some((m) => m !== 'reflink');
    rows.write.methods = !linked ? 'reflinked file' : kind === 'xfs' ? 'linked file, cloned' : 'linked file';
    const cp = median(cpTimes);
    for (const x of Object.values(rows)) x.cp = cp;
    const cpRow: Row = { ...row('cp -a'), methods: 'copy', times: cpTimes, cp };
    console.log(
      `  ${label} ${c.label}: written in ${writeS.toFixed(1)} s, cp -a ${cp.toFixed(2)} s, snapshot ${median(rows.snapshot.times).toFixed(3)} s, ` +
        `revert ${median(rows.revert.times).toFixed(3)} s, clone ${median(rows.clone.times).toFixed(3)} s`,
    );
    return [cpRow, rows.snapshot, rows.write, rows.revert, rows.clone];
  } finally {
    for (const cl of clients) cl.close();
    for (const p of procs) await p.kill9();
    scratch.drop(kind, mnt);
  }
}

/** The targets for a row, as text and whether the median meets it. */
function target(r: Row): { text: string; met: boolean } | undefined {
  const t = median(r.times);
  if (r.op === 'snapshot') {
    const limit = r.kind === 'ext4' ? (r.c.key === 'a' ? 0.2 : r.c.key === 'b' ? 2 : undefined) : undefined;
    const text = limit === undefined ? '≤ cp -a' : `< ${limit} s, ≤ cp -a`;
    return { text, met: t <= r.cp && (limit === undefined || t < limit) };
  }
  if ((r.op === 'revert' || r.op === 'clone') && r.kind === 'xfs' && r.c.key === 'a')
    return { text: '< 0.5 s', met: t < 0.5 };
  return undefined;
}

function printRows(rows: Row[]): void {
  const header = [
    'filesystem',
    'share holds',
    'operation',
    'method',
    'median s',
    'min s',
    'max s',
    'vs cp -a',
    'brick ms',
    'target',
    'met',
  ];
  const f = (x: number) => (x >= 10 ? x.toFixed(1) : x.toFixed(3));
  const table = rows.map((r) => {
    const t = target(r);
    const m = median(r.times);
    return [
      r.fs,
      r.c.label,
      r.op === 'write' ? 'first write after' : r.op,
      r.methods,
      f(m),
      f(Math.min(...r.times)),
      f(Math.max(...r.times)),
      r.op === 'cp -a' ? '1' : `${(m / r.cp).toFixed(3)}×`,
      r.brickMs.length ? String(Math.round(median(r.brickMs))) : '',
      t?.text ?? '',
      t ? (t.met ? 'yes' : 'NO') : '',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ');
  console.log(line(header));
  for (const row of table) console.log(line(row));
}

export async function benchReplicated(scratch: ScratchFs, kinds: FsKind[]): Promise<void> {
  const cases = ALL_CASES.filter((c) => CASES.includes(c.key));
  console.log(
    `\nreplicated backend (3 bricks + share server on loopback, replica 3, admin calls timed as a client sees them): ` +
      `cases ${cases.map((c) => c.label).join(', ')}; ${REPEAT} rounds each`,
  );
  const started = process.hrtime.bigint();
  const rows: Row[] = [];
  for (const kind of kinds) for (const c of cases) rows.push(...(await measureCase(scratch, kind, c)));
  console.log(
    "\nmethod: what every brick reported in the admin call's answer (one value: all three agree). median/min/max over " +
      `${REPEAT} rounds of snapshot → first write after it → revert to it → clone from it. vs cp -a: over the median of ` +
      "`cp -a --reflink=never` of one replica's data/ on the same file system, timed once per round. brick ms: the snapshot as " +
      'the first replica to answer timed its own tree. first write after: the change the revert undoes (on a hard-link ' +
      'tree, the copy-on-write of the shared files).\n',
  );
  printRows(rows);
  console.log(`\nreplicated backend: ${secs(started).toFixed(0)} s`);
}
