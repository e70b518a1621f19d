import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import type { Config } from '../services/config.ts';
import { InvalidInput } from '../services/errors.ts';
import { shareUrl } from '../services/identity/catalog.ts';
import { SHARE_GROUP_SNAPSHOT_SORT_KEYS } from '../services/repos/share-group-snapshots.ts';
import type { ShareGroupSnapshotService } from '../services/share-group-snapshots.ts';
import { atLeast } from './middleware/microversion.ts';
import { shareGroupsVersion } from './middleware/share-groups-version.ts';
import { listParams, nextLinks, PageLimit } from './paging.ts';
import { Description, Name, objectLike, parse, ResetStatus } from './validation.ts';
import * as view from './views/share-group-snapshots.ts';

const CreateBody = z.object({
  share_group_snapshot: z.object(
    {
      share_group_id: z.string({ error: 'is required' }).min(1, 'must not be empty').max(255),
      name: Name.nullish(),
      description: Description.nullish(),
    },
    { error: objectLike('{"share_group_id": "…"}') },
  ),
});

const UpdateBody = z.object({
  share_group_snapshot: z.strictObject(
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
    share_group_id: z.string().max(64).optional(),
    project_id: z.string().max(64).optional(),
    all_tenants: z.string().optional(),
    sort_key: z
      .enum(SHARE_GROUP_SNAPSHOT_SORT_KEYS, {
        error: `must be one of ${SHARE_GROUP_SNAPSHOT_SORT_KEYS.join(', ')}`,
      })
      .default('created_at'),
    sort_dir: z.enum(['asc', 'desc'], { error: 'must be asc or desc' }).default('desc'),
    limit: PageLimit,
    offset: z.string().max(64).optional(),
    marker: z.string().max(64).optional(),
  })
  .strict();

/**
 * /v2/share-group-snapshots (Manila 2.31+; experimental before 2.55): create, list, show with
 * members, update, delete, and the admin actions reset_status and force_delete.
 */
export function shareGroupSnapshotsRouter(
  config: Config,
  snapshots: ShareGroupSnapshotService,
  auth: Middleware,
): Router {
  const r = new Router({ prefix: '/v2/share-group-snapshots' });

  r.post('/', auth, shareGroupsVersion, async (ctx) => {
    const { share_group_snapshot: b } = parse(CreateBody, ctx.request.body);
    const s = await snapshots.create(ctx.state.auth, {
      shareGroupId: b.share_group_id,
      name: b.name ?? null,
      description: b.description ?? null,
    });
    ctx.status = 202;
    ctx.body = { share_group_snapshot: view.shareGroupSnapshotDetail(config, s) };
  });

  async function list(ctx: Parameters<Middleware>[0], withDetail: boolean) {
    const q = parse(ListQuery, ctx.query, 'query');
    const paging = listParams(q);
    const like = atLeast(ctx.state.microversion, '2.36');
    const rows = await snapshots.list(ctx.state.auth, {
      ...paging,
      name: q.name,
      nameLike: like ? q['name~'] : undefined,
      description: q.description,
      descriptionLike: like ? q['description~'] : undefined,
      status: q.status,
      shareGroupId: q.share_group_id,
    });
    const body: Record<string, unknown> = {
      share_group_snapshots: rows.map((s) =>
        withDetail ? view.shareGroupSnapshotDetail(config, s) : view.shareGroupSnapshotSummary(config, s),
      ),
    };
    const links = nextLinks(
      `${shareUrl(config)}/share-group-snapshots${withDetail ? '/detail' : ''}`,
      ctx.query,
      rows,
      paging.limit,
    );
    if (links) body.share_group_snapshots_links = links;
    ctx.body = body;
  }
  r.get('/', auth, shareGroupsVersion, (ctx) => list(ctx, false));
  r.get('/detail', auth, shareGroupsVersion, (ctx) => list(ctx, true));

  r.get('/:id', auth, shareGroupsVersion, async (ctx) => {
    const s = await snapshots.get(ctx.state.auth, ctx.params.id!);
    ctx.body = { share_group_snapshot: view.shareGroupSnapshotDetail(config, s) };
  });

  r.put('/:id', auth, shareGroupsVersion, async (ctx) => {
    const { share_group_snapshot: b } = parse(UpdateBody, ctx.request.body);
    const s = await snapshots.update(ctx.state.auth, ctx.params.id!, {
      name: b.name,
      description: b.description,
    });
    ctx.body = { share_group_snapshot: view.shareGroupSnapshotDetail(config, s) };
  });

  r.delete('/:id', auth, shareGroupsVersion, async (ctx) => {
    await snapshots.delete(ctx.state.auth, ctx.params.id!);
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
    if (key === 'force_delete') await snapshots.forceDelete(ctx.state.auth, ctx.params.id!);
    else if (key === 'reset_status') {
      const { status } = parse(ResetStatus, body?.[key], 'reset_status');
      await snapshots.resetStatus(ctx.state.auth, ctx.params.id!, status);
    } else
      throw new InvalidInput(
        `Unknown share group snapshot action '${key}'; known: force_delete, reset_status.`,
      );
    ctx.status = 202;
  });
  return r;
}
