import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DIRECT_ALIGN, DIRECT_MIN, DirectWriter } from '../../../backends/replicated/direct-writes.ts';

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
  const w = new DirectWriter(true);
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
  const w = new DirectWriter(true);
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
    const on = new DirectWriter(true);
    assert.equal(on.write(fd, [Buffer.alloc(DIRECT_MIN - 1, 1)], 0, DIRECT_MIN - 1), 0);
    const off = new DirectWriter(false);
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
  const w = new DirectWriter(true);
  const fd = open('twin');
  const fdsBefore = fs.readdirSync('/proc/self/fd').length;
  w.write(fd, [Buffer.alloc(DIRECT_MIN, 2)], 0, DIRECT_MIN);
  assert.equal(fs.readdirSync('/proc/self/fd').length, fdsBefore + 1);
  w.release(fd);
  assert.equal(fs.readdirSync('/proc/self/fd').length, fdsBefore);
  w.release(fd);
  fs.closeSync(fd);
});
