import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import { SHARE_PROTOCOLS, type ShareProtocol } from '../backends/types.ts';
import type { Config } from '../services/config.ts';
import { InvalidInput, NotFound, NotSupported } from '../services/errors.ts';
import { parseBool } from '../services/extra-specs.ts';
import { shareUrl } from '../services/identity/catalog.ts';
import { isUuid } from '../services/ids.ts';
import { parseDictLiteral } from '../services/python-literal.ts';
import type { ShareService } from '../services/shares.ts';
import { Description, Name, parse } from './validation.ts';
import * as view from './views/shares.ts';

const MAX_SIZE_GIB = 1_000_000;
const Size = z
  .union([z.number(), z.string().regex(/^\d+$/, 'must be a whole number of GiB')], {
    error: 'must be a whole number of GiB',
  })
  .transform(Number)
  .pipe(
    z
      .number()
      .int('must be a whole number of GiB')
      .min(1, 'must be at least 1 GiB')
      .max(MAX_SIZE_GIB, `must be at most ${MAX_SIZE_GIB} GiB`),
  );
const Proto = z
  .string({ error: `must be one of ${SHARE_PROTOCOLS.join(', ')}` })
  .transform((p) => p.toUpperCase())
  .pipe(z.enum(SHARE_PROTOCOLS, { error: `must be one of ${SHARE_PROTOCOLS.join(', ')}` }));
const MetaKey = z.string().min(1, 'keys must not be empty').max(255, 'keys must be at most 255 characters');
const Metadata = z.record(
  MetaKey,
  z.string({ error: 'values must be strings' }).max(255, 'values must be at most 255 characters'),
  {
    error: 'must be an object of string keys and values',
  },
);
const Bool = z.union([z.boolean(), z.string()]).transform((v, ctx) => {
  try {
    return parseBool(v, 'value');
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be true or false' });
    return z.NEVER;
  }
});

const CreateBody = z.object({
  share: z.object({
    size: Size,
    share_proto: Proto,
    name: Name.nullish(),
    display_name: Name.nullish(),
    description: Description.nullish(),
    display_description: Description.nullish(),
    metadata: Metadata.nullish(),
    share_type: z.string().max(255).nullish(),
    volume_type: z.string().max(255).nullish(),
    availability_zone: z.string().min(1).max(255).nullish(),
    is_public: Bool.nullish(),
    snapshot_id: z.string().max(64).nullish(),
    share_network_id: z
      .null({ error: 'share networks are not supported (driver_handles_share_servers=False only)' })
      .optional(),
    share_group_id: z.null({ error: 'share groups are not supported' }).optional(),
    scheduler_hints: z.strictObject({}, { error: 'scheduler hints are not supported' }).nullish(),
  }),
});

const UpdateBody = z.object({
  share: z.object({
    name: Name.nullish(),
    display_name: Name.nullish(),
    description: Description.nullish(),
    display_description: Description.nullish(),
    is_public: Bool.optional(),
  }),
});
const MetadataBody = z.object({ metadata: Metadata });
const MetaItemBody = z.object({ meta: Metadata });
const ResetStatus = z.object({ status: z.string({ error: 'is required' }).min(1).max(64) });
/** Manila actions that exist but that abaca does not carry out yet: 501, not a client error. */
const PENDING_ACTIONS = ['extend', 'shrink', 'revert', 'allow_access', 'deny_access', 'access_list'];

const SORT_KEYS = [
  'id',
  'name',
  'status',
  'size',
  'created_at',
  'updated_at',
  'share_proto',
  'project_id',
  'share_type_id',
  'availability_zone',
  'host',
] as const;

const ListQuery = z
  .object({
    name: z.string().max(255).optional(),
    'name~': z.string().max(255).optional(),
    'description~': z.string().max(1024).optional(),
    status: z.string().max(64).optional(),
    share_type_id: z.string().max(64).optional(),
    metadata: z.string().max(4096).optional(),
    extra_specs: z.string().max(4096).optional(),
    is_public: Bool.optional(),
    is_soft_deleted: Bool.optional(),
    export_location_id: z.string().max(64).optional(),
    export_location_path: z.string().max(4096).optional(),
    availability_zone: z.string().max(255).optional(),
    project_id: z.string().max(64).optional(),
    all_tenants: z.string().optional(),
    sort_key: z.enum(SORT_KEYS, { error: `must be one of ${SORT_KEYS.join(', ')}` }).default('created_at'),
    sort_dir: z.enum(['asc', 'desc'], { error: 'must be asc or desc' }).default('desc'),
    limit: z.coerce.number({ error: 'must be a whole number' }).int().min(0).max(10_000).optional(),
    offset: z.string().max(64).optional(),
    marker: z.string().max(64).optional(),
    with_count: Bool.optional(),
  })
  .strict();

export function sharesRouter(config: Config, shares: ShareService, auth: Middleware): Router {
  const r = new Router({ prefix: '/v2/shares' });

  r.post('/', auth, async (ctx) => {
    const { share: b } = parse(CreateBody, ctx.request.body);
    const created = await shares.create(ctx.state.auth, {
      size: b.size,
      proto: b.share_proto as ShareProtocol,
      name: b.name ?? b.display_name ?? null,
      description: b.description ?? b.display_description ?? null,
      metadata: b.metadata ?? {},
      shareType: b.share_type ?? b.volume_type ?? null,
      availabilityZone: b.availability_zone ?? null,
      isPublic: b.is_public ?? false,
      snapshotId: b.snapshot_id ?? null,
    });
    ctx.body = { share: view.shareDetail(config, created, ctx.state.auth, ctx.state.microversion) };
  });

  async function list(ctx: Parameters<Middleware>[0], detail: boolean) {
    const q = parse(ListQuery, ctx.query);
    const a = ctx.state.auth;
    // `openstack share list --marker X` sends offset=X (a client bug): treat a UUID offset as a marker.
    let offset: number | undefined;
    let markerId = q.marker;
    if (q.offset !== undefined) {
      if (/^\d+$/.test(q.offset)) offset = Number(q.offset);
      else if (isUuid(q.offset) && markerId === undefined) markerId = q.offset;
      else throw new InvalidInput('offset must be a whole number.');
    }
    const allTenants = q.all_tenants !== undefined && !['0', 'false', 'False'].includes(q.all_tenants);
    const base = {
      allTenants,
      projectId: q.project_id,
      includePublic: q.is_public === true,
      name: q.name,
      nameLike: q['name~'],
      descriptionLike: q['description~'],
      status: q.status,
      shareTypeId: q.share_type_id,
      availabilityZone: q.availability_zone,
      metadata: q.metadata ? parseDictLiteral(q.metadata, 'metadata') : undefined,
      extraSpecs: q.extra_specs ? parseDictLiteral(q.extra_specs, 'extra_specs') : undefined,
      exportLocationPath: q.export_location_path,
      exportLocationId: q.export_location_id,
      sortKey: q.sort_key,
      sortDir: q.sort_dir,
      limit: q.limit,
      offset,
      marker: markerId ? await shares.marker(a, markerId, q.sort_key) : undefined,
    };
    // Shares are never soft-deleted here: asking for soft-deleted ones finds none.
    const result = q.is_soft_deleted ? null : await shares.list(a, base);
    const rows = result?.shares ?? [];
    const body: Record<string, unknown> = {
      shares: rows.map((s) =>
        detail ? view.shareDetail(config, s, a, ctx.state.microversion) : view.shareSummary(config, s),
      ),
    };
    if (q.limit !== undefined && rows.length === q.limit && rows.length > 0) {
      const next = new URL(`${shareUrl(config)}/shares${detail ? '/detail' : ''}`);
      for (const [k, v] of Object.entries(ctx.query))
        if (k !== 'marker' && k !== 'offset') next.searchParams.set(k, String(v));
      next.searchParams.set('marker', (rows.at(-1) as { id: string }).id);
      body.shares_links = [{ rel: 'next', href: next.toString() }];
    }
    if (q.with_count) body.count = result ? await result.count() : 0;
    ctx.body = body;
  }
  r.get('/', auth, (ctx) => list(ctx, false));
  r.get('/detail', auth, (ctx) => list(ctx, true));

  r.get('/:id', auth, async (ctx) => {
    const s = await shares.get(ctx.state.auth, ctx.params.id!);
    ctx.body = { share: view.shareDetail(config, s, ctx.state.auth, ctx.state.microversion) };
  });

  r.delete('/:id', auth, async (ctx) => {
    await shares.remove(ctx.state.auth, ctx.params.id!);
    ctx.status = 202;
  });

  r.put('/:id', auth, async (ctx) => {
    const { share: b } = parse(UpdateBody, ctx.request.body);
    const s = await shares.update(ctx.state.auth, ctx.params.id!, {
      name: b.display_name !== undefined ? b.display_name : b.name,
      description: b.display_description !== undefined ? b.display_description : b.description,
      isPublic: b.is_public,
    });
    ctx.body = { share: view.shareDetail(config, s, ctx.state.auth, ctx.state.microversion) };
  });

  r.get('/:id/metadata', auth, async (ctx) => {
    ctx.body = { metadata: await shares.getMetadata(ctx.state.auth, ctx.params.id!) };
  });
  r.post('/:id/metadata', auth, async (ctx) => {
    const { metadata } = parse(MetadataBody, ctx.request.body);
    ctx.body = { metadata: await shares.setMetadata(ctx.state.auth, ctx.params.id!, metadata, false) };
  });
  r.put('/:id/metadata', auth, async (ctx) => {
    const { metadata } = parse(MetadataBody, ctx.request.body);
    ctx.body = { metadata: await shares.setMetadata(ctx.state.auth, ctx.params.id!, metadata, true) };
  });
  r.get('/:id/metadata/:key', auth, async (ctx) => {
    const all = await shares.getMetadata(ctx.state.auth, ctx.params.id!);
    const value = all[ctx.params.key!];
    if (value === undefined)
      throw new NotFound(`Share ${ctx.params.id} has no metadata key ${ctx.params.key}.`);
    ctx.body = { meta: { [ctx.params.key!]: value } };
  });
  r.put('/:id/metadata/:key', auth, async (ctx) => {
    const { meta } = parse(MetaItemBody, ctx.request.body);
    const keys = Object.keys(meta);
    if (keys.length !== 1 || keys[0] !== ctx.params.key)
      throw new InvalidInput(`The body must hold exactly one item, keyed '${ctx.params.key}' as in the URL.`);
    const all = await shares.setMetadata(ctx.state.auth, ctx.params.id!, meta, false);
    ctx.body = { meta: { [ctx.params.key!]: all[ctx.params.key!] } };
  });
  r.delete('/:id/metadata/:key', auth, async (ctx) => {
    await shares.deleteMetadata(ctx.state.auth, ctx.params.id!, ctx.params.key!);
    ctx.status = 200;
    ctx.body = {};
  });

  r.post('/:id/action', auth, async (ctx) => {
    const body = ctx.request.body as Record<string, unknown> | undefined;
    const keys = body && typeof body === 'object' ? Object.keys(body) : [];
    if (keys.length !== 1)
      throw new InvalidInput(
        `An action body holds exactly one action, such as {"reset_status": {"status": "available"}}.`,
      );
    const action = (keys[0] as string).replace(/^os-/, '');
    if (action === 'force_delete') await shares.forceDelete(ctx.state.auth, ctx.params.id!);
    else if (action === 'reset_status') {
      const { status } = parse(ResetStatus, body?.[keys[0] as string]);
      await shares.resetStatus(ctx.state.auth, ctx.params.id!, status);
    } else if (PENDING_ACTIONS.includes(action))
      throw new NotSupported(`The share action '${action}' is not available in this version of abaca yet.`);
    else
      throw new InvalidInput(
        `Unknown share action '${keys[0]}'; known: force_delete, reset_status, ${PENDING_ACTIONS.join(', ')}.`,
      );
    ctx.status = 202;
  });

  r.get('/:id/export_locations', auth, async (ctx) => {
    const rows = await shares.exportLocations(ctx.state.auth, ctx.params.id!);
    ctx.body = { export_locations: rows.map((e) => view.exportLocation(e, ctx.state.auth)) };
  });
  r.get('/:id/export_locations/:elId', auth, async (ctx) => {
    const rows = await shares.exportLocations(ctx.state.auth, ctx.params.id!);
    const e = rows.find((x) => x.id === ctx.params.elId);
    if (!e) throw new NotFound(`Export location ${ctx.params.elId} could not be found.`);
    ctx.body = { export_location: view.exportLocation(e, ctx.state.auth) };
  });
  return r;
}
