import assert from 'node:assert/strict';
import { test } from 'node:test';
import { healView } from '../../api/share-heal.ts';

type Info = Parameters<typeof healView>[0];

const replica = (brick: string) => ({
  brick,
  address: `127.0.0.1:${brick}`,
  connected: true,
  entries: [],
  count: 0,
});

test('heal view: a snapshot a replica still misses keeps the share healing and is shown on that replica', () => {
  const base = { share: { id: 's1' }, replicas: [replica('1'), replica('2'), replica('3')], lastHeal: null };
  assert.equal(healView(base as unknown as Info).status, 'healthy');
  const v = healView({
    ...base,
    snapshots: [{ brick: '3', snapshot: 'snap-a', action: 'copy', healing: true }],
  } as unknown as Info);
  assert.equal(v.status, 'healing');
  assert.deepEqual(
    v.replicas.map((r) => r.pending_snapshots),
    [[], [], [{ snapshot_id: 'snap-a', action: 'copy', healing: true }]],
  );
});
