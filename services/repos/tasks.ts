import type { Executor } from '../db.ts';

/** Stored states; a task that finishes well is deleted rather than kept as 'done'. */
export const TASK_STATES = ['pending', 'running', 'failed'] as const;
export type TaskState = (typeof TASK_STATES)[number];

export interface TaskRow {
  id: string;
  kind: string;
  resource_id: string;
  payload: Record<string, unknown>;
  state: TaskState;
  attempts: number;
  claimed_by: string | null;
  lease_until: Date | null;
  error: string | null;
  created_at: Date;
  updated_at: Date | null;
}

export const tasksRepo = {
  async insert(
    ex: Executor,
    row: { kind: string; resource_id: string; payload: Record<string, unknown> },
  ): Promise<TaskRow> {
    const [task] = await ex('tasks')
      .insert({ ...row, payload: JSON.stringify(row.payload) })
      .returning('*');
    return task as TaskRow;
  },

  /**
   * Claims the oldest runnable task — pending, or running with an expired lease (its worker died) —
   * for `workerId` until now + leaseMs. SKIP LOCKED lets several servers claim in parallel without
   * waiting on each other. Tasks of one resource run one at a time, in order: a task waits while an
   * older one for the same resource is unfinished, so two workers never change one share at once
   * (an older access update never lands after a newer one; a delete waits for the create).
   */
  async claim(ex: Executor, workerId: string, leaseMs: number): Promise<TaskRow | undefined> {
    const { rows } = (await ex.raw(
      `UPDATE tasks SET state = 'running', attempts = attempts + 1, claimed_by = ?,
              lease_until = now() + (? * interval '1 millisecond'), updated_at = now()
        WHERE id = (SELECT id FROM tasks t
                     WHERE (state = 'pending' OR (state = 'running' AND lease_until < now()))
                       AND NOT EXISTS (SELECT 1 FROM tasks older
                                        WHERE older.resource_id = t.resource_id AND older.id < t.id
                                          AND older.state IN ('pending', 'running'))
                     ORDER BY id
                     FOR UPDATE SKIP LOCKED
                     LIMIT 1)
       RETURNING *`,
      [workerId, leaseMs],
    )) as { rows: TaskRow[] };
    return rows[0];
  },

  /** Marks a task finished, if this worker still holds it (a reclaimed task belongs to another). */
  async finish(
    ex: Executor,
    id: string,
    workerId: string,
    state: 'done' | 'failed',
    error: string | null,
  ): Promise<boolean> {
    const mine = ex('tasks').where({ id, claimed_by: workerId, state: 'running' });
    // Finished tasks are not kept: the claim query must stay cheap as work accumulates. A failed
    // task stays, with its error, for an operator to read.
    const rows =
      state === 'done'
        ? await mine.delete().returning('id')
        : await mine.update({ state, error, lease_until: null, updated_at: ex.fn.now() }).returning('id');
    return rows.length > 0;
  },

  /** Whether a task for this resource is still to run or running. */
  async unfinished(ex: Executor, resourceId: string): Promise<boolean> {
    const row = await ex('tasks')
      .where({ resource_id: resourceId })
      .whereIn('state', ['pending', 'running'])
      .first('id');
    return row !== undefined;
  },

  async renew(ex: Executor, id: string, workerId: string, leaseMs: number): Promise<void> {
    await ex('tasks')
      .where({ id, claimed_by: workerId, state: 'running' })
      .update({ lease_until: ex.raw("now() + (? * interval '1 millisecond')", [leaseMs]) });
  },

  async get(ex: Executor, id: string): Promise<TaskRow | undefined> {
    return ex('tasks').where({ id }).first();
  },
};
