import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import type { Config } from '../services/config.ts';
import { InvalidInput, NotFound } from '../services/errors.ts';
import { shareUrl } from '../services/identity/catalog.ts';
import { parseDictLiteral } from '../services/python-literal.ts';
import type { SnapshotService } from '../services/snapshots.ts';
import { metadataRoutes } from './metadata.ts';
import { atLeast, onlyVersions } from './middleware/microversion.ts';
import { listParams, nextLinks, PageLimit } from './paging.ts';
import { Bool, Description, Metadata, Name, parse, ResetStatus, UuidFilter } from './validation.ts';
import * as view from './views/snapshots.ts';

const CreateBody = z.object({
  snapshot: z.object({
    share_id: z.string({ error: 'is required' }).min(1).max(64),
    force: Bool.nullish(),
    name: Name.nullish(),
    display_name: Name.nullish(),
    description: Description.nullish(),
    display_description: Description.nullish(),
    // Read from 2.73 (Metadata), ignored below as Manila ignores it.
    metadata: z.unknown().optional(),
  }),
});

const UpdateBody = z.object({
  snapshot: z.object({
    name: Name.nullish(),
    display_name: Name.nullish(),
    description: Description.nullish(),
    display_description: Description.nullish(),
  }),
});

const SORT_KEYS = [
  'id',
  'name',
  'status',
  'size',
  'share_id',
  'created_at',
  'updated_at',
  'project_id',
] as const;

const ListQuery = z
  .object({
    name: z.string().max(255).optional(),
    'name~': z.string().max(255).optional(),
    description: z.string().max(1024).optional(),
    'description~': z.string().max(1024).optional(),
    status: z.string().max(64).optional(),
    share_id: UuidFilter.optional(),
    size: z.coerce.number({ error: 'must be a whole number' }).int().min(0).optional(),
    project_id: z.string().max(64).optional(),
    all_tenants: z.string().optional(),
    usage: z.enum(['any', 'used', 'unused'], { error: 'must be any, used or unused' }).optional(),
    // A Python dict literal, as the clients send it; from 2.73, ignored below (as Manila).
    metadata: z.string().max(4096).optional(),
    sort_key: z.enum(SORT_KEYS, { error: `must be one of ${SORT_KEYS.join(', ')}` }).default('created_at'),
    sort_dir: z.enum(['asc', 'desc'], { error: 'must be asc or desc' }).default('desc'),
    limit: PageLimit,
    offset: z.string().max(64).optional(),
    marker: z.string().max(64).optional(),
  })
  .strict();

export function snapshotsRouter(config: Config, snapshots: SnapshotService, auth: Middleware): Router {
  const r = new Router({ prefix: '/v2/snapshots' });

  r.post('/', auth, async (ctx) => {
    const { snapshot: b } = parse(CreateBody, ctx.request.body);
    const metadata = atLeast(ctx.state.microversion, '2.73')
      ? parse(z.object({ metadata: Metadata.nullish() }), { metadata: b.metadata }, 'snapshot').metadata
      : undefined;
    const created = await snapshots.create(ctx.state.auth, {
      shareId: b.share_id,
      name: b.name ?? b.display_name ?? null,
      description: b.description ?? b.display_description ?? null,
      force: b.force ?? false,
      metadata: metadata ?? {},
    });
    ctx.status = 202;
    ctx.body = { snapshot: view.snapshotDetail(config, created, ctx.state.auth, ctx.state.microversion) };
  });

  async function list(ctx: Parameters<Middleware>[0], detail: boolean) {
    const q = parse(ListQuery, ctx.query, 'query');
    const a = ctx.state.auth;
    const paging = listParams(q);
    const rows = await snapshots.list(a, {
      ...paging,
      name: q.name,
      nameLike: q['name~'],
      description: q.description,
      descriptionLike: q['description~'],
      status: q.status,
      shareId: q.share_id,
      size: q.size,
      usage: q.usage,
      metadata:
        q.metadata && atLeast(ctx.state.microversion, '2.73')
          ? parseDictLiteral(q.metadata, 'metadata')
          : undefined,
    });
    const body: Record<string, unknown> = {
      snapshots: rows.map((s) =>
        detail ? view.snapshotDetail(config, s, a, ctx.state.microversion) : view.snapshotSummary(config, s),
      ),
    };
    const links = nextLinks(
      `${shareUrl(config)}/snapshots${detail ? '/detail' : ''}`,
      ctx.query,
      rows,
      paging.limit,
    );
    if (links) body.snapshots_links = links;
    ctx.body = body;
  }
  r.get('/', auth, (ctx) => list(ctx, false));
  r.get('/detail', auth, (ctx) => list(ctx, true));

  r.get('/:id', auth, async (ctx) => {
    const s = await snapshots.get(ctx.state.auth, ctx.params.id!);
    ctx.body = { snapshot: view.snapshotDetail(config, s, ctx.state.auth, ctx.state.microversion) };
  });

  r.put('/:id', auth, async (ctx) => {
    const { snapshot: b } = parse(UpdateBody, ctx.request.body);
    const s = await snapshots.update(ctx.state.auth, ctx.params.id!, {
      name: b.display_name !== undefined ? b.display_name : b.name,
      description: b.display_description !== undefined ? b.display_description : b.description,
    });
    ctx.body = { snapshot: view.snapshotDetail(config, s, ctx.state.auth, ctx.state.microversion) };
  });

  r.delete('/:id', auth, async (ctx) => {
    await snapshots.delete(ctx.state.auth, ctx.params.id!);
    ctx.status = 202;
  });

  r.post('/:id/action', auth, async (ctx) => {
    const body = ctx.request.body as Record<string, unknown> | undefined;
    const keys = body && typeof body === 'object' ? Object.keys(body) : [];
    if (keys.length !== 1)
      throw new InvalidInput(
        'An action body holds exactly one action, such as {"reset_status": {"status": "available"}}.',
      );
    const key = keys[0] as string;
    const action = key.replace(/^os-/, '');
    if (action === 'force_delete') await snapshots.forceDelete(ctx.state.auth, ctx.params.id!);
    else if (action === 'reset_status') {
      const { status } = parse(ResetStatus, body?.[key], 'reset_status');
      await snapshots.resetStatus(ctx.state.auth, ctx.params.id!, status);
    } else throw new InvalidInput(`Unknown snapshot action '${key}'; known: force_delete, reset_status.`);
    ctx.status = 202;
  });

  metadataRoutes(
    r,
    [auth, onlyVersions('2.73')],
    {
      what: 'Snapshot',
      get: (a, id) => snapshots.getMetadata(a, id),
      set: (a, id, metadata, replace) => snapshots.setMetadata(a, id, metadata, replace),
      remove: (a, id, key) => snapshots.deleteMetadata(a, id, key),
    },
    'metadata',
  );

  // No backend exports snapshots for mounting (mount_snapshot_support is false everywhere), so a
  // snapshot has no export locations; the route exists because `openstack share snapshot show` asks.
  r.get('/:id/export-locations', auth, async (ctx) => {
    await snapshots.get(ctx.state.auth, ctx.params.id!);
    ctx.body = { share_snapshot_export_locations: [] };
  });
  r.get('/:id/export-locations/:elId', auth, async (ctx) => {
    await snapshots.get(ctx.state.auth, ctx.params.id!);
    throw new NotFound(`Export location ${ctx.params.elId} could not be found.`);
  });
  return r;
}
