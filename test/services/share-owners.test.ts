/**
 * The owner table of the cluster monitor (services/repos/share-owners.ts) on the real database:
 * a claim keeps the first owner, a move is a compare-and-set on the generation, so two monitors
 * deciding at once leave exactly one decision; disabled share servers are kept per backend.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { shareOwnerStore } from '../../services/repos/share-owners.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';

let t: TestDb;
before(async () => {
  t = await createTestDb();
});
after(() => t?.close());

test('claim keeps the first owner; backends do not see each other', async () => {
  const a = shareOwnerStore(t.db, 'r1');
  const b = shareOwnerStore(t.db, 'r2');
  assert.deepEqual(await a.claim('s1', 'h1:1'), { share: 's1', server: 'h1:1', generation: 1 });
  assert.deepEqual(await a.claim('s1', 'h2:1'), { share: 's1', server: 'h1:1', generation: 1 });
  assert.equal(await b.get('s1'), undefined);
  assert.deepEqual(await b.list(), []);
  assert.deepEqual(await a.list(), [{ share: 's1', server: 'h1:1', generation: 1 }]);
});

test('concurrent moves from the same generation: exactly one wins', async () => {
  const s = shareOwnerStore(t.db, 'r3');
  await s.claim('s2', 'h1:1');
  const results = await Promise.all(['h2:1', 'h3:1', 'h4:1', 'h5:1'].map((to) => s.move('s2', 1, to)));
  assert.equal(results.filter(Boolean).length, 1);
  const now = (await s.get('s2'))!;
  assert.equal(now.generation, 2);
  assert.equal(now.server, ['h2:1', 'h3:1', 'h4:1', 'h5:1'][results.indexOf(true)]);
  // A monitor that read generation 1 cannot move it back.
  assert.equal(await s.move('s2', 1, 'h1:1'), false);
  assert.equal((await s.get('s2'))!.server, now.server);
  await s.forget('s2');
  assert.equal(await s.get('s2'), undefined);
  assert.equal(await s.move('s2', 2, 'h1:1'), false);
});

test('disabled share servers: set with a reason, changed, enabled again; per backend', async () => {
  const a = shareOwnerStore(t.db, 'r4');
  const b = shareOwnerStore(t.db, 'r5');
  assert.deepEqual([...(await a.disabled())], []);
  await a.setDisabled('h1:1', true, 'kernel upgrade');
  await a.setDisabled('h2:1', true, null);
  assert.deepEqual([...(await a.disabled())].sort(), [
    ['h1:1', 'kernel upgrade'],
    ['h2:1', null],
  ]);
  assert.deepEqual([...(await b.disabled())], [], 'another backend sees none');
  // Disabling again replaces the reason; enabling removes it; enabling twice is no error.
  await a.setDisabled('h1:1', true, 'disk swap');
  await a.setDisabled('h2:1', false, null);
  await a.setDisabled('h2:1', false, null);
  assert.deepEqual([...(await a.disabled())], [['h1:1', 'disk swap']]);
});
