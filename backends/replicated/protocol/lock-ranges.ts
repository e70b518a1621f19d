/**
 * Byte-range arithmetic of advisory locks, as fcntl defines it: shared by the share server's lock
 * table (server/locks.ts) and the mount's record of the locks it holds (client/mount/held-locks.ts).
 */

export interface LockRange {
  /** First byte and last byte (inclusive); `end` Infinity = to the end of any file. */
  start: number;
  end: number;
}

export const overlaps = (a: LockRange, b: LockRange): boolean => a.start <= b.end && b.start <= a.end;

/**
 * `locks` with `range` taken out of those that `mine` selects (an unlock of part of a lock leaves
 * the parts before and after it); the others are kept as they are.
 */
export function withoutRange<T extends LockRange>(
  locks: T[],
  mine: (l: T) => boolean,
  range: LockRange,
): T[] {
  const out: T[] = [];
  for (const l of locks) {
    if (!mine(l) || !overlaps(l, range)) {
      out.push(l);
      continue;
    }
    if (l.start < range.start) out.push({ ...l, end: range.start - 1 });
    if (l.end > range.end) out.push({ ...l, start: range.end + 1 });
  }
  return out;
}
