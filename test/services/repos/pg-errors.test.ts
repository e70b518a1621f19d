import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ApiError, Conflict, InvalidInput } from '../../../services/errors.ts';
import { domainsRepo } from '../../../services/repos/domains.ts';
import { projectsRepo } from '../../../services/repos/projects.ts';
import { roleAssignmentsRepo } from '../../../services/repos/role-assignments.ts';
import { createTestDb, type TestDb } from '../../helpers/db.ts';

// Repositories turn PostgreSQL's constraint errors into typed API errors, on both databases.
let t: TestDb;
before(async () => {
  t = await createTestDb();
  await domainsRepo.insert(t.db, { id: 'd1', name: 'First', extra: {} });
});
after(() => t.close());

test('a unique violation (23505) is a 409 Conflict naming the key', async () => {
  await assert.rejects(
    domainsRepo.insert(t.db, { id: 'd2', name: 'First', extra: {} }),
    (err: Error) =>
      err instanceof Conflict && (err as ApiError).status === 409 && /name.*First/.test(err.message),
  );
  assert.equal((await domainsRepo.list(t.db, { name: 'First' })).length, 1);
});

test('a foreign key violation (23503) is a 400 InvalidInput', async () => {
  await assert.rejects(
    projectsRepo.insert(t.db, { id: 'p1', name: 'orphan', domain_id: 'no-such-domain', extra: {} }),
    (err: Error) =>
      err instanceof InvalidInput && (err as ApiError).status === 400 && /domain_id/.test(err.message),
  );
  await assert.rejects(
    roleAssignmentsRepo.add(t.db, { type: 'UserProject', actor_id: 'nobody', target_id: 'p', role_id: 'r' }),
    (err: Error) => err instanceof InvalidInput,
  );
  assert.equal(await projectsRepo.get(t.db, 'p1'), undefined, 'nothing was written');
});

test('other database errors are not disguised as client errors', async () => {
  await assert.rejects(
    t.db.transaction((trx) => trx.raw('SELECT * FROM no_such_table')),
    (err: Error) => !(err instanceof ApiError),
  );
});
