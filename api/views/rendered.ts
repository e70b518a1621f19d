import { LRUCache } from 'lru-cache';

/** Bytes of rendered items a server keeps (a share's detail view is about 1 KiB). */
const RENDERED_ITEMS_BYTES = 32 * 2 ** 20;
/** Bytes of list bodies a server keeps (a detail page of 100 shares is about 110 KiB). */
const RENDERED_PAGES_BYTES = 32 * 2 ** 20;

/** A page of a list as the service gives it: ids and revisions, and a loader for the items. */
export interface RevisionedPage<T> {
  items: { id: string; revision: string }[];
  /** The items with these ids, each with the revision it was read at; one deleted since is absent. */
  load(ids: string[]): Promise<{ id: string; item: T; revision: string }[]>;
}

/** What a list body holds besides its items, given the items it ended up with. */
export type ListExtras = (items: { id: string }[]) => Record<string, unknown>;

/**
 * The render cache of a list view: everything that makes a list page cheap to answer again,
 * behind one call. Rendering and encoding a detail page costs more than everything else a list
 * request does, so it keeps
 * - each item's JSON per view variant (detail or summary, microversion, admin or not) and per
 *   revision. An entry serves only the exact revision it was rendered from, and the database
 *   names the current revision on every request, so no server of many ever serves a stale item;
 *   an item changed since is loaded and rendered again, and only it;
 * - each encoded body per page key (variant, the caller's project, the query string) with the
 *   ids and revisions it was made from: a page whose items (and `signature` extras, the count)
 *   are unchanged is answered with the same bytes.
 * Both are LRU caches bounded in bytes. docs/share-api.md#lists tells the whole story.
 */
export class ListRenderCache {
  private readonly items = new LRUCache<string, { revision: string; json: string }>({
    maxSize: RENDERED_ITEMS_BYTES,
    sizeCalculation: (item, key) => item.json.length + item.revision.length + key.length,
  });
  private readonly pages = new LRUCache<string, { signature: string; body: Buffer }>({
    maxSize: RENDERED_PAGES_BYTES,
    sizeCalculation: (page, key) => page.body.length + page.signature.length + key.length,
  });

  /** The body `{"<name>":[…],…extras}` of `page`, rendering only the items not kept. */
  async body<T>(opts: {
    name: string;
    variant: string;
    pageKey: string;
    page: RevisionedPage<T>;
    render: (item: T) => unknown;
    extras: ListExtras;
    /** What else the body shows that the items' revisions do not cover (the count). */
    signature: string;
  }): Promise<Buffer> {
    const { variant, page } = opts;
    // Kept JSON is taken now: an entry evicted while the rest of the page loads stays at hand.
    const hits = new Map<string, string>();
    const missing: string[] = [];
    for (const { id, revision } of page.items) {
      const kept = this.items.get(`${variant} ${id}`);
      if (kept?.revision === revision) hits.set(id, kept.json);
      else missing.push(id);
    }
    const loaded = new Map((await page.load(missing)).map((l) => [l.id, l]));
    // A share deleted between the two reads is left out; one changed in between is given with the
    // revision it was loaded at, so what is kept under a revision is never older than it.
    const items: { id: string; revision: string }[] = [];
    for (const { id, revision } of page.items)
      if (hits.has(id)) items.push({ id, revision });
      else {
        const l = loaded.get(id);
        if (l) items.push({ id, revision: l.revision });
      }
    let signature = opts.signature;
    for (const e of items) signature += ` ${e.id}:${e.revision}`;
    const kept = this.pages.get(opts.pageKey);
    if (kept?.signature === signature) return kept.body;
    const json = collectionJson(
      opts.name,
      items.map(({ id, revision }) => {
        const hit = hits.get(id);
        if (hit !== undefined) return hit;
        const rendered = JSON.stringify(opts.render((loaded.get(id) as { item: T }).item));
        this.items.set(`${variant} ${id}`, { revision, json: rendered });
        return rendered;
      }),
      opts.extras(items),
    );
    const body = Buffer.from(json);
    this.pages.set(opts.pageKey, { signature, body });
    return body;
  }
}

/**
 * A collection body from items already rendered: `{"<name>":[…],…rest}` — the same text as
 * JSON.stringify of the object, without walking the items again.
 */
export function collectionJson(name: string, items: string[], rest: Record<string, unknown>): string {
  let json = `{${JSON.stringify(name)}:[${items.join(',')}]`;
  for (const [key, value] of Object.entries(rest))
    if (value !== undefined) json += `,${JSON.stringify(key)}:${JSON.stringify(value)}`;
  return `${json}}`;
}
