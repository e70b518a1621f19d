import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { tasksRepo } from '../../../services/repos/tasks.ts';
import { createTestDb, type TestDb } from '../../helpers/db.ts';

let tdb: TestDb;
before(async () => {
  tdb = await createTestDb();
});
after(() => tdb.close());

const insert = (resource: string, kind = 'k') =>
  tasksRepo.insert(tdb.db, { kind, resource_id: resource, payload: {} });

test('tasks of one resource are claimed one at a time, in order; other resources are not held up', async () => {
  const [a, b] = [randomUUID(), randomUUID()];
  const a1 = await insert(a);
  const a2 = await insert(a);
  const b1 = await insert(b);
  assert.equal((await tasksRepo.claim(tdb.db, 'w1', 60_000))?.id, a1.id);
  assert.equal((await tasksRepo.claim(tdb.db, 'w2', 60_000))?.id, b1.id, 'a2 waits for a1');
  assert.equal(await tasksRepo.claim(tdb.db, 'w3', 60_000), undefined);
  await tdb.db.transaction((trx) => tasksRepo.finish(trx, a1.id, 'w1', 'done', null));
  assert.equal((await tasksRepo.claim(tdb.db, 'w3', 60_000))?.id, a2.id);
  await tdb.db.transaction((trx) => tasksRepo.finish(trx, a2.id, 'w3', 'done', null));
  await tdb.db.transaction((trx) => tasksRepo.finish(trx, b1.id, 'w2', 'done', null));
});

test('a failed task does not hold up the next one; a dead worker’s task is reclaimed before its successor', async () => {
  const r = randomUUID();
  const first = await insert(r);
  const second = await insert(r);
  const third = await insert(r);
  await tasksRepo.claim(tdb.db, 'w1', 60_000);
  await tdb.db.transaction((trx) => tasksRepo.finish(trx, first.id, 'w1', 'failed', 'boom'));
  // The worker holding `second` dies: its lease runs out and the same task comes back, not `third`.
  assert.equal((await tasksRepo.claim(tdb.db, 'w2', 1))?.id, second.id);
  await new Promise((resolve) => setTimeout(resolve, 20));
  const again = await tasksRepo.claim(tdb.db, 'w3', 60_000);
  assert.deepEqual([again?.id, again?.attempts], [second.id, 2]);
  assert.equal(await tasksRepo.claim(tdb.db, 'w4', 60_000), undefined, 'third waits');
  await tdb.db.transaction((trx) => tasksRepo.finish(trx, second.id, 'w3', 'done', null));
  assert.equal((await tasksRepo.claim(tdb.db, 'w4', 60_000))?.id, third.id);
});
