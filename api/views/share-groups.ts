import type { Config } from '../../services/config.ts';
import type { Auth } from '../../services/policy.ts';
import type { ShareGroup } from '../../services/repos/share-groups.ts';
import { atLeast, type Microversion } from '../middleware/microversion.ts';
import { iso, links } from './common.ts';

/** GET /v2/share-groups: the summary view. */
export function shareGroupSummary(config: Config, g: ShareGroup) {
  return { id: g.id, name: g.name, links: links(config, 'share-groups', g.id) };
}

/**
 * The share group as Manila renders it (manila/api/views/share_groups.py): the availability zone
 * and consistent_snapshot_support from 2.34, share_server_id for admins. DHSS=False: no share
 * network, no share server.
 */
export function shareGroupDetail(config: Config, g: ShareGroup, auth: Auth, v: Microversion) {
  const out: Record<string, unknown> = {
    id: g.id,
    name: g.name,
    created_at: iso(g.created_at),
    status: g.status,
    description: g.description,
    project_id: g.project_id,
    host: g.host,
    share_group_type_id: g.share_group_type_id,
    source_share_group_snapshot_id: g.source_share_group_snapshot_id,
    share_network_id: null,
    share_types: g.share_types,
    links: links(config, 'share-groups', g.id),
  };
  if (auth.isAdmin) out.share_server_id = null;
  if (atLeast(v, '2.34')) {
    out.availability_zone = g.availability_zone;
    out.consistent_snapshot_support = g.consistent_snapshot_support;
  }
  return out;
}
