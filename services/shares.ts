import { randomUUID } from 'node:crypto';
import type { ShareProtocol } from '../backends/types.ts';
import { checkStatus, SHARE_DELETABLE, SHARE_TASK_STATES, ShareStatus, SnapshotStatus } from './constants.ts';
import { type Executor, inTransaction } from './db.ts';
import { Conflict, Forbidden, InvalidInput, NotFound, NotSupported } from './errors.ts';
import { AZ_SPEC, boolSpec, checkSizeSpecs, typeZones } from './extra-specs.ts';
import { isUuid } from './ids.ts';
import { type Auth, listedProject, requireAdmin, requireMember, requireReader } from './policy.ts';
import { DEFAULT_RETENTION_SECONDS, refuseInRecycleBin } from './recycle-bin.ts';
import type { Repos } from './repos/index.ts';
import type { PageReader } from './repos/page-reader.ts';
import { type ListQuery, markerOf } from './repos/paging.ts';
import type { ExportLocationRow, PageItem, Share, ShareQuery } from './repos/shares.ts';
import type { ShareTypeService } from './share-types.ts';
import type { ChangeDeps } from './tasks.ts';

/** Keys starting with "__" are reserved for the system (scheduler hints): only admins may set them. */
function checkReserved(auth: Auth, keys: string[]): void {
  const reserved = keys.filter((k) => k.startsWith('__'));
  if (reserved.length && !auth.isAdmin)
    throw new Forbidden(`Metadata keys ${reserved.join(', ')} are reserved (they start with "__").`);
}

export interface CreateShareInput {
  size: number;
  shareProto: ShareProtocol;
  name: string | null;
  description: string | null;
  metadata: Record<string, string>;
  /** The share type by id or by name (clients send either); null → the default type. */
  shareTypeRef: string | null;
  availabilityZone: string | null;
  isPublic: boolean;
  snapshotId: string | null;
  /**
   * Whether the type's `availability_zones` spec applies (Manila from 2.48): a zone asked for must
   * be one of the type's, and the scheduler keeps to them. Below 2.48 Manila ignores the spec.
   */
  typeZones?: boolean;
  /** The share group the share joins (2.31): its type must be one of the group's, its zone the group's. */
  shareGroupId?: string | null;
}

/** GET /v2/shares[/detail]: filters, order and page. */
export interface ShareListQuery extends ListQuery<ShareQuery> {
  /** with_count: also count the matches in all pages. */
  withCount: boolean;
}

/**
 * A page of shares as their ids and the revisions of what their views show, in list order; the
 * shares themselves are loaded by id, so a caller that keeps rendered shares (the list view's
 * cache) loads only those it has not seen at that revision.
 */
export interface SharePage {
  items: PageItem[];
  /** The shares with these ids, each with the revision it was read at; one deleted since is absent. */
  load(ids: string[]): Promise<{ share: Share; revision: string }[]>;
  /** With withCount: how many shares match in all pages. */
  count: number | undefined;
}

export interface ShareServiceDeps extends ChangeDeps {
  repos: Pick<Repos, 'shares' | 'snapshots' | 'shareTypes' | 'tasks' | 'shareGroups'>;
  /** Runs the list's page read. */
  reader: PageReader;
  shareTypes: ShareTypeService;
  /** Availability zones that have a backend. */
  availabilityZones: () => string[];
  /** How long a soft-deleted share stays in the recycle bin (Manila's soft_deleted_share_retention_time). */
  recycleBinRetentionSeconds?: number;
}

/** Statuses from which a share may go to the recycle bin (Manila: available, error, inactive). */
const SOFT_DELETABLE: readonly string[] = [ShareStatus.AVAILABLE, ShareStatus.ERROR];
/** What the purge deletes: not a share whose delete failed already (an operator looks at those). */
const PURGEABLE = SHARE_DELETABLE.filter((s) => s !== ShareStatus.ERROR_DELETING);

export function createShareService(deps: ShareServiceDeps) {
  const { db, repos, reader, tasks, quotas, shareTypes, availabilityZones, kick } = deps;
  const retentionSeconds = deps.recycleBinRetentionSeconds ?? DEFAULT_RETENTION_SECONDS;
  return {
    async create(auth: Auth, input: CreateShareInput): Promise<Share> {
      requireMember(auth, 'share:create');
      if (!auth.projectId) throw new Forbidden('Creating a share needs a project-scoped token.');
      if (input.isPublic && !auth.isAdmin)
        throw new Forbidden('Policy does not allow share:create_public_share to be performed.');
      checkReserved(auth, Object.keys(input.metadata));
      const source = input.snapshotId === null ? null : await sourceOf(auth, input.snapshotId, input);
      const type =
        input.shareTypeRef !== null
          ? await resolveType(auth, input.shareTypeRef)
          : source
            ? source.type
            : await shareTypes.getDefault(auth);
      const groupId = input.shareGroupId ?? null;
      const group = groupId === null ? undefined : await repos.shareGroups.owned(db, auth, groupId);
      if (group) {
        if (!group.share_types.includes(type.id))
          throw new InvalidInput(
            `Share type ${type.name} (${type.id}) is not one of the share types of share group ${group.id}: ${group.share_types.join(', ')}.`,
          );
        if (input.availabilityZone !== null && input.availabilityZone !== group.availability_zone)
          throw new InvalidInput(
            `Share group ${group.id} is in availability zone ${group.availability_zone}; a share in it cannot be created in ${input.availabilityZone}.`,
          );
      }
      // Manila's AvailabilityZoneNotFound, a 404.
      if (input.availabilityZone !== null && !availabilityZones().includes(input.availabilityZone))
        throw new NotFound(
          `Availability zone ${input.availabilityZone} could not be found; known: ${availabilityZones().join(', ') || 'none'}.`,
        );
      checkSizeSpecs(type.extra_specs, type.name, input.size);
      const typeZoneCheck = input.typeZones ?? true;
      const zones = typeZones(type.extra_specs[AZ_SPEC] ?? '');
      if (
        typeZoneCheck &&
        input.availabilityZone !== null &&
        zones.length &&
        !zones.includes(input.availabilityZone)
      )
        throw new InvalidInput(
          `Share type ${type.name} is not supported within the availability zone chosen ${input.availabilityZone}; its zones: ${zones.join(', ')}.`,
        );
      const limits = await quotas.effectiveLimits(db, auth.projectId, '');
      const perShare = limits.per_share_gigabytes ?? -1;
      if (perShare >= 0 && input.size > perShare)
        throw new InvalidInput(
          `Share size ${input.size} GiB exceeds the per-share limit of ${perShare} GiB.`,
        );

      const projectId = auth.projectId;
      const id = randomUUID();
      const share = await inTransaction(db, async (trx) => {
        if (group) {
          // Locked so the group cannot start deleting while a share joins it.
          const locked = await repos.shareGroups.getForUpdate(trx, group.id);
          if (locked?.status !== 'available')
            throw new InvalidInput(
              `Share group ${group.id} is '${locked?.status ?? 'deleted'}'; shares can be created only in an available share group.`,
            );
        }
        if (source) {
          // Locked so the snapshot cannot start deleting while a share is being made from it.
          const snap = await repos.snapshots.getForUpdate(trx, source.snapshot.id);
          if (snap?.status !== SnapshotStatus.AVAILABLE)
            throw new InvalidInput(
              `Snapshot ${source.snapshot.id} is '${snap?.status ?? 'deleted'}'; a share can be created only from an available snapshot.`,
            );
        }
        await repos.shares.insert(trx, {
          id,
          project_id: projectId,
          user_id: auth.userId,
          name: input.name,
          description: input.description,
          size: input.size,
          share_proto: input.shareProto,
          // As Manila: `creating` from a snapshot too, until the backend starts copying it
          // (shareManager.createShare then shows creating_from_snapshot).
          status: ShareStatus.CREATING,
          share_type_id: type.id,
          availability_zone:
            input.availabilityZone ?? group?.availability_zone ?? source?.share.availability_zone ?? null,
          is_public: input.isPublic,
          host: null,
          snapshot_id: source?.snapshot.id ?? null,
          share_group_id: group?.id ?? null,
        });
        await repos.shares.setMetadata(trx, id, input.metadata);
        const task = await tasks.createShare(trx, id, { typeZones: typeZoneCheck });
        await quotas.reserve(
          trx,
          { projectId, shareTypeId: type.id, userId: auth.userId, taskId: task.id },
          { shares: 1, gigabytes: input.size },
        );
        return repos.shares.owned(trx, auth, id);
      });
      kick();
      return share;
    },

    async get(auth: Auth, id: string): Promise<Share> {
      requireReader(auth, 'share:get');
      return repos.shares.visible(db, auth, id);
    },

    /** A page of the shares the caller may see: their ids and revisions, and how to load them. */
    async list(auth: Auth, q: ShareListQuery): Promise<SharePage> {
      const marker = await markerOf(q, (id) => repos.shares.visible(db, auth, id), 'share');
      requireReader(auth, 'share:get_all');
      // Manila's share:list_by_host and share:list_by_share_server_id policies: admins only.
      if (q.host !== undefined) requireAdmin(auth, 'share:list_by_host');
      if (q.shareServerId !== undefined) requireAdmin(auth, 'share:list_by_share_server_id');
      const query: ShareQuery = { ...q, projectId: listedProject(auth, q), marker };
      const items = await repos.shares.page(reader, query);
      const count = q.withCount
        ? await repos.shares.count(db, { ...query, marker: undefined, limit: undefined, offset: undefined })
        : undefined;
      return { items, load: (ids) => repos.shares.load(db, ids), count };
    },

    async exportLocations(auth: Auth, id: string): Promise<ExportLocationRow[]> {
      requireReader(auth, 'share:export_locations');
      // Manila checks share:get against the share's project here even for a share the caller
      // cannot see, so another project's private share is a 403 (not the usual 404).
      const share = await repos.shares.visible(db, auth, id).catch(async (err) => {
        const other = isUuid(id) ? await repos.shares.get(db, id) : undefined;
        if (other) throw new Forbidden(`Policy does not allow share:get to be performed on share ${id}.`);
        throw err;
      });
      const rows = await repos.shares.exportLocations(db, share.id);
      // Non-admins never see admin-only locations.
      return auth.isAdmin ? rows : rows.filter((r) => !r.is_admin_only);
    },

    async update(
      auth: Auth,
      id: string,
      patch: {
        name?: string | null | undefined;
        description?: string | null | undefined;
        isPublic?: boolean | undefined;
      },
    ): Promise<Share> {
      requireMember(auth, 'share:update');
      return inTransaction(db, async (trx) => {
        const share = await repos.shares.lockOwned(trx, auth, id);
        refuseInRecycleBin(share, 'updated');
        if (patch.isPublic === true && !auth.isAdmin)
          throw new Forbidden('Policy does not allow share:set_public_share to be performed.');
        await repos.shares.update(trx, id, {
          ...(patch.name !== undefined ? { name: patch.name } : {}),
          ...(patch.description !== undefined ? { description: patch.description } : {}),
          ...(patch.isPublic !== undefined ? { is_public: patch.isPublic } : {}),
        });
        return repos.shares.owned(trx, auth, id);
      });
    },

    async getMetadata(auth: Auth, id: string): Promise<Record<string, string>> {
      requireReader(auth, 'share:get_share_metadata');
      return (await repos.shares.visible(db, auth, id)).metadata;
    },

    /** Sets keys (merge) or, with replace, makes the metadata exactly `metadata`. */
    async setMetadata(
      auth: Auth,
      id: string,
      metadata: Record<string, string>,
      replace: boolean,
    ): Promise<Record<string, string>> {
      requireMember(auth, 'share:update_share_metadata');
      return inTransaction(db, async (trx) => {
        const share = await repos.shares.lockOwned(trx, auth, id);
        const touched = replace
          ? [...new Set([...Object.keys(share.metadata), ...Object.keys(metadata)])]
          : Object.keys(metadata);
        checkReserved(auth, touched);
        if (replace) await repos.shares.clearMetadata(trx, id);
        await repos.shares.setMetadata(trx, id, metadata);
        return (await repos.shares.owned(trx, auth, id)).metadata;
      });
    },

    async deleteMetadata(auth: Auth, id: string, key: string): Promise<void> {
      requireMember(auth, 'share:delete_share_metadata');
      await inTransaction(db, async (trx) => {
        const share = await repos.shares.lockOwned(trx, auth, id);
        checkReserved(auth, [key]);
        if (share.metadata[key] === undefined) throw new NotFound(`Share ${id} has no metadata key ${key}.`);
        await repos.shares.deleteMetadata(trx, id, key);
      });
    },

    /** Admin: delete whatever the status, and even if the backend fails. */
    async forceDelete(auth: Auth, id: string): Promise<void> {
      requireAdmin(auth, 'share:force_delete');
      await inTransaction(db, async (trx) => {
        const share = await repos.shares.lockOwned(trx, auth, id);
        await refuseWithSnapshots(trx, id);
        if (await removedAtOnce(trx, share)) return;
        await repos.shares.update(trx, id, { status: ShareStatus.DELETING });
        await tasks.deleteShare(trx, id, true);
      });
      kick();
    },

    /** Admin: set the status by hand (to recover a share an operator has repaired). */
    async resetStatus(auth: Auth, id: string, status: string): Promise<void> {
      requireAdmin(auth, 'share:reset_status');
      await inTransaction(db, async (trx) => {
        refuseInRecycleBin(await repos.shares.lockOwned(trx, auth, id), 'reset');
        checkStatus(status, ShareStatus);
        await repos.shares.update(trx, id, { status });
      });
    },

    /** Admin: record a task state by hand (Manila's reset_task_state; null clears it). */
    async resetTaskState(auth: Auth, id: string, taskState: string | null): Promise<void> {
      requireAdmin(auth, 'share:reset_task_state');
      if (taskState !== null && !SHARE_TASK_STATES.includes(taskState))
        throw new InvalidInput(
          `Task state '${taskState}' is not one of ${SHARE_TASK_STATES.join(', ')} (or null).`,
        );
      await inTransaction(db, async (trx) => {
        await repos.shares.lockOwned(trx, auth, id);
        await repos.shares.update(trx, id, { task_state: taskState });
      });
    },

    /** Admin: unmanage (forget a share but keep its data) is refused: no abaca backend can adopt it back. */
    async unmanage(auth: Auth, id: string): Promise<never> {
      requireAdmin(auth, 'share:unmanage');
      await repos.shares.visible(db, auth, id);
      throw new NotSupported(
        'Unmanaging a share is not supported: no abaca backend can manage an existing share again.',
      );
    },

    /** Admin: manage (adopt an existing export) is refused: no abaca backend can adopt one. */
    async manage(auth: Auth): Promise<never> {
      requireAdmin(auth, 'share:manage');
      throw new NotSupported('Managing an existing share is not supported by any abaca backend.');
    },

    /**
     * The soft_delete action (2.69): the share goes to the recycle bin, to be deleted for good once
     * the retention has passed (purgeExpired). Its storage and quota stay until then. Manila's
     * refusals (InvalidShare, answered 403): already in the bin, a status other than available or
     * error, snapshots (the purge could not delete the share).
     */
    async softDelete(auth: Auth, id: string): Promise<void> {
      requireMember(auth, 'share:soft_delete');
      await inTransaction(db, async (trx) => {
        const share = await repos.shares.lockOwned(trx, auth, id);
        if (share.is_soft_deleted) throw new Forbidden(`Share ${id} has been soft deleted already.`);
        if (!SOFT_DELETABLE.includes(share.status))
          throw new Forbidden(
            `Share ${id} cannot be soft deleted while its status is '${share.status}'; it must be one of ${SOFT_DELETABLE.join(', ')}.`,
          );
        await refuseWithSnapshots(trx, id, Forbidden);
        await repos.shares.softDelete(trx, id, retentionSeconds);
      });
    },

    /**
     * The restore action (2.69): back out of the recycle bin. True if it was there; false (Manila
     * answers 200 instead of 202) if it was not. Too late once its purge has started.
     */
    async restore(auth: Auth, id: string): Promise<boolean> {
      requireMember(auth, 'share:restore');
      return inTransaction(db, async (trx) => {
        const share = await repos.shares.lockOwned(trx, auth, id);
        if (!share.is_soft_deleted) return false;
        if (share.status === ShareStatus.DELETING || share.status === ShareStatus.ERROR_DELETING)
          throw new Forbidden(
            `Share ${id} is being deleted or has failed to be deleted ('${share.status}'); it cannot be restored.`,
          );
        await repos.shares.restore(trx, id);
        return true;
      });
    },

    /**
     * Deletes the shares whose time in the recycle bin is up at `now` (as DELETE would: `deleting`
     * and a delete task), up to `batch` of them; the server calls it periodically, and several
     * servers may run it at once. Returns how many it queued.
     */
    async purgeExpired(now: Date = new Date(), batch = 100): Promise<number> {
      const queued = await inTransaction(db, async (trx) => {
        let n = 0;
        for (const id of await repos.shares.expiredInRecycleBin(trx, now, PURGEABLE, batch)) {
          // Snapshots cannot be taken in the bin, but one left from before keeps the share.
          if ((await repos.snapshots.forShare(trx, id)).length) continue;
          await repos.shares.update(trx, id, { status: ShareStatus.DELETING });
          await tasks.deleteShare(trx, id, false);
          n++;
        }
        return n;
      });
      if (queued) kick();
      return queued;
    },

    /**
     * DELETE /v2/shares/{id}: from a deletable status the share turns `deleting` and
     * tasks.deleteShare is queued; the row goes once the backend has removed the share
     * (shareManager.deleteShare).
     */
    async delete(
      auth: Auth,
      id: string,
      opts: { shareGroupId?: string | undefined; groupCheck?: boolean } = {},
    ): Promise<void> {
      requireMember(auth, 'share:delete');
      await inTransaction(db, async (trx) => {
        const share = await repos.shares.lockOwned(trx, auth, id);
        // From 2.31, as Manila: a share of a group is deleted naming its group, and only then.
        if (opts.groupCheck) {
          const given = opts.shareGroupId;
          if (share.share_group_id && given === undefined)
            throw new InvalidInput(
              `Share ${id} belongs to share group ${share.share_group_id}: give share_group_id to delete it.`,
            );
          if (!share.share_group_id && given !== undefined)
            throw new InvalidInput(
              `Share ${id} does not belong to a share group: share_group_id must not be given.`,
            );
          if (given !== undefined && given !== share.share_group_id)
            throw new InvalidInput(
              `Share ${id} belongs to share group ${share.share_group_id}, not to ${given}.`,
            );
        }
        if (!SHARE_DELETABLE.includes(share.status))
          throw new Forbidden(
            `Share ${id} cannot be deleted while its status is '${share.status}'; it must be one of ${SHARE_DELETABLE.join(', ')}.`,
          );
        // Manila's InvalidShare on delete, answered 403.
        await refuseWithSnapshots(trx, id, Forbidden);
        if (await removedAtOnce(trx, share)) return;
        await repos.shares.update(trx, id, { status: ShareStatus.DELETING });
        await tasks.deleteShare(trx, id, false);
      });
      kick();
    },
  };

  /**
   * The snapshot a new share is made from, checked as Manila does: visible to the caller, from a
   * share whose type allows it, not bigger than the new share, same protocol and zone.
   */
  async function sourceOf(auth: Auth, snapId: string, input: CreateShareInput) {
    const snapshot = await repos.snapshots.owned(db, auth, snapId);
    // A snapshot's share outlives it; both gone since the line above reads as the snapshot gone.
    const share = await repos.shares.get(db, snapshot.share_id);
    const type = share && (await repos.shareTypes.get(db, share.share_type_id));
    if (!share || !type) throw new NotFound(`Snapshot ${snapId} could not be found.`);
    if (boolSpec(share.share_type_specs, 'create_share_from_snapshot_support') !== true)
      throw new InvalidInput(
        `Share type ${share.share_type_name} of the snapshot's share does not have create_share_from_snapshot_support; shares cannot be created from its snapshots.`,
      );
    if (input.size < snapshot.size)
      throw new InvalidInput(
        `Share size ${input.size} GiB is smaller than the snapshot's size of ${snapshot.size} GiB.`,
      );
    if (input.shareProto !== share.share_proto)
      throw new InvalidInput(
        `The snapshot's share uses ${share.share_proto}; a share made from it must use the same protocol.`,
      );
    if (input.availabilityZone !== null && input.availabilityZone !== share.availability_zone)
      throw new InvalidInput(
        `A share made from snapshot ${snapshot.id} is created in its share's availability zone ${share.availability_zone}; backends do not copy snapshots across zones.`,
      );
    // The source's type even if it has since become private: the new share inherits it by default.
    return { snapshot, share, type };
  }

  /**
   * A share that never reached a backend (no host: its placement failed) and has no task left to
   * run has nothing to remove from storage: Manila's delete drops such an instance from the database
   * at once, so the answer to the DELETE already finds it gone (tempest deletes the share type right
   * after). Its quota is given back in the same transaction.
   */
  async function removedAtOnce(trx: Executor, share: Share): Promise<boolean> {
    if (share.host !== null || (await repos.tasks.unfinished(trx, share.id))) return false;
    await repos.shares.remove(trx, share.id);
    await quotas.release(
      trx,
      { projectId: share.project_id, shareTypeId: share.share_type_id, userId: share.user_id },
      { shares: 1, gigabytes: share.size },
    );
    return true;
  }

  /** Manila keeps a share that has snapshots: they must be deleted first. */
  async function refuseWithSnapshots(
    ex: Executor,
    id: string,
    Refusal: typeof Conflict | typeof Forbidden = Conflict,
  ): Promise<void> {
    const snapshots = await repos.snapshots.forShare(ex, id);
    if (snapshots.length)
      throw new Refusal(
        `Share ${id} has ${snapshots.length} snapshot(s) (${snapshots.map((x) => x.id).join(', ')}); delete them before the share.`,
      );
  }

  async function resolveType(auth: Auth, ref: string) {
    if (isUuid(ref)) return shareTypes.visible(auth, ref);
    const match = (await shareTypes.list(auth, auth.isAdmin ? 'all' : undefined)).find((t) => t.name === ref);
    if (!match) throw new NotFound(`Share type ${ref} could not be found.`);
    return match;
  }
}

export type ShareService = ReturnType<typeof createShareService>;
