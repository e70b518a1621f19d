/**
 * Errors the REST client throws. None of them prints anything: callers (the CLI, the CSI plugin)
 * decide how to show them. `describe()` gives the one line the OpenStack clients print.
 */

/** The server answered with an error status; carries Manila's / Keystone's fault message. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    message: string,
    readonly status: number,
    readonly requestId: string | null,
    /** The fault's name in the body (`itemNotFound`, `overLimit`, …), when it had one. */
    readonly fault: string | null,
    readonly method: string,
    readonly url: string,
  ) {
    super(message);
  }

  /** `<message> (HTTP <code>) (Request-ID: req-…)`, as python-openstackclient prints a fault. */
  describe(): string {
    const rid = this.requestId ? ` (Request-ID: ${this.requestId})` : '';
    return `${this.message} (HTTP ${this.status})${rid}`;
  }
}

/** The server could not be reached at all (refused, unknown host, timed out, TLS failure). */
export class ConnectionError extends Error {
  override readonly name = 'ConnectionError';
  constructor(
    message: string,
    readonly url: string,
    /** The system error code (ECONNREFUSED, ENOTFOUND, ETIMEDOUT, …) when there was one. */
    readonly code: string | null,
  ) {
    super(message);
  }
}

/**
 * A problem in what the client was asked to do or in what it was told: missing credentials, an
 * auth URL that is not Keystone, no endpoint in the catalog, a name that matches nothing.
 */
export class ClientError extends Error {
  override readonly name: string = 'ClientError';
}

/** A name or id that matched no resource (looked up on the client side). */
export class ResourceNotFound extends ClientError {
  override readonly name = 'ResourceNotFound';
}

/** A name that matched more than one resource. */
export class AmbiguousName extends ClientError {
  override readonly name = 'AmbiguousName';
}
