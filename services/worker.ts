import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { BackendError } from '../backends/errors.ts';
import { isTaskKind, type TaskKind } from './constants.ts';
import type { Db } from './db.ts';
import { databaseUnavailable } from './errors.ts';
import type { Repos } from './repos/index.ts';
import type { TaskRow } from './repos/tasks.ts';
import {
  type FinishTx,
  handlerFor,
  type Task,
  type TaskHandler,
  type TaskHandlers,
  type TaskResults,
} from './tasks.ts';

export interface WorkerOptions {
  db: Db;
  /** Claims, renews and finishes tasks (the tasks table). */
  tasks: Pick<Repos['tasks'], 'claim' | 'renew' | 'finish'>;
  log: Logger;
  /** What runs each kind of task; a kind without a handler (a newer server's) fails its tasks. */
  handlers: Partial<TaskHandlers>;
  /** How long a claim lasts without renewal; a dead worker's task is reclaimed after it. */
  leaseMs?: number;
  /** Idle poll interval (other servers' tasks; this server's are run at once through kick()). */
  pollMs?: number;
  /** After this many claims a task that keeps dying with its worker fails for good. */
  maxAttempts?: number;
  /**
   * Tasks run at once (default 8). Tasks of one resource still run one at a time and in order (the
   * claim query sees to that); different shares' creates, deletes and access changes overlap, so
   * one slow backend call does not hold up every other tenant's request.
   */
  concurrency?: number;
}

/** Retries while the database is away: the first wait, doubling up to the last. */
const RETRY_FIRST_MS = 200;
const RETRY_MAX_MS = 2000;

/** The database could not be reached (a backend's own errors are BackendErrors, never this). */
const databaseAway = (err: unknown): boolean => !(err instanceof BackendError) && databaseUnavailable(err);

/** Thrown by finish() when the task is no longer this worker's: it rolls the outcome back. */
export class ClaimLost extends Error {
  constructor(taskId: string) {
    super(`task ${taskId} is no longer held by this worker`);
    this.name = 'ClaimLost';
  }
}

export class Worker {
  readonly id = `worker-${randomUUID()}`;
  private running = false;
  /** stop() was called: outcomes the database cannot take are left to the next holder. */
  private stopping = false;
  /** Set by kick() or a finished task; the loop looks for work before it sleeps again. */
  private nudged = false;
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private readonly maxAttempts: number;
  private readonly concurrency: number;

  constructor(private readonly opts: WorkerOptions) {
    this.leaseMs = opts.leaseMs ?? 30_000;
    this.pollMs = opts.pollMs ?? 500;
    this.maxAttempts = opts.maxAttempts ?? 5;
    this.concurrency = opts.concurrency ?? 8;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopping = false;
    // Tasks' claimed_by names the worker: this line says which process that is.
    this.opts.log.info({ worker_id: this.id, pid: process.pid }, 'worker: started');
    this.loop = this.run();
  }

  /** Stops claiming; waits for the tasks in hand to finish. */
  async stop(): Promise<void> {
    this.running = false;
    this.stopping = true;
    this.wake?.();
    await this.loop;
  }

  /** A task was just enqueued here: look now instead of at the next poll. */
  kick(): void {
    this.nudged = true;
    this.wake?.();
  }

  /** Runs tasks one at a time until none is runnable (tests use this to drive the worker step by step). */
  async drain(): Promise<number> {
    let n = 0;
    for (;;) {
      const task = await this.opts.tasks.claim(this.opts.db, this.id, this.leaseMs);
      if (!task) return n;
      await this.execute(task);
      n++;
    }
  }

  /** Claims while a slot is free and work is there; otherwise sleeps until nudged or the next poll. */
  private async run(): Promise<void> {
    while (this.running) {
      this.nudged = false;
      let claimed = false;
      if (this.inFlight.size < this.concurrency) {
        try {
          claimed = await this.claimAndStart();
        } catch (err) {
          this.opts.log.error({ err }, 'worker: claiming a task failed');
        }
      }
      if (claimed || this.nudged || !this.running) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.pollMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
    await Promise.all(this.inFlight);
  }

  private async claimAndStart(): Promise<boolean> {
    const task = await this.opts.tasks.claim(this.opts.db, this.id, this.leaseMs);
    if (!task) return false;
    const running: Promise<void> = this.execute(task)
      .catch((err: unknown) =>
        this.opts.log.error(
          { err, task_id: task.id },
          'worker: task left unfinished; it is claimed again once its lease runs out',
        ),
      )
      .finally(() => {
        this.inFlight.delete(running);
        // A slot is free, and the resource's next task (queued behind this one) may now be claimable.
        this.kick();
      });
    this.inFlight.add(running);
    return true;
  }

  private async execute(task: TaskRow): Promise<void> {
    const { db, log, handlers } = this.opts;
    const tlog = log.child({
      worker_id: this.id,
      task_id: task.id,
      kind: task.kind,
      resource_id: task.resource_id,
      attempt: task.attempts,
    });
    // Only the task's holder records its outcome. A worker that stalled past its lease (a paused
    // process, a database it could not renew through) has had the task taken over: its outcome
    // transaction is rolled back, so it cannot overwrite or contradict the new holder's.
    const finish: FinishTx = async (trx, state, error) => {
      if (!(await this.opts.tasks.finish(trx, task.id, this.id, state, error))) throw new ClaimLost(task.id);
      return true;
    };
    const handler = isTaskKind(task.kind) ? handlerFor(handlers, task.kind) : undefined;
    try {
      if (!handler) {
        tlog.error('worker: no handler for this task kind');
        await db.transaction((trx) => finish(trx, 'failed', `no handler for ${task.kind}`));
        return;
      }
      // The row's payload was written by the task API under the type its kind names.
      await this.runTask(task as Task, handler, finish, tlog);
    } catch (err) {
      if (!(err instanceof ClaimLost)) throw err;
      tlog.warn(
        'worker: task was taken over by another worker after its lease ran out; outcome not recorded',
      );
    }
  }

  /**
   * Runs a step of a task — its run, or the transaction recording its outcome — trying again while
   * the database cannot be reached (a restart, a failover) instead of leaving the task to wait out
   * its lease or recording a failure that was the database's. Safe because a run is idempotent and
   * finish() fences the outcome: a first try that did commit finished the task, so a retry finds
   * the claim gone and rolls back. Gives up after a lease's length or when the worker stops; the
   * task is then reclaimed after its lease, as when a worker dies.
   */
  private async retrying<T>(step: () => Promise<T>, tlog: Logger): Promise<T> {
    const giveUpAt = Date.now() + this.leaseMs;
    for (let wait = RETRY_FIRST_MS; ; wait = Math.min(wait * 2, RETRY_MAX_MS)) {
      try {
        return await step();
      } catch (err) {
        if (!databaseAway(err) || this.stopping || Date.now() + wait > giveUpAt) throw err;
        tlog.warn({ err }, 'worker: database unavailable; retrying');
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  private async runTask<K extends TaskKind>(
    task: Task<K>,
    handler: TaskHandler<K>,
    finish: FinishTx,
    tlog: Logger,
  ): Promise<void> {
    const { db } = this.opts;
    if (task.attempts > this.maxAttempts) {
      tlog.error('worker: task keeps dying with its worker; giving up');
      await this.retrying(
        () => handler.fail(task, new Error(`gave up after ${task.attempts - 1} attempts`), finish),
        tlog,
      );
      return;
    }
    // Renew the lease while the backend works, so a slow but live task is not taken over.
    const renew = setInterval(
      () => {
        this.opts.tasks
          .renew(db, task.id, this.id, this.leaseMs)
          .catch((err: unknown) => tlog.warn({ err }, 'worker: lease renewal failed'));
      },
      Math.max(this.leaseMs / 3, 50),
    );
    try {
      let result: TaskResults[K];
      try {
        result = await this.retrying(() => handler.run(task), tlog);
      } catch (err) {
        // Still no database: not the operation's failure. The task is run again after its lease.
        if (databaseAway(err)) throw err;
        tlog.warn({ err }, 'worker: task failed');
        await this.retrying(() => handler.fail(task, err, finish), tlog);
        return;
      }
      await this.retrying(() => handler.succeed(task, result, finish), tlog);
      tlog.info('worker: task done');
    } finally {
      clearInterval(renew);
    }
  }
}
