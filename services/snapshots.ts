import { randomUUID } from 'node:crypto';
import { checkStatus, ShareStatus, SNAPSHOT_DELETABLE, SnapshotStatus } from './constants.ts';
import { inTransaction } from './db.ts';
import { Conflict, InvalidInput, NotFound, Unprocessable } from './errors.ts';
import { boolSpec } from './extra-specs.ts';
import { type Auth, listedProject, requireAdmin, requireMember, requireReader } from './policy.ts';
import { refuseInRecycleBin } from './recycle-bin.ts';
import type { Repos } from './repos/index.ts';
import { type ListQuery, markerOf } from './repos/paging.ts';
import type { Snapshot, SnapshotQuery } from './repos/snapshots.ts';
import type { ChangeDeps } from './tasks.ts';

export interface CreateSnapshotInput {
  shareId: string;
  name: string | null;
  description: string | null;
  force: boolean;
  /** 2.73; none below. */
  metadata?: Record<string, string> | undefined;
}

/**
 * Share snapshots: create (quota + status + task in one transaction), list, show, update, delete,
 * and the admin's force_delete and reset_status. A snapshot belongs to its share's project.
 */
export function createSnapshotService(deps: ChangeDeps & { repos: Pick<Repos, 'shares' | 'snapshots'> }) {
  const { db, repos, tasks, quotas, kick } = deps;

  async function startDelete(auth: Auth, id: string, force: boolean): Promise<void> {
    await inTransaction(db, async (trx) => {
      const snap = await repos.snapshots.lockOwned(trx, auth, id);
      if (!force && !SNAPSHOT_DELETABLE.includes(snap.status))
        throw new InvalidInput(
          `Snapshot ${id} cannot be deleted while its status is '${snap.status}'; it must be one of ${SNAPSHOT_DELETABLE.join(', ')}.`,
        );
      const children = await repos.shares.creatingFrom(trx, id);
      if (children.length)
        throw new Conflict(
          `Snapshot ${id} is the source of share(s) still being created (${children.join(', ')}); delete it when they are done.`,
        );
      await repos.snapshots.update(trx, id, { status: SnapshotStatus.DELETING });
      await tasks.deleteSnapshot(trx, id, force);
    });
    kick();
  }

  return {
    async create(auth: Auth, input: CreateSnapshotInput): Promise<Snapshot> {
      requireMember(auth, 'share_snapshot:create_snapshot');
      const id = randomUUID();
      const snapshot = await inTransaction(db, async (trx) => {
        const share = await repos.shares.lockOwned(trx, auth, input.shareId);
        // A snapshot would keep the bin's purge from deleting the share.
        refuseInRecycleBin(share, 'snapshotted');
        if (boolSpec(share.share_type_specs, 'snapshot_support') !== true)
          throw new Unprocessable(
            `Share type ${share.share_type_name} of share ${share.id} does not have snapshot_support; snapshots cannot be taken of it.`,
          );
        if (share.status !== ShareStatus.AVAILABLE)
          throw new InvalidInput(
            `A snapshot of share ${share.id} cannot be taken while its status is '${share.status}'; it must be 'available'.`,
          );
        const row = await repos.snapshots.insert(trx, {
          id,
          share_id: share.id,
          project_id: share.project_id,
          user_id: auth.userId,
          name: input.name,
          description: input.description,
          size: share.size,
          share_proto: share.share_proto,
          status: SnapshotStatus.CREATING,
          provider_location: null,
        });
        await repos.snapshots.setMetadata(trx, id, input.metadata ?? {});
        const task = await tasks.createSnapshot(trx, id);
        await quotas.reserve(
          trx,
          {
            projectId: share.project_id,
            shareTypeId: share.share_type_id,
            userId: auth.userId,
            taskId: task.id,
          },
          { snapshots: 1, snapshot_gigabytes: share.size },
        );
        return { ...row, metadata: input.metadata ?? {} };
      });
      kick();
      return snapshot;
    },

    async get(auth: Auth, id: string): Promise<Snapshot> {
      requireReader(auth, 'share_snapshot:get_snapshot');
      return repos.snapshots.owned(db, auth, id);
    },

    async list(auth: Auth, q: ListQuery<SnapshotQuery>): Promise<Snapshot[]> {
      const marker = await markerOf(q, (id) => repos.snapshots.owned(db, auth, id), 'snapshot');
      requireReader(auth, 'share_snapshot:get_all_snapshots');
      return repos.snapshots.list(db, { ...q, projectId: listedProject(auth, q), marker });
    },

    async update(
      auth: Auth,
      id: string,
      patch: { name?: string | null | undefined; description?: string | null | undefined },
    ): Promise<Snapshot> {
      requireMember(auth, 'share_snapshot:snapshot_update');
      return inTransaction(db, async (trx) => {
        await repos.snapshots.lockOwned(trx, auth, id);
        await repos.snapshots.update(trx, id, {
          ...(patch.name !== undefined ? { name: patch.name } : {}),
          ...(patch.description !== undefined ? { description: patch.description } : {}),
        });
        return repos.snapshots.owned(trx, auth, id);
      });
    },

    async getMetadata(auth: Auth, id: string): Promise<Record<string, string>> {
      requireReader(auth, 'share_snapshot:get_metadata');
      return (await repos.snapshots.owned(db, auth, id)).metadata;
    },

    /** Sets keys (merge) or, with replace, makes the metadata exactly `metadata` (2.73). */
    async setMetadata(
      auth: Auth,
      id: string,
      metadata: Record<string, string>,
      replace: boolean,
    ): Promise<Record<string, string>> {
      requireMember(auth, 'share_snapshot:update_metadata');
      return inTransaction(db, async (trx) => {
        await repos.snapshots.lockOwned(trx, auth, id);
        if (replace) await repos.snapshots.clearMetadata(trx, id);
        await repos.snapshots.setMetadata(trx, id, metadata);
        return (await repos.snapshots.owned(trx, auth, id)).metadata;
      });
    },

    async deleteMetadata(auth: Auth, id: string, key: string): Promise<void> {
      requireMember(auth, 'share_snapshot:delete_metadata');
      await inTransaction(db, async (trx) => {
        const snap = await repos.snapshots.lockOwned(trx, auth, id);
        if (snap.metadata[key] === undefined)
          throw new NotFound(`Snapshot ${id} has no metadata key ${key}.`);
        await repos.snapshots.deleteMetadata(trx, id, key);
      });
    },

    async delete(auth: Auth, id: string): Promise<void> {
      requireMember(auth, 'share_snapshot:delete_snapshot');
      await startDelete(auth, id, false);
    },

    /** Admin: delete whatever the status, and even if the backend fails. */
    async forceDelete(auth: Auth, id: string): Promise<void> {
      requireAdmin(auth, 'share_snapshot:force_delete');
      await startDelete(auth, id, true);
    },

    async resetStatus(auth: Auth, id: string, status: string): Promise<void> {
      requireAdmin(auth, 'share_snapshot:reset_status');
      await inTransaction(db, async (trx) => {
        await repos.snapshots.lockOwned(trx, auth, id);
        checkStatus(status, SnapshotStatus);
        await repos.snapshots.update(trx, id, { status });
      });
    },
  };
}

export type SnapshotService = ReturnType<typeof createSnapshotService>;
