import os from 'node:os';
import type { Logger } from 'pino';
import { createAccessManager } from './access-manager.ts';
import { createAccessRuleService } from './access-rules.ts';
import { createAvailabilityZoneService, ensureAvailabilityZones } from './availability-zones.ts';
import { backendCalls } from './backend-calls.ts';
import { createBrickService } from './bricks.ts';
import { TaskKind } from './constants.ts';
import type { Db } from './db.ts';
import { createMessageService } from './messages.ts';
import { createOsServices } from './os-services.ts';
import { createPoolService } from './pools.ts';
import { createQuotaSetService } from './quota-sets.ts';
import { createQuotaService } from './quotas.ts';
import { repos as defaultRepos, type Repos } from './repos/index.ts';
import { createPageReader } from './repos/page-reader.ts';
import type { ConfiguredBackend } from './scheduler.ts';
import { createShareActionService } from './share-actions.ts';
import { createShareGroupManager } from './share-group-manager.ts';
import { createShareGroupSnapshotService } from './share-group-snapshots.ts';
import { createShareGroupTypeService } from './share-group-types.ts';
import { createShareGroupService } from './share-groups.ts';
import { createShareHealService } from './share-heal.ts';
import { createShareInstanceService } from './share-instances.ts';
import { createShareManager } from './share-manager.ts';
import { createShareTypeService } from './share-types.ts';
import { createShareService } from './shares.ts';
import { createSnapshotInstanceService } from './snapshot-instances.ts';
import { createSnapshotManager } from './snapshot-manager.ts';
import { createSnapshotService } from './snapshots.ts';
import { createTaskApi, type TaskHandlers } from './tasks.ts';
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
  /** Tasks the worker runs at once (the worker's default when not given). */
  workerConcurrency?: number;
  /** How long a soft-deleted share stays in the recycle bin (the shares service's default if not given). */
  recycleBinRetentionSeconds?: number;
  /** Repositories to use instead of the real ones (tests' fakes). */
  repos?: Partial<Repos>;
}) {
  const { db, log, backends } = opts;
  const repos: Repos = { ...defaultRepos, ...opts.repos };
  const serverHost = opts.serverHost ?? os.hostname();
  const quotas = createQuotaService({ repos });
  const shareTypes = createShareTypeService({ db, repos });
  const shareManager = createShareManager({ db, repos, quotas, backends, serverHost });
  const snapshotManager = createSnapshotManager({ db, repos, quotas, backends });
  const accessManager = createAccessManager({ db, repos, backends });
  const shareGroupManager = createShareGroupManager({ db, repos, quotas, backends, serverHost });
  // What runs each task the task API queues (Manila: rpcapi cast → manager method), one line a kind.
  const handlers = {
    [TaskKind.SHARE_CREATE]: shareManager.createShare,
    [TaskKind.SHARE_DELETE]: shareManager.deleteShare,
    [TaskKind.SHARE_EXTEND]: shareManager.extendShare,
    [TaskKind.SHARE_SHRINK]: shareManager.shrinkShare,
    [TaskKind.SHARE_REVERT]: shareManager.revertShare,
    [TaskKind.SHARE_ACCESS]: accessManager.updateAccess,
    [TaskKind.SNAPSHOT_CREATE]: snapshotManager.createSnapshot,
    [TaskKind.SNAPSHOT_DELETE]: snapshotManager.deleteSnapshot,
    [TaskKind.SHARE_GROUP_CREATE]: shareGroupManager.createShareGroup,
    [TaskKind.SHARE_GROUP_DELETE]: shareGroupManager.deleteShareGroup,
    [TaskKind.SHARE_GROUP_SNAPSHOT_CREATE]: shareGroupManager.createShareGroupSnapshot,
    [TaskKind.SHARE_GROUP_SNAPSHOT_DELETE]: shareGroupManager.deleteShareGroupSnapshot,
  } satisfies TaskHandlers;
  const worker = new Worker({
    db,
    log,
    tasks: repos.tasks,
    handlers,
    ...(opts.leaseMs ? { leaseMs: opts.leaseMs } : {}),
    ...(opts.workerConcurrency ? { concurrency: opts.workerConcurrency } : {}),
  });
  const osServices = createOsServices({
    db,
    repos,
    host: serverHost,
    backends: backends.map((b) => ({
      name: b.backend.name,
      availabilityZone: b.availabilityZone,
      components: b.backend.components?.bind(b.backend),
      setComponentDisabled: b.backend.setComponentDisabled?.bind(b.backend),
    })),
  });
  const zoneNames = () => [...new Set(backends.map((b) => b.availabilityZone))];
  const kick = () => worker.kick();
  const tasks = createTaskApi(repos.tasks);
  const shares = createShareService({
    db,
    repos,
    reader: createPageReader(db),
    tasks,
    quotas,
    shareTypes,
    availabilityZones: zoneNames,
    kick,
    ...(opts.recycleBinRetentionSeconds !== undefined
      ? { recycleBinRetentionSeconds: opts.recycleBinRetentionSeconds }
      : {}),
  });
  const snapshots = createSnapshotService({ db, repos, tasks, quotas, kick });
  const shareGroupTypes = createShareGroupTypeService({ db, repos });
  return {
    quotas,
    shareTypes,
    shareGroupTypes,
    shareGroups: createShareGroupService({
      db,
      repos,
      tasks,
      quotas,
      kick,
      shareTypes,
      shareGroupTypes,
      availabilityZones: zoneNames,
    }),
    shareGroupSnapshots: createShareGroupSnapshotService({ db, repos, tasks, quotas, kick }),
    shares,
    shareInstances: createShareInstanceService({ shares }),
    shareActions: createShareActionService({ db, repos, tasks, quotas, kick }),
    snapshots,
    snapshotInstances: createSnapshotInstanceService({ snapshots }),
    accessRules: createAccessRuleService({ db, repos, tasks, log, calls: backendCalls(backends), kick }),
    worker,
    backends,
    quotaSets: createQuotaSetService({ db, repos, quotas }),
    messages: createMessageService({ db, repos }),
    availabilityZones: createAvailabilityZoneService({ db, repos, names: zoneNames }),
    osServices,
    shareHeal: createShareHealService({ db, repos, calls: backendCalls(backends) }),
    pools: createPoolService({ backends, serverHost }),
    bricks: createBrickService({ backends }),
    /** Start-up chores: stable rows for the backends' zones, and a first heartbeat. */
    async init(): Promise<void> {
      await ensureAvailabilityZones(db, zoneNames());
      await osServices.heartbeat();
    },
  };
}

export type ShareServices = ReturnType<typeof createShareServices>;
