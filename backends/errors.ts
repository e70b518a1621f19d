/**
 * What a backend call can fail with. `code` tells the service which status the share or snapshot
 * goes to; `message` is written for the user (it becomes the share's user message).
 */
export const BACKEND_ERROR_CODES = [
  /** The share or snapshot the call needs does not exist on the backend. */
  'NotFound',
  /** Shrinking would cut below the space in use; nothing was changed. */
  'ShrinkPossibleDataLoss',
  /** The backend cannot do this (capability, protocol or access type it does not support). */
  'NotSupported',
  /** The request cannot be satisfied as given (for example a size below the snapshot's). */
  'InvalidRequest',
  /**
   * The request conflicts with the backend's state (a brick in use, a drain that would leave a
   * share under its replica count); nothing was changed.
   */
  'Conflict',
  /** Not enough free capacity in the pool. */
  'CapacityExceeded',
  /** The storage is unreachable or lost quorum; retrying later may succeed. */
  'Unavailable',
  /** Anything else the backend could not complete. */
  'Failed',
] as const;
export type BackendErrorCode = (typeof BACKEND_ERROR_CODES)[number];

export class BackendError extends Error {
  readonly code: BackendErrorCode;
  constructor(code: BackendErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackendError';
    this.code = code;
  }
}
