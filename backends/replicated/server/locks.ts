/**
 * Advisory locks of the files of the shares this server serves, shared by every client mount:
 * POSIX byte-range locks (fcntl) and whole-file flock locks, in separate namespaces as on Linux.
 * A lock belongs to a client connection and a lock owner the client names (the kernel's
 * lock_owner); when the connection goes, its locks go with it, and waiters are woken.
 * Files are keyed by share and file id, so a lock follows a file across renames.
 * Kept in memory: a restart of the share server, or a failover, drops every lock; the mounts that
 * held them reclaim them during the grace period that follows a takeover (share-server.ts), while
 * other lock requests wait for its end (graceWait).
 * A POSIX lock wait that would close a cycle (its blockers wait, directly or through others, for
 * locks its own owner holds) fails with EDEADLK at once, as Linux answers F_SETLKW; flock waits
 * are not checked, as on Linux.
 */
import { ReplicatedError } from '../protocol/errors.ts';
import { type LockRange, overlaps, withoutRange } from '../protocol/lock-ranges.ts';

export type LockKind = 'posix' | 'flock';

/** How many owners a deadlock search visits at most (Linux follows 10 links). */
const MAX_DEADLOCK_SEARCH = 64;
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

/** Whether held lock `h` keeps `req` (of `type`) from being taken: another owner's, overlapping, one of them a write lock. */
function conflicting(h: Held, req: LockRequest, type: LockType): boolean {
  return (
    h.kind === req.kind &&
    !(h.client === req.client && h.owner === req.owner) &&
    (h.type === 'w' || type === 'w') &&
    overlaps(h, req)
  );
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
    return (this.held.get(key) ?? []).find((h) => conflicting(h, req, type));
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
    if (req.kind === 'posix' && this.waitWouldDeadlock(key, req, type))
      return Promise.reject(
        new ReplicatedError(
          'EDEADLK',
          'waiting would deadlock: the holder waits for a lock this owner holds',
        ),
      );
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

  /** Every held lock of another owner that keeps `type` over the range from being taken. */
  private conflicts(key: string, req: LockRequest, type: LockType): Held[] {
    return (this.held.get(key) ?? []).filter((h) => conflicting(h, req, type));
  }

  /**
   * Whether `req` waiting on `key` would wait forever: one of the owners holding what it conflicts
   * with waits for a POSIX lock whose holders (or theirs, and so on) include `req`'s owner. Any
   * such chain is a real deadlock, since a wait ends only when every conflicting lock is gone.
   */
  private waitWouldDeadlock(key: string, req: LockRequest, type: LockType): boolean {
    const same = (a: LockRequest, b: LockRequest) => a.client === b.client && a.owner === b.owner;
    const seen: LockRequest[] = [];
    const queue = this.conflicts(key, req, type);
    while (queue.length > 0 && seen.length < MAX_DEADLOCK_SEARCH) {
      const holder = queue.shift()!;
      if (same(holder, req)) return true;
      if (seen.some((s) => same(s, holder))) continue;
      seen.push(holder);
      for (const [k, list] of this.waiting)
        for (const w of list)
          if (w.kind === 'posix' && same(w, holder)) queue.push(...this.conflicts(k, w, w.type));
    }
    return false;
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
