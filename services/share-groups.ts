import { randomUUID } from 'node:crypto';
import { checkStatus, SHARE_GROUP_DELETABLE, ShareGroupStatus, ShareStatus } from './constants.ts';
import { type Executor, inTransaction } from './db.ts';
import { Conflict, Forbidden, InvalidInput, NotFound } from './errors.ts';
import { AZ_SPEC, typeZones } from './extra-specs.ts';
import { type Auth, listedProject, requireAdmin, requireMember, requireReader } from './policy.ts';
import type { Repos } from './repos/index.ts';
import { type ListQuery, markerOf } from './repos/paging.ts';
import type { ShareGroup, ShareGroupQuery } from './repos/share-groups.ts';
import type { ShareGroupTypeService } from './share-group-types.ts';
import type { ShareTypeService } from './share-types.ts';
import type { ChangeDeps } from './tasks.ts';

export interface CreateShareGroupInput {
  name: string | null;
  description: string | null;
  shareGroupTypeId: string | null;
  /** Share types by id or name; null: the group type's. */
  shareTypes: string[] | null;
  availabilityZone: string | null;
  sourceShareGroupSnapshotId: string | null;
}

export interface ShareGroupServiceDeps extends ChangeDeps {
  repos: Pick<Repos, 'shareGroups' | 'shareGroupSnapshots' | 'shares' | 'snapshots' | 'shareTypes'>;
  shareTypes: ShareTypeService;
  shareGroupTypes: ShareGroupTypeService;
  /** Availability zones that have a backend. */
  availabilityZones: () => string[];
}

/**
 * Share groups (Manila's share_group/api.py, 2.31+): a group of shares of the share types its
 * group type allows, placed together. Creating one reserves the `share_groups` quota, records it
 * `creating` and queues share_group.create, which places it (shareGroupManager); from a group
 * snapshot, a share is also made from each member snapshot, and the group turns available once
 * they all are. A group with shares or snapshots cannot be deleted (409).
 */
export function createShareGroupService(deps: ShareGroupServiceDeps) {
  const { db, repos, tasks, quotas, kick } = deps;

  /** A share type the caller may use, by id or name; unknown is a 400 here (Manila's create). */
  async function shareTypeId(auth: Auth, ref: string): Promise<string> {
    try {
      return (await deps.shareTypes.visibleByRef(auth, ref)).id;
    } catch (err) {
      if (err instanceof NotFound) throw new InvalidInput(`Share type ${ref} could not be found.`);
      throw err;
    }
  }

  return {
    async create(auth: Auth, input: CreateShareGroupInput): Promise<ShareGroup> {
      requireMember(auth, 'share_group:create');
      const projectId = auth.projectId;
      if (!projectId) throw new Forbidden('Creating a share group needs a project-scoped token.');
      if (input.sourceShareGroupSnapshotId !== null && input.shareTypes !== null)
        throw new InvalidInput(
          "Cannot supply both 'source_share_group_snapshot_id' and 'share_types' attributes.",
        );
      if (input.sourceShareGroupSnapshotId !== null && input.availabilityZone !== null)
        throw new InvalidInput(
          "Cannot supply both 'source_share_group_snapshot_id' and 'availability_zone' attributes: the new group is made where its source is.",
        );
      // The source: a group snapshot of the caller's (400 when there is none, as Manila).
      const sourceId = input.sourceShareGroupSnapshotId;
      const source =
        sourceId === null
          ? null
          : await repos.shareGroupSnapshots.owned(db, auth, sourceId).catch((err: unknown) => {
              if (err instanceof NotFound)
                throw new InvalidInput(`Share group snapshot ${sourceId} could not be found.`);
              throw err;
            });
      const sourceGroup = source ? await repos.shareGroups.get(db, source.share_group_id) : undefined;
      if (source && !sourceGroup)
        throw new InvalidInput(`The share group of share group snapshot ${source.id} no longer exists.`);

      const groupTypeRef = input.shareGroupTypeId ?? sourceGroup?.share_group_type_id ?? null;
      if (groupTypeRef === null)
        throw new InvalidInput(
          'Must specify a share group type (share_group_type_id): no default share group type is defined.',
        );
      const groupType = await deps.shareGroupTypes.visible(auth, groupTypeRef).catch((err: unknown) => {
        if (err instanceof NotFound)
          throw new InvalidInput(`Share group type ${groupTypeRef} could not be found.`);
        throw err;
      });
      const allowed = new Set(groupType.share_types);
      let typeIds: string[];
      if (sourceGroup) typeIds = sourceGroup.share_types;
      else if (input.shareTypes === null || input.shareTypes.length === 0) typeIds = [...allowed];
      else {
        typeIds = [];
        for (const ref of input.shareTypes) typeIds.push(await shareTypeId(auth, ref));
        typeIds = [...new Set(typeIds)];
      }
      const outside = typeIds.filter((t) => !allowed.has(t));
      if (outside.length)
        throw new InvalidInput(
          `The specified share types must be a subset of the share types supported by the share group type ${groupType.id}; not supported: ${outside.join(', ')}.`,
        );
      // Manila's AvailabilityZoneNotFound, a 404.
      const zone = input.availabilityZone;
      if (zone !== null && !deps.availabilityZones().includes(zone))
        throw new NotFound(`Availability zone ${zone} could not be found.`);
      // Each share type's availability_zones spec must allow the zone asked for (Manila's 400).
      if (zone !== null)
        for (const typeId of typeIds) {
          const type = await repos.shareTypes.get(db, typeId);
          const zones = typeZones(type?.extra_specs[AZ_SPEC] ?? '');
          if (zones.length && !zones.includes(zone))
            throw new InvalidInput(
              `Share type ${type?.name ?? typeId} is not supported within the availability zone chosen ${zone}; its zones: ${zones.join(', ')}.`,
            );
        }

      const id = randomUUID();
      const group = await inTransaction(db, async (trx) => {
        const members = [];
        if (source) {
          // Locked so the snapshot cannot start deleting while the group is made from it.
          const locked = await repos.shareGroupSnapshots.getForUpdate(trx, source.id);
          if (locked?.status !== ShareGroupStatus.AVAILABLE)
            throw new InvalidInput(
              `Share group snapshot ${source.id} is '${locked?.status ?? 'deleted'}'; a share group can be created only from an available one.`,
            );
          members.push(...(await repos.snapshots.members(trx, source.id)));
        }
        await repos.shareGroups.insert(
          trx,
          {
            id,
            project_id: projectId,
            user_id: auth.userId,
            name: input.name,
            description: input.description,
            status: ShareGroupStatus.CREATING,
            share_group_type_id: groupType.id,
            host: null,
            availability_zone: sourceGroup?.availability_zone ?? input.availabilityZone,
            source_share_group_snapshot_id: source?.id ?? null,
            consistent_snapshot_support: null,
          },
          typeIds,
        );
        const task = await tasks.createShareGroup(trx, id);
        await quotas.reserve(
          trx,
          { projectId, shareTypeId: '', userId: auth.userId, taskId: task.id },
          { share_groups: 1 },
        );
        // A share from each member, made from the member's snapshot as any share from a snapshot.
        for (const member of members) {
          const origin = await repos.shares.get(trx, member.share_id);
          if (!origin)
            throw new InvalidInput(`Share ${member.share_id} of snapshot member ${member.id} is gone.`);
          const shareId = randomUUID();
          await repos.shares.insert(trx, {
            id: shareId,
            project_id: projectId,
            user_id: auth.userId,
            name: null,
            description: null,
            size: member.size,
            share_proto: member.share_proto,
            status: ShareStatus.CREATING,
            share_type_id: origin.share_type_id,
            availability_zone: sourceGroup?.availability_zone ?? null,
            is_public: false,
            host: null,
            snapshot_id: member.id,
            share_group_id: id,
            source_share_group_snapshot_member_id: member.id,
          });
          const shareTask = await tasks.createShare(trx, shareId);
          await quotas.reserve(
            trx,
            { projectId, shareTypeId: origin.share_type_id, userId: auth.userId, taskId: shareTask.id },
            { shares: 1, gigabytes: member.size },
          );
        }
        return repos.shareGroups.owned(trx, auth, id);
      });
      kick();
      return group;
    },

    async get(auth: Auth, id: string): Promise<ShareGroup> {
      requireReader(auth, 'share_group:get');
      return repos.shareGroups.owned(db, auth, id);
    },

    async list(auth: Auth, q: ListQuery<ShareGroupQuery>): Promise<ShareGroup[]> {
      requireReader(auth, 'share_group:get_all');
      const marker = await markerOf(q, (id) => repos.shareGroups.owned(db, auth, id), 'share group');
      return repos.shareGroups.list(db, { ...q, projectId: listedProject(auth, q), marker });
    },

    async update(
      auth: Auth,
      id: string,
      patch: { name?: string | null | undefined; description?: string | null | undefined },
    ): Promise<ShareGroup> {
      requireMember(auth, 'share_group:update');
      return inTransaction(db, async (trx) => {
        await repos.shareGroups.lockOwned(trx, auth, id);
        await repos.shareGroups.update(trx, id, {
          ...(patch.name !== undefined ? { name: patch.name } : {}),
          ...(patch.description !== undefined ? { description: patch.description } : {}),
        });
        return repos.shareGroups.owned(trx, auth, id);
      });
    },

    /** DELETE: from available or error, with no shares and no group snapshots left (409 otherwise). */
    async delete(auth: Auth, id: string): Promise<void> {
      requireMember(auth, 'share_group:delete');
      await inTransaction(db, async (trx) => {
        const group = await repos.shareGroups.lockOwned(trx, auth, id);
        if (!SHARE_GROUP_DELETABLE.includes(group.status))
          throw new Conflict(
            `Share group ${id} cannot be deleted while its status is '${group.status}'; it must be one of ${SHARE_GROUP_DELETABLE.join(', ')}.`,
          );
        await refuseInUse(trx, id);
        await repos.shareGroups.update(trx, id, { status: ShareGroupStatus.DELETING });
        await tasks.deleteShareGroup(trx, id, false);
      });
      kick();
    },

    /** Admin: delete whatever the status (still not while shares or snapshots are in it). */
    async forceDelete(auth: Auth, id: string): Promise<void> {
      requireAdmin(auth, 'share_group:force_delete');
      await inTransaction(db, async (trx) => {
        await repos.shareGroups.lockOwned(trx, auth, id);
        await refuseInUse(trx, id);
        await repos.shareGroups.update(trx, id, { status: ShareGroupStatus.DELETING });
        await tasks.deleteShareGroup(trx, id, true);
      });
      kick();
    },

    async resetStatus(auth: Auth, id: string, status: string): Promise<void> {
      requireAdmin(auth, 'share_group:reset_status');
      checkStatus(status, ShareGroupStatus);
      await inTransaction(db, async (trx) => {
        await repos.shareGroups.lockOwned(trx, auth, id);
        await repos.shareGroups.update(trx, id, { status });
      });
    },
  };

  /** Manila's InvalidShareGroup on delete (409): the group still holds shares or snapshots. */
  async function refuseInUse(ex: Executor, id: string): Promise<void> {
    const shares = await repos.shares.inGroup(ex, id);
    if (shares.length)
      throw new Conflict(
        `Share group ${id} still holds ${shares.length} share(s) (${shares.map((s) => s.id).join(', ')}); delete them first.`,
      );
    const snapshots = await repos.shareGroupSnapshots.ofGroup(ex, id);
    if (snapshots.length)
      throw new Conflict(
        `Share group ${id} has ${snapshots.length} share group snapshot(s) (${snapshots.map((s) => s.id).join(', ')}); delete them first.`,
      );
  }
}

export type ShareGroupService = ReturnType<typeof createShareGroupService>;
