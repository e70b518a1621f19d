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
