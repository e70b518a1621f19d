import type { Config } from '../../services/config.ts';
import { ShareStatus } from '../../services/constants.ts';
import { boolSpec } from '../../services/extra-specs.ts';
import { shareUrl } from '../../services/identity/catalog.ts';
import type { Auth } from '../../services/policy.ts';
import type { ExportLocationRow, Share } from '../../services/repos/shares.ts';
import type { SharePage } from '../../services/shares.ts';
import { atLeast, type Microversion } from '../middleware/microversion.ts';
import { nextLinks } from '../paging.ts';
import { iso, links as resourceLinks } from './common.ts';
import { ListRenderCache } from './rendered.ts';

const links = (config: Config, id: string) => resourceLinks(config, 'shares', id);

/** GET /v2/shares: the summary view. */
export function shareSummary(config: Config, s: Share) {
  return { id: s.id, name: s.name, links: links(config, s.id) };
}

/**
 * The share object as Manila renders it (manila/api/views/shares.py), by microversion. Built by
 * assignment in Manila's field order rather than by spreading optional parts: a detail page renders
 * this a hundred times per request.
 */
export function shareDetail(config: Config, s: Share, auth: Auth, v: Microversion) {
  const specs = s.share_type_specs;
  const flag = (spec: string) => boolSpec(specs, spec) ?? false;
  const status =
    s.status === ShareStatus.CREATING_FROM_SNAPSHOT && !atLeast(v, '2.54') ? ShareStatus.CREATING : s.status;
  const out: Record<string, unknown> = {
    id: s.id,
    name: s.name,
    description: s.description,
    size: s.size,
    status,
    share_proto: s.share_proto.toUpperCase(),
    availability_zone: s.availability_zone,
    created_at: iso(s.created_at),
    updated_at: iso(s.updated_at),
    project_id: s.project_id,
    user_id: s.user_id,
    // A share made from a group snapshot's member names the member instead (as Manila's, whose
    // members are not share snapshots).
    snapshot_id: s.source_share_group_snapshot_member_id ? null : s.snapshot_id,
    share_network_id: null,
    metadata: s.metadata,
    // Until 2.6 share_type held the type's name; from 2.6 its id, with the name beside it.
    share_type: atLeast(v, '2.6') ? s.share_type_id : s.share_type_name,
    volume_type: s.share_type_name,
    is_public: s.is_public,
    links: links(config, s.id),
  };
  if (atLeast(v, '2.6')) out.share_type_name = s.share_type_name;
  if (!atLeast(v, '2.9')) {
    // Export locations moved to their own API at 2.9; before, the share listed their paths.
    out.export_locations = s.export_paths;
    out.export_location = s.export_paths[0] ?? null;
  }
  if (auth.isAdmin) {
    out.host = s.host ?? '';
    out.share_server_id = null;
  }
  if (atLeast(v, '2.2')) out.snapshot_support = flag('snapshot_support');
  if (atLeast(v, '2.5')) out.task_state = s.task_state;
  if (atLeast(v, '2.10'))
    // 'syncing' was called 'out_of_sync' before 2.28.
    out.access_rules_status =
      s.access_rules_status === 'syncing' && !atLeast(v, '2.28') ? 'out_of_sync' : s.access_rules_status;
  if (atLeast(v, '2.11')) {
    out.replication_type = null;
    out.has_replicas = false;
  }
  if (atLeast(v, '2.24')) out.create_share_from_snapshot_support = flag('create_share_from_snapshot_support');
  if (atLeast(v, '2.27')) out.revert_to_snapshot_support = flag('revert_to_snapshot_support');
  if (atLeast(v, '2.31')) {
    out.share_group_id = s.share_group_id;
    out.source_share_group_snapshot_member_id = s.source_share_group_snapshot_member_id;
  }
  if (atLeast(v, '2.32')) out.mount_snapshot_support = flag('mount_snapshot_support');
  if (atLeast(v, '2.54')) out.progress = s.status === ShareStatus.AVAILABLE ? '100%' : '0%';
  if (atLeast(v, '2.69')) {
    out.is_soft_deleted = s.is_soft_deleted;
    out.scheduled_to_be_deleted_at = s.scheduled_to_be_deleted_at ? iso(s.scheduled_to_be_deleted_at) : null;
  }
  return out;
}

/**
 * An export location as Manila's view shows it (manila/api/views/export_locations.py): id and path;
 * `preferred` from 2.14; for admins the share instance and `is_admin_only`; with `detail` (a GET of
 * one location) the timestamps. Locations are replaced, never edited, so updated_at is created_at.
 */
export function exportLocation(
  e: ExportLocationRow,
  auth: Auth,
  v: Microversion,
  { detail = false }: { detail?: boolean } = {},
) {
  return {
    id: e.id,
    path: e.path,
    ...(atLeast(v, '2.14') ? { preferred: e.preferred } : {}),
    ...(auth.isAdmin ? { share_instance_id: e.share_id, is_admin_only: e.is_admin_only } : {}),
    ...(detail ? { created_at: iso(e.created_at), updated_at: iso(e.created_at) } : {}),
  };
}

/** What a list view needs of the request besides the page. */
export interface ListRequest {
  auth: Auth;
  microversion: Microversion;
  /** The query as sent (the next link repeats it) and its text (part of a cached body's key). */
  query: Record<string, unknown>;
  querystring: string;
  /** The page size asked for: a full page gets a next link. */
  limit: number;
}

/**
 * The list views of shares (Manila's view builder's summary_list and detail_list), with the
 * render cache behind them: build one per router and every list request renders through it.
 */
export function createShareListViews(config: Config) {
  const cache = new ListRenderCache();

  function list(page: SharePage, req: ListRequest, detail: boolean): Promise<Buffer> {
    const { auth, microversion: v } = req;
    const variant = detail ? `detail ${v.major}.${v.minor}${auth.isAdmin ? ' admin' : ''}` : 'summary';
    const url = `${shareUrl(config)}/shares${detail ? '/detail' : ''}`;
    return cache.body({
      name: 'shares',
      variant,
      pageKey: `${variant} ${auth.projectId} ${req.querystring}`,
      page: {
        items: page.items,
        load: async (ids) =>
          (await page.load(ids)).map(({ share, revision }) => ({ id: share.id, item: share, revision })),
      },
      render: detail ? (s: Share) => shareDetail(config, s, auth, v) : (s: Share) => shareSummary(config, s),
      extras: (items) => ({
        shares_links: nextLinks(url, req.query, items, req.limit),
        count: page.count,
      }),
      signature: page.count === undefined ? '' : String(page.count),
    });
  }

  return {
    /** GET /v2/shares */
    summaryList: (page: SharePage, req: ListRequest) => list(page, req, false),
    /** GET /v2/shares/detail */
    detailList: (page: SharePage, req: ListRequest) => list(page, req, true),
  };
}
