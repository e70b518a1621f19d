import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import type { Config } from '../services/config.ts';
import { InvalidInput } from '../services/errors.ts';
import { shareUrl } from '../services/identity/catalog.ts';
import { SHARE_GROUP_SORT_KEYS } from '../services/repos/share-groups.ts';
import type { ShareGroupService } from '../services/share-groups.ts';
import { atLeast } from './middleware/microversion.ts';
import { shareGroupsVersion } from './middleware/share-groups-version.ts';
import { listParams, nextLinks, PageLimit } from './paging.ts';
import { Description, Name, objectLike, parse, ResetStatus } from './validation.ts';
import * as view from './views/share-groups.ts';

const Id = z.string().min(1, 'must not be empty').max(255);

const CreateBody = z.object({
  share_group: z.object(
    {
      name: Name.nullish(),
      description: Description.nullish(),
      share_group_type_id: Id.nullish(),
      share_types: z.array(Id, { error: 'must be a list of share type ids or names' }).nullish(),
      availability_zone: z.string().min(1).max(255).nullish(),
      source_share_group_snapshot_id: Id.nullish(),
      share_network_id: Id.nullish(),
    },
    { error: objectLike('{"share_group_type_id": "…", "share_types": ["…"]}') },
  ),
});

const UpdateBody = z.object({
  share_group: z.strictObject(
    { name: Name.nullish(), description: Description.nullish() },
    { error: objectLike('{"name": "…", "description": "…"}') },
  ),
});

const ListQuery = z
  .object({
    name: z.string().max(255).optional(),
    'name~': z.string().max(255).optional(),
    description: z.string().max(1024).optional(),
    'description~': z.string().max(1024).optional(),
    status: z.string().max(64).optional(),
    share_group_type_id: z.string().max(64).optional(),
    source_share_group_snapshot_id: z.string().max(64).optional(),
    host: z.string().max(255).optional(),
    share_network_id: z.string().max(64).optional(),
    availability_zone: z.string().max(255).optional(),
    consistent_snapshot_support: z.string().max(16).optional(),
    project_id: z.string().max(64).optional(),
    all_tenants: z.string().optional(),
    sort_key: z
      .enum(SHARE_GROUP_SORT_KEYS, { error: `must be one of ${SHARE_GROUP_SORT_KEYS.join(', ')}` })
      .default('created_at'),
    sort_dir: z.enum(['asc', 'desc'], { error: 'must be asc or desc' }).default('desc'),
    limit: PageLimit,
    offset: z.string().max(64).optional(),
    marker: z.string().max(64).optional(),
  })
  .strict();

/**
 * /v2/share-groups (Manila's share_groups controller, 2.31+; experimental before 2.55): create,
 * list (summary and detail), show, update, delete, and the admin actions reset_status and
 * force_delete.
 */
export function shareGroupsRouter(config: Config, groups: ShareGroupService, auth: Middleware): Router {
  const r = new Router({ prefix: '/v2/share-groups' });
  const detail = (ctx: Parameters<Middleware>[0], g: Parameters<typeof view.shareGroupDetail>[1]) =>
    view.shareGroupDetail(config, g, ctx.state.auth, ctx.state.microversion);

  r.post('/', auth, shareGroupsVersion, async (ctx) => {
    const { share_group: b } = parse(CreateBody, ctx.request.body);
    // DHSS=False: there are no share networks, so any one named does not exist (Manila's 400).
    if (b.share_network_id)
      throw new InvalidInput(
        `Share network ${b.share_network_id} could not be found (abaca's backends do not handle share servers).`,
      );
    const g = await groups.create(ctx.state.auth, {
      name: b.name ?? null,
      description: b.description ?? null,
      shareGroupTypeId: b.share_group_type_id ?? null,
      shareTypes: b.share_types ?? null,
      availabilityZone: b.availability_zone ?? null,
      sourceShareGroupSnapshotId: b.source_share_group_snapshot_id ?? null,
    });
    ctx.status = 202;
    ctx.body = { share_group: detail(ctx, g) };
  });

  async function list(ctx: Parameters<Middleware>[0], withDetail: boolean) {
    const q = parse(ListQuery, ctx.query, 'query');
    const paging = listParams(q);
    const like = atLeast(ctx.state.microversion, '2.36');
    const rows = await groups.list(ctx.state.auth, {
      ...paging,
      name: q.name,
      nameLike: like ? q['name~'] : undefined,
      description: q.description,
      descriptionLike: like ? q['description~'] : undefined,
      status: q.status,
      shareGroupTypeId: q.share_group_type_id,
      sourceShareGroupSnapshotId: q.source_share_group_snapshot_id,
      host: q.host,
      availabilityZone: q.availability_zone,
    });
    // No group has a share network or offers consistent snapshots: such filters match nothing.
    const none = q.share_network_id !== undefined || q.consistent_snapshot_support !== undefined;
    const shown = none ? [] : rows;
    const body: Record<string, unknown> = {
      share_groups: shown.map((g) => (withDetail ? detail(ctx, g) : view.shareGroupSummary(config, g))),
    };
    const links = nextLinks(
      `${shareUrl(config)}/share-groups${withDetail ? '/detail' : ''}`,
      ctx.query,
      shown,
      paging.limit,
    );
    if (links) body.share_groups_links = links;
    ctx.body = body;
  }
  r.get('/', auth, shareGroupsVersion, (ctx) => list(ctx, false));
  r.get('/detail', auth, shareGroupsVersion, (ctx) => list(ctx, true));

  r.get('/:id', auth, shareGroupsVersion, async (ctx) => {
    ctx.body = { share_group: detail(ctx, await groups.get(ctx.state.auth, ctx.params.id!)) };
  });

  r.put('/:id', auth, shareGroupsVersion, async (ctx) => {
    const { share_group: b } = parse(UpdateBody, ctx.request.body);
    const g = await groups.update(ctx.state.auth, ctx.params.id!, {
      name: b.name,
      description: b.description,
    });
    ctx.body = { share_group: detail(ctx, g) };
  });

  r.delete('/:id', auth, shareGroupsVersion, async (ctx) => {
    await groups.delete(ctx.state.auth, ctx.params.id!);
    ctx.status = 202;
  });

  r.post('/:id/action', auth, shareGroupsVersion, async (ctx) => {
    const body = ctx.request.body as Record<string, unknown> | undefined;
    const keys = body && typeof body === 'object' ? Object.keys(body) : [];
    if (keys.length !== 1)
      throw new InvalidInput(
        'An action body holds exactly one action, such as {"reset_status": {"status": "available"}}.',
      );
    const key = keys[0] as string;
    if (key === 'force_delete') await groups.forceDelete(ctx.state.auth, ctx.params.id!);
    else if (key === 'reset_status') {
      const { status } = parse(ResetStatus, body?.[key], 'reset_status');
      await groups.resetStatus(ctx.state.auth, ctx.params.id!, status);
    } else throw new InvalidInput(`Unknown share group action '${key}'; known: force_delete, reset_status.`);
    ctx.status = 202;
  });
  return r;
}
