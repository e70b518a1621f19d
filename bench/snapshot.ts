/**
 * `npm run bench:snapshot`: snapshot costs of the backends that keep snapshots on a file system,
 * each beside `cp -a` of the same data in the same run. ABACA_BENCH_BACKENDS picks them
 * ("local,replicated" by default); the replicated rows are bench/snapshot-replicated.ts (three
 * bricks and a share server, admin calls timed as a client sees them). Loop images: loop-fs.ts.
 *
 * Snapshot and create-from-snapshot on the `local` backend, called directly (no HTTP: the API adds a
 * constant few milliseconds; the copy is what grows). For each filesystem, size and shape it times:
 *   baseline   `cp -a --reflink=never` of the share's data: a plain full copy with modes and times,
 *              on the same filesystem in the same run, which is what the backend does without reflink
 *   snapshot   backend.createSnapshot
 *   clone      backend.createShareFromSnapshot from that snapshot
 * and the disk space the snapshot took. Shapes: many small files (ABACA_BENCH_FILE_KIB, default 8 KiB,
 * 256 per directory) and one big file. Sizes: ABACA_BENCH_SIZES MiB (default "10,100,1024").
 *
 * Filesystems: ext4 and XFS (reflink=1), each a fresh loop image per case (so no case inherits another's
 * page cache or fragmentation, and clean-up is an unmount rather than deleting a million files). Without
 * root, mkfs or loop devices it falls back to one run in os.tmpdir() and says so. ABACA_BENCH_FS picks
 * ("ext4,xfs" by default; "tmpdir" for the fallback). Page cache: warm (the data was just written); the
 * filesystem is synced, untimed, before each timed step, and the steps themselves do not fsync (nor does
 * the backend's copy).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLocalBackend } from '../backends/local.ts';
import type { ShareRef, SnapshotRef } from '../backends/types.ts';
import { type FsKind, freeBytes, fsTypeName, run, ScratchFs, secs, syncFs } from './loop-fs.ts';
import { benchReplicated } from './snapshot-replicated.ts';

const MIB = 1024 * 1024;
const SIZES = (process.env['ABACA_BENCH_SIZES'] ?? '10,100,1024').split(',').map(Number);
// 8 KiB by default: the cost is per file, and 4 KiB files (262,144 per GiB) take the run past five
// minutes on a 2-core machine. ABACA_BENCH_FILE_KIB=4 gives the 4 KiB numbers.
const FILE_KIB = Number(process.env['ABACA_BENCH_FILE_KIB'] ?? 8);
const FILESYSTEMS = (process.env['ABACA_BENCH_FS'] ?? 'ext4,xfs').split(',') as FsKind[];
const BACKENDS = (process.env['ABACA_BENCH_BACKENDS'] ?? 'local,replicated').split(',');
const PER_DIR = 256;

type Shape = 'small files' | 'one big file';

const scratch = new ScratchFs();
const pool = randomBytes(16 * MIB);

/** Writes the share's data as a client would: `mib` MiB in files of FILE_KIB, or in one file. */
function writeData(dir: string, shape: Shape, mib: number): number {
  if (shape === 'one big file') {
    const fd = fs.openSync(path.join(dir, 'big.bin'), 'w');
    for (let off = 0; off < mib * MIB; off += 4 * MIB)
      fs.writeSync(fd, pool, ((off / (4 * MIB)) % 4) * 4 * MIB, Math.min(4 * MIB, mib * MIB - off), off);
    fs.closeSync(fd);
    return 1;
  }
  const size = FILE_KIB * 1024;
  const n = Math.ceil((mib * MIB) / size);
  for (let i = 0; i < n; i++) {
    const d = path.join(dir, `d${Math.floor(i / PER_DIR)}`);
    if (i % PER_DIR === 0) fs.mkdirSync(d);
    const at = (i * size) % (pool.length - size);
    fs.writeFileSync(path.join(d, `f${i}`), pool.subarray(at, at + size));
  }
  return n;
}

interface Row {
  fs: string;
  method: string;
  shape: Shape;
  mib: number;
  files: number;
  write: number;
  baseline: number;
  snapshot: number;
  snapshotSynced: number;
  clone: number;
  snapDiskMiB: number;
}

async function measure(kind: FsKind, shape: Shape, mib: number): Promise<Row> {
  // Source, baseline copy, snapshot and clone, plus room for metadata.
  const mnt = scratch.make(kind, 5 * mib + 256, `${kind}-${shape.replaceAll(' ', '-')}-${mib}`);
  const backend = createLocalBackend({ name: 'bench', rootDir: path.join(mnt, 'root'), capacityGiB: 1000 });
  try {
    const share: ShareRef = {
      id: 'source',
      size: Math.ceil(mib / 1024) + 1,
      shareProto: 'NFS',
      pool: 'local',
    };
    const [loc] = await backend.createShare(share);
    if (!loc) throw new Error('no export location');
    let t0 = process.hrtime.bigint();
    const files = writeData(loc.path, shape, mib);
    const write = secs(t0);

    syncFs(mnt);
    t0 = process.hrtime.bigint();
    run('cp', ['-a', '--reflink=never', loc.path, path.join(mnt, 'baseline')]);
    const baseline = secs(t0);

    syncFs(mnt);
    const method = await backend.cloneMethod();
    const freeBefore = freeBytes(mnt);
    const snap: SnapshotRef = { id: 'snap', shareId: share.id, size: share.size };
    t0 = process.hrtime.bigint();
    await backend.createSnapshot(snap);
    const snapshot = secs(t0);
    syncFs(mnt);
    // Until the snapshot's copy is on disk too: the call itself returns with it in the page cache.
    const snapshotSynced = secs(t0);
    const snapDiskMiB = (freeBefore - freeBytes(mnt)) / MIB;

    t0 = process.hrtime.bigint();
    await backend.createShareFromSnapshot({ ...share, id: 'clone' }, snap);
    const clone = secs(t0);
    return {
      fs: scratch.label(kind, mnt),
      method,
      shape,
      mib,
      files,
      write,
      baseline,
      snapshot,
      snapshotSynced,
      clone,
      snapDiskMiB,
    };
  } finally {
    await backend.close();
    scratch.drop(kind, mnt);
  }
}

function printRows(rows: Row[]): void {
  const header = [
    'filesystem',
    'copy',
    'shape',
    'size',
    'files',
    'write s',
    'cp -a s',
    'snapshot s',
    'snap MiB/s',
    'snap/cp',
    'snap+sync s',
    'clone s',
    'clone MiB/s',
    'clone/cp',
    'snap disk MiB',
  ];
  const f = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  const table = rows.map((r) => [
    r.fs,
    r.method,
    r.shape,
    r.mib >= 1024 ? `${r.mib / 1024} GiB` : `${r.mib} MiB`,
    String(r.files),
    f(r.write),
    f(r.baseline),
    f(r.snapshot),
    (r.mib / r.snapshot).toFixed(0),
    `${(r.snapshot / r.baseline).toFixed(2)}×`,
    f(r.snapshotSynced),
    f(r.clone),
    (r.mib / r.clone).toFixed(0),
    `${(r.clone / r.baseline).toFixed(2)}×`,
    r.snapDiskMiB.toFixed(1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ');
  console.log(line(header));
  for (const row of table) console.log(line(row));
}

async function benchLocal(kinds: FsKind[]): Promise<void> {
  console.log(
    `\nlocal backend (direct calls): sizes ${SIZES.join(', ')} MiB; small files of ${FILE_KIB} KiB`,
  );
  const rows: Row[] = [];
  const started = process.hrtime.bigint();
  for (const kind of kinds)
    for (const shape of ['small files', 'one big file'] as const)
      for (const mib of SIZES) {
        const row = await measure(kind, shape, mib);
        rows.push(row);
        console.log(
          `  ${row.fs} ${shape} ${mib} MiB: cp ${row.baseline.toFixed(2)} s, snapshot ${row.snapshot.toFixed(2)} s, ` +
            `clone ${row.clone.toFixed(2)} s`,
        );
      }
  console.log(
    '\nsnap/cp and clone/cp: time of the operation over the time of `cp -a --reflink=never` of the same data on the same ' +
      'filesystem (below 1× is faster). snap+sync: the snapshot until its data is on disk (sync -f). snap disk MiB: free ' +
      'space the snapshot took (after sync).\n',
  );
  printRows(rows);
  console.log(`\nlocal backend: ${secs(started).toFixed(0)} s`);
}

async function main(): Promise<void> {
  const cpus = os.cpus();
  console.log(
    `abaca snapshot bench (${BACKENDS.join(', ')}), ${new Date().toISOString().slice(0, 10)}, ${cpus.length}× ${cpus[0]?.model.trim()}, ` +
      `Node ${process.version}, Linux ${os.release()}; temp dir ${fsTypeName(scratch.base)} at ${scratch.base}`,
  );
  const kinds: FsKind[] = [];
  for (const kind of FILESYSTEMS) {
    if (kind === 'tmpdir') {
      kinds.push(kind);
      continue;
    }
    const why = scratch.canLoopMount(kind);
    if (why) console.log(`${kind}: skipped (${why})`);
    else kinds.push(kind);
  }
  if (!kinds.length) {
    console.log('no loop filesystem could be made: measuring in the temp dir instead');
    kinds.push('tmpdir');
  }
  const started = process.hrtime.bigint();
  for (const b of BACKENDS) {
    if (b === 'local') await benchLocal(kinds);
    else if (b === 'replicated') await benchReplicated(scratch, kinds);
    else throw new Error(`ABACA_BENCH_BACKENDS: unknown backend ${b} (local, replicated)`);
  }
  console.log(
    `\ntotal ${secs(started).toFixed(0)} s; load average at the end: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')} on ${cpus.length} CPUs`,
  );
}

for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    scratch.cleanup();
    process.exit(130);
  });

try {
  await main();
} finally {
  scratch.cleanup();
}
