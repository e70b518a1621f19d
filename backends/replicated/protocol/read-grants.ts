/**
 * Direct reads: a mount reads file data from a brick instead of through the share server, with a
 * grant the share server put in a read's answer. The share server and the brick derive the
 * grant's key each on its own side from what only they share: the session the share server
 * claimed the share with on that brick (a random id, never sent to mounts) and the generation
 * of the share's record, which every change of its access rules moves. So a grant dies when the
 * share server reclaims the brick (a new session after the brick was away, or a new share server
 * after a takeover) and when the access rules change (a revoked mount falls back to the share
 * server and hears EACCES there).
 *
 * The grant also names the file (its id) and the version (`v`) a brick's copy must be at: a
 * brick that missed a write has an older version and refuses, and the mount reads through the
 * share server again. It names every replica that was in sync for the file when it was read, so
 * a mount spreads a large read over them.
 */
import { createHmac } from 'node:crypto';

/** What a read's answer carries for the mount's next reads of the same file. */
export interface ReadGrant {
  /** The file's id and the version every brick named holds it at. */
  id: string;
  v: number;
  /** In-sync replicas to read from (`HOST:PORT` as the share server reaches them), each with its key. */
  bricks: Array<{ addr: string; key: string }>;
}

/** The key of grants for `share` on the brick claimed with `session`, at record generation `gen`. */
export function readGrantKey(session: string, share: string, gen: number): string {
  return createHmac('sha256', session).update(`read:${share}:${gen}`).digest('base64url').slice(0, 24);
}

/** A grant key with what it was derived from (kept to derive it again only when those change). */
export interface DerivedKey {
  session: string;
  gen: number;
  key: string;
}

/** `cached` when it was derived from the same session and generation, else the key derived anew. */
export function grantKeyFor(
  cached: DerivedKey | undefined,
  session: string,
  share: string,
  gen: number,
): DerivedKey {
  if (cached?.session === session && cached.gen === gen) return cached;
  return { session, gen, key: readGrantKey(session, share, gen) };
}

/** A grant from a read's answer header, or undefined when there is none or it is malformed. */
export function grantOf(v: unknown): ReadGrant | undefined {
  const g = v as Record<string, unknown> | undefined;
  if (typeof g !== 'object' || g === null || typeof g['id'] !== 'string' || typeof g['v'] !== 'number')
    return undefined;
  if (!Array.isArray(g['bricks'])) return undefined;
  const bricks: ReadGrant['bricks'] = [];
  for (const b of g['bricks'] as Array<Record<string, unknown>>)
    if (typeof b?.['addr'] === 'string' && typeof b['key'] === 'string')
      bricks.push({ addr: b['addr'], key: b['key'] });
  return bricks.length > 0 ? { id: g['id'], v: g['v'], bricks } : undefined;
}
