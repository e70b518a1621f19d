import { LRUCache } from 'lru-cache';

/** Bytes of rendered items a server keeps (a share's detail view is about 1 KiB). */
const RENDERED_ITEMS_BYTES = 32 * 2 ** 20;
/** Bytes of list bodies a server keeps (a detail page of 100 shares is about 110 KiB). */
const RENDERED_PAGES_BYTES = 32 * 2 ** 20;

/**
 * JSON already rendered for an item of a list at a given revision, per view variant (detail or
 * summary, microversion, admin or not). An entry serves only the exact revision it was rendered
 * from, and the database names the current revision on every request, so no server of many can
 * serve a stale item; what changed since is simply rendered again. JSON.stringify of a detail page
 * costs more than everything else a list request does, which is why this exists.
 */
export class RenderedItems {
  private readonly items = new LRUCache<string, { revision: string; json: string }>({
    maxSize: RENDERED_ITEMS_BYTES,
    sizeCalculation: (item, key) => item.json.length + item.revision.length + key.length,
  });

  /** The JSON of `id` rendered in `variant` at `revision`, if kept. */
  get(variant: string, id: string, revision: string): string | undefined {
    const item = this.items.get(`${variant} ${id}`);
    return item?.revision === revision ? item.json : undefined;
  }

  /** Renders `view` to JSON, keeps it for (variant, id, revision) and returns it. */
  put(variant: string, id: string, revision: string, view: unknown): string {
    const json = JSON.stringify(view);
    this.items.set(`${variant} ${id}`, { revision, json });
    return json;
  }

  /**
   * The check to hand to a page query: it answers whether (id, revision) is kept, and remembers
   * the JSON of those it answered yes for in `hits` — so an entry evicted while the rest of the
   * page loads is still at hand.
   */
  knownIn(variant: string, hits: Map<string, string>): (id: string, revision: string) => boolean {
    return (id, revision) => {
      const json = this.get(variant, id, revision);
      if (json !== undefined) hits.set(id, json);
      return json !== undefined;
    };
  }
}

/**
 * Whole list bodies, encoded, kept with the ids and revisions of their items: a page whose items
 * (and count) are all unchanged is answered with the same bytes, without joining and encoding
 * ~100 KiB again. The key names what else the body depends on (view variant, the caller's
 * project, the query string); the signature is checked against what the database just returned.
 */
export class RenderedPages {
  private readonly pages = new LRUCache<string, { signature: string; body: Buffer }>({
    maxSize: RENDERED_PAGES_BYTES,
    sizeCalculation: (page, key) => page.body.length + page.signature.length + key.length,
  });

  /** The kept body for `key` if it was made from exactly these items. */
  get(key: string, signature: string): Buffer | undefined {
    const page = this.pages.get(key);
    return page?.signature === signature ? page.body : undefined;
  }

  put(key: string, signature: string, json: string): Buffer {
    const body = Buffer.from(json);
    this.pages.set(key, { signature, body });
    return body;
  }
}

/** The signature of a page: its items' ids and revisions, in order, and anything else it shows. */
export function pageSignature(entries: { id: string; revision: string }[], extra = ''): string {
  let signature = extra;
  for (const e of entries) signature += ` ${e.id}:${e.revision}`;
  return signature;
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
