/**
 * The kernel names files by node ID; the share protocol names them by path. This table keeps one
 * node per file the kernel holds (keyed by the file's id on the share, so hard links share a
 * node), the path this mount last saw it at, and the kernel's lookup count (FORGET drops nodes).
 * Renames and unlinks made through this mount move or detach paths at once; changes made by other
 * mounts are found when a path answers with another file id (the caller then says ESTALE and the
 * kernel looks the name up again).
 */
import { isUnder } from '../../backends/replicated/protocol/paths.ts';

export const ROOT_NODE = 1;

export interface Node {
  readonly ino: number;
  /** The file's id on the share (stable across renames, the same for every hard link). */
  fid: string;
  /** Share-relative path ('' is the root); null once its last known name is gone. */
  path: string | null;
  /** Every path this mount knows for it (several for hard links). */
  readonly names: Set<string>;
  dir: boolean;
  /** Lookups the kernel holds (each LOOKUP, CREATE, MKDIR, SYMLINK, LINK reply counts one). */
  nlookup: number;
  /** Open file handles on this node in this mount (an unlinked open file is kept, renamed). */
  open: number;
}

export class NodeTable {
  private readonly byIno = new Map<number, Node>();
  private readonly byFid = new Map<string, Node>();
  /** Current path -> node, for the paths this mount knows. */
  private readonly byPath = new Map<string, Node>();
  private next = ROOT_NODE + 1;

  constructor(rootFid: string) {
    const root: Node = {
      ino: ROOT_NODE,
      fid: rootFid,
      path: '',
      names: new Set(['']),
      dir: true,
      nlookup: 1,
      open: 0,
    };
    this.byIno.set(ROOT_NODE, root);
    this.byFid.set(rootFid, root);
    this.byPath.set('', root);
  }

  get size(): number {
    return this.byIno.size;
  }

  get(ino: number): Node | undefined {
    return this.byIno.get(ino);
  }

  atPath(path: string): Node | undefined {
    return this.byPath.get(path);
  }

  /**
   * The kernel is told about `fid` at `path` (a lookup or a new file): the node for that file,
   * created if new, now at `path`, with one more lookup when `counted`.
   */
  found(path: string, fid: string, counted = true, dir = false): Node {
    let n = this.byFid.get(fid);
    // A directory has one name: found elsewhere, it was renamed (by another mount), and what is
    // known below it moved with it (the kernel moves its cached names the same way).
    if (n?.dir && n.path !== null && n.path !== path && n.ino !== ROOT_NODE) this.renamed(n.path, path, true);
    if (!n) {
      n = { ino: this.next++, fid, path, names: new Set(), dir, nlookup: 0, open: 0 };
      this.byIno.set(n.ino, n);
      this.byFid.set(fid, n);
    }
    const there = this.byPath.get(path);
    if (there && there !== n) this.detach(path);
    n.path = path;
    n.names.add(path);
    this.byPath.set(path, n);
    if (counted) n.nlookup++;
    return n;
  }

  /** FORGET: the kernel dropped `count` lookups; a node with none left (and not open) goes. */
  forget(ino: number, count: number): void {
    const n = this.byIno.get(ino);
    if (!n || ino === ROOT_NODE) return;
    n.nlookup = Math.max(0, n.nlookup - count);
    this.dropIfUnused(n);
  }

  dropIfUnused(n: Node): void {
    if (n.nlookup > 0 || n.open > 0 || n.ino === ROOT_NODE) return;
    this.byIno.delete(n.ino);
    if (this.byFid.get(n.fid) === n) this.byFid.delete(n.fid);
    for (const p of n.names) if (this.byPath.get(p) === n) this.byPath.delete(p);
    n.names.clear();
  }

  /** The name `path` is gone (unlink, rmdir, or replaced): the node it named keeps another name if known. */
  detach(path: string): void {
    const n = this.byPath.get(path);
    if (!n) return;
    this.byPath.delete(path);
    n.names.delete(path);
    if (n.path === path) n.path = n.names.values().next().value ?? null;
  }

  /**
   * `from` was renamed to `to` (over whatever was there): it moves, and with `dir` everything
   * known below it too (a walk of the table: directory renames are rare next to file ones).
   */
  renamed(from: string, to: string, dir: boolean): void {
    this.detach(to);
    const moved: Array<[string, Node]> = [];
    if (dir) {
      for (const [p, n] of this.byPath) if (isUnder(p, from)) moved.push([p, n]);
      // Names still known below the replaced one belonged to what was there before.
      for (const p of [...this.byPath.keys()]) if (isUnder(p, to) && !isUnder(p, from)) this.detach(p);
    } else {
      const n = this.byPath.get(from);
      if (n) moved.push([from, n]);
    }
    for (const [p, n] of moved) {
      this.byPath.delete(p);
      n.names.delete(p);
      const np = to + p.slice(from.length);
      if (n.path === p) n.path = np;
      n.names.add(np);
      this.byPath.set(np, n);
    }
  }

  /** The file at `n`'s path is another one now (changed by another mount): forget that name. */
  stale(n: Node): void {
    if (n.path !== null && n.ino !== ROOT_NODE) this.detach(n.path);
  }

  /** The file's id changed under this node (the root of a reverted share): keep the node, new id. */
  refid(n: Node, fid: string): void {
    if (this.byFid.get(n.fid) === n) this.byFid.delete(n.fid);
    n.fid = fid;
    this.byFid.set(fid, n);
  }
}
