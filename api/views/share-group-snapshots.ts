import type { Config } from '../../services/config.ts';
import type { ShareGroupSnapshot } from '../../services/share-group-snapshots.ts';
import { iso, links } from './common.ts';

/** GET /v2/share-group-snapshots: the summary view. */
export function shareGroupSnapshotSummary(config: Config, s: ShareGroupSnapshot) {
  return { id: s.id, name: s.name, links: links(config, 'share-group-snapshots', s.id) };
}

/** The group snapshot with its members (manila/api/views/share_group_snapshots.py). */
export function shareGroupSnapshotDetail(config: Config, s: ShareGroupSnapshot) {
  return {
    id: s.id,
    name: s.name,
    created_at: iso(s.created_at),
    status: s.status,
    description: s.description,
    project_id: s.project_id,
    share_group_id: s.share_group_id,
    members: s.members.map((m) => ({
      id: m.id,
      created_at: iso(m.created_at),
      project_id: m.project_id,
      share_group_snapshot_id: s.id,
      share_id: m.share_id,
      share_instance_id: m.share_id,
      size: m.size,
      share_proto: m.share_proto.toUpperCase(),
      provider_location: m.provider_location,
    })),
    links: links(config, 'share-group-snapshots', s.id),
  };
}
