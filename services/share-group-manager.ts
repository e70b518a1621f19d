import { backendCalls, errorText, failureText, NoValidHost, snapshotRef } from './backend-calls.ts';
import { ShareGroupStatus, ShareStatus, SnapshotStatus, type TaskKind } from './constants.ts';
import type { Db, Trx } from './db.ts';
import { MessageAction, MessageDetail, recordMessage } from './messages.ts';
import type { QuotaService } from './quotas.ts';
import type { Repos } from './repos/index.ts';
import { type ConfiguredBackend, scheduleGroup } from './scheduler.ts';
import type { TaskHandler } from './tasks.ts';

type GroupRepos = Pick<
  Repos,
  | 'shareGroups'
  | 'shareGroupSnapshots'
  | 'shareGroupTypes'
  | 'shareTypes'
  | 'shares'
  | 'snapshots'
  | 'messages'
>;

const makingShare = (status: string) =>
  status === ShareStatus.CREATING || status === ShareStatus.CREATING_FROM_SNAPSHOT;

/**
 * A group being created turns available once it is placed and none of its shares (those made from
 * a group snapshot's members) is still being made; error if any of them failed. Called, under the
 * group's lock, by whichever finishes last: the group's own task or one of its shares' create tasks.
 */
export async function settleGroup(repos: Pick<Repos, 'shareGroups' | 'shares'>, trx: Trx, groupId: string) {
  // Only a group being created is settled, and only it is locked here: a share's task holds its
  // share's lock when it calls this, and a group snapshot (of an available group) locks the group
  // before its shares — taking an available group's lock here could deadlock with it.
  if ((await repos.shareGroups.get(trx, groupId))?.status !== ShareGroupStatus.CREATING) return;
  const group = await repos.shareGroups.getForUpdate(trx, groupId);
  if (group?.status !== ShareGroupStatus.CREATING || group.host === null) return;
  const shares = await repos.shares.inGroup(trx, groupId);
  if (shares.some((s) => makingShare(s.status))) return;
  const failed = shares.some((s) => s.status !== ShareStatus.AVAILABLE);
  await repos.shareGroups.update(trx, groupId, {
    status: failed ? ShareGroupStatus.ERROR : ShareGroupStatus.AVAILABLE,
  });
}

/**
 * Manila's share manager for groups: placing a group (share_group.create), removing it
 * (share_group.delete), and taking or removing a group snapshot's member snapshots on the backends
 * holding their shares (share_group_snapshot.create/delete). abaca's backends keep nothing for a
 * group itself, so a group's create and delete call no backend; its snapshots call createSnapshot
 * and deleteSnapshot once per member, as single snapshots do.
 */
export function createShareGroupManager(deps: {
  db: Db;
  repos: GroupRepos;
  quotas: QuotaService;
  backends: ConfiguredBackend[];
  serverHost: string;
}) {
  const { db, repos, quotas, backends } = deps;
  const { backendFor } = backendCalls(backends);

  const createShareGroup: TaskHandler<typeof TaskKind.SHARE_GROUP_CREATE> = {
    async run(task) {
      const group = await repos.shareGroups.get(db, task.resource_id);
      if (group?.status !== ShareGroupStatus.CREATING) return null;
      if (group.host !== null) return { host: group.host, availabilityZone: group.availability_zone ?? '' };
      if (group.source_share_group_snapshot_id !== null) {
        // Shares made from snapshots stay on the backend holding them: so does their group.
        const snap = await repos.shareGroupSnapshots.get(db, group.source_share_group_snapshot_id);
        const source = snap && (await repos.shareGroups.get(db, snap.share_group_id));
        if (!source?.host)
          throw new NoValidHost(
            `The source of share group ${group.id} no longer exists or was never placed.`,
          );
        return { host: source.host, availabilityZone: source.availability_zone ?? '' };
      }
      const groupType = await repos.shareGroupTypes.get(db, group.share_group_type_id);
      const typeSpecs = [];
      for (const id of group.share_types)
        typeSpecs.push((await repos.shareTypes.get(db, id))?.extra_specs ?? {});
      const { placement, reasons } = await scheduleGroup(
        backends,
        { typeSpecs, groupSpecs: groupType?.group_specs ?? {}, availabilityZone: group.availability_zone },
        deps.serverHost,
      );
      if (!placement)
        throw new NoValidHost(
          `No valid host was found for share group ${group.id}. ${reasons.length ? `Backends considered: ${reasons.join('; ')}.` : 'No storage backend is configured.'}`,
        );
      return { host: placement.host, availabilityZone: placement.availabilityZone };
    },
    async succeed(task, result, finish) {
      await db.transaction(async (trx) => {
        const group = await repos.shareGroups.getForUpdate(trx, task.resource_id);
        if (group?.status === ShareGroupStatus.CREATING && result) {
          await repos.shareGroups.update(trx, group.id, {
            host: result.host,
            availability_zone: result.availabilityZone,
          });
          await settleGroup(repos, trx, group.id);
        }
        await quotas.commit(trx, task.id);
        await finish(trx, 'done', null);
      });
    },
    async fail(task, err, finish) {
      await db.transaction(async (trx) => {
        const group = await repos.shareGroups.getForUpdate(trx, task.resource_id);
        if (group?.status === ShareGroupStatus.CREATING) {
          await repos.shareGroups.update(trx, group.id, { status: ShareGroupStatus.ERROR });
          await recordMessage(repos.messages, trx, {
            projectId: group.project_id,
            resourceType: 'SHARE_GROUP',
            resourceId: group.id,
            action: err instanceof NoValidHost ? MessageAction.ALLOCATE_HOST : MessageAction.CREATE,
            detail: err instanceof NoValidHost ? MessageDetail.NO_VALID_HOST : MessageDetail.DRIVER_FAILED,
            text: failureText(err),
          });
        }
        // As for shares: a group in error counts against quota until it is deleted.
        await quotas.commit(trx, task.id);
        await finish(trx, 'failed', errorText(err));
      });
    },
  };

  /** share_group.delete: nothing on a backend; the record goes and its quota is given back. */
  const deleteShareGroup: TaskHandler<typeof TaskKind.SHARE_GROUP_DELETE> = {
    async run() {
      return null;
    },
    async succeed(task, _result, finish) {
      await db.transaction(async (trx) => {
        const group = await repos.shareGroups.getForUpdate(trx, task.resource_id);
        // Shares cannot join a deleting group, and the API refused while it had any.
        if (group?.status === ShareGroupStatus.DELETING) {
          await repos.shareGroups.remove(trx, group.id);
          await quotas.release(
            trx,
            { projectId: group.project_id, shareTypeId: '', userId: group.user_id },
            { share_groups: 1 },
          );
        }
        await finish(trx, 'done', null);
      });
    },
    async fail(task, err, finish) {
      await db.transaction(async (trx) => {
        const group = await repos.shareGroups.getForUpdate(trx, task.resource_id);
        if (group?.status === ShareGroupStatus.DELETING)
          await repos.shareGroups.update(trx, group.id, { status: ShareGroupStatus.ERROR_DELETING });
        await finish(trx, 'failed', errorText(err));
      });
    },
  };

  async function backendOf(shareId: string) {
    const share = await repos.shares.get(db, shareId);
    return backendFor(share?.host ?? '');
  }

  /** share_group_snapshot.create: a snapshot of each member's share, one after the other. */
  const createShareGroupSnapshot: TaskHandler<typeof TaskKind.SHARE_GROUP_SNAPSHOT_CREATE> = {
    async run(task) {
      const snap = await repos.shareGroupSnapshots.get(db, task.resource_id);
      if (snap?.status !== ShareGroupStatus.CREATING) return null;
      for (const member of await repos.snapshots.members(db, snap.id))
        if (member.status === SnapshotStatus.CREATING)
          await (await backendOf(member.share_id)).createSnapshot(snapshotRef(member));
      return null;
    },
    async succeed(task, _result, finish) {
      await settleSnapshot(task.id, task.resource_id, null, finish);
    },
    async fail(task, err, finish) {
      await settleSnapshot(task.id, task.resource_id, err, finish);
    },
  };

  /** Records a group snapshot's create: it and its members available, or error with a message. */
  async function settleSnapshot(
    taskId: string,
    id: string,
    err: unknown,
    finish: Parameters<TaskHandler<typeof TaskKind.SHARE_GROUP_SNAPSHOT_CREATE>['succeed']>[2],
  ) {
    const failed = err !== null;
    await db.transaction(async (trx) => {
      const snap = await repos.shareGroupSnapshots.getForUpdate(trx, id);
      if (snap?.status === ShareGroupStatus.CREATING) {
        const status = failed ? ShareGroupStatus.ERROR : ShareGroupStatus.AVAILABLE;
        for (const member of await repos.snapshots.members(trx, id))
          if (member.status === SnapshotStatus.CREATING)
            await repos.snapshots.update(trx, member.id, {
              status: failed ? SnapshotStatus.ERROR : SnapshotStatus.AVAILABLE,
            });
        await repos.shareGroupSnapshots.update(trx, id, { status });
        if (failed)
          await recordMessage(repos.messages, trx, {
            projectId: snap.project_id,
            resourceType: 'SHARE_GROUP_SNAPSHOT',
            resourceId: snap.id,
            action: MessageAction.CREATE,
            detail: MessageDetail.DRIVER_FAILED,
            text: failureText(err),
          });
      }
      await quotas.commit(trx, taskId);
      await finish(trx, failed ? 'failed' : 'done', failed ? errorText(err) : null);
    });
  }

  /** share_group_snapshot.delete: each member's snapshot off its backend, then the records. */
  const deleteShareGroupSnapshot: TaskHandler<typeof TaskKind.SHARE_GROUP_SNAPSHOT_DELETE> = {
    async run(task) {
      const snap = await repos.shareGroupSnapshots.get(db, task.resource_id);
      if (snap?.status !== ShareGroupStatus.DELETING) return null;
      for (const member of await repos.snapshots.members(db, snap.id)) {
        const share = await repos.shares.get(db, member.share_id);
        // A member whose share was never placed has nothing on a backend.
        if (share?.host) await backendFor(share.host).deleteSnapshot(snapshotRef(member));
      }
      return null;
    },
    async succeed(task, _result, finish) {
      await db.transaction(async (trx) => {
        const snap = await repos.shareGroupSnapshots.getForUpdate(trx, task.resource_id);
        if (snap?.status === ShareGroupStatus.DELETING) {
          for (const member of await repos.snapshots.members(trx, snap.id))
            await repos.snapshots.remove(trx, member.id);
          await repos.shareGroupSnapshots.remove(trx, snap.id);
          await quotas.release(
            trx,
            { projectId: snap.project_id, shareTypeId: '', userId: snap.user_id },
            { share_group_snapshots: 1 },
          );
        }
        await finish(trx, 'done', null);
      });
    },
    async fail(task, err, finish) {
      // A force delete removes the records whatever the backend says (Manila's force_delete).
      if (task.payload.force) return deleteShareGroupSnapshot.succeed(task, null, finish);
      await db.transaction(async (trx) => {
        const snap = await repos.shareGroupSnapshots.getForUpdate(trx, task.resource_id);
        if (snap?.status === ShareGroupStatus.DELETING) {
          await repos.shareGroupSnapshots.update(trx, snap.id, { status: ShareGroupStatus.ERROR_DELETING });
          for (const member of await repos.snapshots.members(trx, snap.id))
            await repos.snapshots.update(trx, member.id, { status: SnapshotStatus.ERROR_DELETING });
          await recordMessage(repos.messages, trx, {
            projectId: snap.project_id,
            resourceType: 'SHARE_GROUP_SNAPSHOT',
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

  return { createShareGroup, deleteShareGroup, createShareGroupSnapshot, deleteShareGroupSnapshot };
}
