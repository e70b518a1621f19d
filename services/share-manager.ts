import { randomUUID } from 'node:crypto';
import { BackendError } from '../backends/errors.ts';
import type { ShareProtocol } from '../backends/types.ts';
import {
  backendCalls,
  errorText,
  failureText,
  NoValidHost,
  parseHost,
  shareRef as ref,
  snapshotRef,
} from './backend-calls.ts';
import { ShareStatus, SnapshotStatus, type TaskKind } from './constants.ts';
import type { Db } from './db.ts';
import {
  MessageAction,
  type MessageActionId,
  MessageDetail,
  type MessageDetailId,
  recordMessage,
} from './messages.ts';
import type { QuotaService } from './quotas.ts';
import type { Repos } from './repos/index.ts';
import type { Share, ShareRow } from './repos/shares.ts';
import { type ConfiguredBackend, schedule } from './scheduler.ts';
import { settleGroup } from './share-group-manager.ts';
import type { FinishTx, Task, TaskHandler } from './tasks.ts';

/** Manila's user message for a share no backend can take (message_field.Detail.NO_VALID_HOST). */
const NO_STORAGE = 'No storage could be allocated for this share request.';

/**
 * Manila's share manager: the task handlers that carry out share changes on a backend. Each reads
 * the share, does idempotent backend work outside any transaction, and records the outcome — status,
 * export locations, quota commit, a user message on failure — in one transaction with
 * the task's completion.
 */
export function createShareManager(deps: {
  db: Db;
  repos: Pick<Repos, 'shares' | 'snapshots' | 'shareTypes' | 'messages' | 'shareGroups'>;
  quotas: QuotaService;
  backends: ConfiguredBackend[];
  serverHost: string;
}) {
  const { db, repos, quotas, backends } = deps;
  const { backendFor } = backendCalls(backends);

  const creating = (s: { status: string } | undefined) =>
    s?.status === ShareStatus.CREATING || s?.status === ShareStatus.CREATING_FROM_SNAPSHOT;

  /** Where a new share goes: the scheduler's pick, or the backend and pool holding its snapshot. */
  async function place(share: Share, anyZoneOfType: boolean) {
    const type = await repos.shareTypes.get(db, share.share_type_id);
    const request = {
      size: share.size,
      shareProto: share.share_proto as ShareProtocol,
      specs: type?.extra_specs ?? {},
      availabilityZone: share.availability_zone,
      anyZoneOfType,
    };
    if (!share.snapshot_id) {
      // A share of a group goes to the group's backend (Manila places it on the group's host).
      const group = share.share_group_id ? await repos.shareGroups.get(db, share.share_group_id) : undefined;
      const groupBackend = parseHost(group?.host ?? null)?.backend;
      const candidates = groupBackend ? backends.filter((b) => b.backend.name === groupBackend) : backends;
      const { placement, reasons } = await schedule(candidates, request, deps.serverHost);
      if (!placement)
        throw new NoValidHost(
          `No valid host was found. ${NO_STORAGE} ${reasons.length ? `Backends considered: ${reasons.join('; ')}.` : 'No storage backend is configured.'}`,
        );
      return { host: placement.host, availabilityZone: placement.availabilityZone };
    }
    // Backends copy a snapshot only within themselves: the new share joins its source's pool, which
    // must still satisfy the new share's type.
    const snapshot = await repos.snapshots.get(db, share.snapshot_id);
    const source = snapshot && (await repos.shares.get(db, snapshot.share_id));
    if (!snapshot || !source?.host)
      throw new NoValidHost(`Snapshot ${share.snapshot_id} or its share no longer exists.`);
    const holder = parseHost(source.host);
    const candidates = backends.filter((b) => b.backend.name === holder?.backend);
    const { placement, reasons } = await schedule(candidates, request, deps.serverHost);
    if (!placement || placement.pool !== holder?.pool)
      throw new NoValidHost(
        `No valid host was found. ${NO_STORAGE} A share made from snapshot ${snapshot.id} must live on the backend holding it (${source.host})${reasons.length ? `, which was refused: ${reasons.join('; ')}` : ''}.`,
      );
    return { host: source.host, availabilityZone: placement.availabilityZone };
  }

  /** share.create: place the share, then create it (from its snapshot, if it has one). */
  const createShare: TaskHandler<typeof TaskKind.SHARE_CREATE> = {
    async run(task) {
      const found = await repos.shares.get(db, task.resource_id);
      if (!found || !creating(found)) return null;
      let share: ShareRow | undefined = found;
      if (!share.host) {
        // Placement is recorded before the backend is called, so a re-run uses the same backend.
        const { host, availabilityZone } = await place(found, task.payload.any_zone_of_type === true);
        share = await repos.shares.update(db, share.id, { host, availability_zone: availabilityZone });
        if (!share) return null;
      }
      const backend = backendFor(share.host);
      // The backend reads its own specs from the type (e.g. a replica count).
      const type = await repos.shareTypes.get(db, share.share_type_id);
      const target = { ...ref(share), specs: type?.extra_specs ?? {} };
      if (!share.snapshot_id) return backend.createShare(target);
      const snapshot = await repos.snapshots.get(db, share.snapshot_id);
      if (!snapshot) throw new NoValidHost(`Snapshot ${share.snapshot_id} no longer exists.`);
      // While the backend copies, the share shows creating_from_snapshot (from 2.54), as a Manila
      // driver that copies asynchronously reports it; a forced delete in between keeps `deleting`.
      await repos.shares.changeStatus(db, share.id, ShareStatus.CREATING, ShareStatus.CREATING_FROM_SNAPSHOT);
      return backend.createShareFromSnapshot(target, snapshotRef(snapshot));
    },
    async succeed(task, result, finish) {
      await db.transaction(async (trx) => {
        const share = await repos.shares.getForUpdate(trx, task.resource_id);
        if (creating(share) && share && result) {
          await repos.shares.replaceExportLocations(
            trx,
            share.id,
            result.map((l) => ({
              id: randomUUID(),
              path: l.path,
              preferred: l.preferred,
              is_admin_only: l.isAdminOnly,
            })),
          );
          await repos.shares.update(trx, share.id, { status: ShareStatus.AVAILABLE });
        }
        if (share?.share_group_id) await settleGroup(repos, trx, share.share_group_id);
        await quotas.commit(trx, task.id);
        await finish(trx, 'done', null);
      });
    },
    async fail(task, err, finish) {
      await db.transaction(async (trx) => {
        const share = await repos.shares.getForUpdate(trx, task.resource_id);
        if (share && creating(share)) {
          await repos.shares.update(trx, share.id, { status: ShareStatus.ERROR });
          await recordMessage(repos.messages, trx, {
            projectId: share.project_id,
            resourceType: 'SHARE',
            resourceId: share.id,
            action: err instanceof NoValidHost ? MessageAction.ALLOCATE_HOST : MessageAction.CREATE,
            detail: err instanceof NoValidHost ? MessageDetail.NO_VALID_HOST : MessageDetail.DRIVER_FAILED,
            text: failureText(err),
          });
        }
        if (share?.share_group_id) await settleGroup(repos, trx, share.share_group_id);
        // As in Manila, a share in error still counts against quota until it is deleted.
        await quotas.commit(trx, task.id);
        await finish(trx, 'failed', errorText(err));
      });
    },
  };

  /** share.delete: remove the share from its backend, then the record. */
  const deleteShare: TaskHandler<typeof TaskKind.SHARE_DELETE> = {
    async run(task) {
      const share = await repos.shares.get(db, task.resource_id);
      if (!share || share.status !== ShareStatus.DELETING) return null;
      // A share that never reached a backend has nothing to remove there.
      if (share.host) await backendFor(share.host).deleteShare(ref(share));
      return null;
    },
    async succeed(task, _result, finish) {
      await db.transaction(async (trx) => {
        const share = await repos.shares.getForUpdate(trx, task.resource_id);
        if (share?.status === ShareStatus.DELETING) {
          await repos.shares.remove(trx, share.id);
          await quotas.release(
            trx,
            { projectId: share.project_id, shareTypeId: share.share_type_id, userId: share.user_id },
            { shares: 1, gigabytes: share.size },
          );
        }
        await finish(trx, 'done', null);
      });
    },
    async fail(task, err, finish) {
      // A force delete removes the share whatever the backend says (Manila's force_delete).
      if (task.payload.force) return deleteShare.succeed(task, null, finish);
      await db.transaction(async (trx) => {
        const share = await repos.shares.getForUpdate(trx, task.resource_id);
        if (share?.status === ShareStatus.DELETING) {
          await repos.shares.update(trx, share.id, { status: ShareStatus.ERROR_DELETING });
          await recordMessage(repos.messages, trx, {
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
    task: Task,
    err: unknown,
    finish: FinishTx,
    expect: string,
    outcome: { status: string; action: MessageActionId; detail?: MessageDetailId; text?: string },
    restoring?: string,
  ) {
    await db.transaction(async (trx) => {
      const share = await repos.shares.getForUpdate(trx, task.resource_id);
      if (share?.status === expect) {
        await repos.shares.update(trx, share.id, { status: outcome.status });
        await recordMessage(repos.messages, trx, {
          projectId: share.project_id,
          resourceType: 'SHARE',
          resourceId: share.id,
          action: outcome.action,
          detail: outcome.detail ?? MessageDetail.DRIVER_FAILED,
          text: outcome.text ?? failureText(err),
        });
      }
      if (restoring) {
        const snap = await repos.snapshots.getForUpdate(trx, restoring);
        if (snap?.status === SnapshotStatus.RESTORING)
          await repos.snapshots.update(trx, snap.id, { status: SnapshotStatus.AVAILABLE });
      }
      await quotas.rollback(trx, task.id);
      await finish(trx, 'failed', errorText(err));
    });
  }

  /** share.extend: grow the share on its backend to payload.new_size. */
  const extendShare: TaskHandler<typeof TaskKind.SHARE_EXTEND> = {
    async run(task) {
      const share = await repos.shares.get(db, task.resource_id);
      if (share?.status !== ShareStatus.EXTENDING) return null;
      await backendFor(share.host).extendShare(ref(share), task.payload.new_size);
      return null;
    },
    async succeed(task, _result, finish) {
      await db.transaction(async (trx) => {
        const share = await repos.shares.getForUpdate(trx, task.resource_id);
        if (share?.status === ShareStatus.EXTENDING)
          await repos.shares.update(trx, share.id, {
            status: ShareStatus.AVAILABLE,
            size: task.payload.new_size,
          });
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

  /** share.shrink: shrink the share on its backend to payload.new_size, if its data fits. */
  const shrinkShare: TaskHandler<typeof TaskKind.SHARE_SHRINK> = {
    async run(task) {
      const share = await repos.shares.get(db, task.resource_id);
      if (share?.status !== ShareStatus.SHRINKING) return null;
      await backendFor(share.host).shrinkShare(ref(share), task.payload.new_size);
      return null;
    },
    async succeed(task, _result, finish) {
      await db.transaction(async (trx) => {
        const share = await repos.shares.getForUpdate(trx, task.resource_id);
        if (share?.status === ShareStatus.SHRINKING) {
          await repos.shares.update(trx, share.id, {
            status: ShareStatus.AVAILABLE,
            size: task.payload.new_size,
          });
          await quotas.release(
            trx,
            { projectId: share.project_id, shareTypeId: share.share_type_id, userId: share.user_id },
            { gigabytes: share.size - task.payload.new_size },
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
              text: `The share was not shrunk to ${task.payload.new_size} GiB: ${err.message} Its size and data are unchanged.`,
            }
          : { status: ShareStatus.SHRINKING_ERROR, action: MessageAction.SHRINK },
      ),
  };

  /** share.revert: make the share's data its snapshot's (payload.snapshot_id) again. */
  const revertShare: TaskHandler<typeof TaskKind.SHARE_REVERT> = {
    async run(task) {
      const share = await repos.shares.get(db, task.resource_id);
      if (share?.status !== ShareStatus.REVERTING) return null;
      const snapshot = await repos.snapshots.get(db, task.payload.snapshot_id);
      if (!snapshot)
        throw new BackendError('NotFound', `Snapshot ${task.payload.snapshot_id} no longer exists.`);
      await backendFor(share.host).revertToSnapshot(ref(share), snapshotRef(snapshot));
      return null;
    },
    async succeed(task, _result, finish) {
      await db.transaction(async (trx) => {
        const share = await repos.shares.getForUpdate(trx, task.resource_id);
        const snapshot = await repos.snapshots.getForUpdate(trx, task.payload.snapshot_id);
        if (share?.status === ShareStatus.REVERTING && snapshot) {
          // The share takes the snapshot's size: growth was reserved by the API, shrinkage is freed.
          await repos.shares.update(trx, share.id, { status: ShareStatus.AVAILABLE, size: snapshot.size });
          if (share.size > snapshot.size)
            await quotas.release(
              trx,
              { projectId: share.project_id, shareTypeId: share.share_type_id, userId: share.user_id },
              { gigabytes: share.size - snapshot.size },
            );
        }
        if (snapshot?.status === SnapshotStatus.RESTORING)
          await repos.snapshots.update(trx, snapshot.id, { status: SnapshotStatus.AVAILABLE });
        await quotas.commit(trx, task.id);
        await finish(trx, 'done', null);
      });
    },
    fail: (task, err, finish) =>
      failChange(
        task,
        err,
        finish,
        ShareStatus.REVERTING,
        { status: ShareStatus.REVERTING_ERROR, action: MessageAction.REVERT_TO_SNAPSHOT },
        task.payload.snapshot_id,
      ),
  };

  return { createShare, deleteShare, extendShare, shrinkShare, revertShare };
}
