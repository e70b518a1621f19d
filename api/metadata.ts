import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import { InvalidInput, NotFound } from '../services/errors.ts';
import type { Auth } from '../services/policy.ts';
import { Metadata, parse } from './validation.ts';

/** What Manila's metadata API (manila/api/v2/metadata.py) needs of a resource's service. */
export interface MetadataOps {
  /** 'Share', 'Snapshot': the start of the 404 message for a missing key. */
  what: string;
  get(auth: Auth, id: string): Promise<Record<string, string>>;
  /** Merges `metadata` into the resource's, or with replace makes it exactly that. */
  set(
    auth: Auth,
    id: string,
    metadata: Record<string, string>,
    replace: boolean,
  ): Promise<Record<string, string>>;
  remove(auth: Auth, id: string, key: string): Promise<void>;
}

const MetadataBody = z.object({ metadata: Metadata });

/**
 * GET/POST/PUT `/:id/metadata` and GET/PUT/DELETE `/:id/metadata/:key` on `r` (whose prefix names
 * the resource), each behind `guards`. One implementation for shares and snapshots, as Manila's
 * MetadataController mixin is: same validation (api/validation.ts Metadata), same answers. The
 * item PUT takes its one item under `itemKey` ('meta' for shares; snapshots, new in 2.73, take
 * 'metadata' as Manila's snapshot controller reads it).
 */
export function metadataRoutes(
  r: Router,
  guards: Middleware[],
  ops: MetadataOps,
  itemKey: 'meta' | 'metadata',
) {
  const ItemBody = z.object({ [itemKey]: Metadata });
  const missing = (id: string, key: string) => new NotFound(`${ops.what} ${id} has no metadata key ${key}.`);

  r.get('/:id/metadata', ...guards, async (ctx) => {
    ctx.body = { metadata: await ops.get(ctx.state.auth, ctx.params.id!) };
  });
  r.post('/:id/metadata', ...guards, async (ctx) => {
    const { metadata } = parse(MetadataBody, ctx.request.body);
    ctx.body = { metadata: await ops.set(ctx.state.auth, ctx.params.id!, metadata, false) };
  });
  r.put('/:id/metadata', ...guards, async (ctx) => {
    const { metadata } = parse(MetadataBody, ctx.request.body);
    ctx.body = { metadata: await ops.set(ctx.state.auth, ctx.params.id!, metadata, true) };
  });
  r.get('/:id/metadata/:key', ...guards, async (ctx) => {
    const value = (await ops.get(ctx.state.auth, ctx.params.id!))[ctx.params.key!];
    if (value === undefined) throw missing(ctx.params.id!, ctx.params.key!);
    ctx.body = { meta: { [ctx.params.key!]: value } };
  });
  r.put('/:id/metadata/:key', ...guards, async (ctx) => {
    const item = (parse(ItemBody, ctx.request.body) as Record<string, Record<string, string>>)[itemKey] ?? {};
    const keys = Object.keys(item);
    if (keys.length !== 1 || keys[0] !== ctx.params.key)
      throw new InvalidInput(`The body must hold exactly one item, keyed '${ctx.params.key}' as in the URL.`);
    const all = await ops.set(ctx.state.auth, ctx.params.id!, item, false);
    ctx.body = { [itemKey]: { [ctx.params.key!]: all[ctx.params.key!] } };
  });
  r.delete('/:id/metadata/:key', ...guards, async (ctx) => {
    await ops.remove(ctx.state.auth, ctx.params.id!, ctx.params.key!);
    // Manila answers 200 with no body; an explicit null keeps Koa from sending "OK".
    ctx.body = null;
    ctx.status = 200;
  });
}
