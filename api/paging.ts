import { InvalidInput } from '../services/errors.ts';
import { isUuid } from '../services/ids.ts';

/**
 * Where a page starts: `offset` (a count) or `marker` (the id of the last item of the previous
 * page). `openstack … list --marker X` sends offset=X (a client bug): a UUID offset is a marker.
 */
export function pageStart(q: { offset?: string | undefined; marker?: string | undefined }): {
  offset: number | undefined;
  markerId: string | undefined;
} {
  let offset: number | undefined;
  let markerId = q.marker;
  if (q.offset !== undefined) {
    if (/^\d+$/.test(q.offset)) offset = Number(q.offset);
    else if (isUuid(q.offset) && markerId === undefined) markerId = q.offset;
    else throw new InvalidInput('offset must be a whole number.');
  }
  return { offset, markerId };
}

/** The `<collection>_links` of a full page: the same query continued after its last item. */
export function nextLinks(
  url: string,
  query: Record<string, unknown>,
  rows: { id: string }[],
  limit: number | undefined,
): { rel: 'next'; href: string }[] | undefined {
  if (limit === undefined || rows.length === 0 || rows.length < limit) return undefined;
  const next = new URL(url);
  for (const [k, v] of Object.entries(query))
    if (k !== 'marker' && k !== 'offset') next.searchParams.set(k, String(v));
  next.searchParams.set('marker', (rows.at(-1) as { id: string }).id);
  return [{ rel: 'next', href: next.toString() }];
}
