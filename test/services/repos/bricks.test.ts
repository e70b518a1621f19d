import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { bricksRepo, createBrickStore } from '../../../services/repos/bricks.ts';
import { createTestDb, type TestDb } from '../../helpers/db.ts';

// The brick registry a replicated backend is given (BrickStore): one row per backend and address,
// updated in place, read back per backend; an unknown state read from the table is 'active'.
let t: TestDb;
before(async () => {
  t = await createTestDb();
});
after(() => t.close());

test('save inserts, then updates in place; list is per backend, by address', async () => {
  const store = createBrickStore(t.db);
  await store.save('repl', { address: '10.0.0.2:7001', brickId: null, state: 'active', replacedBy: null });
  await store.save('repl', { address: '10.0.0.1:7001', brickId: 'b1', state: 'active', replacedBy: null });
  await store.save('other', { address: '10.0.0.1:7001', brickId: 'x', state: 'draining', replacedBy: null });
  await store.save('repl', {
    address: '10.0.0.1:7001',
    brickId: 'b1',
    state: 'replacing',
    replacedBy: '10.0.0.9:7001',
  });
  assert.deepEqual(await store.list('repl'), [
    { address: '10.0.0.1:7001', brickId: 'b1', state: 'replacing', replacedBy: '10.0.0.9:7001' },
    { address: '10.0.0.2:7001', brickId: null, state: 'active', replacedBy: null },
  ]);
  assert.deepEqual(await bricksRepo.list(t.db, 'other'), [
    { address: '10.0.0.1:7001', brickId: 'x', state: 'draining', replacedBy: null },
  ]);
  assert.deepEqual(await store.list('none'), []);
});

test('a state this version does not know reads as active', async () => {
  await t.db('backend_bricks').insert({
    backend: 'future',
    address: '10.0.0.3:7001',
    brick_id: 'b3',
    state: 'hibernating',
    replaced_by: null,
    updated_at: new Date(),
  });
  assert.equal((await bricksRepo.list(t.db, 'future'))[0]?.state, 'active');
});
