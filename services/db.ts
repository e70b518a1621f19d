import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import type { PGlite, PGliteOptions } from '@electric-sql/pglite';
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

// knex-pglite loads PGlite's CommonJS build: using the same one keeps a second copy out of memory.
const require = createRequire(import.meta.url);
const PGLITE_MODULE = require.resolve('@electric-sql/pglite');
const loadPglite = () => (require(PGLITE_MODULE) as typeof import('@electric-sql/pglite')).PGlite;

/**
 * The embedded server's PostgreSQL settings: PGlite's own start parameters (single-user mode and
 * the rest; the option replaces them, so they are repeated) plus a buffer pool sized for a control
 * plane's database. PostgreSQL's default of 128 MB is touched in full when PGlite starts; 16 MB
 * holds the working set of thousands of shares, and what misses it is read from the OS page cache
 * (docs/benchmarks.md, footprint).
 */
export function pgliteOptions(sharedBuffers = '16MB'): PGliteOptions {
  return { startParams: [...loadPglite().defaultStartParams, '-c', `shared_buffers=${sharedBuffers}`] };
}

/**
 * Creates the embedded cluster in dir, when there is none, in a short-lived child process. initdb
 * runs in a PGlite instance of its own next to the one it fills, and a process keeps most of the
 * memory the two touched (hundreds of MB) after they close; a child gives it all back on exit.
 */
async function initPgliteCluster(dir: string, options: PGliteOptions): Promise<void> {
  if (existsSync(path.join(dir, 'PG_VERSION'))) return;
  const script = `require(process.env.PGLITE_MODULE).PGlite.create(process.env.PGLITE_DIR, JSON.parse(process.env.PGLITE_OPTIONS))
    .then((db) => db.close())
    .catch((err) => { process.stderr.write(String(err && err.stack || err)); process.exit(1); });`;
  const child = spawn(process.execPath, ['-e', script], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      PGLITE_MODULE,
      PGLITE_DIR: dir,
      PGLITE_OPTIONS: JSON.stringify(options),
    },
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4096);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`could not create the embedded database in ${dir}: ${stderr.trim()}`);
}

/**
 * Opens (and on first use creates) the embedded database in dir. PostgreSQL's WebAssembly runs on
 * V8's baseline compiler only: optimising its hot functions kept about 110 MB (optimised code and
 * the compiler's memory) for no measurable gain in the server's CPU time per request
 * (docs/benchmarks.md, footprint). The flag applies to modules compiled after it is set; PGlite's
 * is the only WebAssembly the server runs.
 */
export async function openPglite(dir: string, options: PGliteOptions = pgliteOptions()): Promise<PGlite> {
  mkdirSync(dir, { recursive: true });
  await initPgliteCluster(dir, options);
  v8.setFlagsFromString('--liftoff-only');
  return loadPglite().create(dir, options);
}

export interface DbOptions {
  /** postgres:// URL; null selects embedded PGlite. */
  databaseUrl: string | null;
  /** An already opened PGlite instance (openPglite; tests clone one from a template). */
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
  throw new Error('createDb: a databaseUrl or a PGlite instance is required (openDb opens a data dir)');
}

/** createDb for a server: PostgreSQL at databaseUrl, else the embedded database in pgliteDir. */
export async function openDb(opts: { databaseUrl: string | null; pgliteDir: string }): Promise<Db> {
  if (opts.databaseUrl) return createDb({ databaseUrl: opts.databaseUrl });
  return createDb({ databaseUrl: null, pglite: await openPglite(opts.pgliteDir) });
}

const MIGRATION_LOCK = 0x6d696772; // 'migr'

/**
 * Migrations the database has applied that this server does not know, after checking that this
 * server's own are all applied: a newer release migrated the database. Migrations are written
 * expand-then-contract (a release's schema changes keep the previous release working), so an older
 * server may go on serving during a rolling upgrade, or start again after a rollback. A database
 * that both lacks some of this server's migrations and has unknown ones was migrated by a
 * different line of development: refused, as knex would.
 */
async function newerMigrations(ex: Executor): Promise<string[]> {
  if (!(await ex.schema.hasTable('knex_migrations'))) return [];
  const applied: string[] = await ex('knex_migrations').pluck('name');
  const known = (await migrationSource.getMigrations([])).map((f) => migrationSource.getMigrationName(f));
  const unknown = applied.filter((n) => !known.includes(n));
  if (unknown.length === 0) return [];
  const missing = known.filter((n) => !applied.includes(n));
  if (missing.length > 0)
    throw new Error(
      `The database has migrations this server does not know (${unknown.join(', ')}) and lacks some it has (${missing.join(', ')}): it was migrated by another line of development; refusing to use it.`,
    );
  return unknown;
}

/**
 * Applies pending migrations. On PostgreSQL, servers migrate one at a time under an advisory lock:
 * two starting together on an empty database would otherwise both create knex's bookkeeping tables,
 * and one would fail. (PGlite belongs to one process, and its one connection cannot both hold a lock
 * and migrate.) A database already migrated by a newer release is left as it is, and
 * `onNewerSchema` is told which migrations this server does not know.
 */
export async function migrateLatest(
  db: Db,
  opts: { onNewerSchema?: (migrations: string[]) => void } = {},
): Promise<string[]> {
  const latest = async (ex: Executor) => {
    const newer = await newerMigrations(ex);
    if (newer.length > 0) {
      opts.onNewerSchema?.(newer);
      return [];
    }
    return ((await db.migrate.latest()) as [number, string[]])[1];
  };
  if (db.client.config.client !== 'pg') return latest(db);
  return db.transaction(async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(?)', [MIGRATION_LOCK]);
    return latest(trx);
  });
}

/** Runs fn in a transaction, or inside the caller's open one (so services compose). */
export async function inTransaction<T>(db: Executor, fn: (trx: Trx) => Promise<T>): Promise<T> {
  if ((db as Trx).isTransaction) return fn(db as Trx);
  return (db as Knex).transaction(fn);
}
