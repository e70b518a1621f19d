import { randomUUID } from 'node:crypto';
import { BackendError } from '../backends/errors.ts';
import type { ShareProtocol, ShareRef } from '../backends/types.ts';
import type { Db } from './db.ts';
import { MessageAction, MessageDetail, recordMessage } from './messages.ts';
import type { QuotaService } from './quotas.ts';
import { shareTypesRepo } from './repos/share-types.ts';
import { type Share, sharesRepo } from './repos/shares.ts';
import type { TaskRow } from './repos/tasks.ts';
import { type ConfiguredBackend, schedule } from './scheduler.ts';
import { ShareStatus, TaskKind } from './shares.ts';
import type { TaskHandler } from './worker.ts';

/** Raised when no backend can take a share; the share goes to error with Manila's message. */
class NoValidHost extends Error {}

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

  function backendFor(host: string) {
    const name = /@([^#]+)#/.exec(host)?.[1];
    const found = backends.find((b) => b.backend.name === name);
    if (!found)
      throw new BackendError(
        'Unavailable',
        `Backend ${name} of host ${host} is not configured on this server.`,
      );
    return found.backend;
  }

  const ref = (s: Share): ShareRef => ({
    id: s.id,
    size: s.size,
    proto: s.share_proto as ShareProtocol,
    pool: (s.host ?? '').split('#')[1] ?? '',
  });

  const failureText = (err: unknown) =>
    err instanceof NoValidHost
      ? err.message
      : err instanceof BackendError
        ? `The storage backend failed: ${err.message}`
        : 'An unexpected error stopped the operation; an operator can find the details in the server log.';

  const create: TaskHandler = {
    async run(task: TaskRow) {
      let share = await sharesRepo.get(db, task.resource_id);
      if (!share || share.status !== ShareStatus.CREATING) return null;
      if (!share.host) {
        // Placement is recorded before the backend is called, so a re-run uses the same backend.
        const type = await shareTypesRepo.get(db, share.share_type_id);
        const { placement, reasons } = await schedule(
          backends,
          {
            size: share.size,
            proto: share.share_proto as ShareProtocol,
            specs: type?.extra_specs ?? {},
            availabilityZone: share.availability_zone,
          },
          deps.serverHost,
        );
        if (!placement)
          throw new NoValidHost(
            `No valid host was found. ${reasons.length ? `Backends considered: ${reasons.join('; ')}.` : 'No storage backend is configured.'}`,
          );
        await sharesRepo.update(db, share.id, {
          host: placement.host,
          availability_zone: placement.availabilityZone,
        });
        share = (await sharesRepo.get(db, share.id)) as Share;
      }
      return backendFor(share.host as string).createShare(ref(share));
    },
    async succeed(task, result, finish) {
      await db.transaction(async (trx) => {
        const share = await sharesRepo.getForUpdate(trx, task.resource_id);
        if (share?.status === ShareStatus.CREATING && result) {
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
        if (share?.status === ShareStatus.CREATING) {
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
        await finish(trx, 'failed', String((err as Error)?.message ?? err));
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
        await finish(trx, 'failed', String((err as Error)?.message ?? err));
      });
    },
  };

  return { [TaskKind.SHARE_CREATE]: create, [TaskKind.SHARE_DELETE]: remove };
}
