import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { BackendError } from '../../backends/errors.ts';
import { createMemoryBackend, type MemoryBackend, type MemoryBackendOp } from '../../backends/memory.ts';
import { SnapshotStatus, TaskKind } from '../../services/constants.ts';
import {
  MessageAction,
  type MessageActionId,
  MessageDetail,
  type MessageDetailId,
} from '../../services/messages.ts';
import type { Auth } from '../../services/policy.ts';
import { repos } from '../../services/repos/index.ts';
import { ADMIN, type Harness, member, shareInput, taskHarness, type Usage } from '../helpers/task-harness.ts';

/**
 * The snapshot manager's outcomes, as share-manager.test.ts checks the share manager's: the
 * services take a snapshot of (or delete one from) a 2 GiB share on a memory backend, the task is
 * handed to createSnapshotManager's handler with a backend failure injected, and the case checks
 * the snapshot's status, the user message, quota usage and what finish was told.
 */

const mem = createMemoryBackend({ name: 'mem' });

let h: Harness;
before(async () => {
  h = await taskHarness([mem]);
});
afterEach(async () => {
  mem.clearInjections();
  await h.abandonUnfinished();
});
after(() => h.close());

interface Started {
  auth: Auth;
  shareId: string;
  snapshotId: string;
}

const resetSnapshot = (id: string, status: string) => h.snapshots.resetStatus(ADMIN, id, status);

/** A snapshot being taken of an available 2 GiB share: snapshots 1 and 2 GiB reserved. */
async function creating(): Promise<Started> {
  const auth = member();
  const share = await h.shares.create(auth, shareInput(2));
  assert.deepEqual((await h.settle(share.id)).finished, [{ state: 'done', error: null }]);
  const snap = await h.snapshots.create(auth, {
    shareId: share.id,
    name: null,
    description: null,
    force: false,
  });
  return { auth, shareId: share.id, snapshotId: snap.id };
}

/** An available snapshot being deleted, by its owner or by the admin's force_delete. */
async function deleting(force = false): Promise<Started> {
  const s = await creating();
  assert.deepEqual((await h.settle(s.snapshotId)).finished, [{ state: 'done', error: null }]);
  if (force) await h.snapshots.forceDelete(ADMIN, s.snapshotId);
  else await h.snapshots.delete(s.auth, s.snapshotId);
  return s;
}

const failed = (message: string) => new BackendError('Failed', message);
/** The share's 2 GiB, counted throughout. */
const SHARE: Usage = { shares: [1, 0], gigabytes: [2, 0] };

const cases: {
  name: string;
  kind: TaskKind;
  start: () => Promise<Started>;
  /** Thrown by this backend call on the snapshot (once). */
  inject?: { op: MemoryBackendOp; error: Error };
  /** The backends the handler is given (default: mem). */
  on?: MemoryBackend[];
  meanwhile?: (s: Started) => Promise<void>;
  expect: {
    run: 'null' | RegExp;
    snapshot: string | 'gone';
    message: { action: MessageActionId; detail: MessageDetailId; text: RegExp } | null;
    quotaBefore: Usage;
    quota: Usage;
    finished: { state: 'done' | 'failed'; error: RegExp | null };
    calls: MemoryBackendOp[];
  };
}[] = [
  // ---- snapshot.create -------------------------------------------------------------------------
  {
    name: 'success: available, the reservation becomes usage',
    kind: TaskKind.SNAPSHOT_CREATE,
    start: creating,
    expect: {
      run: 'null',
      snapshot: SnapshotStatus.AVAILABLE,
      message: null,
      quotaBefore: { ...SHARE, snapshots: [0, 1], snapshot_gigabytes: [0, 2] },
      quota: { ...SHARE, snapshots: [1, 0], snapshot_gigabytes: [2, 0] },
      finished: { state: 'done', error: null },
      calls: ['createSnapshot'],
    },
  },
  {
    name: 'the backend fails: error, CREATE/DRIVER_FAILED, quota still counted',
    kind: TaskKind.SNAPSHOT_CREATE,
    start: creating,
    inject: { op: 'createSnapshot', error: failed('no space for the copy') },
    expect: {
      run: /^no space for the copy$/,
      snapshot: SnapshotStatus.ERROR,
      message: {
        action: MessageAction.CREATE,
        detail: MessageDetail.DRIVER_FAILED,
        text: /^The storage backend failed: no space for the copy$/,
      },
      quotaBefore: { ...SHARE, snapshots: [0, 1], snapshot_gigabytes: [0, 2] },
      quota: { ...SHARE, snapshots: [1, 0], snapshot_gigabytes: [2, 0] },
      finished: { state: 'failed', error: /^no space for the copy$/ },
      calls: ['createSnapshot'],
    },
  },
  {
    name: "the share's backend is not configured on this server: error, with the reason",
    kind: TaskKind.SNAPSHOT_CREATE,
    start: creating,
    on: [],
    expect: {
      run: /^Backend mem of host srv@mem#memory is not configured on this server\.$/,
      snapshot: SnapshotStatus.ERROR,
      message: {
        action: MessageAction.CREATE,
        detail: MessageDetail.DRIVER_FAILED,
        text: /^The storage backend failed: Backend mem of host srv@mem#memory is not configured/,
      },
      quotaBefore: { ...SHARE, snapshots: [0, 1], snapshot_gigabytes: [0, 2] },
      quota: { ...SHARE, snapshots: [1, 0], snapshot_gigabytes: [2, 0] },
      finished: { state: 'failed', error: /is not configured on this server\.$/ },
      calls: [],
    },
  },
  {
    name: 'no longer creating before the run (an admin reset it): nothing is called or changed',
    kind: TaskKind.SNAPSHOT_CREATE,
    start: async () => {
      const s = await creating();
      await resetSnapshot(s.snapshotId, SnapshotStatus.ERROR);
      return s;
    },
    expect: {
      run: 'null',
      snapshot: SnapshotStatus.ERROR,
      message: null,
      quotaBefore: { ...SHARE, snapshots: [0, 1], snapshot_gigabytes: [0, 2] },
      quota: { ...SHARE, snapshots: [1, 0], snapshot_gigabytes: [2, 0] },
      finished: { state: 'done', error: null },
      calls: [],
    },
  },
  {
    name: 'the status changed while the backend failed (reset to available): left as it is, no message',
    kind: TaskKind.SNAPSHOT_CREATE,
    start: creating,
    inject: { op: 'createSnapshot', error: failed('timeout') },
    meanwhile: (s) => resetSnapshot(s.snapshotId, SnapshotStatus.AVAILABLE),
    expect: {
      run: /^timeout$/,
      snapshot: SnapshotStatus.AVAILABLE,
      message: null,
      quotaBefore: { ...SHARE, snapshots: [0, 1], snapshot_gigabytes: [0, 2] },
      quota: { ...SHARE, snapshots: [1, 0], snapshot_gigabytes: [2, 0] },
      finished: { state: 'failed', error: /^timeout$/ },
      calls: ['createSnapshot'],
    },
  },

  // ---- snapshot.delete -------------------------------------------------------------------------
  {
    name: 'success: the record goes and its quota is released',
    kind: TaskKind.SNAPSHOT_DELETE,
    start: () => deleting(),
    expect: {
      run: 'null',
      snapshot: 'gone',
      message: null,
      quotaBefore: { ...SHARE, snapshots: [1, 0], snapshot_gigabytes: [2, 0] },
      quota: { ...SHARE, snapshots: [0, 0], snapshot_gigabytes: [0, 0] },
      finished: { state: 'done', error: null },
      calls: ['deleteSnapshot'],
    },
  },
  {
    name: 'the backend fails: error_deleting, DELETE/DRIVER_FAILED, quota unchanged',
    kind: TaskKind.SNAPSHOT_DELETE,
    start: () => deleting(),
    inject: { op: 'deleteSnapshot', error: failed('snapshot busy') },
    expect: {
      run: /^snapshot busy$/,
      snapshot: SnapshotStatus.ERROR_DELETING,
      message: {
        action: MessageAction.DELETE,
        detail: MessageDetail.DRIVER_FAILED,
        text: /^The storage backend failed: snapshot busy$/,
      },
      quotaBefore: { ...SHARE, snapshots: [1, 0], snapshot_gigabytes: [2, 0] },
      quota: { ...SHARE, snapshots: [1, 0], snapshot_gigabytes: [2, 0] },
      finished: { state: 'failed', error: /^snapshot busy$/ },
      calls: ['deleteSnapshot'],
    },
  },
  {
    name: 'force: the record goes and the quota is released although the backend failed',
    kind: TaskKind.SNAPSHOT_DELETE,
    start: () => deleting(true),
    inject: { op: 'deleteSnapshot', error: failed('snapshot busy') },
    expect: {
      run: /^snapshot busy$/,
      snapshot: 'gone',
      message: null,
      quotaBefore: { ...SHARE, snapshots: [1, 0], snapshot_gigabytes: [2, 0] },
      quota: { ...SHARE, snapshots: [0, 0], snapshot_gigabytes: [0, 0] },
      finished: { state: 'done', error: null },
      calls: ['deleteSnapshot'],
    },
  },
  {
    name: 'the status changed while the backend failed (reset to error): left as it is, no message',
    kind: TaskKind.SNAPSHOT_DELETE,
    start: () => deleting(),
    inject: { op: 'deleteSnapshot', error: failed('snapshot busy') },
    meanwhile: (s) => resetSnapshot(s.snapshotId, SnapshotStatus.ERROR),
    expect: {
      run: /^snapshot busy$/,
      snapshot: SnapshotStatus.ERROR,
      message: null,
      quotaBefore: { ...SHARE, snapshots: [1, 0], snapshot_gigabytes: [2, 0] },
      quota: { ...SHARE, snapshots: [1, 0], snapshot_gigabytes: [2, 0] },
      finished: { state: 'failed', error: /^snapshot busy$/ },
      calls: ['deleteSnapshot'],
    },
  },
];

for (const c of cases)
  test(`snapshot-manager: ${c.kind}: ${c.name}`, async () => {
    const s = await c.start();
    const projectId = s.auth.projectId as string;
    const resources = Object.keys(c.expect.quota) as (keyof Usage)[];
    const same = (u: Usage) => ({ project: u, type: u });
    assert.deepEqual(await h.usage(projectId, resources), same(c.expect.quotaBefore), 'quota before');
    if (c.inject) mem.inject({ ...c.inject, id: s.snapshotId, times: 1 });

    const meanwhile = c.meanwhile;
    const { task, ran, finished, calls } = await h.settle(s.snapshotId, {
      ...(c.on ? { on: c.on } : {}),
      ...(meanwhile ? { meanwhile: () => meanwhile(s) } : {}),
    });

    assert.equal(task.kind, c.kind);
    if (c.expect.run instanceof RegExp) {
      assert.ok('error' in ran, 'run threw');
      assert.match((ran.error as Error).message, c.expect.run);
    } else assert.deepEqual(ran, { result: null });
    assert.deepEqual(
      calls.map((x) => x.op),
      c.expect.calls,
    );
    assert.ok(
      calls.every((x) => x.id === s.snapshotId),
      'calls are for this snapshot',
    );

    assert.equal(finished.length, 1, 'finish is called once');
    const [fin] = finished;
    assert.equal(fin?.state, c.expect.finished.state);
    const row = await repos.tasks.get(h.db, task.id);
    if (c.expect.finished.error === null) {
      assert.equal(fin?.error, null);
      assert.equal(row, undefined, 'a task done is deleted');
    } else {
      assert.match(fin?.error ?? '', c.expect.finished.error);
      assert.deepEqual([row?.state, row?.error], ['failed', fin?.error]);
    }

    const snap = await repos.snapshots.get(h.db, s.snapshotId);
    assert.equal(snap === undefined ? 'gone' : snap.status, c.expect.snapshot);
    assert.equal((await repos.shares.get(h.db, s.shareId))?.status, 'available', 'the share is untouched');

    const messages = await h.messages(projectId, s.snapshotId);
    const m = c.expect.message;
    if (m === null) assert.deepEqual(messages, []);
    else {
      assert.equal(messages.length, 1, 'one message');
      const [got] = messages;
      assert.deepEqual(
        [got?.resource_type, got?.action_id, got?.detail_id],
        ['SHARE_SNAPSHOT', m.action, m.detail],
      );
      assert.match(got?.user_message ?? '', m.text);
    }

    assert.deepEqual(await h.usage(projectId, resources), same(c.expect.quota), 'quota after');
    assert.deepEqual(await h.unfinished(s.snapshotId), [], 'no task left for the snapshot');
  });
