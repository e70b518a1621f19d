/**
 * Advisory locks of the files of the shares this server serves, shared by every client mount:
 * POSIX byte-range locks (fcntl) and whole-file flock locks, in separate namespaces as on Linux.
 * A lock belongs to a client connection and a lock owner the client names (the kernel's
 * lock_owner); when the connection goes, its locks go with it, and waiters are woken.
 * Files are keyed by share and file id, so a lock follows a file across renames.
 * Kept in memory: a restart of the share server, or a failover, drops every lock; the mounts that
 * held them reclaim them during the grace period that follows a takeover (share-server.ts), while
 * other lock requests wait for its end (graceWait). No deadlock detection.
 */
import { ReplicatedError } from '../protocol/errors.ts';
import { type LockRange, overlaps, withoutRange } from '../protocol/lock-ranges.ts';

export type LockKind = 'posix' | 'flock';
export type LockType = 'r' | 'w';

export interface LockRequest extends LockRange {
  /** The client connection the lock belongs to (its socket). */
  client: object;
  /** The client's lock owner (unique within the client). */
  owner: string;
  kind: LockKind;
  pid: number;
}

interface Held extends LockRequest {
  type: LockType;
}

interface Waiter extends Held {
  key: string;
  wid: string | undefined;
  resolve: () => void;
  reject: (e: ReplicatedError) => void;
}

/** A request held back until the grace period ends. */
interface Delayed {
  client: object;
  wid: string | undefined;
  timer: NodeJS.Timeout;
  reject: (e: ReplicatedError) => void;
}

export class LockTable {
  private readonly held = new Map<string, Held[]>();
  private readonly waiting = new Map<string, Waiter[]>();
  private readonly delayed = new Set<Delayed>();

  /**
   * Resolves after `ms` (the rest of a grace period); cancel() with `wid` gives up early with
   * EINTR, and the client's connection closing with ENOTCONN, as for a lock wait.
   */
  graceWait(client: object, wid: string | undefined, ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const d: Delayed = {
        client,
        wid,
        reject,
        timer: setTimeout(() => {
          this.delayed.delete(d);
          resolve();
        }, ms),
      };
      this.delayed.add(d);
    });
  }

  private dropDelayed(client: object, wid: string | undefined, err: ReplicatedError): boolean {
    let found = false;
    for (const d of this.delayed) {
      if (d.client !== client || (wid !== undefined && d.wid !== wid)) continue;
      clearTimeout(d.timer);
      this.delayed.delete(d);
      d.reject(err);
      found = true;
    }
    return found;
  }

  /** The first lock of another owner that keeps `type` over the range from being taken, if any. */
  conflict(key: string, req: LockRequest, type: LockType): Held | undefined {
    for (const h of this.held.get(key) ?? []) {
      if (h.kind !== req.kind || (h.client === req.client && h.owner === req.owner)) continue;
      if ((h.type === 'w' || type === 'w') && overlaps(h, req)) return h;
    }
    return undefined;
  }

  /**
   * Takes a lock: at once, or EAGAIN when another owner holds a conflicting one; with `wait`,
   * once the conflicting locks are gone (cancel() with `wid` gives up with EINTR).
   */
  lock(key: string, req: LockRequest, type: LockType, wait: boolean, wid?: string): Promise<void> {
    if (!this.conflict(key, req, type)) {
      this.apply(key, { ...req, type });
      return Promise.resolve();
    }
    if (!wait) return Promise.reject(new ReplicatedError('EAGAIN', 'a conflicting lock is held'));
    return new Promise((resolve, reject) => {
      const list = this.waiting.get(key) ?? [];
      list.push({ ...req, type, key, wid, resolve, reject });
      this.waiting.set(key, list);
    });
  }

  /** Removes the owner's locks over the range (splitting those that reach past it). */
  unlock(key: string, req: LockRequest): void {
    this.subtract(key, req);
    this.wake(key);
  }

  /** A waiter of this client gives up (the program waiting was interrupted). */
  cancel(client: object, wid: string): void {
    if (this.dropDelayed(client, wid, new ReplicatedError('EINTR', 'lock wait interrupted'))) return;
    for (const [key, list] of this.waiting) {
      const i = list.findIndex((w) => w.client === client && w.wid === wid);
      if (i < 0) continue;
      const [w] = list.splice(i, 1);
      if (list.length === 0) this.waiting.delete(key);
      w!.reject(new ReplicatedError('EINTR', 'lock wait interrupted'));
      return;
    }
  }

  /** The client's connection is gone: its locks are released and its waiters dropped. */
  dropClient(client: object): void {
    this.dropDelayed(client, undefined, new ReplicatedError('ENOTCONN', 'client gone'));
    const touched: string[] = [];
    for (const [key, list] of this.held) {
      const kept = list.filter((h) => h.client !== client);
      if (kept.length !== list.length) touched.push(key);
      if (kept.length === 0) this.held.delete(key);
      else this.held.set(key, kept);
    }
    for (const [key, list] of this.waiting) {
      const kept = list.filter((w) => w.client !== client);
      for (const w of list) if (w.client === client) w.reject(new ReplicatedError('ENOTCONN', 'client gone'));
      if (kept.length === 0) this.waiting.delete(key);
      else this.waiting.set(key, kept);
    }
    for (const key of touched) this.wake(key);
  }

  /** Locks held (for tests and debugging). */
  count(): number {
    let n = 0;
    for (const l of this.held.values()) n += l.length;
    return n;
  }

  private subtract(key: string, req: LockRequest): void {
    const out = withoutRange(
      this.held.get(key) ?? [],
      (h) => h.kind === req.kind && h.client === req.client && h.owner === req.owner,
      req,
    );
    if (out.length === 0) this.held.delete(key);
    else this.held.set(key, out);
  }

  /** Holds `lock`, replacing what its owner held over the range. */
  private place(key: string, lock: Held): void {
    this.subtract(key, lock);
    const list = this.held.get(key) ?? [];
    list.push(lock);
    this.held.set(key, list);
  }

  private apply(key: string, lock: Held): void {
    this.place(key, lock);
    // A downgrade (w → r) may let readers in.
    if (lock.type === 'r') this.wake(key);
  }

  /** Grants what waits on `key` and no longer conflicts, in arrival order. */
  private wake(key: string): void {
    const list = this.waiting.get(key);
    if (!list) return;
    for (let i = 0; i < list.length; ) {
      const w = list[i]!;
      if (this.conflict(key, w, w.type)) {
        i++;
        continue;
      }
      list.splice(i, 1);
      const { client, owner, kind, pid, start, end, type } = w;
      this.place(key, { client, owner, kind, pid, start, end, type });
      w.resolve();
    }
    if (list.length === 0) this.waiting.delete(key);
  }
}
