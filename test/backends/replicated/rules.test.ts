/**
 * The share server's pure rules, table by table: capacity (what bricks can promise, bricks sharing
 * a file system, pools per zone) and access (which address gets rw, ro or nothing).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { accessFor, parseAccess } from '../../../backends/replicated/server/access.ts';
import {
  type BrickSpace,
  largestShare,
  pools,
  refusal,
} from '../../../backends/replicated/server/capacity.ts';

const G = 1024 ** 3;

function brick(id: string, over: Partial<BrickSpace> = {}): BrickSpace {
  return {
    id,
    host: `h-${id}`,
    zone: 'z1',
    dev: 1,
    fsTotalBytes: 1000 * G,
    fsFreeBytes: 900 * G,
    capacityBytes: 100 * G,
    shares: {},
    ...over,
  };
}

describe('capacity', () => {
  test('a brick promises at most its capacity, or its file system when smaller', () => {
    const a = brick('a', { shares: { s1: 60 * G } });
    const b = brick('b', { capacityBytes: null, fsTotalBytes: 50 * G });
    assert.equal(refusal([a, b], ['a'], 40 * G), null);
    assert.match(refusal([a, b], ['a'], 41 * G) ?? '', /brick a .* can promise 40 GiB more, 41 GiB asked/);
    assert.equal(refusal([a, b], ['b'], 50 * G), null);
    assert.match(refusal([a, b], ['b'], 51 * G) ?? '', /brick b/);
    assert.equal(refusal([a, b], ['a', 'b'], 0), null, 'no growth is always fine');
  });

  test('bricks on one file system of one host share it: three replicas there take three times the size', () => {
    // Solo mode: three bricks, one disk of 90 GiB, no configured capacity.
    const solo = ['a', 'b', 'c'].map((id) =>
      brick(id, { host: 'one', capacityBytes: null, fsTotalBytes: 90 * G }),
    );
    assert.equal(refusal(solo, ['a', 'b', 'c'], 30 * G), null);
    assert.match(refusal(solo, ['a', 'b', 'c'], 31 * G) ?? '', /file system shared by bricks a, b, c/);
    assert.equal(largestShare(solo, ['a', 'b', 'c']), 30 * G);
    // Same device number on different hosts is not the same disk.
    const apart = ['a', 'b', 'c'].map((id) => brick(id, { capacityBytes: null, fsTotalBytes: 90 * G }));
    assert.equal(largestShare(apart, ['a', 'b', 'c']), 90 * G);
  });

  test('pools: one per zone; free = the largest share its placement can take; total = allocated + free', () => {
    const bricks = [
      brick('a', { zone: 'z1', shares: { s1: 10 * G, s2: 5 * G } }),
      brick('b', { zone: 'z2', shares: { s1: 10 * G, s2: 5 * G } }),
      brick('c', { zone: 'z2', shares: { s1: 10 * G } }),
    ];
    const first: Record<string, string> = { s1: 'z1', s2: 'z2' };
    const out = pools(
      bricks,
      (id) => first[id],
      (zone) => (zone === 'z1' ? ['a', 'b', 'c'] : ['b', 'c']),
    );
    assert.deepEqual(out, [
      { name: 'z1', totalBytes: 10 * G + 85 * G, allocatedBytes: 10 * G, freeBytes: 85 * G },
      { name: 'z2', totalBytes: 5 * G + 85 * G, allocatedBytes: 5 * G, freeBytes: 85 * G },
    ]);
    const none = pools(
      bricks,
      (id) => first[id],
      () => null,
    );
    assert.equal(none[0]?.freeBytes, 0, 'no placement possible: nothing free');
  });
});

describe('access', () => {
  const rules = parseAccess([
    { id: 'r1', to: '10.0.0.0/24', level: 'ro' },
    { id: 'r2', to: '10.0.0.7', level: 'rw' },
    { id: 'r3', to: '2001:db8::/64', level: 'rw' },
  ]);
  const cases: [string | undefined, 'rw' | 'ro' | null][] = [
    ['10.0.0.7', 'rw'],
    ['::ffff:10.0.0.7', 'rw'],
    ['10.0.0.8', 'ro'],
    ['10.0.1.1', null],
    ['2001:db8::5', 'rw'],
    ['2001:db9::5', null],
    [undefined, null],
  ];
  for (const [remote, want] of cases)
    test(`${remote ?? 'no address'} → ${want ?? 'refused'}`, () => {
      assert.equal(accessFor(rules, remote), want);
    });

  test('no rules → nobody; no access list at all → not restricted by address', () => {
    assert.equal(accessFor([], '127.0.0.1'), null);
    assert.equal(accessFor(undefined, '127.0.0.1'), 'rw');
  });

  test('bad rules are refused with the rule named', () => {
    for (const bad of [
      'x',
      [{ id: 'a', to: 'host.example', level: 'rw' }],
      [{ id: 'a', to: '10.0.0.0/33', level: 'rw' }],
      [{ id: 'a', to: '10.0.0.0/', level: 'rw' }],
      [{ id: 'a', to: '10.0.0.1', level: 'rwx' }],
      [{ to: '10.0.0.1', level: 'rw' }],
    ])
      assert.throws(() => parseAccess(bad), { code: 'EINVAL' });
  });
});
