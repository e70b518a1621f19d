/**
 * The vocabulary both halves of a share change use: the API side (services that validate, flip a
 * status and queue a task) and the worker side (managers that run the task and settle the status).
 * Names and values are Manila's (manila/common/constants.py), limited to the ones abaca goes through.
 */
import { InvalidInput } from './errors.ts';

export const ShareStatus = {
  CREATING: 'creating',
  CREATING_FROM_SNAPSHOT: 'creating_from_snapshot',
  AVAILABLE: 'available',
  ERROR: 'error',
  DELETING: 'deleting',
  ERROR_DELETING: 'error_deleting',
  EXTENDING: 'extending',
  EXTENDING_ERROR: 'extending_error',
  SHRINKING: 'shrinking',
  SHRINKING_ERROR: 'shrinking_error',
  SHRINKING_POSSIBLE_DATA_LOSS_ERROR: 'shrinking_possible_data_loss_error',
  REVERTING: 'reverting',
  REVERTING_ERROR: 'reverting_error',
} as const;
export type ShareStatus = (typeof ShareStatus)[keyof typeof ShareStatus];

/** Statuses from which a share may be deleted (Manila: available, error, and the *_error ones). */
export const SHARE_DELETABLE: readonly string[] = [
  ShareStatus.AVAILABLE,
  ShareStatus.ERROR,
  ShareStatus.ERROR_DELETING,
  ShareStatus.EXTENDING_ERROR,
  ShareStatus.SHRINKING_ERROR,
  ShareStatus.SHRINKING_POSSIBLE_DATA_LOSS_ERROR,
  ShareStatus.REVERTING_ERROR,
];

/**
 * A share's task states (Manila's TASK_STATE_STATUSES, for migration and data copying). abaca runs
 * neither; an admin may still record one with reset_task_state, as in Manila.
 */
export const SHARE_TASK_STATES: readonly string[] = [
  'migration_starting',
  'migration_in_progress',
  'migration_completing',
  'migration_success',
  'migration_error',
  'migration_cancelled',
  'migration_cancel_in_progress',
  'migration_driver_starting',
  'migration_driver_in_progress',
  'migration_driver_phase1_done',
  'data_copying_starting',
  'data_copying_in_progress',
  'data_copying_completing',
  'data_copying_completed',
  'data_copying_cancelled',
  'data_copying_error',
];

/** Snapshot statuses; `restoring` while a share is reverted to the snapshot. */
export const SnapshotStatus = {
  CREATING: 'creating',
  AVAILABLE: 'available',
  ERROR: 'error',
  DELETING: 'deleting',
  ERROR_DELETING: 'error_deleting',
  RESTORING: 'restoring',
} as const;
export type SnapshotStatus = (typeof SnapshotStatus)[keyof typeof SnapshotStatus];

/** Statuses a snapshot may be deleted from (Manila: available and the error ones). */
export const SNAPSHOT_DELETABLE: readonly string[] = [
  SnapshotStatus.AVAILABLE,
  SnapshotStatus.ERROR,
  SnapshotStatus.ERROR_DELETING,
];

/** reset_status takes only a known status of the resource. */
export function checkStatus(status: string, known: Record<string, string>): void {
  if (!Object.values(known).includes(status))
    throw new InvalidInput(`Invalid status '${status}'; valid: ${Object.values(known).join(', ')}.`);
}

/** Share group and share group snapshot statuses (Manila's STATUS_* a group goes through). */
export const ShareGroupStatus = {
  CREATING: 'creating',
  AVAILABLE: 'available',
  ERROR: 'error',
  DELETING: 'deleting',
  ERROR_DELETING: 'error_deleting',
} as const;
export type ShareGroupStatus = (typeof ShareGroupStatus)[keyof typeof ShareGroupStatus];

/** Statuses a share group or group snapshot may be deleted from (Manila: available and error). */
export const SHARE_GROUP_DELETABLE: readonly string[] = [ShareGroupStatus.AVAILABLE, ShareGroupStatus.ERROR];

/** An access rule's state. */
export const AccessState = {
  QUEUED_TO_APPLY: 'queued_to_apply',
  APPLYING: 'applying',
  ACTIVE: 'active',
  ERROR: 'error',
  QUEUED_TO_DENY: 'queued_to_deny',
  DENYING: 'denying',
} as const;

/** A share's access_rules_status: syncing while any rule is on its way, then error or active. */
export const AccessRulesStatus = { ACTIVE: 'active', ERROR: 'error', SYNCING: 'syncing' } as const;

const IN_FLIGHT: readonly string[] = [
  AccessState.QUEUED_TO_APPLY,
  AccessState.APPLYING,
  AccessState.QUEUED_TO_DENY,
  AccessState.DENYING,
];

/** What the share's access_rules_status is, given its rules' states. */
export function rulesStatus(states: string[]): string {
  if (states.some((s) => IN_FLIGHT.includes(s))) return AccessRulesStatus.SYNCING;
  if (states.includes(AccessState.ERROR)) return AccessRulesStatus.ERROR;
  return AccessRulesStatus.ACTIVE;
}

/**
 * The kinds of task, each with its payload and result in services/tasks.ts. A task runs under
 * the id of the resource it changes; access changes run under the share's id so that they queue
 * behind its other tasks.
 */
export const TaskKind = {
  SHARE_CREATE: 'share.create',
  SHARE_DELETE: 'share.delete',
  SHARE_EXTEND: 'share.extend',
  SHARE_SHRINK: 'share.shrink',
  SHARE_REVERT: 'share.revert',
  SHARE_ACCESS: 'share.access',
  SNAPSHOT_CREATE: 'snapshot.create',
  SNAPSHOT_DELETE: 'snapshot.delete',
  SHARE_GROUP_CREATE: 'share_group.create',
  SHARE_GROUP_DELETE: 'share_group.delete',
  SHARE_GROUP_SNAPSHOT_CREATE: 'share_group_snapshot.create',
  SHARE_GROUP_SNAPSHOT_DELETE: 'share_group_snapshot.delete',
} as const;
export type TaskKind = (typeof TaskKind)[keyof typeof TaskKind];

export const isTaskKind = (kind: string): kind is TaskKind =>
  (Object.values(TaskKind) as string[]).includes(kind);
