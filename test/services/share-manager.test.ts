import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { BackendError } from '../../backends/errors.ts';
import { createMemoryBackend, type MemoryBackend, type MemoryBackendOp } from '../../backends/memory.ts';
import { ShareStatus, SnapshotStatus, TaskKind } from '../../services/constants.ts';
import {
  MessageAction,
  type MessageActionId,
  MessageDetail,
  type MessageDetailId,
} from '../../services/messages.ts';
import type { Auth } from '../../services/policy.ts';
import { repos } from '../../services/repos/index.ts';
import {
  ADMIN,
  type Harness,
  member,
  SERVER,
  shareInput,
  taskHarness,
  type Usage,
} from '../helpers/task-harness.ts';

/**
 * The share manager's outcomes, failures first, without HTTP: the services put a share in the
 * state its task starts from (status flipped, task queued, quota reserved), the task is claimed
 * and handed to createShareManager's handler as the worker would, over a memory backend with a
 * failure injected. Each case checks what is left: the share's status and size, its snapshot's
 * status, the user message (Manila's action and detail ids), quota usage before and after, what
 * finish was told, and which backend calls were made.
 */

const GiB = 1024 ** 3;
/** Where shares go: one pool `memory` of 1000 GiB, so hosts are `srv@mem#memory`. */
const mem = createMemoryBackend({ name: 'mem' });
/** One 1 GiB pool: the scheduler finds no room on it for the shares made here. */
const tiny = createMemoryBackend({ name: 'tiny', pools: [{ name: 'p', totalCapacityGiB: 1 }] });
const HOST = `${SERVER}@mem#memory`;

let h: Harness;
before(async () => {
  h = await taskHarness([mem]);
});
afterEach(async () => {
  mem.clearInjections();
  tiny.clearInjections();
  await h.abandonUnfinished();
});
after(() => h.close());

/** A share and its snapshot as a case's start left them. */
interface Started {
  auth: Auth;
  shareId: string;
  snapshotId?: string;
}

const resetShare = (id: string, status: string) => h.shares.resetStatus(ADMIN, id, status);

/** A share being created: status creating, a share.create task, shares 1 and `size` GiB reserved. */
async function creating(size: number): Promise<Started> {
  const auth = member();
  const share = await h.shares.create(auth, shareInput(size));
  return { auth, shareId: share.id };
}

/** A share its create task has made available (on `mem`), its quota committed. */
async function available(size: number): Promise<Started> {
  const s = await creating(size);
  const { finished } = await h.settle(s.shareId);
  assert.deepEqual(finished, [{ state: 'done', error: null }]);
  return s;
}

const starts = {
  creating,

  /** DELETE by its owner, or the admin's force_delete. */
  async deleting(size: number, force = false): Promise<Started> {
    const s = await available(size);
    if (force) await h.shares.forceDelete(ADMIN, s.shareId);
    else await h.shares.delete(s.auth, s.shareId);
    return s;
  },

  /** The delete of a share that never reached a backend: its create found no host. */
  /**
   * A share whose placement failed, deleted through a task: its DELETE removes it at once (nothing
   * on a backend), so the task comes from the recycle bin's purge once its retention has passed.
   */
  async deletingUnplaced(size: number): Promise<Started> {
    const s = await creating(size);
    await h.settle(s.shareId, { on: [tiny] });
    await h.shares.softDelete(s.auth, s.shareId);
    await h.shares.purgeExpired(new Date(Date.now() + 8 * 24 * 3600 * 1000));
    return s;
  },

  async extending(size: number, newSize: number): Promise<Started> {
    const s = await available(size);
    await h.actions.extend(s.auth, s.shareId, newSize, false);
    return s;
  },

  /** With `usedGiB` of data on the share, as the backend counts it. */
  async shrinking(size: number, newSize: number, usedGiB = 0): Promise<Started> {
    const s = await available(size);
    if (usedGiB) mem.setUsage(s.shareId, { usedBytes: usedGiB * GiB });
    await h.actions.shrink(s.auth, s.shareId, newSize);
    return s;
  },

  /**
   * A 1 GiB share reverting to its 2 GiB snapshot (taken before a shrink): share reverting,
   * snapshot restoring, 1 GiB reserved to grow back.
   */
  async reverting(): Promise<Started> {
    const s = await available(2);
    const snap = await h.snapshots.create(s.auth, {
      shareId: s.shareId,
      name: null,
      description: null,
      force: false,
    });
    assert.deepEqual((await h.settle(snap.id)).finished, [{ state: 'done', error: null }]);
    await h.actions.shrink(s.auth, s.shareId, 1);
    assert.deepEqual((await h.settle(s.shareId)).finished, [{ state: 'done', error: null }]);
    await h.actions.revert(s.auth, s.shareId, snap.id);
    return { ...s, snapshotId: snap.id };
  },
};

const failed = (message: string) => new BackendError('Failed', message);

const cases: {
  name: string;
  kind: TaskKind;
  start: () => Promise<Started>;
  /** Thrown by this backend call on the share (once). */
  inject?: { op: MemoryBackendOp; error: Error };
  /** The backends the handler is given (default: mem). */
  on?: MemoryBackend[];
  /** Done by someone else between the backend call and the outcome (an admin's reset_status). */
  meanwhile?: (s: Started) => Promise<void>;
  expect: {
    /** What run did: returned null, returned a result, or threw this. */
    run: 'null' | 'result' | RegExp;
    /** The share's status, size and host afterwards, or 'gone'. */
    share: { status: string; size: number; host?: string | null } | 'gone';
    snapshot?: string;
    /** The one user message the task recorded about the share, or none. */
    message: { action: MessageActionId; detail: MessageDetailId; text: RegExp } | null;
    /** Export location paths afterwards (default: none). */
    exports?: string[];
    quotaBefore: Usage;
    quota: Usage;
    /** The one finish call: its state and error. */
    finished: { state: 'done' | 'failed'; error: RegExp | null };
    /** Backend calls made while handling the task (stats() aside). */
    calls: MemoryBackendOp[];
  };
}[] = [
  // ---- share.create ----------------------------------------------------------------------------
  {
    name: 'success stores the export locations and makes the share available; the quota is committed',
    kind: TaskKind.SHARE_CREATE,
    start: () => creating(2),
    expect: {
      run: 'result',
      share: { status: ShareStatus.AVAILABLE, size: 2, host: HOST },
      message: null,
      exports: ['127.0.0.1:/shares/{id}'],
      quotaBefore: { shares: [0, 1], gigabytes: [0, 2] },
      quota: { shares: [1, 0], gigabytes: [2, 0] },
      finished: { state: 'done', error: null },
      calls: ['createShare'],
    },
  },
  {
    name: 'the backend fails: error, CREATE/DRIVER_FAILED, placement kept, quota still counted',
    kind: TaskKind.SHARE_CREATE,
    start: () => creating(2),
    inject: { op: 'createShare', error: failed('disk on fire') },
    expect: {
      run: /^disk on fire$/,
      share: { status: ShareStatus.ERROR, size: 2, host: HOST },
      message: {
        action: MessageAction.CREATE,
        detail: MessageDetail.DRIVER_FAILED,
        text: /^The storage backend failed: disk on fire$/,
      },
      quotaBefore: { shares: [0, 1], gigabytes: [0, 2] },
      quota: { shares: [1, 0], gigabytes: [2, 0] },
      finished: { state: 'failed', error: /^disk on fire$/ },
      calls: ['createShare'],
    },
  },
  {
    name: 'an unexpected error: the message does not repeat its text (that stays in the log and task)',
    kind: TaskKind.SHARE_CREATE,
    start: () => creating(1),
    inject: { op: 'createShare', error: new Error('ECONNRESET 10.0.0.7:2049') },
    expect: {
      run: /ECONNRESET/,
      share: { status: ShareStatus.ERROR, size: 1, host: HOST },
      message: {
        action: MessageAction.CREATE,
        detail: MessageDetail.DRIVER_FAILED,
        text: /^An unexpected error stopped the operation; an operator can find the details in the server log\.$/,
      },
      quotaBefore: { shares: [0, 1], gigabytes: [0, 1] },
      quota: { shares: [1, 0], gigabytes: [1, 0] },
      finished: { state: 'failed', error: /^ECONNRESET 10\.0\.0\.7:2049$/ },
      calls: ['createShare'],
    },
  },
  {
    name: 'no valid host: error, ALLOCATE_HOST/NO_VALID_HOST with the reasons, never placed',
    kind: TaskKind.SHARE_CREATE,
    start: () => creating(5),
    on: [tiny],
    expect: {
      run: /^No valid host was found\./,
      share: { status: ShareStatus.ERROR, size: 5, host: null },
      message: {
        action: MessageAction.ALLOCATE_HOST,
        detail: MessageDetail.NO_VALID_HOST,
        text: /^No valid host was found\. No storage could be allocated for this share request\. Backends considered: tiny#p: 1 GiB free\.$/,
      },
      quotaBefore: { shares: [0, 1], gigabytes: [0, 5] },
      quota: { shares: [1, 0], gigabytes: [5, 0] },
      finished: { state: 'failed', error: /^No valid host was found\./ },
      calls: [],
    },
  },
  {
    name: 'no longer creating before the run (an admin reset it): nothing is called or changed',
    kind: TaskKind.SHARE_CREATE,
    start: async () => {
      const s = await creating(1);
      await resetShare(s.shareId, ShareStatus.ERROR);
      return s;
    },
    expect: {
      run: 'null',
      share: { status: ShareStatus.ERROR, size: 1, host: null },
      message: null,
      quotaBefore: { shares: [0, 1], gigabytes: [0, 1] },
      // The share still exists, so its quota counts (as for any share in error).
      quota: { shares: [1, 0], gigabytes: [1, 0] },
      finished: { state: 'done', error: null },
      calls: [],
    },
  },
  {
    name: 'the share row is gone before the run: nothing is called or recorded',
    kind: TaskKind.SHARE_CREATE,
    start: async () => {
      const s = await creating(1);
      // Not reachable through the services (a share's delete task waits for its create task).
      await h.db.transaction((trx) => repos.shares.remove(trx, s.shareId));
      return s;
    },
    expect: {
      run: 'null',
      share: 'gone',
      message: null,
      quotaBefore: { shares: [0, 1], gigabytes: [0, 1] },
      // The reservation is committed although no share is left to count it.
      quota: { shares: [1, 0], gigabytes: [1, 0] },
      finished: { state: 'done', error: null },
      calls: [],
    },
  },
  {
    name: 'the status changed while the backend failed (reset to available): the share is left as it is',
    kind: TaskKind.SHARE_CREATE,
    start: () => creating(1),
    inject: { op: 'createShare', error: failed('timeout') },
    meanwhile: (s) => resetShare(s.shareId, ShareStatus.AVAILABLE),
    expect: {
      run: /^timeout$/,
      share: { status: ShareStatus.AVAILABLE, size: 1, host: HOST },
      message: null,
      quotaBefore: { shares: [0, 1], gigabytes: [0, 1] },
      quota: { shares: [1, 0], gigabytes: [1, 0] },
      finished: { state: 'failed', error: /^timeout$/ },
      calls: ['createShare'],
    },
  },

  // ---- share.delete ----------------------------------------------------------------------------
  {
    name: 'the backend fails: error_deleting, DELETE/DRIVER_FAILED, quota unchanged',
    kind: TaskKind.SHARE_DELETE,
    start: () => starts.deleting(3),
    inject: { op: 'deleteShare', error: failed('device busy') },
    expect: {
      run: /^device busy$/,
      share: { status: ShareStatus.ERROR_DELETING, size: 3, host: HOST },
      message: {
        action: MessageAction.DELETE,
        detail: MessageDetail.DRIVER_FAILED,
        text: /^The storage backend failed: device busy$/,
      },
      exports: ['127.0.0.1:/shares/{id}'],
      quotaBefore: { shares: [1, 0], gigabytes: [3, 0] },
      quota: { shares: [1, 0], gigabytes: [3, 0] },
      finished: { state: 'failed', error: /^device busy$/ },
      calls: ['deleteShare'],
    },
  },
  {
    name: 'force: the record goes and the quota is released although the backend failed',
    kind: TaskKind.SHARE_DELETE,
    start: () => starts.deleting(3, true),
    inject: { op: 'deleteShare', error: failed('device busy') },
    expect: {
      run: /^device busy$/,
      share: 'gone',
      message: null,
      quotaBefore: { shares: [1, 0], gigabytes: [3, 0] },
      quota: { shares: [0, 0], gigabytes: [0, 0] },
      finished: { state: 'done', error: null },
      calls: ['deleteShare'],
    },
  },
  {
    name: 'a share never placed is deleted without calling a backend',
    kind: TaskKind.SHARE_DELETE,
    start: () => starts.deletingUnplaced(2),
    on: [mem, tiny],
    expect: {
      run: 'null',
      share: 'gone',
      message: null,
      quotaBefore: { shares: [1, 0], gigabytes: [2, 0] },
      quota: { shares: [0, 0], gigabytes: [0, 0] },
      finished: { state: 'done', error: null },
      calls: [],
    },
  },
  {
    name: 'the status changed while the backend failed (reset to error): the share is left as it is',
    kind: TaskKind.SHARE_DELETE,
    start: () => starts.deleting(1),
    inject: { op: 'deleteShare', error: failed('device busy') },
    meanwhile: (s) => resetShare(s.shareId, ShareStatus.ERROR),
    expect: {
      run: /^device busy$/,
      share: { status: ShareStatus.ERROR, size: 1, host: HOST },
      message: null,
      exports: ['127.0.0.1:/shares/{id}'],
      quotaBefore: { shares: [1, 0], gigabytes: [1, 0] },
      quota: { shares: [1, 0], gigabytes: [1, 0] },
      finished: { state: 'failed', error: /^device busy$/ },
      calls: ['deleteShare'],
    },
  },

  // ---- share.extend ----------------------------------------------------------------------------
  {
    name: 'success: the new size, and the reservation becomes usage',
    kind: TaskKind.SHARE_EXTEND,
    start: () => starts.extending(1, 3),
    expect: {
      run: 'null',
      share: { status: ShareStatus.AVAILABLE, size: 3 },
      message: null,
      exports: ['127.0.0.1:/shares/{id}'],
      quotaBefore: { shares: [1, 0], gigabytes: [1, 2] },
      quota: { shares: [1, 0], gigabytes: [3, 0] },
      finished: { state: 'done', error: null },
      calls: ['extendShare'],
    },
  },
  {
    name: 'the backend fails: extending_error at the old size, EXTEND/DRIVER_FAILED, reservation rolled back',
    kind: TaskKind.SHARE_EXTEND,
    start: () => starts.extending(1, 3),
    inject: { op: 'extendShare', error: new BackendError('CapacityExceeded', 'pool full') },
    expect: {
      run: /^pool full$/,
      share: { status: ShareStatus.EXTENDING_ERROR, size: 1 },
      message: {
        action: MessageAction.EXTEND,
        detail: MessageDetail.DRIVER_FAILED,
        text: /^The storage backend failed: pool full$/,
      },
      exports: ['127.0.0.1:/shares/{id}'],
      quotaBefore: { shares: [1, 0], gigabytes: [1, 2] },
      quota: { shares: [1, 0], gigabytes: [1, 0] },
      finished: { state: 'failed', error: /^pool full$/ },
      calls: ['extendShare'],
    },
  },
  {
    name: 'no longer extending when fail runs (reset to available): left as it is, reservation rolled back',
    kind: TaskKind.SHARE_EXTEND,
    start: () => starts.extending(1, 3),
    inject: { op: 'extendShare', error: failed('timeout') },
    meanwhile: (s) => resetShare(s.shareId, ShareStatus.AVAILABLE),
    expect: {
      run: /^timeout$/,
      share: { status: ShareStatus.AVAILABLE, size: 1 },
      message: null,
      exports: ['127.0.0.1:/shares/{id}'],
      quotaBefore: { shares: [1, 0], gigabytes: [1, 2] },
      quota: { shares: [1, 0], gigabytes: [1, 0] },
      finished: { state: 'failed', error: /^timeout$/ },
      calls: ['extendShare'],
    },
  },

  // ---- share.shrink ----------------------------------------------------------------------------
  {
    name: 'refused as the data would not fit: available at its old size, DRIVER_REFUSED_SHRINK says so',
    kind: TaskKind.SHARE_SHRINK,
    start: () => starts.shrinking(2, 1, 1.5),
    expect: {
      run: /more than the requested 1 GiB; nothing was changed\.$/,
      share: { status: ShareStatus.AVAILABLE, size: 2 },
      message: {
        action: MessageAction.SHRINK,
        detail: MessageDetail.DRIVER_REFUSED_SHRINK,
        text: /^The share was not shrunk to 1 GiB: Share [0-9a-f-]{36} uses 1610612736 bytes, more than the requested 1 GiB; nothing was changed\. Its size and data are unchanged\.$/,
      },
      exports: ['127.0.0.1:/shares/{id}'],
      quotaBefore: { shares: [1, 0], gigabytes: [2, 0] },
      quota: { shares: [1, 0], gigabytes: [2, 0] },
      finished: { state: 'failed', error: /nothing was changed\.$/ },
      calls: ['shrinkShare'],
    },
  },
  {
    name: 'any other backend error: shrinking_error, SHRINK/DRIVER_FAILED',
    kind: TaskKind.SHARE_SHRINK,
    start: () => starts.shrinking(2, 1),
    inject: { op: 'shrinkShare', error: new BackendError('Unavailable', 'quorum lost') },
    expect: {
      run: /^quorum lost$/,
      share: { status: ShareStatus.SHRINKING_ERROR, size: 2 },
      message: {
        action: MessageAction.SHRINK,
        detail: MessageDetail.DRIVER_FAILED,
        text: /^The storage backend failed: quorum lost$/,
      },
      exports: ['127.0.0.1:/shares/{id}'],
      quotaBefore: { shares: [1, 0], gigabytes: [2, 0] },
      quota: { shares: [1, 0], gigabytes: [2, 0] },
      finished: { state: 'failed', error: /^quorum lost$/ },
      calls: ['shrinkShare'],
    },
  },
  {
    name: 'the same refusal from something that is not a BackendError is not a refusal: shrinking_error',
    kind: TaskKind.SHARE_SHRINK,
    start: () => starts.shrinking(2, 1),
    inject: {
      op: 'shrinkShare',
      error: Object.assign(new Error('would lose data'), { code: 'ShrinkPossibleDataLoss' }),
    },
    expect: {
      run: /^would lose data$/,
      share: { status: ShareStatus.SHRINKING_ERROR, size: 2 },
      message: {
        action: MessageAction.SHRINK,
        detail: MessageDetail.DRIVER_FAILED,
        text: /^An unexpected error stopped the operation/,
      },
      exports: ['127.0.0.1:/shares/{id}'],
      quotaBefore: { shares: [1, 0], gigabytes: [2, 0] },
      quota: { shares: [1, 0], gigabytes: [2, 0] },
      finished: { state: 'failed', error: /^would lose data$/ },
      calls: ['shrinkShare'],
    },
  },
  {
    name: 'no longer shrinking when the refusal arrives (reset to error): left as it is, no message',
    kind: TaskKind.SHARE_SHRINK,
    start: () => starts.shrinking(2, 1, 1.5),
    meanwhile: (s) => resetShare(s.shareId, ShareStatus.ERROR),
    expect: {
      run: /nothing was changed\.$/,
      share: { status: ShareStatus.ERROR, size: 2 },
      message: null,
      exports: ['127.0.0.1:/shares/{id}'],
      quotaBefore: { shares: [1, 0], gigabytes: [2, 0] },
      quota: { shares: [1, 0], gigabytes: [2, 0] },
      finished: { state: 'failed', error: /nothing was changed\.$/ },
      calls: ['shrinkShare'],
    },
  },

  // ---- share.revert ----------------------------------------------------------------------------
  {
    name: 'the backend fails: reverting_error, the snapshot back to available, reservation rolled back',
    kind: TaskKind.SHARE_REVERT,
    start: starts.reverting,
    inject: { op: 'revertToSnapshot', error: failed('snapshot unreadable') },
    expect: {
      run: /^snapshot unreadable$/,
      share: { status: ShareStatus.REVERTING_ERROR, size: 1 },
      snapshot: SnapshotStatus.AVAILABLE,
      message: {
        action: MessageAction.REVERT_TO_SNAPSHOT,
        detail: MessageDetail.DRIVER_FAILED,
        text: /^The storage backend failed: snapshot unreadable$/,
      },
      exports: ['127.0.0.1:/shares/{id}'],
      quotaBefore: { shares: [1, 0], gigabytes: [1, 1], snapshots: [1, 0], snapshot_gigabytes: [2, 0] },
      quota: { shares: [1, 0], gigabytes: [1, 0], snapshots: [1, 0], snapshot_gigabytes: [2, 0] },
      finished: { state: 'failed', error: /^snapshot unreadable$/ },
      calls: ['revertToSnapshot'],
    },
  },
  {
    name: 'no longer reverting when fail runs (reset to available): the share is left, the snapshot restored',
    kind: TaskKind.SHARE_REVERT,
    start: starts.reverting,
    inject: { op: 'revertToSnapshot', error: failed('snapshot unreadable') },
    meanwhile: (s) => resetShare(s.shareId, ShareStatus.AVAILABLE),
    expect: {
      run: /^snapshot unreadable$/,
      share: { status: ShareStatus.AVAILABLE, size: 1 },
      snapshot: SnapshotStatus.AVAILABLE,
      message: null,
      exports: ['127.0.0.1:/shares/{id}'],
      quotaBefore: { shares: [1, 0], gigabytes: [1, 1], snapshots: [1, 0], snapshot_gigabytes: [2, 0] },
      quota: { shares: [1, 0], gigabytes: [1, 0], snapshots: [1, 0], snapshot_gigabytes: [2, 0] },
      finished: { state: 'failed', error: /^snapshot unreadable$/ },
      calls: ['revertToSnapshot'],
    },
  },
];

for (const c of cases)
  test(`share-manager: ${c.kind}: ${c.name}`, async () => {
    const s = await c.start();
    const projectId = s.auth.projectId as string;
    const resources = Object.keys(c.expect.quota) as (keyof Usage)[];
    const same = (u: Usage) => ({ project: u, type: u });
    assert.deepEqual(await h.usage(projectId, resources), same(c.expect.quotaBefore), 'quota before');
    const earlier = new Set((await h.messages(projectId, s.shareId)).map((x) => x.id));
    if (c.inject) mem.inject({ ...c.inject, id: s.shareId, times: 1 });

    const meanwhile = c.meanwhile;
    const { task, ran, finished, calls } = await h.settle(s.shareId, {
      ...(c.on ? { on: c.on } : {}),
      ...(meanwhile ? { meanwhile: () => meanwhile(s) } : {}),
    });

    assert.equal(task.kind, c.kind);
    const run = c.expect.run;
    if (run instanceof RegExp) {
      assert.ok('error' in ran, 'run threw');
      assert.match((ran.error as Error).message, run);
    } else {
      assert.ok('result' in ran, `run returned (threw ${'error' in ran ? String(ran.error) : ''})`);
      if (run === 'null') assert.equal(ran.result, null);
      else assert.notEqual(ran.result, null);
    }
    assert.deepEqual(
      calls.map((x) => x.op),
      c.expect.calls,
    );
    assert.ok(
      calls.every((x) => x.id === s.shareId),
      'calls are for this share',
    );

    // How the task was finished, and what the tasks table keeps of it.
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

    const share = await repos.shares.get(h.db, s.shareId);
    if (c.expect.share === 'gone') assert.equal(share, undefined);
    else {
      const want = c.expect.share;
      assert.deepEqual(
        { status: share?.status, size: share?.size, ...('host' in want ? { host: share?.host } : {}) },
        want,
      );
    }
    if (c.expect.snapshot !== undefined)
      assert.equal((await repos.snapshots.get(h.db, s.snapshotId as string))?.status, c.expect.snapshot);
    const exports = (await repos.shares.exportLocations(h.db, s.shareId)).map((l) => l.path);
    assert.deepEqual(
      exports,
      (c.expect.exports ?? []).map((p) => p.replace('{id}', s.shareId)),
    );

    const messages = (await h.messages(projectId, s.shareId)).filter((x) => !earlier.has(x.id));
    const m = c.expect.message;
    if (m === null) assert.deepEqual(messages, []);
    else {
      assert.equal(messages.length, 1, 'one message');
      const [got] = messages;
      assert.deepEqual([got?.resource_type, got?.action_id, got?.detail_id], ['SHARE', m.action, m.detail]);
      assert.match(got?.user_message ?? '', m.text);
    }

    assert.deepEqual(await h.usage(projectId, resources), same(c.expect.quota), 'quota after');
    assert.deepEqual(await h.unfinished(s.shareId), [], 'no task left for the share');
  });

test('share-manager: a share force-deleted before its create ran: the create does nothing, the delete frees its quota', async () => {
  const { auth, shareId } = await creating(1);
  await h.shares.forceDelete(ADMIN, shareId);
  const projectId = auth.projectId as string;
  const quota = () => h.usage(projectId, ['shares', 'gigabytes']);

  const create = await h.settle(shareId);
  assert.equal(create.task.kind, TaskKind.SHARE_CREATE);
  assert.deepEqual(create.ran, { result: null });
  assert.deepEqual(create.calls, []);
  assert.deepEqual(create.finished, [{ state: 'done', error: null }]);
  assert.equal((await repos.shares.get(h.db, shareId))?.status, ShareStatus.DELETING);
  assert.deepEqual(await quota(), {
    project: { shares: [1, 0], gigabytes: [1, 0] },
    type: { shares: [1, 0], gigabytes: [1, 0] },
  });

  // The share never reached a backend: the delete asks none.
  const del = await h.settle(shareId);
  assert.equal(del.task.kind, TaskKind.SHARE_DELETE);
  assert.deepEqual(del.calls, []);
  assert.deepEqual(del.finished, [{ state: 'done', error: null }]);
  assert.equal(await repos.shares.get(h.db, shareId), undefined);
  assert.deepEqual(await quota(), {
    project: { shares: [0, 0], gigabytes: [0, 0] },
    type: { shares: [0, 0], gigabytes: [0, 0] },
  });
  assert.deepEqual(await h.messages(projectId, shareId), []);
  assert.deepEqual(await h.unfinished(shareId), []);
});
