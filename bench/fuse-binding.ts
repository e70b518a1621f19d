// `npm run bench:fuse-binding` (root, /dev/fuse): the FUSE binding comparison of docs/fuse.md.
// Mounts the prototype (client/fuse/, raw /dev/fuse) and, when it is installed
// (`npm install --no-save fuse-native@2.2.6` plus Debian's libfuse2), fuse-native over the same
// in-memory tree, and runs the same short workloads through each with dd and small Node writers.
// Sizes: ABACA_BENCH_MIB (1 MiB writes, default 1024), ABACA_BENCH_SMALL_MIB (4 KiB writes, 64),
// ABACA_BENCH_CREATES (files, 2000), ABACA_BENCH_READERS (the prototype's concurrent reads, 8). ABACA_BENCH_ONLY=raw|fuse-native limits the candidates.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MIB = Number(process.env.ABACA_BENCH_MIB ?? 1024);
const SMALL_MIB = Number(process.env.ABACA_BENCH_SMALL_MIB ?? 64);
const CREATES = Number(process.env.ABACA_BENCH_CREATES ?? 2000);
const ONLY = process.env.ABACA_BENCH_ONLY;
const MOUNT_DIR = path.join(os.tmpdir(), `abaca-fuse-bench-${process.pid}`);
const TICK = 100; // USER_HZ: /proc/<pid>/stat times are in 1/100 s on Linux

interface Server {
  name: string;
  argv: (dir: string, sink: boolean) => string[];
}

const raw = (readers: number, extra: string[] = []): Server => ({
  name: `raw /dev/fuse, ${readers} reader${readers > 1 ? 's' : ''}${extra.length ? ` ${extra.join(' ')}` : ''}`,
  argv: (dir, sink) => [
    '--import',
    'tsx',
    path.join(root, 'client/fuse/serve.ts'),
    dir,
    '--readers',
    String(readers),
    ...(sink ? ['--sink'] : []),
    ...extra,
  ],
});
const fuseNative = (bigWrites: boolean): Server => ({
  name: `fuse-native 2.2.6${bigWrites ? ' (big_writes smuggled in)' : ''}`,
  argv: (dir, sink) => [
    path.join(root, 'bench/fuse-native-server.cjs'),
    dir,
    ...(sink ? ['--sink'] : []),
    ...(bigWrites ? ['--big-writes'] : []),
  ],
});

function hasFuseNative(): boolean {
  try {
    createRequire(import.meta.url)('fuse-native');
    return true;
  } catch {
    return false;
  }
}

function cpuSeconds(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICK; // utime, stime
}

async function mount(
  server: Server,
  dir: string,
  sink: boolean,
): Promise<{ pid: number; stop: () => Promise<void> }> {
  fs.mkdirSync(dir, { recursive: true });
  const child = spawn(process.execPath, server.argv(dir, sink), {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, UV_THREADPOOL_SIZE: '16' },
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('mounted')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`${server.name}: exited ${code} before mounting`)));
  });
  return {
    pid: child.pid!,
    stop: async () => {
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Runs a shell workload; returns wall seconds and the workload's own CPU seconds. */
function run(cmd: string): { wall: number; cpu: number } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S', 'sh', '-c', cmd], { encoding: 'utf8' });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  const [u, s] = r.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
  return { wall, cpu: u! + s! };
}

const createScript = (dir: string, n: number) =>
  `node -e "const fs=require('fs');for(let i=0;i<${n};i++)fs.closeSync(fs.openSync('${dir}/f'+i,'w'))"`;

interface Row {
  candidate: string;
  workload: string;
  rate: string;
  serverCpu: string;
  clientCpu: string;
}
const rows: Row[] = [];

async function measure(
  server: Server,
  sink: boolean,
  workload: string,
  cmd: (dir: string) => string,
  mib: number,
  ops?: number,
) {
  const dir = MOUNT_DIR;
  const m = await mount(server, dir, sink);
  try {
    if (workload.startsWith('read')) run(`dd if=/dev/zero of=${dir}/f bs=1M count=${mib} status=none`);
    const c0 = cpuSeconds(m.pid);
    const r = run(cmd(dir));
    const server_ = cpuSeconds(m.pid) - c0;
    const per = ops ? ops : mib;
    rows.push({
      candidate: server.name,
      workload,
      rate: ops ? `${Math.round(ops / r.wall)} /s` : `${Math.round((mib * 1.048576) / r.wall)} MB/s`,
      serverCpu: ops
        ? `${((server_ / per) * 1e6).toFixed(0)} µs/op`
        : `${(server_ / (mib / 1024)).toFixed(2)} s/GiB`,
      clientCpu: ops
        ? `${((r.cpu / per) * 1e6).toFixed(0)} µs/op`
        : `${(r.cpu / (mib / 1024)).toFixed(2)} s/GiB`,
    });
    process.stderr.write(`${JSON.stringify(rows.at(-1))}\n`);
  } finally {
    await m.stop();
  }
}

async function suite(server: Server) {
  const small = SMALL_MIB * 256;
  await measure(
    server,
    true,
    '1 MiB writes, sink',
    (d) => `dd if=/dev/zero of=${d}/f bs=1M count=${MIB} status=none`,
    MIB,
  );
  await measure(
    server,
    false,
    '1 MiB writes, memory',
    (d) => `dd if=/dev/zero of=${d}/f bs=1M count=${MIB} status=none`,
    MIB,
  );
  await measure(
    server,
    false,
    'read 1 MiB, memory',
    (d) => `dd if=${d}/f of=/dev/null bs=1M status=none`,
    MIB,
  );
  await measure(
    server,
    true,
    '4 KiB writes, sink',
    (d) => `dd if=/dev/zero of=${d}/f bs=4k count=${small} status=none`,
    SMALL_MIB,
    small,
  );
  await measure(server, false, 'creates, 1 process', (d) => createScript(d, CREATES), 0, CREATES);
  const quarter = Math.floor(CREATES / 4);
  await measure(
    server,
    false,
    'creates, 4 processes',
    (d) =>
      [0, 1, 2, 3].map((j) => `mkdir ${d}/p${j} && ${createScript(`${d}/p${j}`, quarter)} &`).join(' ') +
      ' wait',
    0,
    quarter * 4,
  );
}

const candidates: Server[] = [];
if (!ONLY || ONLY === 'raw') candidates.push(raw(Number(process.env.ABACA_BENCH_READERS ?? 8)));
if (!ONLY || ONLY === 'fuse-native') {
  if (hasFuseNative()) candidates.push(fuseNative(false), fuseNative(true));
  else
    process.stderr.write('fuse-native is not installed: measuring the raw binding only (see docs/fuse.md)\n');
}
for (const c of candidates) await suite(c);

// Concurrency: 4 writers against a server that takes 2 ms per WRITE (a network round trip).
if (!ONLY || ONLY === 'raw') {
  for (const readers of [1, 8]) {
    await measure(
      raw(readers, ['--latency', '2']),
      true,
      '4 writers × 64 MiB, 2 ms per write',
      (d) =>
        [0, 1, 2, 3].map((j) => `dd if=/dev/zero of=${d}/f${j} bs=1M count=64 status=none &`).join(' ') +
        ' wait',
      256,
    );
  }
}

fs.rmSync(MOUNT_DIR, { recursive: true, force: true }); // unmounted by now: the bare directory

const date = new Date().toISOString();
const load = os
  .loadavg()
  .map((l) => l.toFixed(2))
  .join(' ');
process.stdout.write(
  `\n${date}, ${os.cpus().length} cores, ${os.release()}, Node ${process.version}, load ${load}\n`,
);
process.stdout.write('| binding | workload | rate | server CPU | workload CPU |\n|---|---|---|---|---|\n');
for (const r of rows)
  process.stdout.write(`| ${r.candidate} | ${r.workload} | ${r.rate} | ${r.serverCpu} | ${r.clientCpu} |\n`);
