import { randomUUID } from 'node:crypto';
import { BackendError } from '../backends/errors.ts';
import type { ShareProtocol } from '../backends/types.ts';
import {
  backendCalls,
  backendNameOf,
  errorText,
  failureText,
  NoValidHost,
  shareRef as ref,
  snapshotRef,
} from './backend-calls.ts';
import type { Db } from './db.ts';
import {
  MessageAction,
  type MessageActionId,
  MessageDetail,
  type MessageDetailId,
  recordMessage,
} from './messages.ts';
import type { QuotaService } from './quotas.ts';
import { shareTypesRepo } from './repos/share-types.ts';
import { type Share, type ShareRow, sharesRepo } from './repos/shares.ts';
import { snapshotsRepo } from './repos/snapshots.ts';
import type { TaskRow } from './repos/tasks.ts';
import { type ConfiguredBackend, schedule } from './scheduler.ts';
import { ShareStatus, SnapshotStatus, TaskKind } from './shares.ts';
import type { FinishTx, TaskHandler } from './worker.ts';

/**
 * Manila's share manager: the task handlers that carry out share changes on a backend. Each reads
 * the share, does idempotent backend work outside any transaction, and records the outcome — status,
 * export locations, quota commit, a user message on failure — in one transaction with
 * the task's completion.
 */
export function createShareManager(deps: {
  db: Db;
  quotas: QuotaService;
  backends: ConfiguredBackend[];
  serverHost: string;
}): Record<string, TaskHandler> {
  const { db, quotas, backends } = deps;
  const { backendFor } = backendCalls(backends);

  const creating = (s: { status: string } | undefined) =>
    s?.status === ShareStatus.CREATING || s?.status === ShareStatus.CREATING_FROM_SNAPSHOT;

  /** Where a new share goes: the scheduler's pick, or the backend and pool holding its snapshot. */
  async function place(share: Share) {
    const type = await shareTypesRepo.get(db, share.share_type_id);
    const request = {
      size: share.size,
      proto: share.share_proto as ShareProtocol,
      specs: type?.extra_specs ?? {},
      availabilityZone: share.availability_zone,
    };
    if (!share.snapshot_id) {
      const { placement, reasons } = await schedule(backends, request, deps.serverHost);
      if (!placement)
        throw new NoValidHost(
          `No valid host was found. ${reasons.length ? `Backends considered: ${reasons.join('; ')}.` : 'No storage backend is configured.'}`,
        );
      return { host: placement.host, availabilityZone: placement.availabilityZone };
    }
    // Backends copy a snapshot only within themselves: the new share joins its source's pool, which
    // must still satisfy the new share's type.
    const snapshot = await snapshotsRepo.get(db, share.snapshot_id);
    const source = snapshot && (await sharesRepo.get(db, snapshot.share_id));
    if (!snapshot || !source?.host)
      throw new NoValidHost(`Snapshot ${share.snapshot_id} or its share no longer exists.`);
    const backendName = backendNameOf(source.host);
    const pool = source.host.split('#')[1];
    const candidates = backends.filter((b) => b.backend.name === backendName);
    const { placement, reasons } = await schedule(candidates, request, deps.serverHost);
    if (!placement || placement.pool !== pool)
      throw new NoValidHost(
        `No valid host was found: a share made from snapshot ${snapshot.id} must live on the backend holding it (${source.host})${reasons.length ? `, which was refused: ${reasons.join('; ')}` : ''}.`,
      );
    return { host: source.host, availabilityZone: placement.availabilityZone };
  }

  const create: TaskHandler = {
    async run(task: TaskRow) {
      const found = await sharesRepo.get(db, task.resource_id);
      if (!found || !creating(found)) return null;
      let share: ShareRow | undefined = found;
      if (!share.host) {
        // Placement is recorded before the backend is called, so a re-run uses the same backend.
        const { host, availabilityZone } = await place(found);
        share = await sharesRepo.update(db, share.id, { host, availability_zone: availabilityZone });
        if (!share) return null;
      }
      const backend = backendFor(share.host as string);
      if (!share.snapshot_id) return backend.createShare(ref(share));
      const snapshot = await snapshotsRepo.get(db, share.snapshot_id);
      if (!snapshot) throw new NoValidHost(`Snapshot ${share.snapshot_id} no longer exists.`);
      return backend.createShareFromSnapshot(ref(share), snapshotRef(snapshot));
    },
    async succeed(task, result, finish) {
      await db.transaction(async (trx) => {
        const share = await sharesRepo.getForUpdate(trx, task.resource_id);
        if (creating(share) && share && result) {
          const locations = result as { path: string; preferred: boolean; isAdminOnly: boolean }[];
          await sharesRepo.replaceExportLocations(
            trx,
            share.id,
            locations.map((l) => ({
              id: randomUUID(),
              path: l.path,
              preferred: l.preferred,
              is_admin_only: l.isAdminOnly,
            })),
          );
          await sharesRepo.update(trx, share.id, { status: ShareStatus.AVAILABLE });
        }
        await quotas.commit(trx, task.id);
        await finish(trx, 'done', null);
      });
    },
    async fail(task, err, finish) {
      await db.transaction(async (trx) => {
        const share = await sharesRepo.getForUpdate(trx, task.resource_id);
        if (share && creating(share)) {
          await sharesRepo.update(trx, share.id, { status: ShareStatus.ERROR });
          await recordMessage(trx, {
            projectId: share.project_id,
            resourceType: 'SHARE',
            resourceId: share.id,
            action: err instanceof NoValidHost ? MessageAction.ALLOCATE_HOST : MessageAction.CREATE,
            detail: err instanceof NoValidHost ? MessageDetail.NO_VALID_HOST : MessageDetail.DRIVER_FAILED,
            text: failureText(err),
          });
        }
        // As in Manila, a share in error still counts against quota until it is deleted.
        await quotas.commit(trx, task.id);
        await finish(trx, 'failed', errorText(err));
      });
    },
  };

  const remove: TaskHandler = {
    async run(task) {
      const share = await sharesRepo.get(db, task.resource_id);
      if (!share || share.status !== ShareStatus.DELETING) return null;
      // A share that never reached a backend has nothing to remove there.
      if (share.host) await backendFor(share.host).deleteShare(ref(share));
      return null;
    },
    async succeed(task, _result, finish) {
      await db.transaction(async (trx) => {
        const share = await sharesRepo.getForUpdate(trx, task.resource_id);
        if (share?.status === ShareStatus.DELETING) {
          await sharesRepo.remove(trx, share.id);
          await quotas.release(
            trx,
            { projectId: share.project_id, shareTypeId: share.share_type_id },
            { shares: 1, gigabytes: share.size },
          );
        }
        await finish(trx, 'done', null);
      });
    },
    async fail(task, err, finish) {
      // A force delete removes the share whatever the backend says (Manila's force_delete).
      if (task.payload.force === true) return remove.succeed(task, null, finish);
      await db.transaction(async (trx) => {
        const share = await sharesRepo.getForUpdate(trx, task.resource_id);
        if (share?.status === ShareStatus.DELETING) {
          await sharesRepo.update(trx, share.id, { status: ShareStatus.ERROR_DELETING });
          await recordMessage(trx, {
            projectId: share.project_id,
            resourceType: 'SHARE',
            resourceId: share.id,
            action: MessageAction.DELETE,
            detail: MessageDetail.DRIVER_FAILED,
            text: failureText(err),
          });
        }
        await finish(trx, 'failed', errorText(err));
      });
    },
  };

  /** Records a failure of a change to an existing share: its status, a user message, the quota back. */
  async function failChange(
    task: TaskRow,
    err: unknown,
    finish: FinishTx,
    expect: string,
    outcome: { status: string; action: MessageActionId; detail?: MessageDetailId; text?: string },
  ) {
    await db.transaction(async (trx) => {
      const share = await sharesRepo.getForUpdate(trx, task.resource_id);
      if (share?.status === expect) {
        await sharesRepo.update(trx, share.id, { status: outcome.status });
        await recordMessage(trx, {
          projectId: share.project_id,
          resourceType: 'SHARE',
          resourceId: share.id,
          action: outcome.action,
          detail: outcome.detail ?? MessageDetail.DRIVER_FAILED,
          text: outcome.text ?? failureText(err),
        });
      }
      if (typeof task.payload.snapshot_id === 'string') {
        const snap = await snapshotsRepo.getForUpdate(trx, task.payload.snapshot_id);
        if (snap?.status === SnapshotStatus.RESTORING)
          await snapshotsRepo.update(trx, snap.id, { status: SnapshotStatus.AVAILABLE });
      }
      await quotas.rollback(trx, task.id);
      await finish(trx, 'failed', errorText(err));
    });
  }

  const newSize = (task: TaskRow) => Number(task.payload.new_size);

  const extend: TaskHandler = {
    async run(task) {
      const share = await sharesRepo.get(db, task.resource_id);
      if (share?.status !== ShareStatus.EXTENDING) return null;
      await backendFor(share.host as string).extendShare(ref(share), newSize(task));
      return null;
    },
    async succeed(task, _result, finish) {
      await db.transaction(async (trx) => {
        const share = await sharesRepo.getForUpdate(trx, task.resource_id);
        if (share?.status === ShareStatus.EXTENDING)
          await sharesRepo.update(trx, share.id, { status: ShareStatus.AVAILABLE, size: newSize(task) });
        await quotas.commit(trx, task.id);
        await finish(trx, 'done', null);
      });
    },
    fail: (task, err, finish) =>
      failChange(task, err, finish, ShareStatus.EXTENDING, {
        status: ShareStatus.EXTENDING_ERROR,
        action: MessageAction.EXTEND,
      }),
  };

  const shrink: TaskHandler = {
    async run(task) {
      const share = await sharesRepo.get(db, task.resource_id);
      if (share?.status !== ShareStatus.SHRINKING) return null;
      await backendFor(share.host as string).shrinkShare(ref(share), newSize(task));
      return null;
    },
    async succeed(task, _result, finish) {
      await db.transaction(async (trx) => {
        const share = await sharesRepo.getForUpdate(trx, task.resource_id);
        if (share?.status === ShareStatus.SHRINKING) {
          await sharesRepo.update(trx, share.id, { status: ShareStatus.AVAILABLE, size: newSize(task) });
          await quotas.release(
            trx,
            { projectId: share.project_id, shareTypeId: share.share_type_id },
            { gigabytes: share.size - newSize(task) },
          );
        }
        await finish(trx, 'done', null);
      });
    },
    // A backend that refuses because the data would not fit changed nothing: the share stays usable
    // at its size, and the message says why (Manila does the same).
    fail: (task, err, finish) =>
      failChange(
        task,
        err,
        finish,
        ShareStatus.SHRINKING,
        err instanceof BackendError && err.code === 'ShrinkPossibleDataLoss'
          ? {
              status: ShareStatus.AVAILABLE,
              action: MessageAction.SHRINK,
              detail: MessageDetail.DRIVER_REFUSED_SHRINK,
              text: `The share was not shrunk to ${newSize(task)} GiB: ${err.message} Its size and data are unchanged.`,
            }
          : { status: ShareStatus.SHRINKING_ERROR, action: MessageAction.SHRINK },
      ),
  };

  const revert: TaskHandler = {
    async run(task) {
      const share = await sharesRepo.get(db, task.resource_id);
      if (share?.status !== ShareStatus.REVERTING) return null;
      const snapshot = await snapshotsRepo.get(db, String(task.payload.snapshot_id));
      if (!snapshot)
        throw new BackendError('NotFound', `Snapshot ${task.payload.snapshot_id} no longer exists.`);
      await backendFor(share.host as string).revertToSnapshot(ref(share), snapshotRef(snapshot));
      return null;
    },
    async succeed(task, _result, finish) {
      await db.transaction(async (trx) => {
        const share = await sharesRepo.getForUpdate(trx, task.resource_id);
        const snapshot = await snapshotsRepo.getForUpdate(trx, String(task.payload.snapshot_id));
        if (share?.status === ShareStatus.REVERTING && snapshot) {
          // The share takes the snapshot's size: growth was reserved by the API, shrinkage is freed.
          await sharesRepo.update(trx, share.id, { status: ShareStatus.AVAILABLE, size: snapshot.size });
          if (share.size > snapshot.size)
            await quotas.release(
              trx,
              { projectId: share.project_id, shareTypeId: share.share_type_id },
              { gigabytes: share.size - snapshot.size },
            );
        }
        if (snapshot?.status === SnapshotStatus.RESTORING)
          await snapshotsRepo.update(trx, snapshot.id, { status: SnapshotStatus.AVAILABLE });
        await quotas.commit(trx, task.id);
        await finish(trx, 'done', null);
      });
    },
    fail: (task, err, finish) =>
      failChange(task, err, finish, ShareStatus.REVERTING, {
        status: ShareStatus.REVERTING_ERROR,
        action: MessageAction.REVERT_TO_SNAPSHOT,
      }),
  };

  return {
    [TaskKind.SHARE_CREATE]: create,
    [TaskKind.SHARE_DELETE]: remove,
    [TaskKind.SHARE_EXTEND]: extend,
    [TaskKind.SHARE_SHRINK]: shrink,
    [TaskKind.SHARE_REVERT]: revert,
  };
}
