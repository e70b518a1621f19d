import os from 'node:os';
import type { Logger } from 'pino';
import { createAccessManager } from './access-manager.ts';
import { createAccessRuleService } from './access-rules.ts';
import { createAvailabilityZoneService, ensureAvailabilityZones } from './availability-zones.ts';
import { backendCalls } from './backend-calls.ts';
import { TaskKind } from './constants.ts';
import type { Db } from './db.ts';
import { createMessageService } from './messages.ts';
import { createQuotaSetService } from './quota-sets.ts';
import { createQuotaService } from './quotas.ts';
import type { ConfiguredBackend } from './scheduler.ts';
import { createServiceRegistry } from './services.ts';
import { createShareActionService } from './share-actions.ts';
import { createShareManager } from './share-manager.ts';
import { createShareTypeService } from './share-types.ts';
import { createShareService } from './shares.ts';
import { createSnapshotManager } from './snapshot-manager.ts';
import { createSnapshotService } from './snapshots.ts';
import type { TaskHandlers } from './tasks.ts';
import { Worker } from './worker.ts';

/**
 * The share API's services and the worker that carries out their tasks, wired to one database and
 * a set of configured backends. The server starts the worker; tests drive it with worker.drain().
 */
export function createShareServices(opts: {
  db: Db;
  log: Logger;
  backends: ConfiguredBackend[];
  serverHost?: string;
  leaseMs?: number;
}) {
  const { db, log, backends } = opts;
  const quotas = createQuotaService();
  const shareTypes = createShareTypeService({ db });
  const shareManager = createShareManager({
    db,
    quotas,
    backends,
    serverHost: opts.serverHost ?? os.hostname(),
  });
  const snapshotManager = createSnapshotManager({ db, quotas, backends });
  const accessManager = createAccessManager({ db, backends });
  // What runs each task taskApi queues (Manila: rpcapi cast → manager method), one line a kind.
  const handlers = {
    [TaskKind.SHARE_CREATE]: shareManager.createShare,
    [TaskKind.SHARE_DELETE]: shareManager.deleteShare,
    [TaskKind.SHARE_EXTEND]: shareManager.extendShare,
    [TaskKind.SHARE_SHRINK]: shareManager.shrinkShare,
    [TaskKind.SHARE_REVERT]: shareManager.revertShare,
    [TaskKind.SHARE_ACCESS]: accessManager.updateAccess,
    [TaskKind.SNAPSHOT_CREATE]: snapshotManager.createSnapshot,
    [TaskKind.SNAPSHOT_DELETE]: snapshotManager.deleteSnapshot,
  } satisfies TaskHandlers;
  const worker = new Worker({ db, log, handlers, ...(opts.leaseMs ? { leaseMs: opts.leaseMs } : {}) });
  const registry = createServiceRegistry({
    db,
    host: opts.serverHost ?? os.hostname(),
    backends: backends.map((b) => ({ name: b.backend.name, availabilityZone: b.availabilityZone })),
  });
  const zoneNames = () => [...new Set(backends.map((b) => b.availabilityZone))];
  const shares = createShareService({
    db,
    quotas,
    shareTypes,
    availabilityZones: zoneNames,
    kick: () => worker.kick(),
  });
  const kick = () => worker.kick();
  return {
    quotas,
    shareTypes,
    shares,
    shareActions: createShareActionService({ db, quotas, kick }),
    snapshots: createSnapshotService({ db, quotas, kick }),
    accessRules: createAccessRuleService({ db, log, calls: backendCalls(backends), kick }),
    worker,
    backends,
    quotaSets: createQuotaSetService({ db, quotas }),
    messages: createMessageService({ db }),
    availabilityZones: createAvailabilityZoneService({ db, names: zoneNames }),
    registry,
    /** Start-up chores: stable rows for the backends' zones, and a first heartbeat. */
    async init(): Promise<void> {
      await ensureAvailabilityZones(db, zoneNames());
      await registry.heartbeat();
    },
  };
}

export type ShareServices = ReturnType<typeof createShareServices>;
