import { z } from 'zod';
import { InvalidInput } from '../services/errors.ts';
import { isUuid } from '../services/ids.ts';

/**
 * The most items a page holds (Manila's osapi_max_limit): a larger `limit` is lowered to it, and a
 * list without one (or with limit=0) is a page of this size with a next link when more follow.
 */
export const MAX_PAGE = 1000;

/** The `limit` query parameter of a paged list. */
/**
 * The largest `offset` passed on: one past any possible row count still gives an empty page, as
 * Manila answers, where a larger number (9223372036854775807 becomes 2^63 as a double) would not
 * fit PostgreSQL's bigint.
 */
export const MAX_OFFSET = Number.MAX_SAFE_INTEGER;

export const PageLimit = z.coerce
  .number({ error: 'must be a whole number' })
  .int('must be a whole number')
  .min(0, 'must be 0 or more')
  .optional();

/**
 * Where a page starts: `offset` (a count) or `marker` (the id of the last item of the previous
 * page), and how many items it holds. `openstack … list --marker X` sends offset=X (a client bug):
 * a UUID offset is a marker.
 */
export function pageStart(q: {
  offset?: string | undefined;
  marker?: string | undefined;
  limit?: number | undefined;
}): {
  offset: number | undefined;
  markerId: string | undefined;
  limit: number;
} {
  let offset: number | undefined;
  let markerId = q.marker;
  if (q.offset !== undefined) {
    if (/^\d+$/.test(q.offset)) offset = Math.min(Number(q.offset), MAX_OFFSET);
    else if (isUuid(q.offset) && markerId === undefined) markerId = q.offset;
    else throw new InvalidInput('offset must be a whole number.');
  }
  return { offset, markerId, limit: Math.min(q.limit || MAX_PAGE, MAX_PAGE) };
}

/**
 * What every list query holds besides its filters: whose items (all_tenants, which any value but
 * 0/false means, and project_id), the order, and where the page starts and how long it is.
 */
export function listParams<K extends string>(q: {
  all_tenants?: string | undefined;
  project_id?: string | undefined;
  sort_key: K;
  sort_dir: 'asc' | 'desc';
  limit?: number | undefined;
  offset?: string | undefined;
  marker?: string | undefined;
}) {
  const { offset, markerId, limit } = pageStart(q);
  return {
    allTenants: q.all_tenants !== undefined && !['0', 'false', 'False'].includes(q.all_tenants),
    projectId: q.project_id,
    sortKey: q.sort_key,
    sortDir: q.sort_dir,
    limit,
    offset,
    markerId,
  };
}

/** The `<collection>_links` of a full page: the same query continued after its last item. */
export function nextLinks(
  url: string,
  query: Record<string, unknown>,
  rows: { id: string }[],
  limit: number,
): { rel: 'next'; href: string }[] | undefined {
  if (rows.length === 0 || rows.length < limit) return undefined;
  const next = new URL(url);
  for (const [k, v] of Object.entries(query))
    if (k !== 'marker' && k !== 'offset') next.searchParams.set(k, String(v));
  next.searchParams.set('marker', (rows.at(-1) as { id: string }).id);
  return [{ rel: 'next', href: next.toString() }];
}
