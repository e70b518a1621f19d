import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Member, ShareCoordinator } from '../../../backends/replicated/server/share-coordinator.ts';
import { planSnapshotHeal } from '../../../backends/replicated/server/snapshot-heal.ts';
import type { BrickCatalog, SnapRecord } from '../../../backends/replicated/server/snapshots.ts';

const rec = (id: string, createdAt = '2026-12-05T00:00:00Z'): SnapRecord => ({
  id,
  size: 1,
  method: 'link',
  files: 0,
  bytes: 0,
  createdAt,
  ms: 0,
});
const member = (id: string) => ({ id }) as Member;
const coord = (n: number) => ({ majority: Math.floor(n / 2) + 1 }) as ShareCoordinator;

/** Catalogs as [brick, snapshots held, snapshots deleted]. */
function plan(n: number, cats: Array<[string, string[], string[]]>): string[] {
  const c: BrickCatalog[] = cats.map(([b, snaps, deleted]) => ({
    m: member(b),
    snaps: snaps.map((s) => rec(s)),
    deleted,
  }));
  return planSnapshotHeal(coord(n), c).map(
    (t) =>
      `${t.action} ${t.snap} on ${t.m.id}${t.action === 'copy' ? ` from ${t.sources.map((s) => s.id).join(',')}` : ''}`,
  );
}

const cases: Array<{ name: string; n: number; cats: Array<[string, string[], string[]]>; want: string[] }> = [
  {
    name: 'all agree',
    n: 3,
    cats: [
      ['a', ['s'], []],
      ['b', ['s'], []],
      ['c', ['s'], []],
    ],
    want: [],
  },
  {
    name: 'a brick missed a create',
    n: 3,
    cats: [
      ['a', ['s'], []],
      ['b', ['s'], []],
      ['c', [], []],
    ],
    want: ['copy s on c from a,b'],
  },
  {
    name: 'held by a minority: not spread',
    n: 3,
    cats: [
      ['a', ['s'], []],
      ['b', [], []],
      ['c', [], []],
    ],
    want: [],
  },
  {
    name: 'a majority of the replica set, not of the catalogs answering',
    n: 3,
    cats: [
      ['a', ['s'], []],
      ['c', [], []],
    ],
    want: [],
  },
  {
    name: 'a brick missed a delete: it deletes; the others keep their tombstones',
    n: 3,
    cats: [
      ['a', [], ['s']],
      ['b', [], ['s']],
      ['c', ['s'], []],
    ],
    want: ['delete s on c'],
  },
  {
    name: 'taken and deleted while away: only the tombstone',
    n: 3,
    cats: [
      ['a', [], ['s']],
      ['b', [], ['s']],
      ['c', [], []],
    ],
    want: ['delete s on c'],
  },
  {
    name: 'a tombstone anywhere wins over a majority holding it',
    n: 3,
    cats: [
      ['a', ['s'], []],
      ['b', ['s'], []],
      ['c', [], ['s']],
    ],
    want: ['delete s on a', 'delete s on b'],
  },
  {
    name: 'a brick with the tombstone never gets a copy',
    n: 3,
    cats: [
      ['a', ['s', 't'], []],
      ['b', ['s', 't'], []],
      ['c', [], ['t']],
    ],
    want: ['delete t on a', 'delete t on b', 'copy s on c from a,b'],
  },
];

for (const c of cases)
  test(`snapshot heal plan: ${c.name}`, () => {
    assert.deepEqual(plan(c.n, c.cats), c.want);
  });
