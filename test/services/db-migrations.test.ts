import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { migrateLatest, migrationSource } from '../../services/db.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';

/**
 * Rolling upgrades: once a newer release has migrated the database, a server of the release before
 * it still starts (migrations are expand-then-contract, so the older code works on the newer
 * schema) — knex alone would refuse with "the migration directory is corrupt". A database that
 * lacks this server's own migrations while having unknown ones is refused.
 */
let tdb: TestDb;
before(async () => {
  tdb = await createTestDb();
});
after(() => tdb.close());

const FUTURE = '29991231000000_add_future_column';

test('migrations: an up-to-date database applies nothing and reports nothing newer', async () => {
  const newer: string[][] = [];
  assert.deepEqual(await migrateLatest(tdb.db, { onNewerSchema: (n) => newer.push(n) }), []);
  assert.deepEqual(newer, []);
});

test('migrations: a database migrated by a newer release is served as it is, and says what is newer', async () => {
  await tdb.db('knex_migrations').insert({ name: FUTURE, batch: 99, migration_time: new Date() });
  const newer: string[][] = [];
  assert.deepEqual(await migrateLatest(tdb.db, { onNewerSchema: (n) => newer.push(n) }), []);
  assert.deepEqual(newer, [[FUTURE]]);
  // Without the check knex itself refuses this database.
  await assert.rejects(tdb.db.migrate.latest(), /migration directory is corrupt/);
});

test('migrations: unknown migrations while some of this server are missing — refused', async () => {
  const files = await migrationSource.getMigrations([]);
  const last = migrationSource.getMigrationName(files[files.length - 1] as string);
  await tdb.db('knex_migrations').where({ name: last }).delete();
  await assert.rejects(
    migrateLatest(tdb.db),
    new RegExp(`lacks some it has \\(${last}\\): it was migrated by another line of development`),
  );
});
