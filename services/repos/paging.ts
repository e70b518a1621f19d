import type { Knex } from 'knex';
import { InvalidInput, NotFound } from '../errors.ts';

/** What a list asks for: an order, and a page given by limit and offset or a marker. */
export interface PageQuery {
  sortKey: string;
  sortDir: 'asc' | 'desc';
  limit?: number | undefined;
  offset?: number | undefined;
  /** The id and sort value of the last row of the previous page. */
  marker?: { id: string; sortValue: unknown } | undefined;
}

/** The fields of a list query the API asks in terms of ids: the marker row, not its sort value. */
export type ListQuery<Q extends PageQuery> = Omit<Q, 'projectId' | 'marker'> & {
  /** all_tenants (admins only; ignored for anyone else) and project_id, see listedProject. */
  allTenants: boolean;
  projectId?: string | undefined;
  /** The id of the last item of the previous page. */
  markerId?: string | undefined;
};

/**
 * Where a page starts: the marker row `find` reads as the caller may see it (none without a
 * markerId), with its value at the sort key. One the caller cannot see is a bad request, not a
 * missing resource.
 */
export async function markerOf<Row extends { id: string }>(
  q: { markerId?: string | undefined; sortKey: string },
  find: (id: string) => Promise<Row>,
  what: string,
): Promise<PageQuery['marker']> {
  const id = q.markerId;
  if (id === undefined) return undefined;
  const row = await find(id).catch((err: unknown) => {
    throw err instanceof NotFound ? new InvalidInput(`Marker ${id} is not a ${what} you can see.`) : err;
  });
  return { id: row.id, sortValue: row[q.sortKey as keyof Row] };
}

/**
 * The page part of a list query on `table` as SQL text: the condition "after the marker" (if
 * any) and ORDER BY (sortKey, id), so that pages never overlap — keyset paging, whose cost follows
 * the page, not the table. `param(v)` adds a value and returns its placeholder ($n or ?).
 * `sortKey` must be a column name the caller vetted.
 *
 * With NULL keys where PostgreSQL puts them (last ascending, first descending). The marker's key
 * is read by the database from the marker row itself: a timestamp passed through a JS Date would
 * have lost its microseconds, and the next page would skip rows created within the marker's
 * millisecond.
 */
export function pageSql(
  table: string,
  q: PageQuery,
  param: (value: unknown) => string,
): { after: string | undefined; orderBy: string } {
  const column = `${table}.${q.sortKey}`;
  const id = `${table}.id`;
  const dir = q.sortDir === 'asc' ? 'ASC' : 'DESC';
  const orderBy = `${column} ${dir}, ${id} ${dir}`;
  const marker = q.marker;
  if (!marker) return { after: undefined, orderBy };
  if (marker.sortValue === null || marker.sortValue === undefined)
    return {
      after:
        q.sortDir === 'asc'
          ? `(${column} IS NULL AND ${id} > ${param(marker.id)})`
          : `(${column} IS NOT NULL OR ${id} < ${param(marker.id)})`,
      orderBy,
    };
  const pair = `(${column}, ${id}) ${q.sortDir === 'asc' ? '>' : '<'} ((SELECT m.${q.sortKey} FROM ${table} m WHERE m.id = ${param(marker.id)}), ${param(marker.id)})`;
  return { after: q.sortDir === 'asc' ? `(${pair} OR ${column} IS NULL)` : pair, orderBy };
}

/** pageSql on a knex builder, with LIMIT and OFFSET. */
export function paged(b: Knex.QueryBuilder, table: string, q: PageQuery): Knex.QueryBuilder {
  const bindings: unknown[] = [];
  const { after, orderBy } = pageSql(table, q, (v) => {
    bindings.push(v);
    return '?';
  });
  if (after) b.whereRaw(after, bindings as Knex.RawBinding[]);
  b.orderByRaw(orderBy);
  if (q.limit !== undefined) b.limit(q.limit);
  if (q.offset !== undefined) b.offset(q.offset);
  return b;
}
