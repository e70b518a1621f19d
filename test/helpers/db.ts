import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import knexFactory from 'knex';
import { createDb, type Db, MIGRATIONS_DIR, migrateLatest } from '../../services/db.ts';

/**
 * A migrated database of its own for one test file. With TEST_DATABASE_URL (a real PostgreSQL
 * server) each file gets a fresh database on it; otherwise an in-memory PGlite loaded from a
 * migrated template that the first test file of a run builds and the others reuse.
 */
export interface TestDb {
  db: Db;
  kind: 'postgres' | 'pglite';
  close(): Promise<void>;
}

export async function createTestDb(): Promise<TestDb> {
  const url = process.env.TEST_DATABASE_URL;
  return url ? postgresDb(url) : pgliteDb();
}

async function postgresDb(url: string): Promise<TestDb> {
  const name = `abaca_test_${randomBytes(6).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE DATABASE ${name}`);
  const u = new URL(url);
  u.pathname = `/${name}`;
  const db = createDb({ databaseUrl: u.toString(), poolMax: 5 });
  await migrateLatest(db);
  return {
    db,
    kind: 'postgres',
    async close() {
      await db.destroy();
      await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.destroy();
    },
  };
}

function migrationsHash(): string {
  const h = createHash('sha256');
  for (const f of readdirSync(MIGRATIONS_DIR).sort())
    h.update(f).update(readFileSync(path.join(MIGRATIONS_DIR, f)));
  return h.digest('hex').slice(0, 16);
}

async function templateBlob(): Promise<Blob> {
  const dir = path.join(os.tmpdir(), 'abaca-test-templates');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `pglite-${migrationsHash()}.tar`);
  try {
    return new Blob([readFileSync(file)]);
  } catch {
    // Built by whichever file gets here first; a concurrent builder's rename is atomic and equal.
    const pg = new PGlite();
    const db = createDb({ databaseUrl: null, pglite: pg });
    await migrateLatest(db);
    const dump = await pg.dumpDataDir('none');
    await db.destroy();
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, Buffer.from(await dump.arrayBuffer()));
    renameSync(tmp, file);
    return new Blob([readFileSync(file)]);
  }
}

async function pgliteDb(): Promise<TestDb> {
  const pg = new PGlite({ loadDataDir: await templateBlob() });
  const db = createDb({ databaseUrl: null, pglite: pg });
  await migrateLatest(db); // no-op on the template; keeps a stale template honest
  return {
    db,
    kind: 'pglite',
    async close() {
      await db.destroy();
    },
  };
}

/** Removes leftovers a crashed run may have left (used by the server process tests). */
export function tempDir(prefix: string): { path: string; remove(): void } {
  const p = path.join(os.tmpdir(), `${prefix}-${randomBytes(4).toString('hex')}`);
  mkdirSync(p, { recursive: true });
  return { path: p, remove: () => rmSync(p, { recursive: true, force: true }) };
}
