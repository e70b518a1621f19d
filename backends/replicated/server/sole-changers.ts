/**
 * Directories whose entries one connection alone has changed since it made them (docs/mount.md,
 * "Lookups answered by the mount").
 *
 * A mount that made a directory knows it was empty, and knows every name it has put in it since.
 * As long as no one else changed the directory's entries, a name the mount did not put there is
 * missing, and the mount may say so itself instead of asking the share server: the LOOKUP the
 * kernel sends before every create of `tar x` or `cp -r` into a new directory costs no round trip.
 * The share server is the one place every change passes, so it keeps who that one connection is,
 * and tells it with each answer to a change in the directory (`dirSole`, `fromDirSole`, and for
 * a mkdir `sole`) whether it still is. The mount trusts a local miss only within its attribute
 * timeout of the last such answer, so a name made by another mount shows up there within that
 * timeout at the latest, as other directory changes do.
 *
 * Kept in issue order (the order the replicas apply changes), by path, and forgotten wholesale
 * whenever names may change other than by a mutation (heal, a usage reconcile): an entry missing
 * here only costs the mount its shortcut, never a wrong answer.
 */
import type { MutationKind } from '../protocol/opcodes.ts';
import { isUnder, parentOf } from '../protocol/paths.ts';

/** Directories kept at most; beyond it the oldest are forgotten. */
const SOLE_LIMIT = 16_384;

/** The directories whose entries a change of this kind changes (for a rename both, the target's first). */
function dirsChanged(kind: MutationKind, p: string, np: string | undefined): string[] {
  switch (kind) {
    case 'create':
    case 'mkdir':
    case 'symlink':
    case 'unlink':
    case 'rmdir':
      return [parentOf(p)];
    case 'link':
      return np === undefined ? [] : [parentOf(np)];
    case 'rename':
      return np === undefined ? [parentOf(p)] : [parentOf(np), parentOf(p)];
    default:
      return [];
  }
}

export class SoleChangers {
  /** A directory's path -> the one connection that changed its entries since making it. */
  private readonly changer = new Map<string, unknown>();
  /**
   * How many of those directories lie at or below each path: a rename of a path with none (a
   * file's, as almost every rename is) forgets nothing and walks nothing.
   */
  private readonly below = new Map<string, number>();

  get size(): number {
    return this.changer.size;
  }

  /**
   * A change issued (in issue order) by connection `by` (undefined: not a client's, e.g. heal's).
   * A directory another connection changes has no sole changer from then on; a mkdir's new
   * directory has its maker.
   */
  issued(kind: MutationKind, p: string, np: string | undefined, by: unknown): void {
    if (this.changer.size > 0) {
      for (const d of dirsChanged(kind, p, np)) if (this.changer.get(d) !== by) this.forget(d);
      // What was at these paths is gone or elsewhere now: no longer the directory that was made.
      if (kind === 'rmdir') this.forget(p);
      if (kind === 'rename') {
        this.forgetUnder(p);
        if (np !== undefined) this.forgetUnder(np);
      }
    }
    if (kind === 'mkdir' && by !== undefined) {
      if (this.changer.size >= SOLE_LIMIT) this.forget(this.changer.keys().next().value as string);
      if (!this.changer.has(p)) this.count(p, 1);
      this.changer.set(p, by);
    }
  }

  /** A change that was not applied: a mkdir that failed made nothing (the path may be another's). */
  failed(kind: MutationKind, p: string): void {
    if (kind === 'mkdir') this.forget(p);
  }

  /**
   * The answer's flags for connection `by`, taken when the change is answered: whether it is still
   * the sole changer of the directory in `dir` (the target's), of `fromDir` (a rename's other
   * directory), and, for a mkdir, of the directory it made.
   */
  flags(kind: MutationKind, p: string, np: string | undefined, by: unknown): Record<string, true> {
    const out: Record<string, true> = {};
    if (by === undefined) return out;
    const [dir, from] = dirsChanged(kind, p, np);
    if (dir !== undefined && this.changer.get(dir) === by) out['dirSole'] = true;
    if (from !== undefined && from !== dir && this.changer.get(from) === by) out['fromDirSole'] = true;
    if (kind === 'mkdir' && this.changer.get(p) === by) out['sole'] = true;
    return out;
  }

  clear(): void {
    this.changer.clear();
    this.below.clear();
  }

  private forget(d: string): void {
    if (this.changer.delete(d)) this.count(d, -1);
  }

  private forgetUnder(p: string): void {
    if (!this.below.has(p)) return;
    for (const d of [...this.changer.keys()]) if (isUnder(d, p)) this.forget(d);
  }

  /** Adds `n` to the count of `d` and of every directory above it. */
  private count(d: string, n: number): void {
    for (let q = d; ; q = parentOf(q)) {
      const c = (this.below.get(q) ?? 0) + n;
      if (c === 0) this.below.delete(q);
      else this.below.set(q, c);
      if (q === '') return;
    }
  }
}
