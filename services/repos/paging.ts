import type { Knex } from 'knex';

/** What a list asks for: an order, and a page given by limit and offset or a marker. */
export interface PageQuery {
  sortKey: string;
  sortDir: 'asc' | 'desc';
  limit?: number | undefined;
  offset?: number | undefined;
  /** The id and sort value of the last row of the previous page. */
  marker?: { id: string; sortValue: unknown } | undefined;
}

/**
 * The condition "this row of `table` comes after the marker" for ORDER BY (key, id) in `dir`, with
 * NULL keys where PostgreSQL puts them (last ascending, first descending). The marker's key is read
 * by the database from the marker row itself: a timestamp passed through a JS Date would have lost
 * its microseconds, and the next page would skip rows created within the marker's millisecond.
 * `param()` adds the marker's id as a parameter and returns its placeholder.
 */
export function afterMarker(
  table: string,
  key: string,
  dir: 'asc' | 'desc',
  markerKeyIsNull: boolean,
  param: () => string,
): string {
  const column = `${table}.${key}`;
  const id = `${table}.id`;
  if (markerKeyIsNull)
    return dir === 'asc'
      ? `(${column} IS NULL AND ${id} > ${param()})`
      : `(${column} IS NOT NULL OR ${id} < ${param()})`;
  const pair = `(${column}, ${id}) ${dir === 'asc' ? '>' : '<'} ((SELECT m.${key} FROM ${table} m WHERE m.id = ${param()}), ${param()})`;
  return dir === 'asc' ? `(${pair} OR ${column} IS NULL)` : pair;
}

/**
 * Orders by (sortKey, id) so pages never overlap, and starts after the marker (keyset paging: the
 * cost follows the page, not the table). `sortKey` must be a column name the caller vetted.
 */
export function paged(b: Knex.QueryBuilder, table: string, q: PageQuery): Knex.QueryBuilder {
  if (q.marker) {
    const marker = q.marker;
    const bindings: string[] = [];
    b.whereRaw(
      afterMarker(
        table,
        q.sortKey,
        q.sortDir,
        marker.sortValue === null || marker.sortValue === undefined,
        () => {
          bindings.push(marker.id);
          return '?';
        },
      ),
      bindings,
    );
  }
  b.orderBy([
    { column: `${table}.${q.sortKey}`, order: q.sortDir },
    { column: `${table}.id`, order: q.sortDir },
  ]);
  if (q.limit !== undefined) b.limit(q.limit);
  if (q.offset !== undefined) b.offset(q.offset);
  return b;
}
