import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import knexFactory, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';

export type Db = Knex;
export type Trx = Knex.Transaction;
/** Either the root handle or an open transaction: repositories accept both. */
export type Executor = Knex | Knex.Transaction;

export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));
const MIGRATION_FILE = /^(\d{14}_[a-z0-9_]+)\.(ts|js|mjs)$/;

interface MigrationModule {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

/**
 * knex records a migration under the name its source gives it. Keying by the file stem (not the
 * file name) keeps the record identical whether the server runs .ts through tsx or built .js, and
 * keeps .d.ts files and anything else out of the list.
 */
export const migrationSource: Knex.MigrationSource<string> = {
  async getMigrations() {
    const files = readdirSync(MIGRATIONS_DIR).filter((f) => MIGRATION_FILE.test(f) && !f.endsWith('.d.ts'));
    return files.sort();
  },
  getMigrationName(file) {
    return (MIGRATION_FILE.exec(file) as RegExpExecArray)[1] as string;
  },
  async getMigration(file) {
    return (await import(pathToFileURL(path.join(MIGRATIONS_DIR, file)).href)) as MigrationModule;
  },
};

export interface DbOptions {
  /** postgres:// URL; null selects embedded PGlite. */
  databaseUrl: string | null;
  /** Directory of the PGlite cluster (ignored for PostgreSQL). */
  pgliteDir?: string;
  /** An already opened PGlite instance (tests clone one from a template). */
  pglite?: unknown;
  poolMax?: number;
}

export function createDb(opts: DbOptions): Db {
  if (opts.databaseUrl) {
    return knexFactory({
      client: 'pg',
      connection: opts.databaseUrl,
      pool: { min: 0, max: opts.poolMax ?? 10 },
      migrations: { migrationSource },
    });
  }
  if (opts.pglite) {
    const pglite = opts.pglite;
    return knexFactory({
      client: ClientPgLite,
      dialect: 'postgres',
      connection: () => ({ pglite }) as object,
      migrations: { migrationSource },
    } as Knex.Config);
  }
  if (!opts.pgliteDir) throw new Error('createDb: pgliteDir is required without a databaseUrl');
  mkdirSync(opts.pgliteDir, { recursive: true });
  return knexFactory({
    client: ClientPgLite,
    dialect: 'postgres',
    connection: { filename: opts.pgliteDir },
    migrations: { migrationSource },
  } as Knex.Config);
}

const MIGRATION_LOCK = 0x6d696772; // 'migr'

/**
 * Applies pending migrations. On PostgreSQL, servers migrate one at a time under an advisory lock:
 * two starting together on an empty database would otherwise both create knex's bookkeeping tables,
 * and one would fail. (PGlite belongs to one process, and its one connection cannot both hold a lock
 * and migrate.)
 */
export async function migrateLatest(db: Db): Promise<string[]> {
  const latest = async () => ((await db.migrate.latest()) as [number, string[]])[1];
  if (db.client.config.client !== 'pg') return latest();
  return db.transaction(async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(?)', [MIGRATION_LOCK]);
    return latest();
  });
}

/** Runs fn in a transaction, or inside the caller's open one (so services compose). */
export async function inTransaction<T>(db: Executor, fn: (trx: Trx) => Promise<T>): Promise<T> {
  if ((db as Trx).isTransaction) return fn(db as Trx);
  return (db as Knex).transaction(fn);
}
