/**
 * The locks this mount holds on the share server, as the server granted them: what the mount
 * reclaims when it reconnects after a share-server restart or failover (the new owner starts with
 * an empty lock table and a grace period for reclaims; server/locks.ts). Byte ranges follow
 * fcntl's rules: a new lock of an owner replaces what that owner held over its range, and an
 * unlock of part of a range leaves the rest.
 */
import { type LockRange, withoutRange } from '../../backends/replicated/protocol/lock-ranges.ts';
import type { Node } from './node-table.ts';

export interface HeldLock {
  owner: string;
  kind: 'posix' | 'flock';
  type: 'r' | 'w';
  /** First and last byte (inclusive; Infinity: to the end of any file). */
  start: number;
  end: number;
  pid: number;
}

interface FileLocks {
  node: Node;
  locks: HeldLock[];
}

export class HeldLocks {
  /** By file id (the server keys its table the same way). */
  private readonly files = new Map<string, FileLocks>();

  /** The server granted `lock` on node `n`. */
  granted(n: Node, lock: HeldLock): void {
    this.released(n, lock.owner, lock.kind, lock);
    const f = this.files.get(n.fid) ?? { node: n, locks: [] };
    f.node = n;
    f.locks.push({ ...lock });
    this.files.set(n.fid, f);
  }

  /** The owner's locks of this kind over `range` on node `n` are gone (unlock or close). */
  released(n: Node, owner: string, kind: HeldLock['kind'], range: LockRange): void {
    const f = this.files.get(n.fid);
    if (!f) return;
    const out = withoutRange(f.locks, (l) => l.owner === owner && l.kind === kind, range);
    if (out.length === 0) this.files.delete(n.fid);
    else f.locks = out;
  }

  /** Forgets every lock held on node `n` (they were lost). */
  drop(n: Node): void {
    this.files.delete(n.fid);
  }

  /** Every file with locks, and its locks (a copy: reclaiming may change the table). */
  list(): Array<{ node: Node; locks: HeldLock[] }> {
    return [...this.files.values()].map((f) => ({ node: f.node, locks: [...f.locks] }));
  }

  get size(): number {
    let n = 0;
    for (const f of this.files.values()) n += f.locks.length;
    return n;
  }
}
