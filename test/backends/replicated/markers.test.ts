/** A brick's dirty markers (brick/markers.ts): one append per mark or clean, and what a restart reads back. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { MARKER_LOG, MarkerLog, parseLog } from '../../../backends/replicated/brick/markers.ts';

const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'abaca-markers-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

test('marks and cleans survive a reopen, and no file is made per marker', () => {
  const d = tmpDir();
  const m = new MarkerLog(d);
  m.mark(['a', 'b/c', 'name with\nnewline']);
  m.mark(['a']); // already marked: nothing appended
  m.clean(['b/c', 'never-marked']);
  const size = fs.statSync(path.join(d, MARKER_LOG)).size;
  m.clean(['never-marked']);
  assert.equal(fs.statSync(path.join(d, MARKER_LOG)).size, size, 'cleaning an unmarked path appends nothing');
  m.sync();
  m.close();
  assert.deepEqual(fs.readdirSync(d), [MARKER_LOG]);
  const again = new MarkerLog(d);
  assert.deepEqual([...again.paths].sort(), ['a', 'name with\nnewline']);
  again.close();
});

test('a last line cut short is not a marker; the lines before it are', () => {
  const d = tmpDir();
  fs.writeFileSync(path.join(d, MARKER_LOG), '+"x"\n+"y"\n-"x"\n+"z');
  const m = new MarkerLog(d);
  assert.deepEqual([...m.paths], ['y']);
  m.mark(['w']);
  m.close();
  // The cut line is dropped at the reopen: a mark appended after it is a line of its own.
  assert.deepEqual(parseLog(fs.readFileSync(path.join(d, MARKER_LOG), 'utf8')).at(-1), ['+', 'w']);
  assert.deepEqual([...new MarkerLog(d).paths].sort(), ['w', 'y']);
});

test('markers of the older one-file-per-path layout are read and moved into the log', () => {
  const d = tmpDir();
  const sha = (p: string) => createHash('sha1').update(p).digest('hex');
  fs.writeFileSync(path.join(d, sha('old/one')), 'old/one');
  fs.writeFileSync(path.join(d, sha('old/two')), 'old/two');
  fs.writeFileSync(path.join(d, `${sha('x')}.tmp-1234`), 'x'); // half-written: not a marker
  const m = new MarkerLog(d);
  assert.deepEqual([...m.paths].sort(), ['old/one', 'old/two']);
  assert.deepEqual(fs.readdirSync(d), [MARKER_LOG]);
  m.clean(['old/one']);
  m.close();
  assert.deepEqual([...new MarkerLog(d).paths], ['old/two']);
});

test('a log of mostly cleaned lines is rewritten with the live markers only', () => {
  const d = tmpDir();
  const m = new MarkerLog(d);
  m.mark(['keep/me']);
  const long = 'd/'.padEnd(200, 'x');
  for (let i = 0; i < 4000; i++) {
    m.mark([`${long}${i}`]);
    m.clean([`${long}${i}`]);
  }
  m.sync();
  const size = fs.statSync(path.join(d, MARKER_LOG)).size;
  assert.ok(size < 1024 * 1024, `compacted (${size} bytes)`);
  m.mark(['after']);
  m.close();
  assert.deepEqual([...new MarkerLog(d).paths].sort(), ['after', 'keep/me']);
});
