/**
 * Advisory locks across two mounts of one share (the share server keeps the lock table): flock
 * and fcntl byte-range locks contended between A and B, F_GETLK seeing the other mount's lock,
 * close releasing, a killed mount losing its locks, 4 processes × 2 mounts incrementing one
 * counter under a lock (no update lost: the lock also makes the holder read the latest data), and
 * 4 processes × 2 mounts appending records under flock and under fcntl locks (none lost or torn).
 * Locks are taken by python3 processes (fcntl module). Needs root and /dev/fuse.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Cluster } from '../backends/replicated/helpers.ts';
import { fuseSkip, type Mount, mount, py, tempDir, unmountAll } from './helpers.ts';

const python = spawnSync('python3', ['-c', 'import fcntl'], { encoding: 'utf8' });
const skip = fuseSkip || (python.status !== 0 ? 'python3 (for fcntl and flock) is not installed' : false);
let cl: Cluster;
let work = '';
let a: Mount;
let b: Mount;
let loc = '';

before(async () => {
  if (skip) return;
  work = tempDir('abaca-fuse-locks-');
  cl = await Cluster.start();
  const admin = await cl.client();
  await admin.createShare('lk', 1 << 30, { access: [{ id: 'r1', to: '127.0.0.1', level: 'rw' }] });
  loc = `abaca://127.0.0.1:${cl.server.port}/lk`;
  [a, b] = await Promise.all([mount(loc, path.join(work, 'a')), mount(loc, path.join(work, 'b'))]);
});
after(async () => {
  await unmountAll();
  await cl?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** Holds an exclusive flock for `seconds` (argv[2]), then closes. */
const HOLD_FLOCK = `
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print('locked')
time.sleep(float(sys.argv[2]))
os.close(fd)
print('released')`;

const TRY_FLOCK = `
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print('got')
except OSError as e:
    print(errno.errorcode[e.errno])
t = time.time()
fcntl.flock(fd, fcntl.LOCK_EX)
print('waited %.1f' % (time.time() - t))`;

test('flock: held on A, EAGAIN on B without waiting, granted to B when A closes', {
  skip,
  timeout: 60_000,
}, async () => {
  const holder = py(HOLD_FLOCK, path.join(a.dir, 'f'), '4');
  await holder.said('locked');
  const other = py(TRY_FLOCK, path.join(b.dir, 'f'));
  const r = await other.exit;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(other.lines[0], 'EAGAIN');
  assert.match(other.lines[1] ?? '', /^waited (\d+\.\d)$/);
  assert.ok(Number(other.lines[1]!.split(' ')[1]) >= 0.8, other.lines[1]);
  await holder.exit;
});

test('fcntl byte ranges: disjoint ranges coexist, overlaps conflict, F_GETLK sees A from B', {
  skip,
  timeout: 60_000,
}, async () => {
  fs.writeFileSync(path.join(a.dir, 'r'), Buffer.alloc(1000));
  const holder = py(
    `
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX, 100, 0)     # bytes 0-99
fcntl.lockf(fd, fcntl.LOCK_SH, 100, 500)   # bytes 500-599, shared
print('locked')
time.sleep(60)  # killed below once the other process has tried`,
    path.join(a.dir, 'r'),
  );
  await holder.said('locked');
  const other = py(
    `
import struct
fd = os.open(sys.argv[1], os.O_RDWR)
def attempt(kind, length, start):
    try:
        fcntl.lockf(fd, kind | fcntl.LOCK_NB, length, start)
        return 'ok'
    except OSError as e:
        return errno.errorcode[e.errno]
print('disjoint', attempt(fcntl.LOCK_EX, 100, 100))
print('overlap', attempt(fcntl.LOCK_EX, 10, 50))
print('shared-on-shared', attempt(fcntl.LOCK_SH, 10, 550))
print('excl-on-shared', attempt(fcntl.LOCK_EX, 10, 550))
q = struct.pack('hhqqi', fcntl.F_WRLCK, 0, 0, 10, 0)
r = struct.unpack('hhqqi', fcntl.fcntl(fd, fcntl.F_GETLK, q))
print('getlk', 'F_WRLCK' if r[0] == fcntl.F_WRLCK else r[0], r[2], r[3])
q = struct.pack('hhqqi', fcntl.F_WRLCK, 0, 300, 10, 0)
r = struct.unpack('hhqqi', fcntl.fcntl(fd, fcntl.F_GETLK, q))
print('getlk-free', 'F_UNLCK' if r[0] == fcntl.F_UNLCK else r[0])`,
    path.join(b.dir, 'r'),
  );
  const r = await other.exit;
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(other.lines, [
    'disjoint ok',
    'overlap EAGAIN',
    'shared-on-shared ok',
    'excl-on-shared EAGAIN',
    'getlk F_WRLCK 0 100',
    'getlk-free F_UNLCK',
  ]);
  holder.kill();
  await holder.exit;
  // The holder's close (its process died) released its locks.
  const after = py(
    `
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 0, 0)
print('whole file')`,
    path.join(b.dir, 'r'),
  );
  const e = await after.exit;
  assert.equal(e.code, 0, e.stderr);
  assert.deepEqual(after.lines, ['whole file']);
});

test('4 processes × 2 mounts increment one counter under lockf: no update lost', {
  skip,
  timeout: 120_000,
}, async () => {
  fs.writeFileSync(path.join(a.dir, 'counter'), '0'.padEnd(32));
  const rounds = 25;
  const script = `
fd = os.open(sys.argv[1], os.O_RDWR)
for i in range(int(sys.argv[2])):
    fcntl.lockf(fd, fcntl.LOCK_EX)
    v = int(os.pread(fd, 32, 0))
    os.pwrite(fd, str(v + 1).ljust(32).encode(), 0)
    fcntl.lockf(fd, fcntl.LOCK_UN)
print('done')`;
  const procs = [a, a, a, a, b, b, b, b].map((m) => py(script, path.join(m.dir, 'counter'), String(rounds)));
  for (const p of procs) {
    const r = await p.exit;
    assert.equal(r.code, 0, r.stderr);
  }
  assert.equal(Number(fs.readFileSync(path.join(b.dir, 'counter'), 'utf8').trim()), 8 * rounds);
});

/**
 * Each writer appends `rounds` records at the end it finds under the lock (fstat, then two pwrites
 * of half a record each): without the lock, or with a stale size after it, two writers would put
 * records at the same offset or one inside another.
 */
const APPEND_RECORDS = `
path, kind, writer, rounds, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def lock(fd, how):
    if kind == 'flock': fcntl.flock(fd, how)
    else: fcntl.lockf(fd, how)
fd = os.open(path, os.O_RDWR)
for i in range(rounds):
    head = ('%02d %05d ' % (writer, i)).encode()
    rec = head + bytes([97 + (writer * 7 + i) % 26]) * (size - len(head) - 1) + b'\\n'
    lock(fd, fcntl.LOCK_EX)
    end = os.fstat(fd).st_size
    os.pwrite(fd, rec[:size // 2], end)
    os.pwrite(fd, rec[size // 2:], end + size // 2)
    lock(fd, fcntl.LOCK_UN)
os.close(fd)
print('done')`;

for (const kind of ['flock', 'fcntl'] as const)
  test(`4 processes × 2 mounts append records under ${kind} locks: none lost, none torn`, {
    skip,
    timeout: 120_000,
  }, async () => {
    const name = `records-${kind}`;
    fs.writeFileSync(path.join(a.dir, name), '');
    const rounds = 30;
    const size = 3000; // not a multiple of a page: halves cross page boundaries
    const writers = [a, a, a, a, b, b, b, b].map((m, w) =>
      py(APPEND_RECORDS, path.join(m.dir, name), kind, String(w), String(rounds), String(size)),
    );
    for (const p of writers) {
      const r = await p.exit;
      assert.equal(r.code, 0, r.stderr);
    }
    // Read through the other mount than the last writers' half, and check every record.
    const data = fs.readFileSync(path.join(b.dir, name));
    assert.equal(data.length, 8 * rounds * size, 'every record is there, and nothing else');
    const next = new Array<number>(8).fill(0);
    for (let off = 0; off < data.length; off += size) {
      const rec = data.subarray(off, off + size);
      const m = /^(\d\d) (\d{5}) /.exec(rec.subarray(0, 9).toString('latin1'));
      assert.ok(
        m,
        `a torn record at offset ${off}: ${JSON.stringify(rec.subarray(0, 20).toString('latin1'))}`,
      );
      const w = Number(m[1]);
      const i = Number(m[2]);
      assert.equal(i, next[w], `writer ${w}'s records in order, none missing (offset ${off})`);
      next[w] = i + 1;
      const fill = String.fromCharCode(97 + ((w * 7 + i) % 26)).repeat(size - 10);
      assert.equal(rec.subarray(9).toString('latin1'), `${fill}\n`, `record ${w}/${i} intact`);
    }
    assert.deepEqual(next, new Array<number>(8).fill(rounds));
  });

test('a mount that dies loses its locks', { skip, timeout: 60_000 }, async () => {
  const c = await mount(loc, path.join(work, 'c'));
  const holder = py(HOLD_FLOCK, path.join(c.dir, 'g'), '30');
  await holder.said('locked');
  const blocked = py(TRY_FLOCK, path.join(b.dir, 'g'));
  await blocked.said('EAGAIN');
  // The process serving the mount (`abaca mount --foreground` serves in its own process): its
  // connection closes, and the share server drops its locks.
  assert.ok(c.child.pid && c.child.pid > 1);
  process.kill(c.child.pid, 'SIGKILL');
  const r = await blocked.exit;
  assert.equal(r.code, 0, r.stderr);
  assert.match(blocked.lines[1] ?? '', /^waited /);
  holder.kill();
  await c.stop();
});

test('a signal interrupts a lock wait (EINTR), and the cancelled wait is not granted later', {
  skip,
  timeout: 60_000,
}, async () => {
  // The holder keeps the lock well past the waiter's 1 s alarm even when starting python on a
  // loaded machine takes a second or more; otherwise the waiter could be granted before it rings.
  const holder = py(HOLD_FLOCK, path.join(a.dir, 'h'), '6');
  await holder.said('locked');
  const waiter = py(
    `
import signal
class Alarm(Exception): pass
def ring(*_): raise Alarm()
signal.signal(signal.SIGALRM, ring)
fd = os.open(sys.argv[1], os.O_RDWR)
signal.alarm(1)
try:
    fcntl.flock(fd, fcntl.LOCK_EX)
    print('granted')
except Alarm:
    print('interrupted')
time.sleep(3)
print('still open')`,
    path.join(b.dir, 'h'),
  );
  await waiter.said('interrupted');
  await holder.exit;
  // The holder is gone and the interrupted waiter holds nothing: the lock is free.
  const third = py(TRY_FLOCK, path.join(a.dir, 'h'));
  const r = await third.exit;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(third.lines[0], 'got');
  await waiter.exit;
});

test('more lock waiters than the mount has readers do not stall it: the holder’s I/O and unlock get through', {
  skip,
  timeout: 90_000,
}, async () => {
  // 12 waiters on one mount with 8 readers: a wait that kept its reader would leave none for the
  // holder's write and close on the same mount, and nothing would ever be granted.
  const go = path.join(work, 'go-many');
  const log = path.join(a.dir, 'many.log');
  const holder = py(
    `
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print('locked')
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)
with open(sys.argv[2], 'w') as f:
    f.write('holder\\n')
print('io ok')
os.close(fd)`,
    path.join(a.dir, 'many'),
    log,
    go,
  );
  await holder.said('locked');
  const waiters = Array.from({ length: 12 }, () =>
    py(
      `
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
with open(sys.argv[2], 'a') as f:
    f.write('waiter\\n')
os.close(fd)
print('done')`,
      path.join(a.dir, 'many'),
      log,
    ),
  );
  await new Promise((r) => setTimeout(r, 2500));
  fs.writeFileSync(go, '');
  await holder.said('io ok');
  for (const w of waiters) {
    const r = await w.exit;
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(w.lines, ['done']);
  }
  const lines = fs.readFileSync(path.join(b.dir, 'many.log'), 'utf8').split('\n').filter(Boolean);
  assert.deepEqual(lines, ['holder', ...Array(12).fill('waiter')]);
});

/**
 * Locks argv[1] (whole file, fcntl), says so, waits for the file argv[3] to appear, then asks for
 * argv[2] and says what came of it, keeping both until argv[4] appears (when given).
 */
const CROSS = `
a = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
b = os.open(sys.argv[2], os.O_RDWR | os.O_CREAT)
fcntl.lockf(a, fcntl.LOCK_EX)
print('holds')
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)
print('asking')
try:
    fcntl.lockf(b, fcntl.LOCK_EX)
    print('got')
except OSError as e:
    # errorcode names errno 35 EDEADLOCK, its other name
    print('EDEADLK' if e.errno == errno.EDEADLK else errno.errorcode[e.errno])
while len(sys.argv) > 4 and not os.path.exists(sys.argv[4]):
    time.sleep(0.05)
print('done')`;

/** P1 (in dir1) holds x and waits for y; P2 (in dir2) holds y and asks for x: what each sees. */
async function crossedLocks(dir1: string, dir2: string, flags: string): Promise<string[][]> {
  const go1 = path.join(flags, 'go1');
  const go2 = path.join(flags, 'go2');
  const end2 = path.join(flags, 'end2');
  fs.mkdirSync(flags, { recursive: true });
  const p1 = py(CROSS, path.join(dir1, 'x'), path.join(dir1, 'y'), go1);
  await p1.said('holds');
  const p2 = py(CROSS, path.join(dir2, 'y'), path.join(dir2, 'x'), go2, end2);
  await p2.said('holds');
  fs.writeFileSync(go1, '');
  await p1.said('asking');
  // P1's wait reaches the kernel and the share server (generous: if P2 asked first, P1's request
  // would be the one that closes the cycle).
  await new Promise((r) => setTimeout(r, 1500));
  fs.writeFileSync(go2, '');
  await p2.said('asking');
  // P2 is refused, or would wait: either way it lets go of y once told to, and P1 gets y.
  await new Promise((r) => setTimeout(r, 500));
  fs.writeFileSync(end2, '');
  const [r1, r2] = await Promise.all([p1.exit, p2.exit]);
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(r2.code, 0, r2.stderr);
  return [p1.lines, p2.lines];
}

test('fcntl deadlock across mounts: the request that closes the cycle gets EDEADLK, as on ext4', {
  skip,
  timeout: 60_000,
}, async () => {
  const local = path.join(work, 'local');
  fs.mkdirSync(local, { recursive: true });
  const onExt4 = await crossedLocks(local, local, path.join(work, 'flags-local'));
  const across = await crossedLocks(a.dir, b.dir, path.join(work, 'flags-mounts'));
  assert.deepEqual(onExt4, [
    ['holds', 'asking', 'got', 'done'],
    ['holds', 'asking', 'EDEADLK', 'done'],
  ]);
  assert.deepEqual(across, onExt4);
});
