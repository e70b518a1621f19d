// `npm run bench:mount` (root, /dev/fuse): issue 17's benchmark of `abaca mount`. Starts 3 bricks
// and a share server under a temporary directory, mounts a replica-3 share with `abaca mount`,
// and runs the same workloads through the mount and on the local disk (the temporary directory),
// plus sequential I/O, creates and removals through the client library in the same run:
//   sequential write + fsync and sequential read after dropping caches (fio when installed,
//   else dd with 1 MiB blocks), 4 KiB random read and write IOPS with 4 jobs (fio when installed,
//   else Node processes issuing the same psync reads and writes; the client library too), and
//   creating ABACA_BENCH_FILES (default 10,000) files of 4 KiB with 4 processes, then removing
//   them with 4 `rm -r`.
// Sizes: ABACA_BENCH_MIB (default 1024). ABACA_BENCH_ROUNDS (default 3) rounds, each running
// every workload on the mount, the local disk and the client library back to back; the table shows
// each one's median and every round's rate, and the ratios compare medians (this VM's speed moves by
// half within minutes, so one sample says little). It prints what it ran, and the CPU seconds the mount,
// the share server and the bricks spent on each workload through the mount (per GiB, per 1,000
// files), which say more than rates on a machine shared with other work, and their minor page
// faults (new memory touched: fresh socket buffers, new page-cache pages).
// ABACA_BENCH_ONLY=seq,library,random,creates runs a subset; ABACA_BENCH_MOUNT_OPTS are -o options; ABACA_BENCH_PROF=DIR writes a V8
// CPU profile of each daemon and of the mount process to DIR (they stop with SIGTERM then).
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ReplicatedClient } from '../backends/replicated/client/client.ts';
import { type Proc, spawnDaemon } from '../backends/replicated/processes.ts';
import { median } from './lib.ts';
import { fsTypeName } from './loop-fs.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MIB = Number(process.env.ABACA_BENCH_MIB ?? 1024);
const FILES = Number(process.env.ABACA_BENCH_FILES ?? 10_000);
const JOBS = 4;
const ROUNDS = Number(process.env.ABACA_BENCH_ROUNDS ?? 3);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1)
  throw new Error('ABACA_BENCH_ROUNDS must be a whole number of 1 or more');
const hasFio = spawnSync('fio', ['--version']).status === 0;
const ONLY = new Set((process.env.ABACA_BENCH_ONLY ?? 'seq,library,random,creates').split(','));
const PROF = process.env.ABACA_BENCH_PROF;
// Node refuses --cpu-prof in NODE_OPTIONS: the daemons are started through a shell that adds it.
const profFlags = PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(PROF)}`] : [];
const profPrefix = PROF ? ['sh', '-c', `exec "$0" ${profFlags.join(' ')} "$@"`] : undefined;

/** CPU seconds (user + system) and minor page faults a process has had so far; 0 once it is gone. */
function usage(pid: number): { cpu: number; faults: number } {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // minflt, then utime and stime in clock ticks (USER_HZ = 100)
    return { cpu: (Number(f[11]) + Number(f[12])) / 100, faults: Number(f[7]) };
  } catch {
    return { cpu: 0, faults: 0 };
  }
}

/** The pid of the process serving the FUSE mount at `dir` (the detached `abaca mount`). */
function mountPid(dir: string): number | undefined {
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const argv = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      if (argv.includes('mount') && argv.includes(dir) && argv.some((a) => a.endsWith('abaca.js')))
        return Number(e);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

interface CpuRow {
  workload: string;
  per: string;
  units: number;
  seconds: Record<string, number>;
  /** Minor page faults: new memory touched (fresh socket buffers, page-cache pages). */
  faults: Record<string, number>;
}
const cpuRows: CpuRow[] = [];
let watched: Array<{ name: string; pid: number }> = [];

/** Runs `fn` and records the CPU seconds each watched process spent meanwhile. */
async function withCpu(workload: string, per: string, units: number, fn: () => unknown): Promise<void> {
  const before = watched.map((w) => usage(w.pid));
  await fn();
  const seconds: Record<string, number> = {};
  const faults: Record<string, number> = {};
  watched.forEach((w, i) => {
    const now = usage(w.pid);
    seconds[w.name] = now.cpu - before[i]!.cpu;
    faults[w.name] = now.faults - before[i]!.faults;
  });
  cpuRows.push({ workload, per, units, seconds, faults });
}

interface Row {
  workload: string;
  where: string;
  value: number;
  unit: string;
}
const rows: Row[] = [];

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout + r.stderr;
}

function dropCaches(): void {
  spawnSync('sync');
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
  } catch {
    // not root: the read may come from the page cache (the local disk's especially)
  }
}

/** Seconds `fn` takes. */
async function timed(fn: () => unknown): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function sequential(where: string, dir: string, cpu = false): Promise<void> {
  const file = path.join(dir, 'seq.bin');
  const gib = MIB / 1024;
  const measured = (name: string, fn: () => unknown) => (cpu ? withCpu(name, 'GiB', gib, fn) : fn());
  if (hasFio) {
    const common = ['--name=seq', `--filename=${file}`, '--bs=1M', `--size=${MIB}M`, '--output-format=json'];
    let out = '';
    await measured('seq write + fsync', () => {
      out = run('fio', [...common, '--rw=write', '--end_fsync=1', '--ioengine=psync']);
    });
    const w = JSON.parse(out);
    rows.push({
      workload: `seq write ${MIB} MiB + fsync`,
      where,
      value: w.jobs[0].write.bw_bytes / 1e6,
      unit: 'MB/s',
    });
    dropCaches();
    await measured('seq read (cold)', () => {
      out = run('fio', [...common, '--rw=read', '--ioengine=psync']);
    });
    const r = JSON.parse(out);
    rows.push({
      workload: `seq read ${MIB} MiB (cold)`,
      where,
      value: r.jobs[0].read.bw_bytes / 1e6,
      unit: 'MB/s',
    });
    // The same file again, caches kept (fio drops the file's pages before a job unless told not
    // to): what a program re-reading an unchanged file gets.
    await measured('seq read again (warm)', () => {
      out = run('fio', [...common, '--rw=read', '--ioengine=psync', '--invalidate=0']);
    });
    rows.push({
      workload: `seq read ${MIB} MiB again (warm)`,
      where,
      value: JSON.parse(out).jobs[0].read.bw_bytes / 1e6,
      unit: 'MB/s',
    });
  } else {
    let ws = 0;
    await measured('seq write + fsync', async () => {
      ws = await timed(() =>
        run('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${MIB}`, 'conv=fsync']),
      );
    });
    rows.push({
      workload: `seq write ${MIB} MiB + fsync`,
      where,
      value: (MIB * 1.048576) / ws,
      unit: 'MB/s',
    });
    dropCaches();
    let rs = 0;
    await measured('seq read (cold)', async () => {
      rs = await timed(() => run('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M']));
    });
    rows.push({
      workload: `seq read ${MIB} MiB (cold)`,
      where,
      value: (MIB * 1.048576) / rs,
      unit: 'MB/s',
    });
    await measured('seq read again (warm)', async () => {
      rs = await timed(() => run('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M']));
    });
    rows.push({
      workload: `seq read ${MIB} MiB again (warm)`,
      where,
      value: (MIB * 1.048576) / rs,
      unit: 'MB/s',
    });
  }
  fs.rmSync(file, { force: true });
}

const RANDOM_MIB = 64;
const RANDOM_SECONDS = 10;

/** 4 KiB random reads, then writes, JOBS jobs of a RANDOM_MIB file each, for RANDOM_SECONDS: fio's, or the same in Node. */
async function random(where: string, dir: string): Promise<void> {
  for (const rw of ['randread', 'randwrite'] as const) {
    let iops: number;
    if (hasFio) {
      const out = JSON.parse(
        run('fio', [
          `--name=${rw}`,
          `--directory=${dir}`,
          `--rw=${rw}`,
          '--bs=4k',
          `--size=${RANDOM_MIB}M`,
          `--numjobs=${JOBS}`,
          '--time_based',
          `--runtime=${RANDOM_SECONDS}`,
          '--ioengine=psync',
          '--group_reporting',
          '--output-format=json',
        ]),
      );
      iops = out.jobs[0][rw === 'randread' ? 'read' : 'write'].iops;
    } else iops = await randomInNode(dir, rw);
    rows.push({ workload: `4 KiB ${rw}, ${JOBS} jobs`, where, value: iops, unit: 'IOPS' });
  }
  for (const f of fs.readdirSync(dir)) if (f.startsWith('rand')) fs.rmSync(path.join(dir, f));
}

/**
 * What fio's psync job does, without fio: each of JOBS processes lays out its own file (untimed),
 * then, started together with the caches dropped, issues one 4 KiB pread or pwrite at a random
 * aligned offset after another.
 */
const RANDOM_JOB = `
const fs = require('node:fs');
const [file, rw, seconds, mib] = process.argv.slice(1);
const size = Number(mib) * 1048576;
const fd = fs.openSync(file, fs.existsSync(file) ? 'r+' : 'w+');
const layout = Buffer.alloc(1048576, 1);
for (let at = fs.fstatSync(fd).size; at < size; at += layout.length) fs.writeSync(fd, layout, 0, layout.length, at);
process.stdout.write('ready\\n');
process.stdin.once('data', () => {
  const buf = Buffer.alloc(4096, 2);
  const end = Date.now() + Number(seconds) * 1000;
  let n = 0;
  while (Date.now() < end)
    for (let k = 0; k < 16; k++, n++) {
      const at = Math.floor(Math.random() * (size / 4096)) * 4096;
      if (rw === 'randread') fs.readSync(fd, buf, 0, 4096, at);
      else fs.writeSync(fd, buf, 0, 4096, at);
    }
  fs.closeSync(fd);
  process.stdout.write(n + '\\n');
});`;

async function randomInNode(dir: string, rw: 'randread' | 'randwrite'): Promise<number> {
  const kids = Array.from({ length: JOBS }, (_, j) =>
    spawn(
      process.execPath,
      ['-e', RANDOM_JOB, path.join(dir, `${rw}.${j}`), rw, String(RANDOM_SECONDS), String(RANDOM_MIB)],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    ),
  );
  const said = kids.map((k) => {
    const lines: string[] = [];
    let buf = '';
    const next = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const take = () => {
          const line = lines.shift();
          if (line !== undefined) resolve(line);
          else
            k.stdout!.once('data', (d) => {
              buf += d;
              const parts = buf.split('\n');
              buf = parts.pop()!;
              lines.push(...parts);
              take();
            });
        };
        k.once('exit', (code) => reject(new Error(`a random I/O job exited ${code}`)));
        take();
      });
    return next;
  });
  await Promise.all(said.map((next) => next())); // every file laid out
  // fio drops the files' cached pages before a job (invalidate=1); Node has no fadvise, so every
  // cache is dropped (the bricks' too: a little colder than fio's start).
  dropCaches();
  for (const k of kids) k.stdin!.end('go\n');
  const counts = await Promise.all(said.map((next) => next()));
  return counts.reduce((a, c) => a + Number(c), 0) / RANDOM_SECONDS;
}

/** The same random I/O through the client library: JOBS loops, one 4 KiB request each in flight. */
async function libraryRandom(client: ReplicatedClient): Promise<void> {
  const files = Array.from({ length: JOBS }, (_, j) => `lib-rand${j}.bin`);
  const layout = Buffer.alloc(1024 * 1024, 1);
  for (const f of files) {
    await client.create(f);
    for (let i = 0; i < RANDOM_MIB; i++) await client.write(f, i * layout.length, layout);
  }
  const buf = Buffer.alloc(4096, 2);
  const blocks = (RANDOM_MIB * 1024 * 1024) / 4096;
  for (const rw of ['randread', 'randwrite'] as const) {
    dropCaches(); // as before the jobs through the mount
    let n = 0;
    const end = Date.now() + RANDOM_SECONDS * 1000;
    await Promise.all(
      files.map(async (f) => {
        while (Date.now() < end) {
          const at = Math.floor(Math.random() * blocks) * 4096;
          if (rw === 'randread') await client.read(f, at, 4096);
          else await client.write(f, at, buf);
          n++;
        }
      }),
    );
    rows.push({
      workload: `4 KiB ${rw}, ${JOBS} jobs`,
      where: `client library (4 KiB, ${JOBS} in flight)`,
      value: n / RANDOM_SECONDS,
      unit: 'IOPS',
    });
  }
  for (const f of files) await client.unlink(f);
}

/** Runs `argv(dir)` for each directory, all at once: the seconds until every one has ended. */
function jobs(argv: (dir: string) => string[], dirs: string[]): Promise<number> {
  return timed(() =>
    Promise.all(
      dirs.map(
        (d) =>
          new Promise<void>((resolve, reject) => {
            const [cmd, ...args] = argv(d);
            const c = spawn(cmd!, args, { stdio: 'inherit' });
            c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}`))));
          }),
      ),
    ),
  );
}

/** Creates FILES files of 4 KiB with JOBS processes (one directory each), then removes them with `rm -r`. */
async function creates(where: string, dir: string, cpu = false): Promise<void> {
  const per = Math.ceil(FILES / JOBS);
  const measured = async (workload: string, fn: () => Promise<number>): Promise<number> => {
    if (!cpu) return fn();
    let s = 0;
    await withCpu(workload, '1,000 files', (per * JOBS) / 1000, async () => {
      s = await fn();
    });
    return s;
  };
  const script = `
    const fs = require('node:fs'); const d = process.argv[1]; const n = Number(process.argv[2]);
    fs.mkdirSync(d, { recursive: true }); const data = Buffer.alloc(4096, 1);
    for (let i = 0; i < n; i++) fs.writeFileSync(d + '/f' + i, data);`;
  const dirs = Array.from({ length: JOBS }, (_, j) => path.join(dir, `creates${j}`));
  const made = await measured('creates of 4 KiB', () =>
    jobs((d) => [process.execPath, '-e', script, d, String(per)], dirs),
  );
  rows.push({
    workload: `create ${per * JOBS} files of 4 KiB, ${JOBS} jobs`,
    where,
    value: (per * JOBS) / made,
    unit: 'files/s',
  });
  const removed = await measured('removes (rm -r)', () => jobs((d) => ['rm', '-r', d], dirs));
  rows.push({
    workload: `remove ${per * JOBS} files with rm -r, ${JOBS} jobs`,
    where,
    value: (per * JOBS) / removed,
    unit: 'files/s',
  });
}

/**
 * The creates and removals through the client library: one create with its data per file (what
 * the mount's deferred create sends), JOBS sequences at once, one directory each.
 */
async function libraryCreates(client: ReplicatedClient): Promise<void> {
  const per = Math.ceil(FILES / JOBS);
  const data = Buffer.alloc(4096, 1);
  const dirs = Array.from({ length: JOBS }, (_, j) => `lib-creates${j}`);
  for (const d of dirs) await client.mkdir(d);
  const made = await timed(() =>
    Promise.all(
      dirs.map(async (d) => {
        for (let i = 0; i < per; i++) await client.createWith(`${d}/f${i}`, data);
      }),
    ),
  );
  const where = `client library (create with data, ${JOBS} in flight)`;
  rows.push({
    workload: `create ${per * JOBS} files of 4 KiB, ${JOBS} jobs`,
    where,
    value: (per * JOBS) / made,
    unit: 'files/s',
  });
  const removed = await timed(() =>
    Promise.all(
      dirs.map(async (d) => {
        for (let i = 0; i < per; i++) await client.unlink(`${d}/f${i}`);
        await client.rmdir(d);
      }),
    ),
  );
  rows.push({
    workload: `remove ${per * JOBS} files with rm -r, ${JOBS} jobs`,
    where: `client library (unlink, ${JOBS} in flight)`,
    value: (per * JOBS) / removed,
    unit: 'files/s',
  });
}

async function library(client: ReplicatedClient): Promise<void> {
  const chunk = Buffer.alloc(1024 * 1024, 7);
  await client.create('lib.bin');
  const ws = await timed(async () => {
    for (let i = 0; i < MIB; i++) await client.write('lib.bin', i * chunk.length, chunk);
    await client.fsync('lib.bin');
  });
  rows.push({
    workload: `seq write ${MIB} MiB + fsync`,
    where: 'client library (1 MiB, 1 in flight)',
    value: (MIB * 1.048576) / ws,
    unit: 'MB/s',
  });
  const rs = await timed(async () => {
    for (let i = 0; i < MIB; i++) await client.read('lib.bin', i * chunk.length, chunk.length);
  });
  rows.push({
    workload: `seq read ${MIB} MiB (cold)`,
    where: 'client library (1 MiB, 1 in flight)',
    value: (MIB * 1.048576) / rs,
    unit: 'MB/s',
  });
  await client.unlink('lib.bin');
}

/** The rates, one line per workload and place: the median of the rounds, and each round's. */
function printRates(whereMount: string): void {
  const byWorkload = new Map<string, Map<string, Row[]>>();
  for (const r of rows) {
    const w = r.workload.replace(' (dd)', '');
    const places = byWorkload.get(w) ?? new Map<string, Row[]>();
    byWorkload.set(w, places);
    places.set(r.where, [...(places.get(r.where) ?? []), r]);
  }
  const fmt = (x: number): string => x.toFixed(x < 100 ? 1 : 0);
  console.log(
    `\n| workload | where | rate (median of ${ROUNDS}) | each round | vs local disk | vs client library |\n|---|---|---|---|---|---|`,
  );
  for (const [workload, places] of byWorkload) {
    const med = new Map([...places].map(([where, rs]) => [where, median(rs.map((r) => r.value))]));
    const local = med.get('local disk');
    const lib = [...med].find(([where]) => where.startsWith('client library'))?.[1];
    for (const [where, rs] of places) {
      const m = med.get(where)!;
      const rounds = rs.length > 1 ? rs.map((r) => fmt(r.value)).join(', ') : '';
      const vsLocal =
        local !== undefined && where !== 'local disk' ? `${((100 * m) / local).toFixed(0)} %` : '';
      const vsLib = lib !== undefined && where === whereMount ? `${((100 * m) / lib).toFixed(0)} %` : '';
      console.log(
        `| ${workload} | ${where} | ${fmt(m)} ${rs[0]!.unit} | ${rounds} | ${vsLocal} | ${vsLib} |`,
      );
    }
  }
}

/** CPU seconds and page faults per unit of work through the mount, over all rounds. */
function printCpu(): void {
  const names = watched.map((w) => w.name);
  const byWorkload = new Map<string, CpuRow[]>();
  for (const c of cpuRows) byWorkload.set(c.workload, [...(byWorkload.get(c.workload) ?? []), c]);
  const perUnit = (cs: CpuRow[], n: string, of: 'seconds' | 'faults'): number =>
    cs.reduce((a, c) => a + (c[of][n] ?? 0), 0) / cs.reduce((a, c) => a + c.units, 0);
  console.log(
    `\nCPU seconds through the mount, per unit of work\n| workload | per | ${names.join(' | ')} | all |\n|---|---|${names.map(() => '---|').join('')}---|`,
  );
  for (const [workload, cs] of byWorkload) {
    const each = names.map((n) => perUnit(cs, n, 'seconds'));
    const all = each.reduce((a, b) => a + b, 0);
    console.log(
      `| ${workload} | ${cs[0]!.per} | ${each.map((x) => x.toFixed(2)).join(' | ')} | ${all.toFixed(2)} |`,
    );
  }
  console.log(
    `\nMinor page faults through the mount, thousands per unit of work\n| workload | per | ${names.join(' | ')} |\n|---|---|${names.map(() => '---|').join('')}`,
  );
  for (const [workload, cs] of byWorkload) {
    const each = names.map((n) => perUnit(cs, n, 'faults') / 1000);
    console.log(`| ${workload} | ${cs[0]!.per} | ${each.map((x) => x.toFixed(1)).join(' | ')} |`);
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0 || !fs.existsSync('/dev/fuse')) {
    console.log('bench:mount needs root and /dev/fuse; skipped');
    return;
  }
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'abaca-bench-mount-'));
  const procs: Proc[] = [];
  const mnt = path.join(base, 'mnt');
  const local = path.join(base, 'local');
  fs.mkdirSync(mnt);
  fs.mkdirSync(local);
  const adminToken = randomUUID();
  let client: ReplicatedClient | undefined;
  try {
    for (let i = 1; i <= 3; i++)
      procs.push(
        await spawnDaemon(
          'abaca-brick.js',
          ['--dir', path.join(base, `brick${i}`), '--host-label', `h${i}`, '--zone', `z${i}`],
          profPrefix,
        ),
      );
    const server = await spawnDaemon(
      'abaca-share-server.js',
      ['--bricks', procs.map((p) => p.addr).join(',')],
      profPrefix,
      { ABACA_ADMIN_TOKEN: adminToken },
    );
    procs.push(server);
    const admin = await ReplicatedClient.connect({ host: '127.0.0.1', port: server.port, adminToken });
    await admin.createShare('bench', (MIB * 2 + 1024) * 1024 * 1024, {
      access: [{ id: 'r1', to: '127.0.0.1', level: 'rw' }],
    });
    admin.close();
    client = await ReplicatedClient.connect({
      host: '127.0.0.1',
      port: server.port,
      share: 'bench',
      timeoutMs: 120_000,
    });
    const loc = `abaca://127.0.0.1:${server.port}/bench`;
    const mountOpts = process.env.ABACA_BENCH_MOUNT_OPTS; // e.g. write_behind=4 (abaca mount -o)
    run(process.execPath, [
      ...profFlags,
      path.join(root, 'bin/abaca.js'),
      'mount',
      loc,
      mnt,
      ...(mountOpts ? ['-o', mountOpts] : []),
    ]);
    const served = mountPid(mnt);
    watched = [
      ...(served ? [{ name: 'mount', pid: served }] : []),
      { name: 'share server', pid: server.child.pid! },
      ...procs.slice(0, 3).map((p, i) => ({ name: `brick ${i + 1}`, pid: p.child.pid! })),
    ];
    console.log(
      `bench:mount — ${MIB} MiB sequential, ${FILES} creates, ${JOBS} jobs, ${ROUNDS} round${ROUNDS === 1 ? '' : 's'}; ${hasFio ? 'fio (psync)' : "no fio: dd for sequential I/O, Node processes doing what fio's psync jobs do for random I/O"}; replica-3 share at ${loc}, bricks and local disk on ${fsTypeName(base)} (${base}; TMPDIR chooses)`,
    );
    const whereMount = 'abaca mount (replica 3)';
    for (let round = 1; round <= ROUNDS; round++) {
      if (ONLY.has('seq')) {
        await sequential(whereMount, mnt, true);
        await sequential('local disk', local);
      }
      if (ONLY.has('library')) await library(client);
      if (ONLY.has('creates')) {
        await creates(whereMount, mnt, true);
        await creates('local disk', local);
        await libraryCreates(client);
      }
      // Last in the round: its random writes leave the local disk with dirty pages to write back.
      if (ONLY.has('random')) {
        await random(whereMount, mnt);
        await random('local disk', local);
        await libraryRandom(client);
        spawnSync('sync');
      }
    }
    printRates(whereMount);
    printCpu();
  } finally {
    spawnSync('umount', ['-l', mnt]);
    client?.close();
    if (PROF) {
      // SIGTERM lets each daemon exit and write its profile; the mount's exits at the unmount.
      for (const p of procs) p.signal('SIGTERM');
      await Promise.all(procs.map((p) => p.exited));
    }
    await Promise.all(procs.map((p) => p.kill9().catch(() => {})));
    fs.rmSync(base, { recursive: true, force: true });
  }
}

await main();
