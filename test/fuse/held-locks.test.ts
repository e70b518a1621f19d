/** The mount's record of the locks the server granted it (client/mount/held-locks.ts), alone. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type HeldLock, HeldLocks } from '../../client/mount/held-locks.ts';
import type { Node } from '../../client/mount/node-table.ts';

const node = (fid: string) => ({ fid, ino: 2, path: fid, open: 1 }) as unknown as Node;
const lk = (
  owner: string,
  start: number,
  end: number,
  type: 'r' | 'w' = 'w',
  kind: HeldLock['kind'] = 'posix',
) => ({ owner, kind, type, start, end, pid: 7 }) as HeldLock;
const ranges = (h: HeldLocks) =>
  h
    .list()
    .flatMap((f) => f.locks.map((l) => `${f.node.fid}:${l.kind}:${l.owner}:${l.type}:${l.start}-${l.end}`))
    .sort();

test('a lock replaces what its owner held over the range; other owners and kinds are apart', () => {
  const h = new HeldLocks();
  const f = node('f');
  h.granted(f, lk('o1', 0, 99));
  h.granted(f, lk('o1', 40, 59, 'r'));
  h.granted(f, lk('o2', 200, 299));
  h.granted(f, lk('o1', 0, Infinity, 'w', 'flock'));
  assert.deepEqual(ranges(h), [
    'f:flock:o1:w:0-Infinity',
    'f:posix:o1:r:40-59',
    'f:posix:o1:w:0-39',
    'f:posix:o1:w:60-99',
    'f:posix:o2:w:200-299',
  ]);
  assert.equal(h.size, 5);
});

test('unlocking part of a range keeps the rest; a close (whole range) empties the owner', () => {
  const h = new HeldLocks();
  const f = node('f');
  const g = node('g');
  h.granted(f, lk('o1', 10, Infinity));
  h.granted(g, lk('o1', 0, 9));
  h.released(f, 'o1', 'posix', { start: 100, end: 199 });
  assert.deepEqual(ranges(h), ['f:posix:o1:w:10-99', 'f:posix:o1:w:200-Infinity', 'g:posix:o1:w:0-9']);
  h.released(f, 'o1', 'flock', { start: 0, end: Infinity });
  assert.equal(h.size, 3, 'another kind is not released');
  h.released(f, 'o1', 'posix', { start: 0, end: Infinity });
  assert.deepEqual(ranges(h), ['g:posix:o1:w:0-9']);
  h.drop(g);
  assert.equal(h.size, 0);
  assert.deepEqual(h.list(), []);
});
