import { type Auth, requireAdmin } from './policy.ts';
import type { SnapshotRow } from './repos/snapshots.ts';
import type { SnapshotService } from './snapshots.ts';

/**
 * Snapshot instances (2.19+, admin only), Manila's view of a snapshot on one share instance. An
 * abaca share is its own one instance, so a snapshot is its own one instance too: the instance's
 * id is the snapshot's id and its share_instance_id is the share's id, as share instances already
 * say (services/share-instances.ts). Every call is admin-only (share_snapshot_instance:* policies).
 */
export function createSnapshotInstanceService({ snapshots }: { snapshots: SnapshotService }) {
  return {
    /** Every project's instances, or the one of `snapshotId`. */
    async list(auth: Auth, snapshotId: string | undefined): Promise<SnapshotRow[]> {
      requireAdmin(auth, 'share_snapshot_instance:index');
      return snapshots.list(auth, {
        allTenants: true,
        sortKey: 'created_at',
        sortDir: 'desc',
        ...(snapshotId !== undefined ? { id: snapshotId } : {}),
      });
    },

    async get(auth: Auth, id: string): Promise<SnapshotRow> {
      requireAdmin(auth, 'share_snapshot_instance:show');
      return snapshots.get(auth, id);
    },

    async resetStatus(auth: Auth, id: string, status: string): Promise<void> {
      requireAdmin(auth, 'share_snapshot_instance:reset_status');
      await snapshots.resetStatus(auth, id, status);
    },
  };
}

export type SnapshotInstanceService = ReturnType<typeof createSnapshotInstanceService>;
