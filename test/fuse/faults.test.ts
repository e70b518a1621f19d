/**
 * Faults under a running copy into `abaca mount`: kill -9 of a brick, and kill -9 and restart of
 * the share server (the mount reconnects and sends again what was in flight) — the copy finishes
 * and its checksum matches; a share server that stays away while another serves the share at the
 * next address of the export location: the mount moves there and the copy finishes. The copy
 * stops halfway until the fault has landed, so the fault never comes after the copy's end. With
 * quorum lost, an operation fails with ENOTCONN within the mount's retry timeout instead of
 * hanging, and works again once the bricks are back; umount always works.
 * Real bricks and share server; needs root and /dev/fuse (skipped with the reason otherwise).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { OP } from '../../backends/replicated/protocol/opcodes.ts';
import { isMountPoint } from '../../client/mount/mountinfo.ts';
import { ShareConnection } from '../../client/mount/share-connection.ts';
import { Cluster } from '../backends/replicated/helpers.ts';
import { abaca, codeOf, fuseSkip, mount, tempDir, unmountAll } from './helpers.ts';

const skip = fuseSkip;
let cl: Cluster;
let work = '';
let source = '';
let sourceSha = '';
const SIZE = 64 * 1024 * 1024;

before(async () => {
  if (skip) return;
  work = tempDir('abaca-fuse-faults-');
  source = path.join(work, 'source.bin');
  const data = randomBytes(SIZE);
  fs.writeFileSync(source, data);
  sourceSha = createHash('sha256').update(data).digest('hex');
  cl = await Cluster.start();
  const admin = await cl.client();
  await admin.createShare('f', 1024 * 1024 * 1024, { access: [{ id: 'r1', to: '127.0.0.1', level: 'rw' }] });
});
after(async () => {
  await unmountAll();
  await cl?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/**
 * A copy of SOURCE to `dest` by a child process, as a program would make it: 1 MiB writes, then
 * fsync and close. It stops after HALF and waits until `resume()`, so the fault always lands while
 * the copy is running (a copy left to run at full speed could end before the fault, and then test
 * nothing). What was written before the stop may still be in flight in the mount when the fault
 * lands; everything after it, and the fsync, go through the fault's aftermath.
 */
const HALF = SIZE / 2;
const COPIER = `
const fs = require('node:fs');
const [source, dest, stopAt] = process.argv.slice(1);
const src = fs.openSync(source, 'r');
const out = fs.openSync(dest, 'w');
const buf = Buffer.alloc(1024 * 1024);
let at = 0;
function rest() {
  for (let n; (n = fs.readSync(src, buf, 0, buf.length, at)) > 0; at += n) fs.writeSync(out, buf, 0, n);
  fs.fsyncSync(out);
  fs.closeSync(out);
}
for (let n; at < Number(stopAt) && (n = fs.readSync(src, buf, 0, buf.length, at)) > 0; at += n) fs.writeSync(out, buf, 0, n);
process.stdout.write('stopped\\n');
process.stdin.once('data', rest);
`;
function cp(dest: string): {
  stopped: Promise<void>;
  resume: () => void;
  done: Promise<{ code: number | null; stderr: string }>;
} {
  const child = spawn(process.execPath, ['-e', COPIER, source, dest, String(HALF)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stderr })),
  );
  const stopped = new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    done.then((r) => reject(new Error(`the copy ended before its stop: ${r.code} ${r.stderr}`)));
  });
  return { stopped, resume: () => child.stdin.end('go\n'), done };
}

/**
 * Resolves once `name` holds at least `bytes` on the first brick: what the share server has
 * applied, not what the mount has taken (a stat through the mount shows its write-behind, so the
 * fault could land after the copy had finished).
 */
async function grown(name: string, bytes: number): Promise<void> {
  const file = path.join(cl.shareDataDir(0, 'f'), name);
  for (let i = 0; i < 600; i++) {
    try {
      if (fs.statSync(file).size >= bytes) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${file} did not grow to ${bytes}`);
}

test('kill -9 of a brick during a copy: the copy finishes and matches', {
  skip,
  timeout: 120_000,
}, async () => {
  const m = await mount(`abaca://127.0.0.1:${cl.server.port}/f`, path.join(work, 'm1'));
  const dest = path.join(m.dir, 'copy1.bin');
  const run = cp(dest);
  await run.stopped;
  await grown('copy1.bin', 8 * 1024 * 1024);
  await cl.bricks[1]!.kill9();
  run.resume();
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(sha(dest), sourceSha);
  await cl.restartBrick(1);
});

test('the share server killed and restarted during a copy: the copy finishes and matches', {
  skip,
  timeout: 120_000,
}, async () => {
  const port = cl.server.port;
  const m = await mount(`abaca://127.0.0.1:${port}/f`, path.join(work, 'm2'));
  const dest = path.join(m.dir, 'copy2.bin');
  const run = cp(dest);
  await run.stopped;
  await grown('copy2.bin', 8 * 1024 * 1024);
  await cl.server.kill9();
  run.resume();
  await new Promise((r) => setTimeout(r, 500));
  cl.servers.push(await cl.startServer(['--port', String(port)]));
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(sha(dest), sourceSha);
  assert.match(m.output(), /reconnected to 127\.0\.0\.1:\d+/);
});

/** A port nothing listens on at `host` (yet). */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

test('a mount opens on the next address of the export location when the first is away', {
  skip,
  timeout: 60_000,
}, async () => {
  const away = await freePort('127.0.0.3');
  const conn = await ShareConnection.open({
    host: '127.0.0.3',
    port: away,
    share: 'f',
    others: [{ host: '127.0.0.1', port: cl.server.port }],
    adminToken: cl.adminToken,
  });
  try {
    assert.equal(conn.address, `127.0.0.1:${cl.server.port}`);
    const r = await conn.call(OP.statfs, {});
    assert.equal(r.header['size'], 1024 * 1024 * 1024); // share f, as the second server has it
  } finally {
    conn.close();
  }
  await assert.rejects(
    ShareConnection.open({ host: '127.0.0.3', port: away, share: 'f', adminToken: cl.adminToken }),
    (err: Error & { code?: string }) => err.code === 'ENOTCONN',
  );
});

test('quorum lost: ENOTCONN within the retry timeout, then back to work; umount works', {
  skip,
  timeout: 120_000,
}, async () => {
  const m = await mount(`abaca://127.0.0.1:${cl.server.port}/f`, path.join(work, 'm3'), [
    '-o',
    'retry_timeout=3,attr_timeout=0,entry_timeout=0',
  ]);
  fs.writeFileSync(path.join(m.dir, 'before'), 'before');
  await Promise.all([cl.bricks[0]!.kill9(), cl.bricks[2]!.kill9()]);
  const t0 = Date.now();
  const code = codeOf(() => fs.writeFileSync(path.join(m.dir, 'during'), 'x'));
  const ms = Date.now() - t0;
  assert.equal(code, 'ENOTCONN', m.output());
  assert.ok(ms < 15_000, `answered after ${ms} ms`);
  // Reads need one in-sync replica, not a quorum.
  assert.equal(fs.readFileSync(path.join(m.dir, 'before'), 'utf8'), 'before');
  await Promise.all([cl.restartBrick(0), cl.restartBrick(2)]);
  let back = 'ENOTCONN';
  for (let i = 0; i < 100 && back !== 'ok'; i++) {
    back = codeOf(() => fs.writeFileSync(path.join(m.dir, 'after'), 'after'));
    if (back !== 'ok') await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(back, 'ok');
  assert.equal(fs.readFileSync(path.join(m.dir, 'before'), 'utf8'), 'before');
  await m.stop();
  assert.equal(fs.readdirSync(m.dir).length, 0);
});

// Last: the share server it leaves listens on 127.0.0.2.
test('the share server stays away during a copy: the mount moves to the next address and the copy finishes', {
  skip,
  timeout: 120_000,
}, async () => {
  // The export location lists two share servers; the second is not started until the first is
  // gone for good, and it listens on another address.
  const first = cl.server;
  const nextPort = await freePort('127.0.0.2');
  const m = await mount(`abaca://127.0.0.1:${first.port},127.0.0.2:${nextPort}/f`, path.join(work, 'm4'));
  const dest = path.join(m.dir, 'copy4.bin');
  const run = cp(dest);
  await run.stopped;
  await grown('copy4.bin', 8 * 1024 * 1024);
  await first.kill9();
  run.resume();
  await new Promise((r) => setTimeout(r, 500));
  cl.servers.push(await cl.startServer(['--host', '127.0.0.2', '--port', String(nextPort)]));
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(sha(dest), sourceSha);
  assert.match(m.output(), new RegExp(`reconnected to 127\\.0\\.0\\.2:${nextPort}`));
});

test('the share server stays away: ENOTCONN within the retry timeout, no hang; abaca umount works, busy or dead', {
  skip,
  timeout: 120_000,
}, async () => {
  // The server the previous test left (127.0.0.2); no other address is listed, so nothing serves
  // the share once it is gone.
  const srv = cl.server;
  const m = await mount(`abaca://${srv.addr}/f`, path.join(work, 'm5'), [
    '-o',
    'retry_timeout=2,attr_timeout=0,entry_timeout=0',
  ]);
  fs.writeFileSync(path.join(m.dir, 'kept'), 'kept');
  // A process that works in the mount, from before the server went: the mount is busy.
  const inside = spawn('sleep', ['60'], { cwd: m.dir, stdio: 'ignore' });
  await srv.kill9();
  for (const [what, op] of [
    ['create', () => fs.writeFileSync(path.join(m.dir, 'away'), 'x')],
    ['stat', () => fs.statSync(path.join(m.dir, 'kept'))],
    ['listing', () => fs.readdirSync(m.dir)],
  ] as const) {
    const t0 = Date.now();
    const code = codeOf(op);
    const ms = Date.now() - t0;
    assert.equal(code, 'ENOTCONN', `${what}: ${m.output()}`);
    assert.ok(ms >= 1_500 && ms < 10_000, `${what} answered after ${ms} ms (retry_timeout=2)`);
  }
  // Busy: plain umount says so and leaves it mounted; -l detaches it.
  try {
    const busy = await abaca(['umount', m.dir]);
    assert.equal(busy.code, 1, busy.stderr);
    assert.match(busy.stderr, /busy.*abaca umount -l/);
    assert.ok(isMountPoint(m.dir));
    const lazy = await abaca(['umount', '-l', m.dir]);
    assert.equal(lazy.code, 0, lazy.stderr);
    assert.ok(!isMountPoint(m.dir));
  } finally {
    inside.kill('SIGKILL');
  }
  // The serving process ends once the kernel lets the mount go.
  await m.exited;

  // A mount whose process was killed: every access is ENOTCONN, and abaca umount still works.
  cl.servers.push(await cl.startServer(['--host', '127.0.0.2', '--port', String(srv.port)]));
  const d = await mount(`abaca://${cl.server.addr}/f`, path.join(work, 'm6'));
  assert.equal(fs.readFileSync(path.join(d.dir, 'kept'), 'utf8'), 'kept');
  d.child.kill('SIGKILL');
  await d.exited;
  assert.equal(
    codeOf(() => fs.readdirSync(d.dir)),
    'ENOTCONN',
  );
  const gone = await abaca(['umount', d.dir]);
  assert.equal(gone.code, 0, gone.stderr);
  assert.ok(!isMountPoint(d.dir));
  assert.deepEqual(fs.readdirSync(d.dir), []);
});
