/**
 * The share planner's map from a path to the id of the file there, with an index of the cached
 * paths below each directory, so that forgetting a name and everything under it (unlink, rmdir,
 * rename) costs what that subtree holds, not a walk of the whole map: removing a directory of
 * n files one by one stays O(n), where a walk per removal made it O(n²).
 */
import { parentOf } from '../protocol/paths.ts';

export class PathIds {
  private readonly ids = new Map<string, string>();
  /** A directory -> the cached paths directly in it, and its subdirectories that lead to some. */
  private readonly below = new Map<string, Set<string>>();

  get size(): number {
    return this.ids.size;
  }

  get(p: string): string | undefined {
    return this.ids.get(p);
  }

  has(p: string): boolean {
    return this.ids.has(p);
  }

  set(p: string, id: string): void {
    this.ids.set(p, id);
    // Register p in its directory, and each directory in its own up to one already known.
    for (let child = p; child !== ''; ) {
      const dir = parentOf(child);
      const set = this.below.get(dir);
      if (set) {
        set.add(child);
        return;
      }
      this.below.set(dir, new Set([child]));
      child = dir;
    }
  }

  /** Forgets `p` and every cached path below it. */
  forgetUnder(p: string): void {
    const stack = [p];
    while (stack.length > 0) {
      const q = stack.pop()!;
      this.ids.delete(q);
      const set = this.below.get(q);
      if (!set) continue;
      this.below.delete(q);
      for (const c of set) stack.push(c);
    }
    this.unlink(p);
  }

  clear(): void {
    this.ids.clear();
    this.below.clear();
  }

  /** Takes `p` out of its directory's set, and directories left with nothing in or below them out of theirs. */
  private unlink(p: string): void {
    for (let child = p; child !== ''; ) {
      const dir = parentOf(child);
      const set = this.below.get(dir);
      if (!set) return;
      set.delete(child);
      if (set.size > 0) return;
      this.below.delete(dir);
      if (this.ids.has(dir)) return; // still cached itself (a stale name had been kept below it)
      child = dir;
    }
  }
}
