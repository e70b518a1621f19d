import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { BackendError } from '../../backends/errors.ts';
import { TaskKind } from '../../services/constants.ts';
import { tasksRepo } from '../../services/repos/tasks.ts';
import type { TaskHandler, TaskHandlers } from '../../services/tasks.ts';
import { Worker } from '../../services/worker.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';

/**
 * The worker's rules with fake handlers over a real tasks table: a run's result reaches succeed,
 * a failed run reaches fail, a kind without a handler fails its task, a task that keeps dying
 * with its worker is given up after maxAttempts claims, an expired lease is taken over and a live
 * one is renewed.
 */

let tdb: TestDb;
before(async () => {
  tdb = await createTestDb();
});
after(() => tdb.close());

const log = pino({ level: 'silent' });
const EXTEND = TaskKind.SHARE_EXTEND;

/** What a fake handler saw. */
interface Seen {
  runs: number;
  succeeded: unknown[];
  failed: string[];
}

/** A share.extend handler that records its calls; `run` decides what a run does. */
function fakeExtend(run: () => Promise<null>): { handler: TaskHandler<typeof EXTEND>; seen: Seen } {
  const seen: Seen = { runs: 0, succeeded: [], failed: [] };
  const handler: TaskHandler<typeof EXTEND> = {
    async run(task) {
      seen.runs++;
      assert.equal(typeof task.payload.new_size, 'number', 'the payload arrives typed');
      return run();
    },
    async succeed(_task, result, finish) {
      seen.succeeded.push(result);
      await tdb.db.transaction((trx) => finish(trx, 'done', null));
    },
    async fail(_task, err, finish) {
      seen.failed.push((err as Error).message);
      await tdb.db.transaction((trx) => finish(trx, 'failed', (err as Error).message));
    },
  };
  return { handler, seen };
}

const worker = (handlers: Partial<TaskHandlers>, opts: { leaseMs?: number; maxAttempts?: number } = {}) =>
  new Worker({ db: tdb.db, log, tasks: tasksRepo, handlers, ...opts });

const enqueue = (kind: string = EXTEND) =>
  tasksRepo.insert(tdb.db, { kind, resource_id: randomUUID(), payload: { new_size: 2 } });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cases: {
  name: string;
  kind?: string;
  /** What the fake run does. */
  run?: () => Promise<null>;
  /** Claims by workers that died before this worker runs (each with an already expired lease). */
  deadClaims?: number;
  maxAttempts?: number;
  expect: {
    runs: number;
    succeeded: number;
    failed: RegExp | null;
    state: 'gone' | 'failed';
    error?: RegExp;
  };
}[] = [
  {
    name: 'a run that returns hands its result to succeed; the finished task is deleted',
    expect: { runs: 1, succeeded: 1, failed: null, state: 'gone' },
  },
  {
    name: 'a run that throws reaches fail; the task is kept, failed, with the error',
    run: async () => {
      throw new Error('backend said no');
    },
    expect: { runs: 1, succeeded: 0, failed: /backend said no/, state: 'failed', error: /backend said no/ },
  },
  {
    name: 'a known kind without a handler fails its task',
    kind: TaskKind.SHARE_SHRINK,
    expect: { runs: 0, succeeded: 0, failed: null, state: 'failed', error: /^no handler for share\.shrink$/ },
  },
  {
    name: 'a kind this server does not know fails its task',
    kind: 'share.migrate',
    expect: {
      runs: 0,
      succeeded: 0,
      failed: null,
      state: 'failed',
      error: /^no handler for share\.migrate$/,
    },
  },
  {
    name: 'a task whose lease expired (its worker died) is run again',
    deadClaims: 1,
    expect: { runs: 1, succeeded: 1, failed: null, state: 'gone' },
  },
  {
    name: 'up to maxAttempts claims, the task is still run',
    deadClaims: 2,
    maxAttempts: 3,
    expect: { runs: 1, succeeded: 1, failed: null, state: 'gone' },
  },
  {
    name: 'past maxAttempts claims, the task is given up without running',
    deadClaims: 3,
    maxAttempts: 3,
    expect: { runs: 0, succeeded: 0, failed: /^gave up after 3 attempts$/, state: 'failed' },
  },
];

for (const c of cases)
  test(`worker: ${c.name}`, async () => {
    const { handler, seen } = fakeExtend(c.run ?? (async () => null));
    const task = await enqueue(c.kind);
    // A dead worker's claim: its lease (1 ms) has run out by the time the next claim looks.
    for (let i = 0; i < (c.deadClaims ?? 0); i++) {
      assert.equal((await tasksRepo.claim(tdb.db, `dead-${i}`, 1))?.id, task.id);
      await sleep(5);
    }
    const w = worker({ [EXTEND]: handler }, c.maxAttempts ? { maxAttempts: c.maxAttempts } : {});
    assert.equal(await w.drain(), 1);
    assert.equal(seen.runs, c.expect.runs);
    assert.deepEqual(seen.succeeded, Array(c.expect.succeeded).fill(null));
    if (c.expect.failed) assert.match(seen.failed.join(), c.expect.failed);
    else assert.deepEqual(seen.failed, []);
    const row = await tasksRepo.get(tdb.db, task.id);
    if (c.expect.state === 'gone') assert.equal(row, undefined);
    else {
      assert.equal(row?.state, 'failed');
      if (c.expect.error) assert.match(row?.error ?? '', c.expect.error);
    }
  });

test('worker: a slow task keeps its lease renewed, so no other worker takes it over', async () => {
  let release = () => {};
  const { handler, seen } = fakeExtend(() => new Promise<null>((resolve) => (release = () => resolve(null))));
  const task = await enqueue();
  const slow = worker({ [EXTEND]: handler }, { leaseMs: 150 });
  const running = slow.drain();
  // Several lease lengths later the task is still this worker's.
  await sleep(600);
  const other = worker({ [EXTEND]: fakeExtend(async () => null).handler });
  assert.equal(await other.drain(), 0, 'nothing to claim while the lease is renewed');
  assert.equal((await tasksRepo.get(tdb.db, task.id))?.attempts, 1);
  release();
  assert.equal(await running, 1);
  assert.equal(seen.succeeded.length, 1);
});

test('worker: one that stalled past its lease records no outcome; the worker that took the task over does', async () => {
  // What each worker's outcome transaction wrote besides finishing the task (a share's status, say).
  await tdb.db.schema.createTable('worker_test_outcomes', (t) => {
    t.text('task_id');
    t.text('worker');
    t.text('outcome');
  });
  const handlerOf = (name: string, run: () => Promise<null>): TaskHandler<typeof EXTEND> => ({
    run,
    async succeed(task, _result, finish) {
      await tdb.db.transaction(async (trx) => {
        await trx('worker_test_outcomes').insert({ task_id: task.id, worker: name, outcome: 'done' });
        await finish(trx, 'done', null);
      });
    },
    async fail(task, err, finish) {
      await tdb.db.transaction(async (trx) => {
        await trx('worker_test_outcomes').insert({ task_id: task.id, worker: name, outcome: 'failed' });
        await finish(trx, 'failed', (err as Error).message);
      });
    },
  });
  let release = () => {};
  const task = await enqueue();
  // Its renewals never reach the database (a paused process, a database failing over): the lease runs out.
  const stalled = new Worker({
    db: tdb.db,
    log,
    tasks: { ...tasksRepo, renew: async () => {} },
    leaseMs: 100,
    handlers: {
      [EXTEND]: handlerOf(
        'stalled',
        () =>
          new Promise<null>((_, reject) => {
            release = () => reject(new Error('the storage changed under this call'));
          }),
      ),
    },
  });
  const stalledRun = stalled.drain();
  await sleep(250);
  const other = worker({ [EXTEND]: handlerOf('other', async () => null) });
  assert.equal(await other.drain(), 1, 'the expired task was taken over');
  release();
  await stalledRun;
  assert.deepEqual(
    await tdb.db('worker_test_outcomes').where({ task_id: task.id }).select('worker', 'outcome'),
    [{ worker: 'other', outcome: 'done' }],
    "only the holder's outcome is recorded",
  );
  assert.equal(await tasksRepo.get(tdb.db, task.id), undefined);
});

/** What the PostgreSQL driver throws when the server went away in the middle of a statement. */
const connectionLost = () => new Error('ROLLBACK - Connection terminated unexpectedly');

test('worker: the database away while an outcome is recorded — retried until it is back, not left to the lease', async () => {
  let tries = 0;
  const { handler, seen } = fakeExtend(async () => null);
  const record = handler.succeed;
  handler.succeed = async (task, result, finish) => {
    if (++tries <= 2) throw connectionLost();
    await record(task, result, finish);
  };
  const task = await enqueue();
  const started = Date.now();
  assert.equal(await worker({ [EXTEND]: handler }, { leaseMs: 30_000 }).drain(), 1);
  assert.equal(tries, 3);
  assert.equal(seen.succeeded.length, 1);
  assert.deepEqual(seen.failed, [], 'the database going away is not the operation failing');
  assert.equal(await tasksRepo.get(tdb.db, task.id), undefined, 'finished');
  assert.ok(Date.now() - started < 5000, 'well before the 30 s lease');
});

test('worker: the database away during a run — the run is retried, and no failure is recorded', async () => {
  let runs = 0;
  const { handler, seen } = fakeExtend(async () => {
    if (++runs <= 2)
      throw Object.assign(new Error('the database system is shutting down'), {
        code: '57P03',
        severity: 'FATAL',
      });
    return null;
  });
  const task = await enqueue();
  assert.equal(await worker({ [EXTEND]: handler }, { leaseMs: 30_000 }).drain(), 1);
  assert.equal(runs, 3);
  assert.deepEqual(seen.failed, []);
  assert.equal(seen.succeeded.length, 1);
  assert.equal(await tasksRepo.get(tdb.db, task.id), undefined);
});

test('worker: the database away for longer than a lease — the task is left running for a later claim, not failed', async () => {
  const { handler, seen } = fakeExtend(async () => {
    throw connectionLost();
  });
  const task = await enqueue();
  await assert.rejects(worker({ [EXTEND]: handler }, { leaseMs: 600 }).drain(), /Connection terminated/);
  assert.deepEqual(seen.failed, [], 'no failure recorded for the operation');
  const row = await tasksRepo.get(tdb.db, task.id);
  assert.equal(row?.state, 'running');
  await sleep(700);
  const { handler: next, seen: nextSeen } = fakeExtend(async () => null);
  assert.equal(await worker({ [EXTEND]: next }).drain(), 1, 'claimed again once the lease ran out');
  assert.equal(nextSeen.succeeded.length, 1);
});

test('worker: a backend error is the operation failing, whatever its message', async () => {
  const { handler, seen } = fakeExtend(async () => {
    throw new BackendError('Unavailable', 'share server: Connection terminated unexpectedly');
  });
  await enqueue();
  assert.equal(await worker({ [EXTEND]: handler }, { leaseMs: 30_000 }).drain(), 1);
  assert.deepEqual(seen.failed, ['share server: Connection terminated unexpectedly']);
});

/** A started worker over `n` blocking tasks: how many ran at once, and in which order they started. */
async function runStarted(opts: { concurrency: number; resources: string[] }) {
  let active = 0;
  let peak = 0;
  const started: string[] = [];
  const waiting: (() => void)[] = [];
  const handler: TaskHandler<typeof EXTEND> = {
    async run(task) {
      started.push(task.id);
      peak = Math.max(peak, ++active);
      await new Promise<void>((resolve) => waiting.push(resolve));
      active--;
      return null;
    },
    async succeed(_task, _result, finish) {
      await tdb.db.transaction((trx) => finish(trx, 'done', null));
    },
    async fail(_task, err, finish) {
      await tdb.db.transaction((trx) => finish(trx, 'failed', (err as Error).message));
    },
  };
  const tasks: { id: string }[] = [];
  for (const resource_id of opts.resources)
    tasks.push(await tasksRepo.insert(tdb.db, { kind: EXTEND, resource_id, payload: { new_size: 2 } }));
  const w = new Worker({
    db: tdb.db,
    log,
    tasks: tasksRepo,
    handlers: { [EXTEND]: handler },
    concurrency: opts.concurrency,
    pollMs: 20,
  });
  w.start();
  const until = async (ok: () => boolean, what: string) => {
    for (let i = 0; i < 500 && !ok(); i++) await sleep(10);
    assert.ok(ok(), what);
  };
  const remaining = async () =>
    (await Promise.all(tasks.map((t) => tasksRepo.get(tdb.db, t.id)))).filter(Boolean).length;
  // Release whatever is running, one batch at a time, until every task has finished.
  for (let round = 0; (await remaining()) > 0; round++) {
    assert.ok(round < 100, 'the tasks finish');
    await until(() => waiting.length > 0 || active === 0, 'a task is running');
    await sleep(50); // let the worker fill every free slot before the batch is released
    for (const release of waiting.splice(0)) release();
  }
  await w.stop();
  return { peak, started, ids: tasks.map((t) => t.id) };
}

test('worker (started): different resources run at once, up to the concurrency', async () => {
  const r = await runStarted({ concurrency: 3, resources: Array.from({ length: 7 }, () => randomUUID()) });
  assert.equal(r.peak, 3, 'three tasks ran at the same time, never more');
  assert.deepEqual([...r.started].sort(), [...r.ids].sort(), 'every task ran once');
});

test("worker (started): one resource's tasks run one at a time, oldest first", async () => {
  const share = randomUUID();
  const r = await runStarted({ concurrency: 4, resources: [share, randomUUID(), share, share] });
  assert.equal(r.peak, 2, "the other resource's task overlapped, the share's own did not");
  const own = r.ids.filter((_, i) => i !== 1);
  assert.deepEqual(
    r.started.filter((id) => own.includes(id)),
    own,
    "the share's tasks started in the order they were queued",
  );
});

test('worker (started): stop() waits for the tasks in hand', async () => {
  let finished = false;
  const { handler } = fakeExtend(async () => {
    await sleep(200);
    finished = true;
    return null;
  });
  const task = await enqueue();
  const w = worker({ [EXTEND]: handler });
  w.start();
  for (let i = 0; i < 100 && !(await tasksRepo.get(tdb.db, task.id))?.claimed_by; i++) await sleep(10);
  await w.stop();
  assert.ok(finished, 'stop returned only after the running task ended');
  assert.equal(await tasksRepo.get(tdb.db, task.id), undefined, 'and its outcome was recorded');
});
