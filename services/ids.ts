import { randomBytes, randomUUID } from 'node:crypto';

/** Keystone-style identifier: a UUID4 as 32 hex digits without dashes. */
export function newId(): string {
  return randomUUID().replaceAll('-', '');
}

/** Keystone audit ids are 16 random bytes, url-safe base64 without padding (22 characters). */
export function newAuditId(): string {
  return randomBytes(16).toString('base64url');
}

/** A random secret for generated passwords and application credentials. */
export function newSecret(bytes = 24): string {
  return randomBytes(bytes).toString('base64url');
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Manila ids are UUIDs; anything else cannot name a resource (and must not reach a uuid column). */
export function isUuid(s: string): boolean {
  return UUID.test(s);
}
