import { ShareStatus, SnapshotStatus } from './constants.ts';
import { type Executor, inTransaction } from './db.ts';
import { Conflict, Forbidden, InvalidInput, NotFound } from './errors.ts';
import { boolSpec, checkSizeSpecs } from './extra-specs.ts';
import { type Auth, requireMember } from './policy.ts';
import { refuseInRecycleBin } from './recycle-bin.ts';
import type { Repos } from './repos/index.ts';
import type { Share } from './repos/shares.ts';
import type { ChangeDeps } from './tasks.ts';

/**
 * Extend, shrink and revert: Manila's preconditions, the status flip, the quota reservation and
 * the task in one transaction; the worker (share-manager.ts) does the backend work.
 */
export function createShareActionService(deps: ChangeDeps & { repos: Pick<Repos, 'shares' | 'snapshots'> }) {
  const { db, repos, tasks, quotas, kick } = deps;

  /** Checks the locked share is available: the one status every action starts from. */
  function mustBeAvailable(share: Share, action: string): void {
    if (share.status !== ShareStatus.AVAILABLE)
      throw new InvalidInput(
        `Share ${share.id} cannot be ${action} while its status is '${share.status}'; it must be 'available'.`,
      );
  }

  async function perShareLimit(ex: Executor, projectId: string, shareTypeId: string): Promise<number> {
    let limit = -1;
    for (const scope of ['', shareTypeId]) {
      const l = (await quotas.effectiveLimits(ex, projectId, scope)).per_share_gigabytes;
      if (l !== undefined && l >= 0 && (limit < 0 || l < limit)) limit = l;
    }
    return limit;
  }

  return {
    async extend(auth: Auth, id: string, newSize: number, force: boolean): Promise<void> {
      requireMember(auth, 'share:extend');
      if (force && !auth.isAdmin)
        throw new Forbidden('Policy does not allow share:force_extend to be performed.');
      await inTransaction(db, async (trx) => {
        const share = await repos.shares.lockOwned(trx, auth, id);
        refuseInRecycleBin(share, 'extended');
        const perShare = await perShareLimit(trx, share.project_id, share.share_type_id);
        if (perShare >= 0 && newSize > perShare)
          throw new InvalidInput(`New size ${newSize} GiB exceeds the per-share limit of ${perShare} GiB.`);
        mustBeAvailable(share, 'extended');
        if (newSize <= share.size)
          throw new InvalidInput(
            `New size ${newSize} GiB must be greater than the current size ${share.size} GiB to extend; use shrink to make it smaller.`,
          );
        checkSizeSpecs(share.share_type_specs, share.share_type_name, newSize);
        await repos.shares.update(trx, id, { status: ShareStatus.EXTENDING });
        const task = await tasks.extendShare(trx, id, newSize);
        // Manila answers a quota refusal on extend with 403.
        await quotas.reserve(
          trx,
          {
            projectId: share.project_id,
            shareTypeId: share.share_type_id,
            userId: share.user_id,
            taskId: task.id,
          },
          { gigabytes: newSize - share.size },
          403,
        );
      });
      kick();
    },

    async shrink(auth: Auth, id: string, newSize: number): Promise<void> {
      requireMember(auth, 'share:shrink');
      await inTransaction(db, async (trx) => {
        const share = await repos.shares.lockOwned(trx, auth, id);
        refuseInRecycleBin(share, 'shrunk');
        mustBeAvailable(share, 'shrunk');
        if (newSize >= share.size)
          throw new InvalidInput(
            `New size ${newSize} GiB must be less than the current size ${share.size} GiB to shrink; use extend to make it bigger.`,
          );
        checkSizeSpecs(share.share_type_specs, share.share_type_name, newSize);
        await repos.shares.update(trx, id, { status: ShareStatus.SHRINKING });
        await tasks.shrinkShare(trx, id, newSize);
      });
      kick();
    },

    /** Only to the share's latest snapshot, as Manila: reverting further back would lose the newer ones. */
    async revert(auth: Auth, id: string, snapshotId: string): Promise<void> {
      requireMember(auth, 'share:revert_to_snapshot');
      await inTransaction(db, async (trx) => {
        const share = await repos.shares.lockOwned(trx, auth, id);
        refuseInRecycleBin(share, 'reverted');
        // Manila's revert answers a snapshot it cannot find (ShareSnapshotNotFound) with 400.
        const snapshot = await repos.snapshots.owned(trx, auth, snapshotId).catch((err: unknown) => {
          throw err instanceof NotFound ? new InvalidInput(err.message) : err;
        });
        if (snapshot.share_id !== id)
          throw new InvalidInput(`Snapshot ${snapshotId} is not a snapshot of share ${id}.`);
        if (boolSpec(share.share_type_specs, 'revert_to_snapshot_support') !== true)
          throw new InvalidInput(
            `Share type ${share.share_type_name} does not have revert_to_snapshot_support; share ${id} cannot be reverted.`,
          );
        if (share.status !== ShareStatus.AVAILABLE)
          throw new Conflict(
            `Share ${id} cannot be reverted while its status is '${share.status}'; it must be 'available'.`,
          );
        const latest = (await repos.snapshots.forShare(trx, id))[0];
        if (latest?.id !== snapshotId)
          throw new Conflict(
            `Share ${id} can be reverted only to its latest snapshot (${latest?.id}); delete the newer snapshots first to go further back.`,
          );
        const snap = await repos.snapshots.getForUpdate(trx, snapshotId);
        if (snap?.status !== SnapshotStatus.AVAILABLE)
          throw new Conflict(`Snapshot ${snapshotId} is '${snap?.status}'; it must be 'available'.`);
        await repos.shares.update(trx, id, { status: ShareStatus.REVERTING });
        await repos.snapshots.update(trx, snapshotId, { status: SnapshotStatus.RESTORING });
        const task = await tasks.revertShare(trx, id, snapshotId);
        // The share takes the snapshot's size; growing back to it needs quota (403 as for extend).
        if (snap.size > share.size)
          await quotas.reserve(
            trx,
            {
              projectId: share.project_id,
              shareTypeId: share.share_type_id,
              userId: share.user_id,
              taskId: task.id,
            },
            { gigabytes: snap.size - share.size },
            403,
          );
      });
      kick();
    },
  };
}

export type ShareActionService = ReturnType<typeof createShareActionService>;
