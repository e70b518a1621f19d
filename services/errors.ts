/**
 * Typed errors shared by every layer. Each carries the HTTP status a client sees; the API's error
 * middleware renders them as Manila fault bodies. Messages are written for the person reading them.
 */
export class ApiError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = new.target.name;
    this.status = status;
    this.headers = headers;
  }
}

export class InvalidInput extends ApiError {
  constructor(message: string) {
    super(400, message);
  }
}

export class Unauthorized extends ApiError {
  constructor(message = 'The request you have made requires authentication.') {
    super(401, message);
  }
}

export class Forbidden extends ApiError {
  constructor(message = 'You are not authorized to perform the requested action.') {
    super(403, message);
  }
}

export class NotFound extends ApiError {
  constructor(message: string) {
    super(404, message);
  }
}

export class BadMethod extends ApiError {
  constructor(method: string, allowed: string[]) {
    super(405, `The method ${method} is not allowed for this resource; allowed: ${allowed.join(', ')}.`, {
      Allow: allowed.join(', '),
    });
  }
}

export class NotAcceptable extends ApiError {
  constructor(message: string) {
    super(406, message);
  }
}

export class Conflict extends ApiError {
  constructor(message: string) {
    super(409, message);
  }
}

/** Well-formed but not possible for this resource (Manila: a snapshot of a type without snapshot_support). */
export class Unprocessable extends ApiError {
  constructor(message: string) {
    super(422, message);
  }
}

export class PayloadTooLarge extends ApiError {
  constructor(limit: number) {
    super(413, `Request body is larger than the limit of ${limit} bytes.`, { 'Retry-After': '0' });
  }
}

export class UnsupportedMediaType extends ApiError {
  constructor(type: string) {
    super(415, `Content type '${type}' is not supported; send application/json.`);
  }
}

export class NotSupported extends ApiError {
  constructor(message: string) {
    super(501, message);
  }
}

/** Too many attempts (failed logins): wait `retryAfterSeconds`. */
export class TooManyRequests extends ApiError {
  constructor(message: string, retryAfterSeconds: number) {
    super(429, message, { 'Retry-After': String(retryAfterSeconds) });
  }
}

export class ServiceUnavailable extends ApiError {
  constructor(message: string) {
    super(503, message);
  }
}

/** Manila's fault names by status (manila/api/openstack/wsgi.py); anything else is computeFault. */
const FAULT_NAMES: Record<number, string> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  409: 'conflictingRequest',
  413: 'overLimit',
  415: 'badMediaType',
  429: 'overLimit',
  501: 'notImplemented',
  503: 'serviceUnavailable',
};

export function faultName(status: number): string {
  return FAULT_NAMES[status] ?? 'computeFault';
}

/** A quota would be exceeded. Manila answers 413 for creates (QuotaError) and 403 for extends. */
export class QuotaExceeded extends ApiError {
  constructor(message: string, status: 403 | 413 = 413) {
    super(status, message);
  }
}

/**
 * node-postgres's messages for a connection that broke under a query (knex prefixes the SQL), or
 * that gave no answer within the `query_timeout` / `connectionTimeoutMillis` a DATABASE_URL may set.
 */
const DRIVER_CONNECTION_LOST =
  /\bConnection terminated\b|Client has encountered a connection error|Client was closed and is not queryable|\bQuery read timeout$|^timeout expired$/;

/** Socket errors the PostgreSQL driver passes on when the server goes away or is not there. */
const SOCKET_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
]);

/**
 * Whether an error means the database could not be reached — it restarted, failed over, or is
 * still starting — rather than that the statement was wrong: worth retrying once it is back. These
 * are SQLSTATE class 08 (connection exception), 57P01-57P03 (shut down by an administrator or a
 * crash, cannot connect now), the driver's "Connection terminated" and kin, a socket error, and knex giving
 * up waiting for a connection.
 */
export function databaseUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; severity?: unknown; name?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  const code = typeof e.code === 'string' ? e.code : '';
  if (e.severity !== undefined && (code.startsWith('08') || /^57P0[123]$/.test(code))) return true;
  if (SOCKET_ERRORS.has(code)) return true;
  if (e.name === 'KnexTimeoutError') return true;
  return typeof e.message === 'string' && DRIVER_CONNECTION_LOST.test(e.message);
}

/**
 * A PostgreSQL error that escaped the repositories, as the client should see it: the client's
 * fault — a value the column cannot hold (class 22: bad text, out-of-range number, too long),
 * a unique violation, a foreign key, a check constraint — is a 400 or 409 that says which kind;
 * anything else (undefined, then a 500) is ours. Messages never echo the statement or its
 * parameters: for identity tables those hold password and secret hashes. A database that cannot be
 * reached is a 503 the client may retry.
 */
export function databaseFault(err: unknown): ApiError | undefined {
  if (databaseUnavailable(err))
    return new ServiceUnavailable('The database cannot be reached at the moment; retry the request.');
  const e = err as { code?: unknown; message?: unknown; severity?: unknown } | null;
  const code = e?.code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code) || e?.severity === undefined) return undefined;
  if (code === '23505')
    return new Conflict('The request conflicts with an existing resource of the same name or id.');
  if (code === '23503') {
    return typeof e.message === 'string' && e.message.includes('update or delete on table')
      ? new Conflict('The resource is still in use by another resource.')
      : new InvalidInput('The request refers to a resource that does not exist.');
  }
  if (code === '23514') return new InvalidInput('A value is not allowed for its field.');
  if (code === '22001') return new InvalidInput('A value is too long for its field.');
  if (code === '22003') return new InvalidInput('A number is out of range for its field.');
  if (code === '22021') return new InvalidInput('A value holds a character that cannot be stored.');
  if (code === '22P02' || code === '22007' || code === '22008')
    return new InvalidInput('A value has the wrong form for its field.');
  if (code.startsWith('22')) return new InvalidInput('A value is not valid for its field.');
  return undefined;
}
