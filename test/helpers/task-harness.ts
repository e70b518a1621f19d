import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { MemoryBackend, MemoryBackendOp } from '../../backends/memory.ts';
import { TaskKind } from '../../services/constants.ts';
import type { Db } from '../../services/db.ts';
import type { Auth } from '../../services/policy.ts';
import { createQuotaService, type QuotaResource } from '../../services/quotas.ts';
import { repos } from '../../services/repos/index.ts';
import type { MessageRow } from '../../services/repos/messages.ts';
import { createPageReader } from '../../services/repos/page-reader.ts';
import type { TaskRow } from '../../services/repos/tasks.ts';
import type { ConfiguredBackend } from '../../services/scheduler.ts';
import { createShareActionService } from '../../services/share-actions.ts';
import { createShareManager } from '../../services/share-manager.ts';
import { createShareTypeService, ensureDefaultShareType } from '../../services/share-types.ts';
import { type CreateShareInput, createShareService } from '../../services/shares.ts';
import { createSnapshotManager } from '../../services/snapshot-manager.ts';
import { createSnapshotService } from '../../services/snapshots.ts';
import {
  createTaskApi,
  type FinishTx,
  handlerFor,
  type Task,
  type TaskHandlers,
  type TaskResults,
} from '../../services/tasks.ts';
import { createTestDb, type TestDb } from './db.ts';

/**
 * The worker side of a share change, one step at a time and without HTTP: the API-side services
 * (real repositories, real database) put a resource in the state a task starts from — status
 * flipped, task queued, quota reserved — then `settle` claims the task as the worker does and
 * hands it to the manager's handler (run, then succeed or fail), over memory backends whose
 * failures a test injects. What `finish` was given, what the backends were asked and what the
 * database holds afterwards are for the test to check.
 */

/** The server part of the host strings the scheduler gives here (`srv@<backend>#<pool>`). */
export const SERVER = 'srv';
const WORKER = 'test-worker';

/** [in_use, reserved] of quota resources. */
export type Usage = Partial<Record<QuotaResource, [number, number]>>;

export interface Settled {
  task: TaskRow;
  /** What run returned, or what it threw. */
  ran: { result: TaskResults[TaskKind] } | { error: unknown };
  /** Every call of finish, in order. */
  finished: { state: 'done' | 'failed'; error: string | null }[];
  /** The backends' calls while the task was handled, scheduler stats() polls left out. */
  calls: { op: MemoryBackendOp; id?: string | undefined }[];
}

export interface Harness {
  db: Db;
  /** The default share type every share here has. */
  typeId: string;
  shares: ReturnType<typeof createShareService>;
  actions: ReturnType<typeof createShareActionService>;
  snapshots: ReturnType<typeof createSnapshotService>;
  /** Claims the next task (it must be `resourceId`'s) and handles it as the worker would. */
  settle(
    resourceId: string,
    opts?: { on?: MemoryBackend[]; meanwhile?: () => Promise<void> },
  ): Promise<Settled>;
  /** Quota usage of a project's resources, project-wide and for the share type. */
  usage(projectId: string, resources: QuotaResource[]): Promise<{ project: Usage; type: Usage }>;
  /** Tasks of the resource not yet finished (pending or running). */
  unfinished(resourceId: string): Promise<TaskRow[]>;
  /**
   * Fails every unfinished task, so that one a failed test left behind is not claimed by the
   * next test's settle (call it after each test).
   */
  abandonUnfinished(): Promise<void>;
  /** The user messages recorded about a resource. */
  messages(projectId: string, resourceId: string): Promise<MessageRow[]>;
  close(): Promise<void>;
}

/** A member of a project of its own, so each test starts from zero quota usage. */
export function member(): Auth {
  return {
    userId: randomUUID(),
    userName: 'alice',
    userDomainId: 'default',
    projectId: randomUUID().replaceAll('-', ''),
    projectName: 'demo',
    roles: ['member', 'reader'],
    isAdmin: false,
    auditId: randomUUID(),
    applicationCredential: null,
    isStaticAdmin: false,
  };
}

export const ADMIN: Auth = {
  ...member(),
  userName: 'admin',
  projectId: 'admin-project',
  roles: ['admin', 'member', 'reader'],
  isAdmin: true,
};

export const shareInput = (size: number): CreateShareInput => ({
  size,
  shareProto: 'NFS',
  name: null,
  description: null,
  metadata: {},
  shareTypeRef: null,
  availabilityZone: null,
  isPublic: false,
  snapshotId: null,
});

/** `defaultOn`: the backends settle's handlers use unless told otherwise. */
export async function taskHarness(defaultOn: MemoryBackend[]): Promise<Harness> {
  const tdb: TestDb = await createTestDb();
  const db = tdb.db;
  const type = await ensureDefaultShareType(db);
  const quotas = createQuotaService({ repos });
  const change = { db, tasks: createTaskApi(repos.tasks), quotas, kick: () => {} };
  const configured = (on: MemoryBackend[]): ConfiguredBackend[] =>
    on.map((backend) => ({ backend, availabilityZone: 'nova' }));

  /** The handler table share-services.ts builds, over these backends. */
  function handlers(on: MemoryBackend[]): Partial<TaskHandlers> {
    const backends = configured(on);
    const shares = createShareManager({ db, repos, quotas, backends, serverHost: SERVER });
    const snapshots = createSnapshotManager({ db, repos, quotas, backends });
    return {
      [TaskKind.SHARE_CREATE]: shares.createShare,
      [TaskKind.SHARE_DELETE]: shares.deleteShare,
      [TaskKind.SHARE_EXTEND]: shares.extendShare,
      [TaskKind.SHARE_SHRINK]: shares.shrinkShare,
      [TaskKind.SHARE_REVERT]: shares.revertShare,
      [TaskKind.SNAPSHOT_CREATE]: snapshots.createSnapshot,
      [TaskKind.SNAPSHOT_DELETE]: snapshots.deleteSnapshot,
    };
  }

  return {
    db,
    typeId: type.id,
    shares: createShareService({
      ...change,
      repos,
      reader: createPageReader(db),
      shareTypes: createShareTypeService({ db, repos }),
      availabilityZones: () => ['nova'],
    }),
    actions: createShareActionService({ ...change, repos }),
    snapshots: createSnapshotService({ ...change, repos }),

    async settle(resourceId, { on = defaultOn, meanwhile } = {}) {
      const row = await repos.tasks.claim(db, WORKER, 60_000);
      assert.equal(row?.resource_id, resourceId, `the next task is ${resourceId}'s`);
      // As the worker: the row's payload was written by the task API under its kind's type.
      const task = row as Task;
      const handler = handlerFor(handlers(on), task.kind);
      assert.ok(handler, `a handler for ${task.kind}`);
      const marks = on.map((b) => b.calls.length);
      const finished: Settled['finished'] = [];
      const finish: FinishTx = async (trx, state, error) => {
        finished.push({ state, error });
        return repos.tasks.finish(trx, task.id, WORKER, state, error);
      };
      let ran: Settled['ran'];
      try {
        ran = { result: await handler.run(task) };
      } catch (error) {
        ran = { error };
      }
      await meanwhile?.();
      if ('error' in ran) await handler.fail(task, ran.error, finish);
      else await handler.succeed(task, ran.result, finish);
      const calls = on
        .flatMap((b, i) => b.calls.slice(marks[i]))
        .filter((c) => c.op !== 'stats')
        .map((c) => ({ op: c.op, id: c.id }));
      return { task: row as TaskRow, ran, finished, calls };
    },

    async usage(projectId, resources) {
      const read = async (shareTypeId: string) => {
        const rows = await repos.quotas.usages(db, projectId, shareTypeId);
        const out: Usage = {};
        for (const r of resources) {
          const u = rows.find((x) => x.resource === r);
          out[r] = [u?.in_use ?? 0, u?.reserved ?? 0];
        }
        return out;
      };
      return { project: await read(''), type: await read(type.id) };
    },

    unfinished: (resourceId) =>
      db('tasks').where({ resource_id: resourceId }).whereIn('state', ['pending', 'running']),

    async abandonUnfinished() {
      await db('tasks')
        .whereIn('state', ['pending', 'running'])
        .update({ state: 'failed', error: 'abandoned by the test harness' });
    },

    messages: (projectId, resourceId) => repos.messages.list(db, projectId, { resource_id: resourceId }, {}),

    close: () => tdb.close(),
  };
}
