import type { AccessRuleState, ExportLocation } from '../backends/types.ts';
import { TaskKind } from './constants.ts';
import type { Db, Executor, Trx } from './db.ts';
import type { QuotaService } from './quotas.ts';
import type { Repos } from './repos/index.ts';
import type { TaskRow } from './repos/tasks.ts';

/**
 * The asynchronous half of a share change, typed end to end. The API side queues a task through
 * the task API (createTaskApi, Manila's share/rpcapi.py) inside the transaction that flips the status; the worker
 * claims it and calls the handler registered for its kind in share-services.ts (Manila's manager).
 * Payloads are written and read under the same type; stored names stay snake_case, as in the
 * tasks table since the first release.
 */
export interface TaskPayloads {
  /**
   * any_zone_of_type: place the share whatever zones its type's `availability_zones` spec names —
   * a request below microversion 2.48, when Manila's API did not pass the type's zones on.
   */
  [TaskKind.SHARE_CREATE]: { any_zone_of_type?: true };
  /** force: remove the share whatever the backend says (admin's force_delete). */
  [TaskKind.SHARE_DELETE]: { force?: true };
  [TaskKind.SHARE_EXTEND]: { new_size: number };
  [TaskKind.SHARE_SHRINK]: { new_size: number };
  [TaskKind.SHARE_REVERT]: { snapshot_id: string };
  [TaskKind.SHARE_ACCESS]: Record<string, never>;
  [TaskKind.SNAPSHOT_CREATE]: Record<string, never>;
  [TaskKind.SNAPSHOT_DELETE]: { force?: true };
  [TaskKind.SHARE_GROUP_CREATE]: Record<string, never>;
  [TaskKind.SHARE_GROUP_DELETE]: { force?: true };
  [TaskKind.SHARE_GROUP_SNAPSHOT_CREATE]: Record<string, never>;
  [TaskKind.SHARE_GROUP_SNAPSHOT_DELETE]: { force?: true };
}

/** What a share.access run hands to its outcome: what the backend was sent and what it said. */
export interface AccessSyncResult {
  /** Rule ids sent to the backend, with the state it reported for each. */
  states: Record<string, AccessRuleState>;
  sent: string[];
  /** Rule ids left out of the set (being denied): removed when the backend is done. */
  denied: string[];
}

/** What `run` hands to `succeed`; null when the run found nothing to do (the resource moved on). */
export interface TaskResults {
  [TaskKind.SHARE_CREATE]: ExportLocation[] | null;
  [TaskKind.SHARE_DELETE]: null;
  [TaskKind.SHARE_EXTEND]: null;
  [TaskKind.SHARE_SHRINK]: null;
  [TaskKind.SHARE_REVERT]: null;
  [TaskKind.SHARE_ACCESS]: AccessSyncResult | null;
  [TaskKind.SNAPSHOT_CREATE]: null;
  [TaskKind.SNAPSHOT_DELETE]: null;
  /** Where the group was placed (null: it had moved on). */
  [TaskKind.SHARE_GROUP_CREATE]: { host: string; availabilityZone: string } | null;
  [TaskKind.SHARE_GROUP_DELETE]: null;
  [TaskKind.SHARE_GROUP_SNAPSHOT_CREATE]: null;
  [TaskKind.SHARE_GROUP_SNAPSHOT_DELETE]: null;
}

/** A claimed task of kind K. */
export type Task<K extends TaskKind = TaskKind> = Omit<TaskRow, 'kind' | 'payload'> & {
  kind: K;
  payload: TaskPayloads[K];
};

/** Given to succeed/fail: marks the task finished inside their transaction. */
export type FinishTx = (trx: Trx, state: 'done' | 'failed', error: string | null) => Promise<boolean>;

/**
 * Runs one kind of task. `run` does the backend work (outside any transaction); `succeed` and
 * `fail` record the outcome in one transaction with the task's completion. A handler must be safe
 * to run again after a crash at any point: backend calls are idempotent, and the final transaction
 * checks the resource is still in the state the task expects.
 */
export interface TaskHandler<K extends TaskKind> {
  run(task: Task<K>): Promise<TaskResults[K]>;
  succeed(task: Task<K>, result: TaskResults[K], finish: FinishTx): Promise<void>;
  fail(task: Task<K>, error: unknown, finish: FinishTx): Promise<void>;
}

/** One handler per kind: the table the worker dispatches on (checked with `satisfies`). */
export type TaskHandlers = { [K in TaskKind]: TaskHandler<K> };

/** The handler for a kind, typed for that kind. */
export const handlerFor = <K extends TaskKind>(
  handlers: Partial<TaskHandlers>,
  kind: K,
): TaskHandler<K> | undefined => handlers[kind];

/**
 * Queues the task for a change, inside the caller's transaction (so it exists exactly when the
 * status flip does). Each call names its kind; the handler table maps the kind to the manager.
 */
export function createTaskApi(tasks: Pick<Repos['tasks'], 'insert'>) {
  const enqueue = <K extends TaskKind>(
    ex: Executor,
    kind: K,
    resourceId: string,
    payload: TaskPayloads[K],
  ): Promise<TaskRow> => tasks.insert(ex, { kind, resource_id: resourceId, payload });
  return {
    createShare: (ex: Executor, shareId: string, opts: { typeZones: boolean } = { typeZones: true }) =>
      enqueue(ex, TaskKind.SHARE_CREATE, shareId, opts.typeZones ? {} : { any_zone_of_type: true }),
    deleteShare: (ex: Executor, shareId: string, force: boolean) =>
      enqueue(ex, TaskKind.SHARE_DELETE, shareId, force ? { force: true } : {}),
    extendShare: (ex: Executor, shareId: string, newSize: number) =>
      enqueue(ex, TaskKind.SHARE_EXTEND, shareId, { new_size: newSize }),
    shrinkShare: (ex: Executor, shareId: string, newSize: number) =>
      enqueue(ex, TaskKind.SHARE_SHRINK, shareId, { new_size: newSize }),
    revertShare: (ex: Executor, shareId: string, snapshotId: string) =>
      enqueue(ex, TaskKind.SHARE_REVERT, shareId, { snapshot_id: snapshotId }),
    updateAccess: (ex: Executor, shareId: string) => enqueue(ex, TaskKind.SHARE_ACCESS, shareId, {}),
    createSnapshot: (ex: Executor, snapshotId: string) =>
      enqueue(ex, TaskKind.SNAPSHOT_CREATE, snapshotId, {}),
    deleteSnapshot: (ex: Executor, snapshotId: string, force: boolean) =>
      enqueue(ex, TaskKind.SNAPSHOT_DELETE, snapshotId, force ? { force: true } : {}),
    createShareGroup: (ex: Executor, groupId: string) =>
      enqueue(ex, TaskKind.SHARE_GROUP_CREATE, groupId, {}),
    deleteShareGroup: (ex: Executor, groupId: string, force: boolean) =>
      enqueue(ex, TaskKind.SHARE_GROUP_DELETE, groupId, force ? { force: true } : {}),
    createShareGroupSnapshot: (ex: Executor, groupSnapshotId: string) =>
      enqueue(ex, TaskKind.SHARE_GROUP_SNAPSHOT_CREATE, groupSnapshotId, {}),
    deleteShareGroupSnapshot: (ex: Executor, groupSnapshotId: string, force: boolean) =>
      enqueue(ex, TaskKind.SHARE_GROUP_SNAPSHOT_DELETE, groupSnapshotId, force ? { force: true } : {}),
  };
}

export type TaskApi = ReturnType<typeof createTaskApi>;

/** What a service that starts asynchronous changes is given besides its repositories. */
export interface ChangeDeps {
  db: Db;
  tasks: TaskApi;
  quotas: QuotaService;
  /** Tells the local worker a task is waiting. */
  kick: () => void;
}
