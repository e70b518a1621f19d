/** errno-style codes used on the wire, by the bricks, the share server and the client library. */
export const ERROR_CODES = [
  'ENOENT',
  'EEXIST',
  'ENOTDIR',
  'EISDIR',
  'ENOTEMPTY',
  'EINVAL',
  'EACCES',
  'EPERM',
  'EDQUOT',
  'ENOSPC',
  'ENOTCONN',
  'EIO',
  'ESTALE',
  'ETIMEDOUT',
  'EMSGSIZE',
  'ENAMETOOLONG',
  'ENOSYS',
  'EBUSY',
  'ELOOP',
  'EXDEV',
  'EMLINK',
  'EFBIG',
  'EROFS',
  /** A brick does not hold the share (new or wiped disk, interrupted creation). */
  'ENXIO',
  /** A lock is held by another owner (advisory locks, without waiting). */
  'EAGAIN',
  /** A lock wait was cancelled by the client. */
  'EINTR',
  /** A POSIX lock wait would never end: its holder waits, directly or not, for the requester. */
  'EDEADLK',
  /** A lock could not be reclaimed after a takeover (grace period over, or taken by another). */
  'ENOLCK',
  /**
   * The share is served by another share server (`at`, when this one knows where): the client
   * connects there and sends again. Never a program's errno (the mount maps it to ENOTCONN).
   */
  'EMOVED',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const KNOWN = new Set<string>(ERROR_CODES);

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && KNOWN.has(code);
}

/** An error that crosses the wire: a code and a human message. */
export class ReplicatedError extends Error {
  readonly code: ErrorCode;
  /** With EMOVED: the `host:port` of the share server that serves the share now. */
  readonly at: string | undefined;
  constructor(code: ErrorCode, message?: string, at?: string) {
    // A message that crossed the wire already starts with its code.
    super(!message ? code : message.startsWith(`${code}: `) ? message : `${code}: ${message}`);
    this.name = 'ReplicatedError';
    this.code = code;
    this.at = at;
  }
}

/** An error's wire header: code, message, and where the share is served now (EMOVED). */
export function errorHeader(e: ReplicatedError): Record<string, unknown> {
  return e.at === undefined ? { e: e.code, m: e.message } : { e: e.code, m: e.message, at: e.at };
}

/** Maps anything thrown (a Node fs error, our own error, a bug) onto a wire code. */
export function toReplicatedError(err: unknown): ReplicatedError {
  if (err instanceof ReplicatedError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const msg = err instanceof Error ? err.message : String(err);
  if (isErrorCode(code)) return new ReplicatedError(code, msg);
  if (code === 'ECONNRESET' || code === 'ECONNREFUSED' || code === 'EPIPE')
    return new ReplicatedError('ENOTCONN', msg);
  if (code === 'ERR_FS_FILE_TOO_LARGE') return new ReplicatedError('EFBIG', msg);
  return new ReplicatedError('EIO', msg);
}
