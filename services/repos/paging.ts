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
 * Orders by (sortKey, id) so pages never overlap, and starts after the marker by comparing that
 * pair (keyset paging: the cost follows the page, not the table).
 */
export function paged(b: Knex.QueryBuilder, table: string, q: PageQuery): Knex.QueryBuilder {
  if (q.marker) {
    const op = q.sortDir === 'asc' ? '>' : '<';
    b.whereRaw(`(??, ??) ${op} (?, ?)`, [
      `${table}.${q.sortKey}`,
      `${table}.id`,
      q.marker.sortValue as Knex.Value,
      q.marker.id,
    ]);
  }
  b.orderBy([
    { column: `${table}.${q.sortKey}`, order: q.sortDir },
    { column: `${table}.id`, order: q.sortDir },
  ]);
  if (q.limit !== undefined) b.limit(q.limit);
  if (q.offset !== undefined) b.offset(q.offset);
  return b;
}
