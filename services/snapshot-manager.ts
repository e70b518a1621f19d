import { backendCalls, errorText, failureText, snapshotRef } from './backend-calls.ts';
import { SnapshotStatus, type TaskKind } from './constants.ts';
import type { Db } from './db.ts';
import { MessageAction, MessageDetail, recordMessage } from './messages.ts';
import type { QuotaService } from './quotas.ts';
import type { Repos } from './repos/index.ts';
import type { ConfiguredBackend } from './scheduler.ts';
import type { TaskHandler } from './tasks.ts';

/** The task handlers that take and remove snapshots on the backend holding their share. */
export function createSnapshotManager(deps: {
  db: Db;
  repos: Pick<Repos, 'shares' | 'snapshots' | 'messages'>;
  quotas: QuotaService;
  backends: ConfiguredBackend[];
}) {
  const { db, repos, quotas } = deps;
  const { backendFor } = backendCalls(deps.backends);

  async function backendOf(shareId: string) {
    const share = await repos.shares.get(db, shareId);
    return backendFor(share?.host ?? '');
  }

  /** snapshot.create: take the snapshot on the backend holding its share. */
  const createSnapshot: TaskHandler<typeof TaskKind.SNAPSHOT_CREATE> = {
    async run(task) {
      const snap = await repos.snapshots.get(db, task.resource_id);
      if (snap?.status !== SnapshotStatus.CREATING) return null;
      await (await backendOf(snap.share_id)).createSnapshot(snapshotRef(snap));
      return null;
    },
    async succeed(task, _result, finish) {
      await db.transaction(async (trx) => {
        const snap = await repos.snapshots.getForUpdate(trx, task.resource_id);
        if (snap?.status === SnapshotStatus.CREATING)
          await repos.snapshots.update(trx, snap.id, { status: SnapshotStatus.AVAILABLE });
        await quotas.commit(trx, task.id);
        await finish(trx, 'done', null);
      });
    },
    async fail(task, err, finish) {
      await db.transaction(async (trx) => {
        const snap = await repos.snapshots.getForUpdate(trx, task.resource_id);
        if (snap?.status === SnapshotStatus.CREATING) {
          await repos.snapshots.update(trx, snap.id, { status: SnapshotStatus.ERROR });
          await recordMessage(repos.messages, trx, {
            projectId: snap.project_id,
            resourceType: 'SHARE_SNAPSHOT',
            resourceId: snap.id,
            action: MessageAction.CREATE,
            detail: MessageDetail.DRIVER_FAILED,
            text: failureText(err),
          });
        }
        // As for shares: a snapshot in error counts against quota until it is deleted.
        await quotas.commit(trx, task.id);
        await finish(trx, 'failed', errorText(err));
      });
    },
  };

  /** snapshot.delete: remove the snapshot from the backend, then the record. */
  const deleteSnapshot: TaskHandler<typeof TaskKind.SNAPSHOT_DELETE> = {
    async run(task) {
      const snap = await repos.snapshots.get(db, task.resource_id);
      if (snap?.status !== SnapshotStatus.DELETING) return null;
      await (await backendOf(snap.share_id)).deleteSnapshot(snapshotRef(snap));
      return null;
    },
    async succeed(task, _result, finish) {
      await db.transaction(async (trx) => {
        const snap = await repos.snapshots.getForUpdate(trx, task.resource_id);
        if (snap?.status === SnapshotStatus.DELETING) {
          // Always there: a share cannot be deleted while a snapshot references it.
          const share = await repos.shares.getForUpdate(trx, snap.share_id);
          await repos.snapshots.remove(trx, snap.id);
          if (share)
            await quotas.release(
              trx,
              { projectId: snap.project_id, shareTypeId: share.share_type_id, userId: snap.user_id },
              { snapshots: 1, snapshot_gigabytes: snap.size },
            );
        }
        await finish(trx, 'done', null);
      });
    },
    async fail(task, err, finish) {
      // A force delete removes the record whatever the backend says (Manila's force_delete).
      if (task.payload.force) return deleteSnapshot.succeed(task, null, finish);
      await db.transaction(async (trx) => {
        const snap = await repos.snapshots.getForUpdate(trx, task.resource_id);
        if (snap?.status === SnapshotStatus.DELETING) {
          await repos.snapshots.update(trx, snap.id, { status: SnapshotStatus.ERROR_DELETING });
          await recordMessage(repos.messages, trx, {
            projectId: snap.project_id,
            resourceType: 'SHARE_SNAPSHOT',
            resourceId: snap.id,
            action: MessageAction.DELETE,
            detail: MessageDetail.DRIVER_FAILED,
            text: failureText(err),
          });
        }
        await finish(trx, 'failed', errorText(err));
      });
    },
  };

  return { createSnapshot, deleteSnapshot };
}
