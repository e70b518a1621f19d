import type { Config } from '../../services/config.ts';
import type { Auth } from '../../services/policy.ts';
import type { Snapshot, SnapshotRow } from '../../services/repos/snapshots.ts';
import { atLeast, type Microversion } from '../middleware/microversion.ts';
import { iso, links } from './common.ts';

/** GET /v2/snapshots: the summary view. */
export function snapshotSummary(config: Config, s: SnapshotRow) {
  return { id: s.id, name: s.name, links: links(config, 'snapshots', s.id) };
}

/** The snapshot as Manila renders it (manila/api/views/share_snapshots.py), by microversion. */
export function snapshotDetail(config: Config, s: Snapshot, auth: Auth, v: Microversion) {
  return {
    id: s.id,
    share_id: s.share_id,
    share_size: s.size,
    size: s.size,
    status: s.status,
    name: s.name,
    description: s.description,
    created_at: iso(s.created_at),
    share_proto: s.share_proto.toUpperCase(),
    links: links(config, 'snapshots', s.id),
    ...(atLeast(v, '2.12') && auth.isAdmin ? { provider_location: s.provider_location } : {}),
    ...(atLeast(v, '2.17') ? { project_id: s.project_id, user_id: s.user_id } : {}),
    ...(atLeast(v, '2.73') ? { metadata: s.metadata } : {}),
  };
}
