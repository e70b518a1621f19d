/**
 * gRPC status errors of the plugin. A handler throws a CsiError with the code the CSI spec names
 * for the case; csi/server.ts turns it into the call's status. Anything else is INTERNAL with a
 * generic message (logged once with its stack).
 */
import { status } from '@grpc/grpc-js';
import { ApiError, ConnectionError } from '../cli/client/errors.ts';

export type GrpcCode = (typeof status)[keyof typeof status];

export class CsiError extends Error {
  override readonly name = 'CsiError';
  constructor(
    readonly code: GrpcCode,
    message: string,
  ) {
    super(message);
  }
}

export const invalidArgument = (msg: string) => new CsiError(status.INVALID_ARGUMENT, msg);
export const notFound = (msg: string) => new CsiError(status.NOT_FOUND, msg);
export const alreadyExists = (msg: string) => new CsiError(status.ALREADY_EXISTS, msg);
export const failedPrecondition = (msg: string) => new CsiError(status.FAILED_PRECONDITION, msg);
export const aborted = (msg: string) => new CsiError(status.ABORTED, msg);
export const unavailable = (msg: string) => new CsiError(status.UNAVAILABLE, msg);
export const internal = (msg: string) => new CsiError(status.INTERNAL, msg);

/**
 * An error of the share API as the CO should see it: 401 → UNAUTHENTICATED, 403 →
 * PERMISSION_DENIED, 404 → NOT_FOUND, 413 (quota) → RESOURCE_EXHAUSTED, other 4xx →
 * INVALID_ARGUMENT or FAILED_PRECONDITION, an unreachable API → UNAVAILABLE.
 */
export function fromApiError(err: unknown, what: string): CsiError {
  if (err instanceof CsiError) return err;
  if (err instanceof ApiError) {
    const msg = `${what}: ${err.describe()}`;
    switch (err.status) {
      case 400:
        return new CsiError(status.INVALID_ARGUMENT, msg);
      case 401:
        return new CsiError(
          status.UNAUTHENTICATED,
          `${what}: the identity service refused the credentials in the secrets (${err.message})`,
        );
      case 403:
        return new CsiError(status.PERMISSION_DENIED, msg);
      case 404:
        return new CsiError(status.NOT_FOUND, msg);
      case 409:
        return new CsiError(status.FAILED_PRECONDITION, msg);
      case 413:
        return new CsiError(status.RESOURCE_EXHAUSTED, msg);
      default:
        return new CsiError(err.status >= 500 ? status.UNAVAILABLE : status.FAILED_PRECONDITION, msg);
    }
  }
  if (err instanceof ConnectionError)
    return new CsiError(status.UNAVAILABLE, `${what}: cannot reach ${err.url} (${err.message})`);
  if (err instanceof Error && err.name === 'AuthUrlError')
    return new CsiError(status.INVALID_ARGUMENT, `${what}: os-authURL: ${err.message}`);
  if (err instanceof Error && err.name === 'ClientError')
    return new CsiError(status.INVALID_ARGUMENT, `${what}: ${err.message}`);
  return new CsiError(status.INTERNAL, `${what}: ${(err as Error)?.message ?? String(err)}`);
}
