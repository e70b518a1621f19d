/**
 * Which paths a mutation marks dirty (before it runs) and pending (against replicas that missed it).
 * Data and metadata operations mark the inode's path; entry operations mark the parent directory
 * (a rename marks both parents), so an entry heal of that directory repairs the names. A create
 * that truncates or writes an existing file (`over`) changes its data too, so it marks the file as
 * well: the byte ranges recorded against a file must cover every change a replica missed, or a
 * ranged heal would copy too little and still give the copy the source's version.
 */
import type { MutationKind } from './opcodes.ts';
import { parentOf } from './paths.ts';

export function healPathsOf(kind: MutationKind, path: string, newPath?: string, over = false): string[] {
  switch (kind) {
    case 'create':
      return over ? [parentOf(path), path] : [parentOf(path)];
    case 'mkdir':
    case 'symlink':
    case 'unlink':
    case 'rmdir':
      return [parentOf(path)];
    case 'link':
      return uniq([parentOf(newPath ?? ''), path]);
    case 'rename':
      return uniq([parentOf(path), parentOf(newPath ?? '')]);
    case 'write':
    case 'truncate':
    case 'setattr':
      return [path];
    case 'fsync':
      return [];
  }
}

function uniq(a: string[]): string[] {
  return [...new Set(a)];
}

/** A byte range [start, end) a data operation changed; end = MAX_SAFE_INTEGER means "to the end". */
export type ByteRange = [number, number];

export const TO_END = Number.MAX_SAFE_INTEGER;
const MAX_RANGES = 64;

/**
 * The bytes a data operation may have changed in its file: a write its extent; a truncate (or a
 * setattr with a size) everything from the new size on (a shrink then a grow leaves zeros there);
 * metadata changes none. Undefined for operations whose marks are not the file itself.
 */
export function rangeOf(
  kind: MutationKind,
  h: Record<string, unknown>,
  payloadBytes: number,
): ByteRange | undefined {
  if (kind === 'write') {
    const off = Number(h['off'] ?? 0);
    return [off, off + payloadBytes];
  }
  if (kind === 'create' && h['over'] === true) return h['trunc'] === true ? [0, TO_END] : [0, payloadBytes];
  if ((kind === 'truncate' || kind === 'setattr') && h['size'] !== undefined)
    return [Number(h['size']), TO_END];
  // Metadata only (mode, times, link count): no data bytes to copy, an empty range.
  if (kind === 'setattr' || kind === 'link') return [0, 0];
  return undefined;
}

/** Adds a range to a sorted list of disjoint ranges; null (unknown) past MAX_RANGES pieces. */
export function addRange(list: ByteRange[], r: ByteRange): ByteRange[] | null {
  const out: ByteRange[] = [];
  let [s, e] = r;
  let placed = false;
  for (const [a, b] of list) {
    if (b < s) out.push([a, b]);
    else if (a > e) {
      if (!placed) {
        out.push([s, e]);
        placed = true;
      }
      out.push([a, b]);
    } else {
      s = Math.min(s, a);
      e = Math.max(e, b);
    }
  }
  if (!placed) out.push([s, e]);
  return out.length > MAX_RANGES ? null : out;
}
