import type { SnapshotRow } from '../../services/repos/snapshots.ts';
import { iso } from './common.ts';

/**
 * A snapshot's one instance as Manila renders snapshot instances
 * (manila/api/views/share_snapshot_instances.py): its id is the snapshot's, its share instance the
 * share itself (see services/snapshot-instances.ts).
 */
export function snapshotInstanceSummary(s: SnapshotRow) {
  return { id: s.id, snapshot_id: s.id, status: s.status };
}

export function snapshotInstanceDetail(s: SnapshotRow) {
  return {
    ...snapshotInstanceSummary(s),
    created_at: iso(s.created_at),
    updated_at: iso(s.updated_at),
    share_id: s.share_id,
    share_instance_id: s.share_id,
    progress: s.status === 'available' ? '100%' : '0%',
    provider_location: s.provider_location,
  };
}
