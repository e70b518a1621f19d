// The raw /dev/fuse prototype (client/fuse/) mounted in a child process: data round trip, the
// common directory operations, INIT's negotiation, clean unmount, and a killed server (ENOTCONN,
// then umount still works). Needs root and /dev/fuse; skipped with the reason otherwise.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const skip =
  process.getuid?.() !== 0
    ? 'mounting FUSE this way needs root'
    : !fs.existsSync('/dev/fuse')
      ? 'no /dev/fuse on this machine'
      : false;

let dir = '';
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'abaca-fuse-test-'));
});
after(() => {
  spawnSync('umount', ['-l', dir]);
  fs.rmSync(dir, { recursive: true, force: true });
});

async function serve(
  ...args: string[]
): Promise<{ child: ChildProcess; output: () => string; errors: () => string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(root, 'client/fuse/serve.ts'), dir, ...args],
    // A small libuv pool: the device is read on the event loop, so the pool bounds nothing.
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, UV_THREADPOOL_SIZE: '2' } },
  );
  let errors = '';
  child.stderr!.on('data', (d) => {
    errors += d;
    process.stderr.write(d);
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('mounted')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`serve.ts exited ${code}: ${out}`)));
  });
  return { child, output: () => out, errors: () => errors };
}

// 'close', not 'exit': the child's output has been read in full by then.
const exited = (c: ChildProcess) => new Promise((r) => c.on('close', r));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('files and directories round-trip; INIT grants 1 MiB writes; umount stops the server', {
  skip,
}, async () => {
  const { child, output } = await serve();
  const data = randomBytes(3 * 1024 * 1024 + 123);
  fs.writeFileSync(path.join(dir, 'a.bin'), data);
  assert.equal(sha(fs.readFileSync(path.join(dir, 'a.bin'))), sha(data));
  fs.mkdirSync(path.join(dir, 'd'));
  fs.renameSync(path.join(dir, 'a.bin'), path.join(dir, 'd', 'b.bin'));
  assert.deepEqual(fs.readdirSync(path.join(dir, 'd')), ['b.bin']);
  assert.equal(fs.statSync(path.join(dir, 'd', 'b.bin')).size, data.length);
  fs.truncateSync(path.join(dir, 'd', 'b.bin'), 10);
  assert.deepEqual(fs.readFileSync(path.join(dir, 'd', 'b.bin')), data.subarray(0, 10));
  assert.throws(() => fs.rmdirSync(path.join(dir, 'd')), { code: 'ENOTEMPTY' });
  assert.throws(() => fs.mkdirSync(path.join(dir, 'd')), { code: 'EEXIST' });
  fs.unlinkSync(path.join(dir, 'd', 'b.bin'));
  fs.rmdirSync(path.join(dir, 'd'));
  assert.deepEqual(fs.readdirSync(dir), []);
  assert.ok(fs.statfsSync(dir).blocks > 0);

  const done = exited(child);
  assert.equal(spawnSync('umount', [dir]).status, 0);
  await done;
  const negotiated = JSON.parse(/negotiated (.*)/.exec(output())![1]!);
  assert.equal(negotiated.maxWrite, 1024 * 1024);
  assert.equal(negotiated.maxPages, 256);
  assert.ok(negotiated.flags & (1 << 22), 'FUSE_MAX_PAGES granted');
});

test('requests are served concurrently, at most `readers` at once', { skip }, async () => {
  // 12 programs read 12 files at once, each READ held 300 ms by the file system: with 3 readers,
  // 3 are in the file system at a time, never more, and the rest wait in the kernel.
  const { child, output } = await serve('--readers', '3', '--latency', '300');
  const done = exited(child);
  try {
    const names = Array.from({ length: 12 }, (_, i) => path.join(dir, `r${i}`));
    for (const n of names) fs.writeFileSync(n, n);
    const readers = names.map(
      (n) =>
        new Promise<string>((resolve, reject) => {
          const c = spawn('cat', [n], { stdio: ['ignore', 'pipe', 'inherit'] });
          let out = '';
          c.stdout.on('data', (d) => {
            out += d;
          });
          // 'close', not 'exit': only then has all of its output been read.
          c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`cat ${n}: ${code}`))));
        }),
    );
    assert.deepEqual(await Promise.all(readers), names);
  } finally {
    // Unmounted whatever happened: the next test mounts at the same place.
    spawnSync('umount', ['-l', dir]);
    await done;
  }
  assert.equal(Number(/most delayed at once (\d+)/.exec(output())?.[1]), 3);
});

test('an aborted connection: the device is closed only after the requests being served have ended', {
  skip,
}, async () => {
  // A READ is held 1.5 s by the file system when the connection is aborted (fusectl's abort, as
  // when the kernel gives up on a mount). The session must not close the descriptor under it:
  // its late reply would go to a closed descriptor (EBADF), or to a file that took the number.
  const ctl = '/sys/fs/fuse/connections';
  if (spawnSync('mountpoint', ['-q', ctl]).status !== 0)
    spawnSync('mount', ['-t', 'fusectl', 'fusectl', ctl]);
  // --debug: the session names each request on stderr as it takes it.
  const { child, output, errors } = await serve('--latency', '1500', '--debug');
  fs.writeFileSync(path.join(dir, 'slow'), 'slow');
  const { dev } = fs.statSync(dir);
  const conn = (dev & 0xff) | ((dev >> 12) & 0xfff00); // the connection is named by the minor number
  const reads = () => errors().split('fuse: READ ').length;
  const readsBefore = reads();
  const reader = spawn('cat', [path.join(dir, 'slow')], { stdio: 'ignore' });
  const readerDone = exited(reader); // the abort fails its read at once
  // The READ is in the file system now (a fixed wait could end before it came, on a loaded machine).
  for (let i = 0; i < 500 && reads() === readsBefore; i++) await new Promise((r) => setTimeout(r, 10));
  const readAt = Date.now();
  assert.ok(reads() > readsBefore, 'the READ reached the session');
  const done = exited(child);
  const t0 = Date.now();
  fs.writeFileSync(path.join(ctl, String(conn), 'abort'), '1');
  await Promise.all([done, readerDone]);
  // The session ends once the held READ is answered, 1.5 s after it came, not at the abort (a
  // margin for the poll above seeing it late).
  assert.ok(Date.now() - readAt >= 1000, `the session ended ${Date.now() - t0} ms after the abort`);
  assert.doesNotMatch(errors(), /EBADF/);
  assert.match(output(), /unmounted/);
  spawnSync('umount', ['-l', dir]);
});

test('a killed server leaves ENOTCONN, and umount still works', { skip }, async () => {
  const { child } = await serve();
  fs.writeFileSync(path.join(dir, 'x'), 'x');
  const done = exited(child);
  child.kill('SIGKILL');
  await done;
  assert.throws(() => fs.statSync(path.join(dir, 'x')), { code: 'ENOTCONN' });
  assert.equal(spawnSync('umount', [dir]).status, 0);
  assert.equal(fs.readdirSync(dir).length, 0); // the bare directory again
});
