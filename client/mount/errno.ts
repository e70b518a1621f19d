/** Errors of the native protocol (and of the connection to the share server) as kernel errno values. */
import { constants } from 'node:os';
import { toReplicatedError } from '../../backends/replicated/protocol/errors.ts';
import { FuseError } from '../fuse/session.ts';

const E = constants.errno;

/**
 * The share server's codes map one to one, except the two a program should never see: ENXIO (a
 * brick without the share) and ETIMEDOUT (a request the server did not answer in time) are the
 * mount's own failure to reach a quorum, which is ENOTCONN.
 */
const ERRNO: Record<string, number> = {
  ENOENT: E.ENOENT,
  EEXIST: E.EEXIST,
  ENOTDIR: E.ENOTDIR,
  EISDIR: E.EISDIR,
  ENOTEMPTY: E.ENOTEMPTY,
  EINVAL: E.EINVAL,
  EACCES: E.EACCES,
  EPERM: E.EPERM,
  EDQUOT: E.EDQUOT,
  ENOSPC: E.ENOSPC,
  ENOTCONN: E.ENOTCONN,
  EIO: E.EIO,
  ESTALE: E.ESTALE,
  ETIMEDOUT: E.ENOTCONN,
  EMSGSIZE: E.EIO,
  ENAMETOOLONG: E.ENAMETOOLONG,
  ENOSYS: E.ENOSYS,
  EBUSY: E.EBUSY,
  ELOOP: E.ELOOP,
  EXDEV: E.EXDEV,
  EMLINK: E.EMLINK,
  EFBIG: E.EFBIG,
  EROFS: E.EROFS,
  ENXIO: E.ENOTCONN,
  EAGAIN: E.EAGAIN,
  EINTR: E.EINTR,
  EDEADLK: E.EDEADLK,
  ENOLCK: E.ENOLCK,
  EMOVED: E.ENOTCONN,
};

/** Anything thrown while serving a request, as the FuseError the session answers with. */
export function toFuseError(err: unknown): FuseError {
  if (err instanceof FuseError) return err;
  return new FuseError(ERRNO[toReplicatedError(err).code] ?? E.EIO);
}

export function errnoOf(err: unknown): number {
  return toFuseError(err).errno;
}
