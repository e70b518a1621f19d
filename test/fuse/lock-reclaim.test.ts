/**
 * Locks across a share-server restart, through two real mounts: the mount that held a lock
 * reconnects by itself and reclaims it in the restarted server's grace period, so the other mount
 * still cannot take it; a mount that could not reclaim in time (paused through the whole grace
 * period) loses the lock, and its program's next I/O on the file fails with EIO instead of going
 * on unprotected. Needs root, /dev/fuse and python3.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Cluster, waitFor } from '../backends/replicated/helpers.ts';
import { fuseSkip, type Mount, mount, py, tempDir, unmountAll } from './helpers.ts';

const python = spawnSync('python3', ['-c', 'import fcntl'], { encoding: 'utf8' });
const skip = fuseSkip || (python.status !== 0 ? 'python3 (for fcntl) is not installed' : false);
const GRACE_MS = 3000;
let cl: Cluster;
let work = '';
let a: Mount;
let b: Mount;

before(async () => {
  if (skip) return;
  work = tempDir('abaca-fuse-reclaim-');
  cl = await Cluster.start({ serverArgs: ['--lock-grace-ms', String(GRACE_MS)] });
  const admin = await cl.client();
  await admin.createShare('rc', 1 << 30, { access: [{ id: 'r1', to: '127.0.0.1', level: 'rw' }] });
  const loc = `abaca://127.0.0.1:${cl.server.port}/rc`;
  [a, b] = await Promise.all([mount(loc, path.join(work, 'a')), mount(loc, path.join(work, 'b'))]);
});
after(async () => {
  await unmountAll();
  await cl?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/**
 * Locks argv[1] (whole file, exclusive), says 'locked', waits until the local file argv[2]
 * exists, then writes 'after' at offset 0 and says how that went, and unlocks.
 */
const HOLD = `
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.lockf(fd, fcntl.LOCK_EX)
print('locked')
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
try:
    os.pwrite(fd, b'after', 0)
    os.fsync(fd)
    print('wrote ok')
except OSError as e:
    print('wrote ' + errno.errorcode[e.errno])
try:
    fcntl.lockf(fd, fcntl.LOCK_UN)
except OSError as e:
    pass
print('released')`;

/** Tries an exclusive lock of argv[1] without waiting: 'ok' or the errno's name. */
const TRY = `
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print('ok')
except OSError as e:
    print(errno.errorcode[e.errno])`;

/** The process serving mount `m`: `abaca mount --foreground` serves in its own process. */
function servingPid(m: Mount): number {
  const pid = m.child.pid;
  assert.ok(pid && pid > 1, `mount ${m.dir} has a serving process`);
  return pid;
}

async function restartShareServer(): Promise<void> {
  const port = cl.server.port;
  await cl.server.kill9();
  cl.servers.push(await cl.startServer(['--port', String(port)]));
}

test('a lock held on A is reclaimed after a share-server restart: B still cannot take it', {
  skip,
  timeout: 90_000,
}, async () => {
  fs.writeFileSync(path.join(a.dir, 'f'), 'before');
  const go = path.join(work, 'go-f');
  const holder = py(HOLD, path.join(a.dir, 'f'), go);
  await holder.said('locked');
  await restartShareServer();
  // A notices the lost connection and reconnects without any I/O of its programs.
  await waitFor(() => /reconnected to/.test(a.output()), 20_000, 'A reconnected');
  const tried = py(TRY, path.join(b.dir, 'f'));
  const r = await tried.exit;
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(tried.lines, ['EAGAIN'], `B took a lock A still holds; A said: ${a.output()}`);
  fs.writeFileSync(go, '');
  await holder.said('released');
  assert.deepEqual(holder.lines, ['locked', 'wrote ok', 'released']);
  const again = py(TRY, path.join(b.dir, 'f'));
  assert.equal((await again.exit).code, 0);
  assert.deepEqual(again.lines, ['ok']);
  assert.equal(fs.readFileSync(path.join(b.dir, 'f'), 'utf8').slice(0, 5), 'after');
  assert.doesNotMatch(a.output(), /lost at reconnection/);
});

test('A paused through the grace period loses its lock: B gets it, and A’s program sees EIO', {
  skip,
  timeout: 90_000,
}, async () => {
  fs.writeFileSync(path.join(a.dir, 'g'), 'before');
  const go = path.join(work, 'go-g');
  const holder = py(HOLD, path.join(a.dir, 'g'), go);
  await holder.said('locked');
  const pid = servingPid(a);
  process.kill(pid, 'SIGSTOP');
  try {
    await restartShareServer();
    const tried = py(TRY, path.join(b.dir, 'g'));
    const r = await tried.exit;
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(tried.lines, ['ok'], `after the grace period the lock is free; B: ${b.output()}`);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  await waitFor(
    () => /lock on g lost at reconnection/.test(a.output()),
    20_000,
    'A reports the lost lock',
  ).catch((err: Error) => {
    throw new Error(`${err.message}; A said: ${a.output()}`);
  });
  fs.writeFileSync(go, '');
  await holder.said('released');
  assert.deepEqual(holder.lines, ['locked', 'wrote EIO', 'released'], `A said: ${a.output()}`);
  assert.equal(
    fs.readFileSync(path.join(b.dir, 'g'), 'utf8'),
    'before',
    'nothing was written without the lock',
  );
  // A new open of the file on A works again.
  fs.writeFileSync(path.join(a.dir, 'g'), 'fresh');
  assert.equal(fs.readFileSync(path.join(b.dir, 'g'), 'utf8'), 'fresh');
});

/**
 * B holds a lock on `name` and A waits for it; `outage` takes the share server away and brings it
 * back. B must reclaim its lock and A's wait must still be waiting, then be granted (and read B's
 * write) once B lets go.
 */
async function waitAcross(name: string, outage: () => Promise<void>): Promise<void> {
  fs.writeFileSync(path.join(a.dir, name), 'before');
  const go = path.join(work, `go-${name}`);
  const holder = py(HOLD, path.join(b.dir, name), go);
  await holder.said('locked');
  const waiter = py(
    `
fd = os.open(sys.argv[1], os.O_RDWR)
print('waiting')
try:
    fcntl.lockf(fd, fcntl.LOCK_EX)
    print('granted ' + os.pread(fd, 5, 0).decode())
except OSError as e:
    print('failed ' + errno.errorcode[e.errno])`,
    path.join(a.dir, name),
  );
  await waiter.said('waiting');
  await new Promise((r) => setTimeout(r, 500));
  // B's output has its earlier reconnections too: this outage's is one more.
  const reconnections = () => b.output().split('reconnected to').length;
  const before = reconnections();
  await outage();
  // B reclaims its lock; A's wait reaches the new server and waits there.
  await waitFor(() => reconnections() > before, 20_000, 'B reconnected');
  await new Promise((r) => setTimeout(r, GRACE_MS + 500));
  assert.deepEqual(waiter.lines, ['waiting'], `A's wait ended while B holds the lock; A said: ${a.output()}`);
  fs.writeFileSync(go, '');
  await holder.said('released');
  assert.deepEqual(holder.lines, ['locked', 'wrote ok', 'released']);
  const r = await waiter.exit;
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(waiter.lines, ['waiting', 'granted after']);
}

test(
  'a lock wait under way when the share server restarts is sent again, and granted when the holder lets go',
  {
    skip,
    timeout: 90_000,
  },
  () => waitAcross('w', restartShareServer),
);

test(
  'a lock wait outlives a reconnection that times out (a server that accepts but never answers)',
  {
    skip,
    timeout: 90_000,
  },
  () =>
    waitAcross('t', async () => {
      const port = cl.server.port;
      await cl.server.kill9();
      // The port answers TCP but nothing more: each mount's reconnection times out (after 10 s).
      const accepted: net.Socket[] = [];
      const hole = net.createServer((s) => accepted.push(s));
      await new Promise<void>((r) => hole.listen(port, '127.0.0.1', r));
      try {
        await waitFor(() => accepted.length >= 2, 10_000, 'both mounts trying to reconnect');
        await new Promise((r) => setTimeout(r, 11_000));
      } finally {
        for (const s of accepted) s.destroy();
        await new Promise((r) => hole.close(r));
      }
      cl.servers.push(await cl.startServer(['--port', String(port)]));
    }),
);

test('a write issued under a lock that is then lost is never sent: the new holder’s data stays', {
  skip,
  timeout: 90_000,
}, async () => {
  fs.writeFileSync(path.join(a.dir, 'h'), 'before');
  const go = path.join(work, 'go-h');
  const holder = py(HOLD, path.join(a.dir, 'h'), go);
  await holder.said('locked');
  const pid = servingPid(a);
  process.kill(pid, 'SIGSTOP');
  try {
    // The holder's write reaches the paused mount's queue, under a lock about to be lost.
    fs.writeFileSync(go, '');
    await new Promise((r) => setTimeout(r, 300));
    await restartShareServer();
    const taker = py(
      `
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
os.pwrite(fd, b'Bdata', 0)
os.fsync(fd)
print('B wrote')`,
      path.join(b.dir, 'h'),
    );
    const r = await taker.exit;
    assert.equal(r.code, 0, r.stderr);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  await holder.said('released');
  assert.deepEqual(holder.lines, ['locked', 'wrote EIO', 'released'], `A said: ${a.output()}`);
  assert.equal(fs.readFileSync(path.join(b.dir, 'h'), 'utf8'), 'Bdatae', 'A’s write overwrote B’s');
});
