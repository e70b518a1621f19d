import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import { ACCESS_TYPES, SHARE_PROTOCOLS, type ShareProtocol } from '../backends/types.ts';
import type { AccessRuleService } from '../services/access-rules.ts';
import type { Config } from '../services/config.ts';
import { InvalidInput, NotFound } from '../services/errors.ts';
import { parseDictLiteral } from '../services/python-literal.ts';
import { SHARE_SORT_KEYS } from '../services/repos/shares.ts';
import type { ShareActionService } from '../services/share-actions.ts';
import type { ShareHealService } from '../services/share-heal.ts';
import type { ShareListQuery, ShareService } from '../services/shares.ts';
import { metadataRoutes } from './metadata.ts';
import { atLeast, type Microversion, onlyVersions } from './middleware/microversion.ts';
import { listParams, PageLimit } from './paging.ts';
import { HealArg, HealResolveArg } from './share-heal.ts';
import {
  Bool,
  Description,
  Metadata,
  Name,
  objectLike,
  parse,
  ResetStatus,
  Size,
  UuidFilter,
} from './validation.ts';
import * as accessView from './views/access-rules.ts';
import * as view from './views/shares.ts';

const Proto = z
  .string({ error: `must be one of ${SHARE_PROTOCOLS.join(', ')}` })
  .transform((p) => p.toUpperCase())
  .pipe(z.enum(SHARE_PROTOCOLS, { error: `must be one of ${SHARE_PROTOCOLS.join(', ')}` }));

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
    share_group_id: z.string().max(64).nullish(),
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
const ResetTaskState = z.object(
  { task_state: z.string({ error: 'must be a task state or null' }).max(64).nullable() },
  { error: objectLike('{"task_state": "migration_error"}') },
);
const ExtendArg = z.object(
  { new_size: Size, force: Bool.optional() },
  { error: objectLike('{"new_size": 2}') },
);
const ShrinkArg = z.object({ new_size: Size }, { error: objectLike('{"new_size": 1}') });
const RevertArg = z.object(
  { snapshot_id: z.string({ error: 'is required' }).min(1).max(64) },
  { error: objectLike('{"snapshot_id": "…"}') },
);
const AllowArg = z.strictObject(
  {
    access_type: z.enum(ACCESS_TYPES, { error: `must be one of ${ACCESS_TYPES.join(', ')}` }),
    access_to: z.string({ error: 'is required' }).min(1, 'must not be empty').max(255),
    access_level: z.enum(['rw', 'ro'], { error: 'must be rw or ro' }).nullish(),
    metadata: Metadata.nullish(),
  },
  { error: objectLike('{"access_type": "ip", "access_to": "10.0.0.0/24"}') },
);
const DenyArg = z.object(
  { access_id: z.string({ error: 'is required' }).min(1).max(64) },
  { error: objectLike('{"access_id": "…"}') },
);

const SORT_KEYS = SHARE_SORT_KEYS;

/** DELETE /v2/shares/{id}?share_group_id=…: the group a share in one must be deleted with (2.31). */
const DeleteQuery = z.object({ share_group_id: z.string().max(64).optional() }).loose();

const ListQueryParams = z
  .object({
    name: z.string().max(255).optional(),
    'name~': z.string().max(255).optional(),
    'description~': z.string().max(1024).optional(),
    description: z.string().max(1024).optional(),
    display_description: z.string().max(1024).optional(),
    status: z.string().max(64).optional(),
    host: z.string().max(255).optional(),
    snapshot_id: z.string().max(64).optional(),
    share_server_id: z.string().max(64).optional(),
    share_type_id: UuidFilter.optional(),
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
    limit: PageLimit,
    offset: z.string().max(64).optional(),
    marker: z.string().max(64).optional(),
    with_count: Bool.optional(),
    share_group_id: z.string().max(64).optional(),
  })
  .strict();

/**
 * The list query, as the share service takes it. Filters a microversion does not have yet are
 * ignored, as Manila ignores them: `export_location_*` before 2.35, `name~`/`description~` before
 * 2.36, `is_soft_deleted` before 2.69. `host` and `share_server_id` are admin filters (the share service refuses them to others).
 */
export function parseListQuery(query: unknown, v: Microversion): ShareListQuery & { limit: number } {
  const q = parse(ListQueryParams, query, 'query');
  const like = atLeast(v, '2.36');
  const byExport = atLeast(v, '2.35');
  return {
    ...listParams(q),
    includePublic: q.is_public === true,
    name: q.name,
    nameLike: like ? q['name~'] : undefined,
    descriptionLike: like ? q['description~'] : undefined,
    description: q.description ?? q.display_description,
    status: q.status,
    host: q.host,
    snapshotId: q.snapshot_id,
    shareServerId: q.share_server_id,
    shareTypeId: q.share_type_id,
    availabilityZone: q.availability_zone,
    metadata: q.metadata ? parseDictLiteral(q.metadata, 'metadata') : undefined,
    extraSpecs: q.extra_specs ? parseDictLiteral(q.extra_specs, 'extra_specs') : undefined,
    exportLocationPath: byExport ? q.export_location_path : undefined,
    exportLocationId: byExport ? q.export_location_id : undefined,
    // The recycle bin from 2.69; before, Manila drops the filter (the bin stays out of lists).
    softDeleted: atLeast(v, '2.69') && q.is_soft_deleted === true,
    withCount: q.with_count === true,
    // Share groups from 2.31; Manila ignores the filter before.
    shareGroupId: atLeast(v, '2.31') ? q.share_group_id : undefined,
  };
}

export function sharesRouter(
  config: Config,
  services: {
    shares: ShareService;
    shareActions: ShareActionService;
    accessRules: AccessRuleService;
    shareHeal: ShareHealService;
  },
  auth: Middleware,
): Router {
  const { shares, shareActions, accessRules, shareHeal } = services;
  const r = new Router({ prefix: '/v2/shares' });
  const lists = view.createShareListViews(config);

  r.post('/', auth, async (ctx) => {
    const { share: b } = parse(CreateBody, ctx.request.body);
    const created = await shares.create(ctx.state.auth, {
      size: b.size,
      shareProto: b.share_proto as ShareProtocol,
      name: b.name ?? b.display_name ?? null,
      description: b.description ?? b.display_description ?? null,
      metadata: b.metadata ?? {},
      shareTypeRef: b.share_type ?? b.volume_type ?? null,
      availabilityZone: b.availability_zone ?? null,
      isPublic: b.is_public ?? false,
      snapshotId: b.snapshot_id ?? null,
      typeZones: atLeast(ctx.state.microversion, '2.48'),
      // Share groups from 2.31; before, Manila ignores the key.
      shareGroupId: atLeast(ctx.state.microversion, '2.31') ? (b.share_group_id ?? null) : null,
    });
    ctx.body = { share: view.shareDetail(config, created, ctx.state.auth, ctx.state.microversion) };
  });

  /** Manila's shape: parse, service.list, then the view (summaryList or detailList). */
  async function list(ctx: Parameters<Middleware>[0], render: typeof lists.detailList) {
    const q = parseListQuery(ctx.query, ctx.state.microversion);
    const page = await shares.list(ctx.state.auth, q);
    ctx.type = 'application/json';
    ctx.body = await render(page, {
      auth: ctx.state.auth,
      microversion: ctx.state.microversion,
      query: ctx.query,
      querystring: ctx.querystring,
      limit: q.limit,
    });
  }
  r.get('/', auth, (ctx) => list(ctx, lists.summaryList));
  r.get('/detail', auth, (ctx) => list(ctx, lists.detailList));

  // Manila's manage (adopt an existing export) from 2.7; before it, POST /v2/os-share-manage.
  r.post('/manage', auth, onlyVersions('2.7'), async (ctx) => {
    await shares.manage(ctx.state.auth);
  });

  r.get('/:id', auth, async (ctx) => {
    const s = await shares.get(ctx.state.auth, ctx.params.id!);
    ctx.body = { share: view.shareDetail(config, s, ctx.state.auth, ctx.state.microversion) };
  });

  r.delete('/:id', auth, async (ctx) => {
    const q = parse(DeleteQuery, ctx.query, 'query');
    await shares.delete(ctx.state.auth, ctx.params.id!, {
      shareGroupId: q.share_group_id,
      groupCheck: atLeast(ctx.state.microversion, '2.31'),
    });
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

  metadataRoutes(
    r,
    [auth],
    {
      what: 'Share',
      get: (a, id) => shares.getMetadata(a, id),
      set: (a, id, metadata, replace) => shares.setMetadata(a, id, metadata, replace),
      remove: (a, id, key) => shares.deleteMetadata(a, id, key),
    },
    'meta',
  );

  /** The share actions, by name (`os-` prefixed names from before 2.7 are the same actions). */
  const actions: Record<string, (ctx: Parameters<Middleware>[0], id: string, arg: unknown) => Promise<void>> =
    {
      async force_delete(ctx, id) {
        await shares.forceDelete(ctx.state.auth, id);
        ctx.status = 202;
      },
      async reset_task_state(ctx, id, arg) {
        // An admin action from 2.22 (below, Manila has no such action: 404).
        if (!atLeast(ctx.state.microversion, '2.22'))
          throw new NotFound("There is no share action 'reset_task_state' before API microversion 2.22.");
        const b = parse(ResetTaskState, arg, 'reset_task_state');
        await shares.resetTaskState(ctx.state.auth, id, b.task_state);
        ctx.status = 202;
      },
      async soft_delete(ctx, id) {
        // The recycle bin from 2.69 (below, Manila has no such action: 404).
        if (!atLeast(ctx.state.microversion, '2.69'))
          throw new NotFound("There is no share action 'soft_delete' before API microversion 2.69.");
        await shares.softDelete(ctx.state.auth, id);
        ctx.status = 202;
      },
      async restore(ctx, id) {
        if (!atLeast(ctx.state.microversion, '2.69'))
          throw new NotFound("There is no share action 'restore' before API microversion 2.69.");
        // Manila answers 200 for a share that is not in the recycle bin, 202 for one it restores;
        // both without a body (null first: Koa then sends nothing, not the status text).
        const restored = await shares.restore(ctx.state.auth, id);
        ctx.body = null;
        ctx.status = restored ? 202 : 200;
      },
      async unmanage(ctx, id) {
        // The action from 2.7; before it, POST /v2/os-share-unmanage/{id}/unmanage.
        if (!atLeast(ctx.state.microversion, '2.7'))
          throw new NotFound("There is no share action 'unmanage' before API microversion 2.7.");
        await shares.unmanage(ctx.state.auth, id);
      },
      async reset_status(ctx, id, arg) {
        await shares.resetStatus(ctx.state.auth, id, parse(ResetStatus, arg, 'reset_status').status);
        ctx.status = 202;
      },
      async extend(ctx, id, arg) {
        const b = parse(ExtendArg, arg, 'extend');
        await shareActions.extend(ctx.state.auth, id, b.new_size, b.force ?? false);
        ctx.status = 202;
      },
      async shrink(ctx, id, arg) {
        await shareActions.shrink(ctx.state.auth, id, parse(ShrinkArg, arg, 'shrink').new_size);
        ctx.status = 202;
      },
      async revert(ctx, id, arg) {
        await shareActions.revert(ctx.state.auth, id, parse(RevertArg, arg, 'revert').snapshot_id);
        ctx.status = 202;
      },
      async allow_access(ctx, id, arg) {
        const b = parse(AllowArg, arg, 'allow_access');
        const rule = await accessRules.allow(ctx.state.auth, id, {
          accessType: b.access_type,
          accessTo: b.access_to,
          accessLevel: b.access_level ?? 'rw',
          metadata: b.metadata ?? {},
        });
        ctx.status = 200;
        ctx.body = { access: accessView.accessRule(rule, ctx.state.microversion) };
      },
      async deny_access(ctx, id, arg) {
        await accessRules.deny(ctx.state.auth, id, parse(DenyArg, arg, 'deny_access').access_id);
        ctx.status = 202;
      },
      // abaca's own (GlusterFS's `volume heal`): start a heal of the replicas, resolve a split-brain.
      async heal(ctx, id, arg) {
        const b = parse(HealArg, arg ?? null, 'heal');
        await shareHeal.start(ctx.state.auth, id, b?.full ?? false);
        ctx.status = 202;
      },
      async heal_resolve(ctx, id, arg) {
        const b = parse(HealResolveArg, arg, 'heal_resolve');
        const source = await shareHeal.resolve(ctx.state.auth, id, {
          path: b.path,
          policy: b.policy,
          sourceBrick: b.source_brick,
        });
        ctx.status = 200;
        ctx.body = { heal_resolve: { path: b.path, policy: b.policy, source_brick: source } };
      },
      async access_list(ctx, id) {
        const list = await accessRules.listForShare(ctx.state.auth, id);
        ctx.status = 200;
        ctx.body = { access_list: list.map((x) => accessView.accessListItem(x, ctx.state.microversion)) };
      },
    };

  r.post('/:id/action', auth, async (ctx) => {
    const body = ctx.request.body as Record<string, unknown> | undefined;
    const keys = body && typeof body === 'object' ? Object.keys(body) : [];
    if (keys.length !== 1)
      throw new InvalidInput(`An action body holds exactly one action, such as {"extend": {"new_size": 2}}.`);
    const key = keys[0] as string;
    const action = actions[key.replace(/^os-/, '')];
    // Manila answers an action it does not have (migration_* … here) with 404.
    if (!action)
      throw new NotFound(`There is no share action '${key}'; known: ${Object.keys(actions).join(', ')}.`);
    await action(ctx, ctx.params.id!, body?.[key]);
  });

  r.get('/:id/export_locations', auth, async (ctx) => {
    const rows = await shares.exportLocations(ctx.state.auth, ctx.params.id!);
    ctx.body = {
      export_locations: rows.map((e) => view.exportLocation(e, ctx.state.auth, ctx.state.microversion)),
    };
  });
  r.get('/:id/export_locations/:elId', auth, async (ctx) => {
    const rows = await shares.exportLocations(ctx.state.auth, ctx.params.id!);
    const e = rows.find((x) => x.id === ctx.params.elId);
    if (!e) throw new NotFound(`Export location ${ctx.params.elId} could not be found.`);
    ctx.body = {
      export_location: view.exportLocation(e, ctx.state.auth, ctx.state.microversion, { detail: true }),
    };
  });
  return r;
}

/** Manage and unmanage under their names before 2.7 (os-share-manage, os-share-unmanage). */
export function legacyShareManageRouter(shares: ShareService, auth: Middleware): Router {
  const r = new Router({ prefix: '/v2' });
  const before27 = onlyVersions('2.0', '2.6');
  r.post('/os-share-manage', auth, before27, async (ctx) => {
    await shares.manage(ctx.state.auth);
  });
  r.post('/os-share-unmanage/:id/unmanage', auth, before27, async (ctx) => {
    await shares.unmanage(ctx.state.auth, ctx.params.id!);
  });
  return r;
}
