/**
 * The abaca REST client: Keystone v3 auth and catalog (Session), the Manila v2 API (ShareClient),
 * the identity calls an operator needs (IdentityClient) and waiters for asynchronous operations.
 * It prints nothing and knows nothing of the command line, so the CSI plugin can use it as is.
 */
export { findEndpoint } from './catalog.ts';
export { AmbiguousName, ApiError, ClientError, ConnectionError, ResourceNotFound } from './errors.ts';
export {
  type HttpResponse,
  type HttpTrace,
  httpRequest,
  type Query,
  type ResponseHeaders,
  type TlsOptions,
} from './http.ts';
export * from './identity-client.ts';
export * from './session.ts';
export * from './share-client.ts';
export * from './token-cache.ts';
export type * from './types.ts';
export { ACCESS_LEVELS, ACCESS_TYPES } from './types.ts';
export * from './wait.ts';
