import { randomUUID } from 'node:crypto';
import {
  checkStatus,
  SHARE_GROUP_DELETABLE,
  ShareGroupStatus,
  ShareStatus,
  SnapshotStatus,
} from './constants.ts';
import { type Executor, inTransaction } from './db.ts';
import { Conflict, Forbidden, InvalidInput, NotFound } from './errors.ts';
import { type Auth, listedProject, requireAdmin, requireMember, requireReader } from './policy.ts';
import type { Repos } from './repos/index.ts';
import { type ListQuery, markerOf } from './repos/paging.ts';
import type { ShareGroupSnapshotQuery, ShareGroupSnapshotRow } from './repos/share-group-snapshots.ts';
import type { SnapshotRow } from './repos/snapshots.ts';
import type { ChangeDeps } from './tasks.ts';

/** A group snapshot as the API shows it: the row and its members. */
export interface ShareGroupSnapshot extends ShareGroupSnapshotRow {
  members: SnapshotRow[];
}

export interface ShareGroupSnapshotServiceDeps extends ChangeDeps {
  repos: Pick<Repos, 'shareGroups' | 'shareGroupSnapshots' | 'shares' | 'snapshots'>;
}

/**
 * Share group snapshots (Manila 2.31+): a snapshot of every share of a group, taken together. The
 * members are snapshots of the shares (share_snapshots rows that name the group snapshot), made and
 * removed by the backend calls every snapshot goes through, in one task for the whole group
 * (shareGroupManager). The `share_group_snapshots` quota counts them; members count no
 * `snapshots` quota, as in Manila.
 */
export function createShareGroupSnapshotService(deps: ShareGroupSnapshotServiceDeps) {
  const { db, repos, tasks, quotas, kick } = deps;

  const withMembers = async (ex: Executor, row: ShareGroupSnapshotRow): Promise<ShareGroupSnapshot> => ({
    ...row,
    members: await repos.snapshots.members(ex, row.id),
  });

  return {
    async create(
      auth: Auth,
      input: { shareGroupId: string; name: string | null; description: string | null },
    ): Promise<ShareGroupSnapshot> {
      requireMember(auth, 'share_group_snapshot:create');
      const projectId = auth.projectId;
      if (!projectId) throw new Forbidden('Creating a share group snapshot needs a project-scoped token.');
      const id = randomUUID();
      const created = await inTransaction(db, async (trx) => {
        // Manila answers a group it cannot find with 400 here (the id is in the body, not the URL).
        const group = await repos.shareGroups
          .lockOwned(trx, auth, input.shareGroupId)
          .catch((err: unknown) => {
            if (err instanceof NotFound)
              throw new InvalidInput(`Share group ${input.shareGroupId} could not be found.`);
            throw err;
          });
        if (group.status !== ShareGroupStatus.AVAILABLE)
          throw new Conflict(
            `Share group ${group.id} is '${group.status}'; a snapshot can be taken only of an available share group.`,
          );
        // Locked with the group: a share cannot start deleting (or change) while its member is made.
        const shares = await repos.shares.inGroup(trx, group.id, { lock: true });
        const busy = shares.filter((s) => s.status !== ShareStatus.AVAILABLE);
        if (busy.length)
          throw new Conflict(
            `Share group ${group.id} has shares that are not available (${busy.map((s) => `${s.id}: ${s.status}`).join(', ')}).`,
          );
        await repos.shareGroupSnapshots.insert(trx, {
          id,
          project_id: projectId,
          user_id: auth.userId,
          share_group_id: group.id,
          name: input.name,
          description: input.description,
          status: ShareGroupStatus.CREATING,
        });
        for (const share of shares)
          await repos.snapshots.insert(trx, {
            id: randomUUID(),
            share_id: share.id,
            project_id: share.project_id,
            user_id: auth.userId,
            name: null,
            description: null,
            size: share.size,
            share_proto: share.share_proto,
            status: SnapshotStatus.CREATING,
            provider_location: null,
            share_group_snapshot_id: id,
          });
        const task = await tasks.createShareGroupSnapshot(trx, id);
        await quotas.reserve(
          trx,
          { projectId, shareTypeId: '', userId: auth.userId, taskId: task.id },
          { share_group_snapshots: 1 },
        );
        return withMembers(trx, await repos.shareGroupSnapshots.owned(trx, auth, id));
      });
      kick();
      return created;
    },

    async get(auth: Auth, id: string): Promise<ShareGroupSnapshot> {
      requireReader(auth, 'share_group_snapshot:get');
      return withMembers(db, await repos.shareGroupSnapshots.owned(db, auth, id));
    },

    async list(auth: Auth, q: ListQuery<ShareGroupSnapshotQuery>): Promise<ShareGroupSnapshot[]> {
      requireReader(auth, 'share_group_snapshot:get_all');
      const marker = await markerOf(
        q,
        (id) => repos.shareGroupSnapshots.owned(db, auth, id),
        'share group snapshot',
      );
      const rows = await repos.shareGroupSnapshots.list(db, {
        ...q,
        projectId: listedProject(auth, q),
        marker,
      });
      return Promise.all(rows.map((r) => withMembers(db, r)));
    },

    async update(
      auth: Auth,
      id: string,
      patch: { name?: string | null | undefined; description?: string | null | undefined },
    ): Promise<ShareGroupSnapshot> {
      requireMember(auth, 'share_group_snapshot:update');
      return inTransaction(db, async (trx) => {
        await repos.shareGroupSnapshots.lockOwned(trx, auth, id);
        await repos.shareGroupSnapshots.update(trx, id, {
          ...(patch.name !== undefined ? { name: patch.name } : {}),
          ...(patch.description !== undefined ? { description: patch.description } : {}),
        });
        return withMembers(trx, await repos.shareGroupSnapshots.owned(trx, auth, id));
      });
    },

    /** DELETE: from available or error; not while a share is still being made from a member (409). */
    async delete(auth: Auth, id: string): Promise<void> {
      requireMember(auth, 'share_group_snapshot:delete');
      await startDelete(auth, id, false);
    },

    async forceDelete(auth: Auth, id: string): Promise<void> {
      requireAdmin(auth, 'share_group_snapshot:force_delete');
      await startDelete(auth, id, true);
    },

    async resetStatus(auth: Auth, id: string, status: string): Promise<void> {
      requireAdmin(auth, 'share_group_snapshot:reset_status');
      checkStatus(status, ShareGroupStatus);
      await inTransaction(db, async (trx) => {
        await repos.shareGroupSnapshots.lockOwned(trx, auth, id);
        await repos.shareGroupSnapshots.update(trx, id, { status });
      });
    },
  };

  async function startDelete(auth: Auth, id: string, force: boolean): Promise<void> {
    await inTransaction(db, async (trx) => {
      const snap = await repos.shareGroupSnapshots.lockOwned(trx, auth, id);
      if (!force && !SHARE_GROUP_DELETABLE.includes(snap.status))
        throw new Conflict(
          `Share group snapshot ${id} cannot be deleted while its status is '${snap.status}'; it must be one of ${SHARE_GROUP_DELETABLE.join(', ')}.`,
        );
      for (const member of await repos.snapshots.members(trx, id)) {
        const making = await repos.shares.creatingFrom(trx, member.id);
        if (making.length)
          throw new Conflict(
            `Shares are still being created from share group snapshot ${id} (${making.join(', ')}).`,
          );
        await repos.snapshots.update(trx, member.id, { status: SnapshotStatus.DELETING });
      }
      await repos.shareGroupSnapshots.update(trx, id, { status: ShareGroupStatus.DELETING });
      await tasks.deleteShareGroupSnapshot(trx, id, force);
    });
    kick();
  }
}

export type ShareGroupSnapshotService = ReturnType<typeof createShareGroupSnapshotService>;
