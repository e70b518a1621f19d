import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ShareStore } from '../../../backends/replicated/brick/brick-store.ts';
import { DIRECT_ALIGN, DIRECT_MIN, DirectWriter } from '../../../backends/replicated/brick/direct-writes.ts';

let dir: string;
/** Why O_DIRECT cannot be checked here, or undefined when the test directory's file system has it. */
let noDirect: string | undefined;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'abaca-direct-'));
  try {
    fs.closeSync(
      fs.openSync(
        path.join(dir, 'probe'),
        fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_DIRECT,
      ),
    );
  } catch (err) {
    noDirect = `the file system of ${dir} refuses O_DIRECT (${(err as NodeJS.ErrnoException).code})`;
  }
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function open(name: string): number {
  return fs.openSync(path.join(dir, name), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
}

/** Splits buf into pieces of the given sizes (the rest in one last piece), as a socket delivers it. */
function pieces(buf: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const n of sizes) {
    out.push(buf.subarray(at, at + n));
    at += n;
  }
  if (at < buf.length) out.push(buf.subarray(at));
  return out;
}

test('a large unaligned write lands byte-exact, its aligned middle through O_DIRECT', (t) => {
  const w = new DirectWriter({ enabled: true });
  const fd = open('big');
  try {
    const before = randomBytes(3 * 1024 * 1024);
    fs.writeSync(fd, before, 0, before.length, 0); // dirty page cache under the direct range
    const off = 12_345;
    const data = randomBytes(2 * 1024 * 1024 + 777);
    const direct = w.write(fd, pieces(data, [1, 65_536, 4095, 300_000, 8]), off, data.length);
    const expected = Buffer.from(before);
    data.copy(expected, off);
    assert.deepEqual(fs.readFileSync(path.join(dir, 'big')), expected);
    if (noDirect) return t.skip(noDirect);
    const a = Math.ceil(off / DIRECT_ALIGN) * DIRECT_ALIGN;
    const b = Math.floor((off + data.length) / DIRECT_ALIGN) * DIRECT_ALIGN;
    assert.equal(direct, b - a, 'the aligned middle went direct');
  } finally {
    w.release(fd);
    fs.closeSync(fd);
  }
});

test('a write that extends the file, then a buffered overwrite of part of it, read back', () => {
  const w = new DirectWriter({ enabled: true });
  const fd = open('grow');
  try {
    const data = randomBytes(DIRECT_MIN * 3 + 10);
    w.write(fd, [data], 0, data.length);
    assert.equal(fs.fstatSync(fd).size, data.length);
    const patch = Buffer.from('patched');
    w.write(fd, [patch], DIRECT_MIN, patch.length);
    patch.copy(data, DIRECT_MIN);
    assert.deepEqual(fs.readFileSync(path.join(dir, 'grow')), data);
  } finally {
    w.release(fd);
    fs.closeSync(fd);
  }
});

test('small writes stay buffered; a disabled writer writes everything buffered', () => {
  const fd = open('small');
  try {
    const on = new DirectWriter({ enabled: true });
    assert.equal(on.write(fd, [Buffer.alloc(DIRECT_MIN - 1, 1)], 0, DIRECT_MIN - 1), 0);
    const off = new DirectWriter({ enabled: false });
    const data = randomBytes(DIRECT_MIN * 4);
    assert.equal(off.write(fd, [data], 0, data.length), 0);
    assert.deepEqual(fs.readFileSync(path.join(dir, 'small')), data);
    on.release(fd);
  } finally {
    fs.closeSync(fd);
  }
});

test('release closes the O_DIRECT twin and forgets it', (t) => {
  if (noDirect) return t.skip(noDirect);
  const w = new DirectWriter({ enabled: true });
  const fd = open('twin');
  const fdsBefore = fs.readdirSync('/proc/self/fd').length;
  w.write(fd, [Buffer.alloc(DIRECT_MIN, 2)], 0, DIRECT_MIN);
  assert.equal(fs.readdirSync('/proc/self/fd').length, fdsBefore + 1);
  w.release(fd);
  assert.equal(fs.readdirSync('/proc/self/fd').length, fdsBefore);
  w.release(fd);
  fs.closeSync(fd);
});

test('a refused O_DIRECT write (EINVAL) falls back to buffered, byte-exact, and turns the writer off', (t) => {
  if (noDirect) return t.skip(noDirect);
  // A staging buffer one byte off page alignment: the kernel answers EINVAL, as a device with a
  // coarser block size would.
  const misaligned = Buffer.from(new ArrayBuffer(1024 * 1024 + 1), 1, 1024 * 1024);
  const reasons: string[] = [];
  const w = new DirectWriter({ enabled: true, staging: misaligned, onDisable: (r) => reasons.push(r) });
  const fd = open('refused');
  try {
    const data = randomBytes(3 * 1024 * 1024 + 100);
    assert.equal(w.write(fd, pieces(data, [100, 5000]), 100, data.length), 0, 'nothing went direct');
    assert.equal(w.active, false);
    assert.equal(reasons.length, 1, 'told once');
    assert.match(reasons[0]!, /EINVAL/);
    const file = () => fs.readFileSync(path.join(dir, 'refused'));
    assert.deepEqual(file(), Buffer.concat([Buffer.alloc(100), data]));
    const again = randomBytes(data.length);
    assert.equal(w.write(fd, [again], 100, again.length), 0, 'later writes are buffered');
    assert.deepEqual(file(), Buffer.concat([Buffer.alloc(100), again]));
  } finally {
    w.release(fd);
    fs.closeSync(fd);
  }
});

test('a brick never writes through the O_DIRECT twin of a descriptor number it closed and reused', () => {
  // The share store caches descriptors; rename and unlink close them and the next open takes the
  // same number. A twin kept past the close would send the new file's data into the old inode.
  for (const close of ['rename', 'unlink'] as const) {
    const shareDir = path.join(dir, `share-${close}`);
    ShareStore.create(shareDir, { id: close, size: 1 << 30, bricks: [], epoch: 1, owner: 'test' }, 'root');
    const store = new ShareStore(shareDir);
    try {
      const first = Buffer.alloc(DIRECT_MIN * 4, 0x41);
      const second = Buffer.alloc(DIRECT_MIN * 4, 0x42);
      store.mutate('create', { path: 'a', id: 'ia', mode: 0o644 }, []);
      store.mutate('write', { path: 'a', off: 0 }, [first]);
      if (close === 'rename') store.mutate('rename', { path: 'a', newPath: 'a2' }, []);
      else store.mutate('unlink', { path: 'a' }, []);
      store.mutate('create', { path: 'b', id: 'ib', mode: 0o644 }, []);
      store.mutate('write', { path: 'b', off: 0 }, [second]);
      if (close === 'rename')
        assert.deepEqual(fs.readFileSync(path.join(shareDir, 'data', 'a2')), first, 'a2 kept its data');
      assert.deepEqual(fs.readFileSync(path.join(shareDir, 'data', 'b')), second, `b after ${close}`);
    } finally {
      store.close();
    }
  }
});
