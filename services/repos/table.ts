import type { Executor } from '../db.ts';
import { guarded } from './pg-errors.ts';

/**
 * The plain row operations every identity table needs, with pg errors translated. Resource repos
 * build on this and add their own queries; services never write SQL themselves.
 */
export interface TableRepo<Row> {
  get(ex: Executor, id: string): Promise<Row | undefined>;
  list(ex: Executor, where?: Partial<Row>): Promise<Row[]>;
  insert(ex: Executor, row: Partial<Row>): Promise<Row>;
  update(ex: Executor, id: string, patch: Partial<Row>): Promise<Row | undefined>;
  remove(ex: Executor, id: string): Promise<boolean>;
}

export function tableRepo<Row extends { id: string }>(table: string, what: string): TableRepo<Row> {
  return {
    async get(ex, id) {
      return (await ex(table).where({ id }).first()) as Row | undefined;
    },
    async list(ex, where = {}) {
      const defined = Object.fromEntries(Object.entries(where).filter(([, v]) => v !== undefined));
      return (await ex(table).where(defined).orderBy('name').orderBy('id')) as Row[];
    },
    async insert(ex, row) {
      return guarded(what, async () => {
        const [created] = await ex(table).insert(jsonColumns(row)).returning('*');
        return created as Row;
      });
    },
    async update(ex, id, patch) {
      return guarded(what, async () => {
        const [updated] = await ex(table).where({ id }).update(jsonColumns(patch)).returning('*');
        return updated as Row | undefined;
      });
    },
    async remove(ex, id) {
      // Counted through RETURNING: knex-pglite does not report a DELETE's row count.
      return guarded(what, async () => (await ex(table).where({ id }).delete().returning('id')).length > 0);
    },
  };
}

/** pg sends JS arrays as Postgres arrays; jsonb columns need them serialised. */
function jsonColumns<T extends object>(row: T): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(row).map(([k, v]) => [
      k,
      v !== null && typeof v === 'object' && !(v instanceof Date) ? JSON.stringify(v) : v,
    ]),
  );
}
