/**
 * The FUSE file system of `abaca mount`: the kernel's inode-based requests (client/fuse/session.ts)
 * answered with the share server's path-based operations, through a NodeTable.
 *
 * Coherence is NFS's close-to-open: writes may be answered before the share server has them
 * (write-behind, bounded per file; `writeBehindBytes: 0` turns it off), but flush (close), fsync
 * and unlocking wait for them; an open asks the server for the file's attributes and tells the
 * kernel to drop the ones it cached when they changed, and the kernel keeps a file's cached pages
 * at an open only when the file is the version they were read under (FOPEN_KEEP_CACHE), else it
 * drops them. Names and attributes are otherwise cached for the entry and attribute timeouts.
 *
 * Creates are written behind too (`deferCreate`): a create without O_EXCL is answered at once
 * under a file id the server reserved for this connection, and sent with the data written to it
 * since (one replicated operation for a small file) at close, or at anything else that needs the
 * file on the server, and within a tenth of a second at the latest. The LOOKUP the kernel sends
 * before a create, of a name missing in a directory this mount made and alone changed, is answered
 * here (KnownNames).
 */
import fs from 'node:fs';
import { constants } from 'node:os';
import type { ReplicatedClient } from '../../backends/replicated/client/client.ts';
import { toReplicatedError } from '../../backends/replicated/protocol/errors.ts';
import { OP } from '../../backends/replicated/protocol/opcodes.ts';
import { checkClientPath, joinPath, LINKS_ROOT, parentOf } from '../../backends/replicated/protocol/paths.ts';
import { grantOf, type ReadGrant } from '../../backends/replicated/protocol/read-grants.ts';
import type { Attr as WireAttr, DirEntry as WireDirEntry } from '../../backends/replicated/protocol/types.ts';
import {
  type Attr,
  type DirEntry,
  F_RDLCK,
  F_UNLCK,
  F_WRLCK,
  type FileLock,
  FOPEN_DIRECT_IO,
  FOPEN_KEEP_CACHE,
  type Opened,
  type StatFs,
} from '../fuse/protocol.ts';
import { FuseError, type FuseOps, type ReadData, type SetAttr } from '../fuse/session.ts';
import type { DirectReads } from './direct-reads.ts';
import { toFuseError } from './errno.ts';
import { HeldLocks } from './held-locks.ts';
import { type Node, NodeTable, ROOT_NODE } from './node-table.ts';
import { connectionLost, type ShareConnection } from './share-connection.ts';

const E = constants.errno;
const O_ACCMODE = 3;
const O_RDONLY = 0;
const O_EXCL = fs.constants.O_EXCL;
const O_TRUNC = fs.constants.O_TRUNC;
const O_APPEND = fs.constants.O_APPEND;
const RENAME_NOREPLACE = 1;
const DEFAULT_WRITE_BEHIND = 16 * 1024 * 1024;
/** A deferred create is sent this long after it was answered at the latest (less with a shorter attribute timeout). */
const DEFER_MS = 100;
/** Data a deferred create gathers per file, and in all deferred creates of the mount. */
const DEFER_BYTES = 1024 * 1024;
const DEFERRED_TOTAL = 64 * 1024 * 1024;
/** Reserved file ids: more are asked for below IDS_LOW, IDS_BATCH at a time. */
const IDS_LOW = 64;
const IDS_BATCH = 256;
/** Directories, and names in all of them, whose KnownNames the mount keeps at most (the oldest directories go first). */
const KNOWN_DIRS_MAX = 4096;
const KNOWN_NAMES_MAX = 500_000;

const TYPE_BITS: Record<string, number> = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  other: 0o100000,
};

/** Prefix of the name an open file is moved to when it is unlinked through this mount (NFS's .nfsXXXX). */
export const UNLINKED_PREFIX = '.abaca-unlinked-';

interface Handle {
  node: Node;
  append: boolean;
  writable: boolean;
  /** A lock taken on the file could not be reclaimed after a reconnection: I/O through it is EIO. */
  lost?: boolean;
}

/** A create answered to the kernel and not sent yet, with the data written since from offset 0. */
interface Deferred {
  parent: number;
  /** Its name in `parent` when it was made (that directory's KnownNames hold it). */
  name: string;
  mode: number;
  trunc: boolean;
  data: Buffer[];
  bytes: number;
  timer: NodeJS.Timeout;
}

/**
 * A directory this mount made, with every name it has put in it since (and maybe some it has
 * removed): while the share server says no other connection changed its entries (sole-changers.ts),
 * a name not here is missing, and a LOOKUP of it is answered by the mount within the attribute
 * timeout of the last change the server answered so (`confirmedAt`, when that change was sent, on
 * the monotonic clock).
 */
interface KnownNames {
  names: Set<string>;
  confirmedAt: number;
  /** The connection it was learned on (ShareFs.knownEpoch): a new one knows nothing of it. */
  epoch: number;
}

type ChangeReply = Awaited<ReturnType<ShareConnection['call']>>;

interface MountedNode extends Node {
  /** What the kernel was last told of the file: `v:size:mtime` (an open compares it). */
  told?: string;
  /**
   * The version (`v:size`) every page the kernel may hold of this file was read at, set by an
   * open that no read overlapped; an open that finds the file still at it keeps the pages.
   */
  cachedAt?: string;
  /** READs of this file on their way to the server, and how many were ever sent (see open). */
  reading?: number;
  readsSent?: number;
  /** Unlinked while open here: removed from its hidden name at the last release. */
  unlinked?: boolean;
  /** Writes answered to the kernel but not yet by the server (write-behind), and their bytes. */
  inflight?: Set<Promise<void>>;
  inflightBytes?: number;
  /** The first write-behind failure, reported by the next write, flush, fsync or close. */
  writeError?: FuseError;
  /** Created here and not sent yet (see deferCreate). */
  deferred?: Deferred;
  /** The deferred create on its way: the file's writes are sent after it. */
  creating?: Promise<void>;
  /** Lock owners that took locks on this file through this mount (their close releases them). */
  lockOwners?: Set<string>;
  /** How many times a lock on this file could not be reclaimed (writes issued before are not sent). */
  locksLost?: number;
  /**
   * A directory's attributes as a change made through this mount left them (the reply to a
   * create, mkdir, symlink or link in it), and when: the kernel drops a directory's attributes
   * after such a change and asks again at the next path walk; that GETATTR is answered from here
   * once, within the attribute timeout, instead of from the server.
   */
  changed?: { attr: WireAttr; at: number };
  /**
   * The share server's grant to read this file from a brick directly (direct-reads.ts), with the
   * mount-wide grant epoch it was taken at (see dropGrants).
   */
  grant?: ReadGrant & { epoch: number };
  /** Moved by every change this mount sends of the file: a grant read before one is not taken. */
  grantGen?: number;
}

export interface ShareFsOptions {
  /** Refuse every change (EROFS), as the kernel does for a read-only mount. */
  readOnly?: boolean;
  /**
   * Write-behind: bytes per file that may be on their way to the server after WRITE was answered
   * (default 16 MiB; 0 answers each WRITE only after the server did). Errors of such writes come
   * back from the next write, fsync or close, as over NFS.
   */
  writeBehindBytes?: number;
  /** The kernel's attribute timeout (ms): how long a directory's attributes from a change may answer a GETATTR (0: never). */
  attrTimeoutMs?: number;
  /**
   * Read file data from the bricks directly, with the share server's grants (direct-reads.ts);
   * without it every read goes through the share server.
   */
  directReads?: DirectReads;
  log?: (msg: string) => void;
}

export class ShareFs implements FuseOps {
  /** Listings carry each entry's attributes (READDIRPLUS): `ls -l` needs no LOOKUP per name. */
  readonly readdirPlus = true;
  private readonly handles = new Map<number, Handle>();
  private readonly listings = new Map<number, DirEntry[] | null>();
  private nextFh = 1;
  private nextWait = 1;
  /** Set once mounted: drops the kernel's cached attributes of a node. */
  invalidate: ((ino: number) => void) | undefined;
  /** Set once mounted: drops the kernel's cached attributes and pages of a node. */
  invalidateData: ((ino: number) => Promise<void>) | undefined;

  /** The locks the server granted through this mount (reclaimed after a reconnection). */
  readonly heldLocks = new HeldLocks();
  /** File ids the server reserved for this connection's creates (newIds). */
  private readonly ids: string[] = [];
  private fetchingIds: Promise<void> | undefined;
  /** The server has no newIds (an older one): every create waits for it. */
  private noIds = false;
  /** The share server's clock minus this host's, as last measured (newIds replies). */
  private serverClockOffset = 0;
  private readonly deferredNodes = new Set<MountedNode>();
  private deferredBytes = 0;
  /** Moves with each new connection to the share server: KnownNames of an earlier one are not used. */
  private knownEpoch = 0;
  /**
   * Directories this mount made, by file id (kept when the kernel forgets the directory's node,
   * and found again when it looks the directory up again).
   */
  private readonly known = new Map<string, KnownNames>();
  /** Names in all of `known`. */
  private knownCount = 0;
  /** LOOKUPs this mount answered ENOENT itself (KnownNames), for an operator (SIGUSR1) and tests. */
  lookupsAnswered = 0;

  private constructor(
    private readonly conn: ShareConnection,
    readonly nodes: NodeTable,
    private readonly opts: ShareFsOptions,
  ) {
    conn.onReconnect = (c) => {
      // Reserved for the lost connection: a new one's come with the next request for them. The
      // server there may be another (a failover), so one that had no reserved ids is asked again.
      this.ids.length = 0;
      this.noIds = false;
      this.dropGrants();
      this.knownEpoch++;
      return this.reclaimLocks(c);
    };
    conn.keepConnected = () => this.heldLocks.size > 0;
  }

  /**
   * A new connection after a lost one: the share server there (restarted, or the share's new
   * owner) has an empty lock table and a grace period; each lock this mount held is taken again
   * before anything else is sent. A lock that cannot be (the grace period is over, or the server
   * never lost it but dropped it with the old connection, or another mount holds it now) is lost:
   * as NFS does, I/O through the file's open handles then fails with EIO, so a program never goes
   * on believing it holds a lock that another may hold.
   */
  private async reclaimLocks(c: ReplicatedClient): Promise<void> {
    for (const { node, locks } of this.heldLocks.list()) {
      for (const l of locks) {
        try {
          await c.call(OP.lock, { ...lockHeader(node, l.owner, l.kind, l), type: l.type, reclaim: true });
        } catch (err) {
          const e = toReplicatedError(err);
          // The new connection failed too: the next one tries again.
          if (connectionLost(e.code)) throw e;
          this.heldLocks.drop(node);
          const n = node as MountedNode;
          n.locksLost = (n.locksLost ?? 0) + 1;
          for (const h of this.handles.values()) if (h.node === node) h.lost = true;
          this.opts.log?.(`lock on ${node.path ?? node.fid} lost at reconnection: ${e.message}`);
          break;
        }
      }
    }
  }

  static async create(conn: ShareConnection, opts: ShareFsOptions = {}): Promise<ShareFs> {
    const root = (await conn.call(OP.getattr, { path: '' })).header['attr'] as WireAttr;
    const sfs = new ShareFs(conn, new NodeTable(root.id), opts);
    sfs.refillIds();
    return sfs;
  }

  // ---- helpers -----------------------------------------------------------------------------------
  private node(ino: number): MountedNode {
    const n = this.nodes.get(ino);
    if (!n) throw new FuseError(E.ESTALE);
    return n;
  }

  private pathOf(n: Node): string {
    if (n.path === null) throw new FuseError(E.ESTALE);
    return n.path;
  }

  private childPath(parent: number, name: string): string {
    const dir = this.pathOf(this.node(parent));
    if (dir === '' && name === LINKS_ROOT) throw new FuseError(E.ENOENT);
    return joinPath(dir, name);
  }

  private writeCheck(): void {
    if (this.opts.readOnly) throw new FuseError(E.EROFS);
  }

  private async call(op: number, header: object, payload?: Buffer) {
    return this.conn.call(op, header, payload);
  }

  /**
   * Grants taken before this epoch are not used (dropGrants). A grant names a brick that held
   * the file's current version when it was read; that brick may miss a later change, so a grant
   * is dropped whenever this mount could depend on seeing one: when it changes the file itself,
   * when an open finds another version (close-to-open), when it takes a lock (the previous
   * holder's writes), and on a new connection to the share server.
   */
  private grantEpoch = 0;

  private dropGrant(n: MountedNode): void {
    n.grant = undefined;
    n.grantGen = (n.grantGen ?? 0) + 1;
  }

  /**
   * A request whose answer may carry a read grant for `n` (a read, an open's getattr). The grant
   * is kept unless this mount changed the file or took a lock while the request was on its way:
   * the bricks it names may be ones that missed that change.
   */
  private async callTakingGrant(n: MountedNode, op: number, header: object) {
    const gen = n.grantGen ?? 0;
    const epoch = this.grantEpoch;
    const r = await this.call(op, header);
    const grant = this.opts.directReads ? grantOf(r.header['grant']) : undefined;
    if (grant && (n.grantGen ?? 0) === gen && epoch === this.grantEpoch && grant.id === n.fid)
      n.grant = { ...grant, epoch };
    return r;
  }

  /** Every grant of this mount (a lock was taken: see grantEpoch). */
  private dropGrants(): void {
    this.grantEpoch++;
  }

  /**
   * A write of node `n`. Issued under a lock that is then lost (the mount was away past the grace
   * period), it is not sent: another mount may have taken the lock and changed the file since, and
   * the data would overwrite that. The program hears EIO (at once, or from fsync or close).
   */
  private sendWrite(n: MountedNode, header: object, data: Buffer) {
    this.dropGrant(n);
    const losses = n.locksLost ?? 0;
    return this.conn.call(OP.write, header, data, () =>
      (n.locksLost ?? 0) === losses ? undefined : `a lock on ${n.path ?? n.fid} was lost: write not sent`,
    );
  }

  private async stat(path: string): Promise<WireAttr> {
    return (await this.call(OP.getattr, { path })).header['attr'] as WireAttr;
  }

  /**
   * The attributes of a node, from the server; ESTALE when its path now names another file.
   * `withGrant` (an open): the answer also brings a grant for direct reads, so that the file's
   * first reads go to the bricks too.
   */
  private async fresh(n: MountedNode, withGrant = false): Promise<WireAttr> {
    let a: WireAttr;
    if (withGrant && this.opts.directReads)
      a = (await this.callTakingGrant(n, OP.getattr, { path: this.pathOf(n), grant: true })).header[
        'attr'
      ] as WireAttr;
    else a = await this.stat(this.pathOf(n));
    if (a.id !== n.fid) {
      if (n.ino === ROOT_NODE) this.nodes.refid(n, a.id);
      else {
        this.nodes.stale(n);
        throw new FuseError(E.ESTALE);
      }
    }
    return a;
  }

  private toAttr(a: WireAttr, n: MountedNode): Attr {
    n.told = stamp(a);
    return {
      ino: stIno(a.id, n.ino),
      nodeid: n.ino,
      size: a.size,
      mode: (TYPE_BITS[a.type] ?? 0o100000) | (a.mode & 0o7777),
      nlink: n.unlinked ? 0 : a.nlink,
      uid: 0,
      gid: 0,
      atimeMs: a.atimeMs,
      mtimeMs: a.mtimeMs,
      ctimeMs: a.ctimeMs,
    };
  }

  /** A name the kernel will hold: one more lookup on its node. */
  private entry(path: string, a: WireAttr): Attr {
    const n = this.nodes.found(path, a.id, true, a.type === 'dir');
    return this.toAttr(a, n);
  }

  /**
   * A create, mkdir, symlink or link answered: the new name's attributes (from the reply, so the
   * kernel needs no LOOKUP or GETATTR after it, and this mount no getattr of its own), and its
   * directory's, kept for the GETATTR the kernel sends next. (A server without them: one getattr.)
   */
  private async named(path: string, parent: number, header: Record<string, unknown>): Promise<Attr> {
    const a = (header['attr'] as WireAttr | undefined) ?? (await this.stat(path));
    this.dirFrom(parent, header['dir']);
    return this.entry(path, a);
  }

  /** Keeps the directory attributes a change's reply carried for the kernel's next GETATTR. */
  private dirFrom(parent: number, carried: unknown): void {
    const dir = carried as WireAttr | undefined;
    const p = this.nodes.get(parent) as MountedNode | undefined;
    if (dir && p && p.fid === dir.id && (!p.changed || p.changed.attr.v <= dir.v))
      p.changed = { attr: dir, at: Date.now() };
  }

  /** A change to a directory's entries that did not say what its attributes became. */
  private dirChanged(parent: number): void {
    const p = this.nodes.get(parent) as MountedNode | undefined;
    if (p) p.changed = undefined;
  }

  /** A removal's or rename's reply: the directory's attributes when it carried them (a newer server), else unknown. */
  private dirAfter(parent: number, carried: unknown): void {
    if (carried === undefined) this.dirChanged(parent);
    else this.dirFrom(parent, carried);
  }

  // ---- names known missing (KnownNames) ----------------------------------------------------------
  private knownNames(dir: number): KnownNames | undefined {
    const fid = this.nodes.get(dir)?.fid;
    const k = fid === undefined ? undefined : this.known.get(fid);
    if (k && k.epoch !== this.knownEpoch) this.forgetKnown(fid!);
    return k?.epoch === this.knownEpoch ? k : undefined;
  }

  private forgetNames(dir: number): void {
    const fid = this.nodes.get(dir)?.fid;
    if (fid !== undefined) this.forgetKnown(fid);
  }

  private forgetKnown(fid: string): void {
    const k = this.known.get(fid);
    if (!k) return;
    this.knownCount -= k.names.size;
    this.known.delete(fid);
  }

  /** A name this mount is about to put in directory `dir` (or just put there). */
  private addKnown(dir: number, name: string): void {
    const k = this.knownNames(dir);
    if (!k || k.names.has(name)) return;
    k.names.add(name);
    this.knownCount++;
    // Too many: the directories known longest go first (their lookups go to the server again).
    while (this.knownCount > KNOWN_NAMES_MAX || this.known.size > KNOWN_DIRS_MAX)
      this.forgetKnown(this.known.keys().next().value as string);
  }

  /**
   * Whether `name` in directory `dir` is surely missing: the directory is one this mount made and
   * alone changed, as the server said within the attribute timeout, and the name is none it put there.
   */
  private knownMissing(dir: number, name: string, path: string): boolean {
    const k = this.knownNames(dir);
    return (
      k !== undefined &&
      !k.names.has(name) &&
      this.nodes.atPath(path) === undefined &&
      performance.now() - k.confirmedAt < (this.opts.attrTimeoutMs ?? 0)
    );
  }

  /**
   * Sends a change of directory entries: `to` names a new entry (a create, mkdir, symlink, link or
   * rename target), `from` removes one (an unlink, rmdir or rename source). A new name is known
   * before it is sent; a removed one is forgotten once the server did it. The answer says whether
   * this connection is still the only one that changed each directory (`dirSole` for the
   * target's, `fromDirSole` for a rename's source's); where not, or when the change failed (the
   * server may have found a name this mount did not know), what the mount knew of it is dropped.
   */
  private async changeEntries(
    to: { dir: number; name: string } | undefined,
    from: { dir: number; name: string } | undefined,
    send: () => Promise<ChangeReply>,
  ): Promise<ChangeReply> {
    const epoch = this.knownEpoch;
    if (to) this.addKnown(to.dir, to.name);
    const sentAt = performance.now();
    let r: ChangeReply;
    try {
      r = await send();
    } catch (err) {
      if (to) this.forgetNames(to.dir);
      if (from) this.forgetNames(from.dir);
      throw err;
    }
    const main = to ?? from!;
    this.confirmNames(main.dir, r.header['dirSole'], r.header['dir'], sentAt, epoch);
    if (from && from.dir !== main.dir)
      this.confirmNames(from.dir, r.header['fromDirSole'], r.header['fromDir'], sentAt, epoch);
    if (from && !(to && to.dir === from.dir && to.name === from.name)) {
      const k = this.knownNames(from.dir);
      if (k?.names.delete(from.name)) this.knownCount--;
    }
    return r;
  }

  /**
   * The server's word on whether this connection alone changed directory `dir`, for a change
   * sent at `sentAt`, with the attributes of the directory the server changed (`carried`). The
   * server keeps who changed a path: when the directory there is not the one this node is (it was
   * renamed away and made again meanwhile, and the request went through the old node's path),
   * neither is vouched for, and the one the change landed in misses the name.
   */
  private confirmNames(dir: number, sole: unknown, carried: unknown, sentAt: number, epoch: number): void {
    const changed = (carried as WireAttr | undefined)?.id;
    const fid = this.nodes.get(dir)?.fid;
    if (changed === undefined || changed !== fid) {
      if (changed !== undefined) this.forgetKnown(changed);
      this.forgetNames(dir);
      return;
    }
    const k = this.knownNames(dir);
    if (!k) return;
    if (sole === true && epoch === k.epoch) k.confirmedAt = Math.max(k.confirmedAt, sentAt);
    else this.forgetNames(dir);
  }

  private newHandle(n: Node, flags: number): number {
    const fh = this.nextFh++;
    const writable = (flags & O_ACCMODE) !== O_RDONLY;
    this.handles.set(fh, { node: n, append: (flags & O_APPEND) !== 0, writable });
    n.open++;
    return fh;
  }

  /**
   * Sends the node's deferred create, if any, and waits for its write-behind to reach the server
   * (before anything reads its size or data).
   */
  private async drain(n: MountedNode | undefined): Promise<void> {
    if (n?.deferred) this.sendCreate(n);
    while (n?.inflight && n.inflight.size > 0) await Promise.all([...n.inflight]);
  }

  /** Sends the node's deferred create, if any, and waits for it (not for its other writes). */
  private async created(n: MountedNode): Promise<void> {
    if (n.deferred) this.sendCreate(n);
    await n.creating;
  }

  /**
   * The mount's deferred creates sent and answered: all of them (before a rename or rmdir, which
   * may move or empty any directory above them), or those in directory `dir` (before its listing).
   */
  private async createdAll(dir?: string): Promise<void> {
    const nodes = [...this.deferredNodes].filter(
      (n) => dir === undefined || (n.path !== null && parentOf(n.path) === dir),
    );
    await Promise.all(nodes.map((n) => this.created(n)));
  }

  // ---- deferred creates ------------------------------------------------------------------------
  /** Asks for more reserved file ids when few are left (one request at a time). */
  private refillIds(): void {
    if (this.opts.readOnly || this.noIds || this.fetchingIds || this.ids.length >= IDS_LOW) return;
    const asked = Date.now();
    this.fetchingIds = this.call(OP.newIds, { count: IDS_BATCH })
      .then(
        (r) => {
          const ids = r.header['ids'];
          if (Array.isArray(ids)) for (const id of ids) if (typeof id === 'string') this.ids.push(id);
          // The server's clock against ours, taken at the middle of the round trip.
          const now = r.header['now'];
          if (typeof now === 'number' && Number.isFinite(now))
            this.serverClockOffset = now - (asked + Date.now()) / 2;
        },
        (err: unknown) => {
          if (toReplicatedError(err).code === 'ENOSYS') this.noIds = true;
        },
      )
      .finally(() => {
        this.fetchingIds = undefined;
      });
  }

  /** How long a create may wait to be sent: 0 when it may not (no write-behind, no attribute cache). */
  private get deferMs(): number {
    if ((this.opts.writeBehindBytes ?? DEFAULT_WRITE_BEHIND) === 0) return 0;
    return Math.min(DEFER_MS, this.opts.attrTimeoutMs ?? 0);
  }

  /**
   * A create answered before the server has it: without O_EXCL (whose answer only the server can
   * give; O_APPEND writes go where the server finds the end), under a reserved id, so the
   * kernel's inode number is the file's on every mount. The name was looked up (missing) just
   * before; if another mount made it since, the server opens that file instead, as a create
   * without O_EXCL does. Errors the server finds come back from the next write, fsync or close.
   */
  private deferCreate(
    parent: number,
    name: string,
    path: string,
    mode: number,
    flags: number,
  ): { attr: Attr; fh: number } | null {
    const ms = this.deferMs;
    this.refillIds();
    if (flags & (O_EXCL | O_APPEND) || ms === 0 || this.ids.length === 0) return null;
    checkClientPath(path);
    const id = this.ids.pop()!;
    const n = this.nodes.found(path, id, true, false) as MountedNode;
    const timer = setTimeout(() => this.sendCreate(n), ms);
    timer.unref();
    // Known in its directory from now on: a lookup of it goes to the server (which waits for it).
    this.addKnown(parent, name);
    n.deferred = {
      parent,
      name,
      mode: mode & 0o7777,
      trunc: (flags & O_TRUNC) !== 0,
      data: [],
      bytes: 0,
      timer,
    };
    // At the next open, the server's attributes replace the ones made up here.
    n.told = 'deferred';
    this.deferredNodes.add(n);
    // The server's time, as it will stamp the file: a program comparing this file's times with
    // others' (make) sees no jump when the attributes are next read from the server.
    const now = Date.now() + this.serverClockOffset;
    const attr: Attr = {
      ino: stIno(id, n.ino),
      nodeid: n.ino,
      size: 0,
      mode: 0o100000 | (mode & 0o7777),
      nlink: 1,
      uid: 0,
      gid: 0,
      atimeMs: now,
      mtimeMs: now,
      ctimeMs: now,
    };
    return { attr, fh: this.newHandle(n, flags) };
  }

  /** Sends a deferred create (with its data) as the first of the file's write-behind. */
  private sendCreate(n: MountedNode): void {
    const d = n.deferred;
    if (!d) return;
    n.deferred = undefined;
    clearTimeout(d.timer);
    this.deferredBytes -= d.bytes;
    const sent = this.sendDeferred(n, d).catch((err: unknown) => {
      n.writeError ??= toFuseError(err);
    });
    // Kept among the mount's deferred creates until answered: a listing waits for it.
    const tracked: Promise<void> = sent.finally(() => {
      n.inflight?.delete(tracked);
      if (n.creating === tracked) n.creating = undefined;
      this.deferredNodes.delete(n);
    });
    n.creating = tracked;
    n.inflight ??= new Set();
    n.inflight.add(tracked);
  }

  private async sendDeferred(n: MountedNode, d: Deferred): Promise<void> {
    const data = d.data.length === 1 ? d.data[0]! : Buffer.concat(d.data);
    let path = '';
    const send = async (payload: Buffer) => {
      path = this.pathOf(n);
      const header = { path, mode: d.mode, excl: false, trunc: d.trunc, id: n.fid };
      try {
        return await this.call(OP.create, header, payload);
      } catch (err) {
        // Its directory was renamed through this mount while the create was on its way: once
        // more, at the name it has now (a create that surely failed keeps its reserved id).
        if (toReplicatedError(err).code !== 'ENOENT' || n.path === null || n.path === path) throw err;
        path = this.pathOf(n);
        return this.call(OP.create, { ...header, path }, payload);
      }
    };
    const r = await this.changeEntries({ dir: d.parent, name: d.name }, undefined, async () => {
      try {
        return await send(data);
      } catch (err) {
        const code = toReplicatedError(err).code;
        if (data.length === 0 || (code !== 'EDQUOT' && code !== 'ENOSPC')) throw err;
        // No room for the data: the file is made without it, as a create and a refused write leave it.
        const made = await send(Buffer.alloc(0));
        n.writeError ??= toFuseError(err);
        return made;
      }
    });
    const a = r.header['attr'] as WireAttr | undefined;
    if (a && a.id !== n.fid) {
      // Another mount made the name meanwhile (this create opened its file), or the id was
      // reserved on a connection since lost: the node follows the file the server has.
      this.opts.log?.(`${path} was created as file ${a.id}, not ${n.fid}`);
      this.nodes.refid(n, a.id);
    }
    this.dirFrom(d.parent, r.header['dir']);
  }

  /** Throws (once) what a write-behind of this node met. */
  private reportWriteError(n: MountedNode): void {
    const e = n.writeError;
    if (e) {
      n.writeError = undefined;
      throw e;
    }
  }

  private handle(fh: number): Handle {
    const h = this.handles.get(fh);
    if (!h) throw new FuseError(E.EBADF);
    if (h.lost) throw new FuseError(E.EIO);
    return h;
  }

  // ---- FuseOps -------------------------------------------------------------------------------------
  lookup(parent: number, name: string): Promise<Attr> {
    return guard(async () => {
      const dir = this.pathOf(this.node(parent));
      const path = this.childPath(parent, name);
      // The lookup before a create in a directory this mount made: no round trip.
      if (this.knownMissing(parent, name, path)) {
        this.lookupsAnswered++;
        throw new FuseError(E.ENOENT);
      }
      await this.drain(this.nodes.atPath(path));
      const a = (await this.call(OP.lookup, { dir, name })).header['attr'] as WireAttr;
      return this.entry(path, a);
    });
  }

  forget(ino: number, nlookup: number): void {
    this.nodes.forget(ino, nlookup);
  }

  getattr(ino: number): Promise<Attr> {
    return guard(async () => {
      const n = this.node(ino);
      const changed = n.changed;
      n.changed = undefined;
      if (changed && Date.now() - changed.at < (this.opts.attrTimeoutMs ?? 0))
        return this.toAttr(changed.attr, n);
      await this.drain(n);
      return this.toAttr(await this.fresh(n), n);
    });
  }

  setattr(ino: number, set: SetAttr): Promise<Attr> {
    return guard(async () => {
      const n = this.node(ino);
      // Owners are not kept on the share: every file is root's, and only that can be asked for.
      if ((set.uid !== undefined && set.uid !== 0) || (set.gid !== undefined && set.gid !== 0))
        throw new FuseError(E.EPERM);
      const h: Record<string, unknown> = {};
      if (set.mode !== undefined) h['mode'] = set.mode & 0o7777;
      if (set.size !== undefined) h['size'] = set.size;
      if (set.atimeMs !== undefined) h['atimeMs'] = set.atimeMs;
      if (set.mtimeMs !== undefined) h['mtimeMs'] = set.mtimeMs;
      await this.drain(n);
      n.changed = undefined;
      if (Object.keys(h).length > 0) {
        this.writeCheck();
        // `fid`: the server refuses (ESTALE) if the path names another file by now.
        this.dropGrant(n);
        await this.call(OP.setattr, { path: this.pathOf(n), fid: n.fid, ...h });
      }
      return this.toAttr(await this.fresh(n), n);
    });
  }

  readlink(ino: number): Promise<string> {
    return guard(async () => {
      const n = this.node(ino);
      return String((await this.call(OP.readlink, { path: this.pathOf(n) })).header['target']);
    });
  }

  symlink(parent: number, name: string, target: string): Promise<Attr> {
    return guard(async () => {
      this.writeCheck();
      const path = this.childPath(parent, name);
      const r = await this.changeEntries({ dir: parent, name }, undefined, () =>
        this.call(OP.symlink, { path, target }),
      );
      return this.named(path, parent, r.header);
    });
  }

  link(ino: number, newParent: number, newName: string): Promise<Attr> {
    return guard(async () => {
      this.writeCheck();
      const n = this.node(ino);
      await this.drain(n);
      const path = this.childPath(newParent, newName);
      const r = await this.changeEntries({ dir: newParent, name: newName }, undefined, () =>
        this.call(OP.link, { path: this.pathOf(n), newPath: path }),
      );
      return this.named(path, newParent, r.header);
    });
  }

  mkdir(parent: number, name: string, mode: number): Promise<Attr> {
    return guard(async () => {
      this.writeCheck();
      const path = this.childPath(parent, name);
      const epoch = this.knownEpoch;
      const sentAt = performance.now();
      const r = await this.changeEntries({ dir: parent, name }, undefined, () =>
        this.call(OP.mkdir, { path, mode: mode & 0o7777 }),
      );
      const attr = await this.named(path, parent, r.header);
      // Empty, and this connection the only one that changed it so far.
      if (r.header['sole'] === true && epoch === this.knownEpoch) {
        const fid = this.node(attr.nodeid!).fid;
        this.forgetKnown(fid);
        this.known.set(fid, { names: new Set(), confirmedAt: sentAt, epoch });
        while (this.known.size > KNOWN_DIRS_MAX) this.forgetKnown(this.known.keys().next().value as string);
      }
      return attr;
    });
  }

  unlink(parent: number, name: string): Promise<void> {
    return guard(async () => {
      this.writeCheck();
      const path = this.childPath(parent, name);
      const n = this.nodes.atPath(path) as MountedNode | undefined;
      await this.drain(n);
      if (n && n.open > 0 && n.names.size === 1) {
        // Open here: its data must stay readable through the open files until the last close.
        await this.hide(n, parent, name);
        return;
      }
      const r = await this.changeEntries(undefined, { dir: parent, name }, () =>
        this.call(OP.unlink, { path }),
      );
      this.dirAfter(parent, r.header['dir']);
      this.nodes.detach(path);
    });
  }

  /** Moves an open file out of sight (unlinked, but still open here); removed at its last release. */
  private async hide(n: MountedNode, parent: number, name: string): Promise<void> {
    const path = this.childPath(parent, name);
    const hiddenName = `${UNLINKED_PREFIX}${n.fid.replace(/-/g, '').slice(0, 16)}`;
    const hidden = this.childPath(parent, hiddenName);
    await this.changeEntries({ dir: parent, name: hiddenName }, { dir: parent, name }, () =>
      this.call(OP.rename, { path, newPath: hidden }),
    );
    this.dirChanged(parent);
    this.nodes.renamed(path, hidden, false);
    n.unlinked = true;
  }

  rmdir(parent: number, name: string): Promise<void> {
    return guard(async () => {
      this.writeCheck();
      const path = this.childPath(parent, name);
      // A file created here and not sent yet may be in it.
      await this.createdAll();
      const r = await this.changeEntries(undefined, { dir: parent, name }, () =>
        this.call(OP.rmdir, { path }),
      );
      this.dirAfter(parent, r.header['dir']);
      const gone = this.nodes.atPath(path);
      if (gone) this.forgetKnown(gone.fid);
      this.nodes.detach(path);
    });
  }

  rename(parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void> {
    return guard(async () => {
      this.writeCheck();
      if (flags & ~RENAME_NOREPLACE) throw new FuseError(E.EINVAL); // RENAME_EXCHANGE, WHITEOUT
      // Deferred creates go first: their paths are the ones before the rename.
      await this.createdAll();
      const from = this.childPath(parent, name);
      const to = this.childPath(newParent, newName);
      if (flags & RENAME_NOREPLACE) {
        const exists = await this.stat(to).then(
          () => true,
          (err) => {
            if (toFuseError(err).errno === E.ENOENT) return false;
            throw err;
          },
        );
        if (exists) throw new FuseError(E.EEXIST);
      }
      const replaced = this.nodes.atPath(to) as MountedNode | undefined;
      await this.drain(this.nodes.atPath(from));
      await this.drain(replaced);
      if (replaced && replaced.open > 0 && replaced.names.size === 1 && from !== to)
        await this.hide(replaced, newParent, newName);
      const r = await this.changeEntries({ dir: newParent, name: newName }, { dir: parent, name }, () =>
        this.call(OP.rename, { path: from, newPath: to }),
      );
      this.dirAfter(newParent, r.header['dir']);
      if (parent !== newParent) this.dirAfter(parent, r.header['fromDir']);
      const moved = this.nodes.atPath(from);
      this.nodes.renamed(from, to, moved === undefined || moved.dir);
    });
  }

  open(ino: number, flags: number): Promise<Opened> {
    return guard(async () => {
      const n = this.node(ino);
      const writable = (flags & O_ACCMODE) !== O_RDONLY;
      if (writable || flags & O_TRUNC) this.writeCheck();
      // Close-to-open: what another mount closed is seen now, not after the attribute timeout.
      await this.drain(n);
      const told = n.told;
      // A READ sent before the server answered the getattr below may carry data older than it.
      const quiet = (n.reading ?? 0) === 0;
      const readsBefore = n.readsSent ?? 0;
      let a = await this.fresh(n, true);
      if (flags & O_TRUNC && a.size > 0) {
        this.dropGrant(n);
        await this.call(OP.setattr, { path: this.pathOf(n), fid: n.fid, size: 0 });
        a = await this.fresh(n, true);
      }
      // Close-to-open: a grant for another version may name a brick that missed the change.
      if (n.grant && n.grant.v !== a.v) this.dropGrant(n);
      if (told !== undefined && told !== stamp(a)) this.invalidate?.(n.ino);
      n.told = stamp(a);
      // The pages stay when nothing changed the file since they were read (any change, this
      // mount's own writes included, moves its version); else the kernel drops them now, and
      // what it reads from here on is of this version or later.
      const keep = n.cachedAt === version(a);
      n.cachedAt = quiet && (n.readsSent ?? 0) === readsBefore ? version(a) : undefined;
      const fh = this.newHandle(n, flags);
      // O_APPEND writes land where the server finds the end, not where this kernel thinks it is:
      // they bypass the page cache, which would hold them at the wrong offset.
      if (flags & O_APPEND) return { fh, flags: FOPEN_DIRECT_IO };
      return { fh, flags: keep ? FOPEN_KEEP_CACHE : 0 };
    });
  }

  create(
    parent: number,
    name: string,
    mode: number,
    flags: number,
  ): Promise<{ attr: Attr; fh: number; flags?: number }> {
    return guard(async () => {
      this.writeCheck();
      const path = this.childPath(parent, name);
      const deferred = this.deferCreate(parent, name, path, mode, flags);
      if (deferred) return deferred;
      const r = await this.changeEntries({ dir: parent, name }, undefined, () =>
        this.call(
          OP.create,
          { path, mode: mode & 0o7777, excl: (flags & O_EXCL) !== 0, trunc: (flags & O_TRUNC) !== 0 },
          Buffer.alloc(0),
        ),
      );
      const attr = await this.named(path, parent, r.header);
      const fh = this.newHandle(this.node(attr.nodeid!), flags);
      return { attr, fh, flags: flags & O_APPEND ? FOPEN_DIRECT_IO : 0 };
    });
  }

  read(_ino: number, fh: number, offset: number, size: number): Promise<Buffer[] | ReadData> {
    return guard(async () => {
      const h = this.handle(fh);
      const n = h.node as MountedNode;
      await this.drain(n);
      const path = this.pathOf(n);
      const header = { path, off: offset, len: size, fid: n.fid };
      n.reading = (n.reading ?? 0) + 1;
      n.readsSent = (n.readsSent ?? 0) + 1;
      try {
        // The socket chunks the data arrived in, written to the device as they are (no join).
        const direct = this.opts.directReads;
        const g = n.grant;
        if (direct && g && g.epoch === this.grantEpoch && this.conn.connected) {
          const data = await direct.read(g, path, offset, size);
          if (data) return data;
          if (n.grant === g) this.dropGrant(n);
        }
        return (await this.callTakingGrant(n, OP.read, header)).parts;
      } finally {
        n.reading--;
      }
    });
  }

  write(_ino: number, fh: number, offset: number, data: Buffer, keep?: () => () => void): Promise<number> {
    return guard(async () => {
      const h = this.handle(fh);
      const n = h.node as MountedNode;
      this.reportWriteError(n);
      const d = n.deferred;
      if (d) {
        // Gathered into the deferred create while it stays one small write from the start.
        if (
          offset === d.bytes &&
          d.bytes + data.length <= DEFER_BYTES &&
          this.deferredBytes + data.length <= DEFERRED_TOTAL
        ) {
          d.data.push(Buffer.from(data));
          d.bytes += data.length;
          this.deferredBytes += data.length;
          return data.length;
        }
        this.sendCreate(n);
      }
      // The file's writes name it: sent once the server made it.
      if (n.creating) {
        await n.creating;
        this.reportWriteError(n);
      }
      const path = this.pathOf(n);
      const fid = n.fid;
      const window = this.opts.writeBehindBytes ?? DEFAULT_WRITE_BEHIND;
      if (h.append || window === 0) {
        // The data is forwarded from the session's read buffer, reused only after the reply.
        const header = h.append ? { path, off: 0, append: true, fid } : { path, off: offset, fid };
        await this.sendWrite(n, header, data);
        return data.length;
      }
      // Write-behind: answered now, sent with others in flight (a sequential writer is not held to
      // one round trip per request). The session's buffer is kept until the server answered (a
      // copy only when the session cannot hand it over).
      n.inflight ??= new Set();
      while ((n.inflightBytes ?? 0) > 0 && (n.inflightBytes ?? 0) + data.length > window)
        await Promise.race(n.inflight);
      this.reportWriteError(n);
      const giveBack = keep?.();
      const body = giveBack ? data : Buffer.from(data);
      n.inflightBytes = (n.inflightBytes ?? 0) + body.length;
      const sent: Promise<void> = this.sendWrite(n, { path, off: offset, fid }, body).then(
        () => undefined,
        (err: unknown) => {
          n.writeError ??= toFuseError(err);
        },
      );
      const tracked = sent.finally(() => {
        n.inflight?.delete(tracked);
        n.inflightBytes = (n.inflightBytes ?? 0) - body.length;
        giveBack?.();
      });
      n.inflight.add(tracked);
      return data.length;
    });
  }

  /**
   * close(2): what was written through this mount is on the server (close-to-open), or its error;
   * and the POSIX locks the closing owner holds on the file are released (fcntl semantics).
   */
  flush(_ino: number, fh: number, owner?: string): Promise<void> {
    return guard(async () => {
      const h = this.handles.get(fh);
      if (!h) return;
      const n = h.node as MountedNode;
      await this.drain(n);
      if (owner !== undefined && n.lockOwners?.has(`posix:${owner}`)) {
        n.lockOwners.delete(`posix:${owner}`);
        this.heldLocks.released(n, owner, 'posix', WHOLE);
        await this.call(OP.lock, { ...lockHeader(n, owner, 'posix', WHOLE), type: 'u' });
      }
      this.reportWriteError(n);
      if (h.lost) throw new FuseError(E.EIO);
    });
  }

  getlk(_ino: number, fh: number, owner: string, lock: FileLock): Promise<FileLock | null> {
    return guard(async () => {
      const n = this.handle(fh).node as MountedNode;
      await this.created(n);
      const type = lock.type === F_WRLCK ? 'w' : 'r';
      const r = await this.call(OP.getlk, { ...lockHeader(n, owner, 'posix', lock), type });
      const held = r.header['lock'] as { type: string; start: number; end: number; pid: number } | null;
      if (!held) return null;
      return {
        type: held.type === 'w' ? F_WRLCK : F_RDLCK,
        start: held.start,
        end: held.end === -1 ? Infinity : held.end,
        pid: held.pid,
      };
    });
  }

  setlk(
    _ino: number,
    fh: number,
    owner: string,
    lock: FileLock,
    opts: { wait: boolean; flock: boolean; signal: AbortSignal },
  ): Promise<void> {
    return guard(async () => {
      const n = this.handle(fh).node as MountedNode;
      // Locks are kept by the server for files it has.
      await this.created(n);
      const kind = opts.flock ? 'flock' : 'posix';
      const range = opts.flock ? WHOLE : lock;
      const header = lockHeader(n, owner, kind, range);
      if (lock.type === F_UNLCK) {
        // What was written under the lock reaches the server before the next holder can read it.
        await this.drain(n);
        this.reportWriteError(n);
        this.heldLocks.released(n, owner, kind, range);
        await this.call(OP.lock, { ...header, type: 'u' });
        return;
      }
      const type = lock.type === F_WRLCK ? 'w' : 'r';
      n.lockOwners ??= new Set();
      n.lockOwners.add(`${kind}:${owner}`);
      const granted = (): void =>
        this.heldLocks.granted(n, { owner, kind, type, start: range.start, end: range.end, pid: lock.pid });
      if (!opts.wait) {
        await this.call(OP.lock, { ...header, type });
        granted();
        this.dropGrants();
        await this.invalidateData?.(n.ino);
        return;
      }
      // A wait holds no timeout; the kernel's INTERRUPT (a signal to the waiting program) cancels it.
      const wid = `w${this.nextWait++}`;
      const cancel = () => void this.conn.callWaiting(OP.lockCancel, { wid }).catch(() => {});
      opts.signal.addEventListener('abort', cancel, { once: true });
      try {
        await this.waitForLock({ ...header, type, wait: true, wid }, opts.signal);
        granted();
      } finally {
        opts.signal.removeEventListener('abort', cancel);
      }
      // As NFS does: a new lock holder reads what the previous one wrote, not this mount's cache
      // (nor a brick that may have missed it).
      this.dropGrants();
      await this.invalidateData?.(n.ino);
    });
  }

  /**
   * A lock wait. When the connection drops under it (a share-server restart or failover), it is
   * sent again on the next connection: whatever the old server granted or queued is gone with its
   * lock table or with the connection, so asking again is always right. It gives up when the
   * program is interrupted, or with ENOTCONN when no connection comes back within the retry time.
   */
  private async waitForLock(header: Record<string, unknown>, signal: AbortSignal): Promise<void> {
    let lostAt = 0;
    let pause = 50;
    for (;;) {
      const sent = Date.now();
      try {
        await this.conn.callWaiting(OP.lock, header);
        return;
      } catch (err) {
        const e = toReplicatedError(err);
        if (!connectionLost(e.code) || signal.aborted) throw e;
        // A wait that was under way on a live connection starts the retry time afresh.
        if (Date.now() - sent > 1000) lostAt = 0;
        lostAt ||= Date.now();
        if (Date.now() - lostAt > this.conn.retryMs) throw e;
      }
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 1000);
    }
  }

  fsync(_ino: number, fh: number): Promise<void> {
    return guard(async () => {
      const h = this.handle(fh);
      const n = h.node as MountedNode;
      await this.drain(n);
      this.reportWriteError(n);
      await this.call(OP.fsync, { path: this.pathOf(n) });
    });
  }

  release(_ino: number, fh: number, flockOwner?: string): Promise<void> {
    return guard(async () => {
      const h = this.handles.get(fh);
      if (!h) return;
      this.handles.delete(fh);
      const n = h.node as MountedNode;
      await this.drain(n);
      if (flockOwner !== undefined && n.lockOwners?.delete(`flock:${flockOwner}`)) {
        this.heldLocks.released(n, flockOwner, 'flock', WHOLE);
        await this.call(OP.lock, { ...lockHeader(n, flockOwner, 'flock', WHOLE), type: 'u' }).catch(() => {});
      }
      n.open--;
      if (n.open === 0 && n.unlinked && n.path !== null) {
        const path = n.path;
        n.unlinked = false;
        await this.call(OP.unlink, { path }).catch(() => {});
        this.nodes.detach(path);
      }
      this.nodes.dropIfUnused(n);
    });
  }

  async opendir(): Promise<number> {
    const fh = this.nextFh++;
    this.listings.set(fh, null);
    return fh;
  }

  readdir(ino: number, fh: number, offset: number): Promise<DirEntry[]> {
    return guard(async () => {
      const cached = this.listings.get(fh);
      if (cached && offset > 0) return cached;
      const n = this.node(ino);
      const path = this.pathOf(n);
      // A listing shows the files created here, sent or not.
      await this.createdAll(path);
      const out: DirEntry[] = [
        { ino: stIno(n.fid, n.ino), name: '.', mode: 0o040000 },
        { ino: 1, name: '..', mode: 0o040000 },
      ];
      let after = '';
      for (;;) {
        const h = (await this.call(OP.readdir, { path, after, count: 1000 })).header;
        const entries = h['entries'] as WireDirEntry[];
        for (const e of entries) {
          if (path === '' && e.name === LINKS_ROOT) continue;
          const child = joinPath(path, e.name);
          out.push({
            ino: stIno(e.id, 0),
            name: e.name,
            mode: TYPE_BITS[e.type] ?? 0o100000,
            plus: () => this.listed(child, e),
          });
        }
        if (h['done'] === true || entries.length === 0) break;
        after = entries[entries.length - 1]!.name;
      }
      if (this.listings.has(fh)) this.listings.set(fh, out);
      return out;
    });
  }

  /**
   * A listed name handed to the kernel with its attributes, as a LOOKUP would (one more lookup of
   * its node). Not for a file whose write-behind (or deferred create) is still on its way: the
   * listing's size would be behind the kernel's, which would cut its cached pages; the kernel
   * looks that one up instead (LOOKUP waits for the writes).
   */
  private listed(path: string, e: WireDirEntry): Attr | null {
    const known = this.nodes.atPath(path) as MountedNode | undefined;
    if (known && ((known.inflight?.size ?? 0) > 0 || known.deferred)) return null;
    return this.entry(path, e);
  }

  async releasedir(_ino: number, fh: number): Promise<void> {
    this.listings.delete(fh);
  }

  statfs(): Promise<StatFs> {
    return guard(async () => {
      const s = (await this.call(OP.statfs, {})).header as {
        size: number;
        used: number;
        free: number;
        files: number;
      };
      const bsize = 4096;
      // Inodes are not limited; report a large pool so `df -i` shows use, not a limit.
      const ffree = 1_000_000_000;
      return {
        bsize,
        blocks: Math.floor(s.size / bsize),
        bfree: Math.floor(s.free / bsize),
        bavail: Math.floor(s.free / bsize),
        files: s.files + ffree,
        ffree,
      };
    });
  }
}

/** What the kernel is told of a file, compared at open: version, size and mtime. */
function stamp(a: WireAttr): string {
  return `${a.v}:${a.size}:${a.mtimeMs}`;
}

/**
 * The file's content version: every change to a file moves `v` on all its replicas alike. (Not
 * mtime: each replica sets its own clock's, and reads rotate among replicas.)
 */
function version(a: WireAttr): string {
  return `${a.v}:${a.size}`;
}

/**
 * st_ino from the file's id on the share: the same on every mount and across remounts, and the
 * same for the hard links of a file. 52 bits of the id (UUIDs); a node number when there is no id.
 */
export function stIno(fid: string, fallback: number): number {
  const hex = fid.replace(/-/g, '').slice(0, 13);
  if (!/^[0-9a-f]{13}$/i.test(hex)) return fallback;
  return Number.parseInt(hex, 16) || fallback;
}

const WHOLE = { start: 0, end: Infinity };

/** The wire header of a lock request on node `n` (locks are kept by file id on the server). */
function lockHeader(
  n: Node,
  owner: string,
  kind: 'posix' | 'flock',
  range: { start: number; end: number; pid?: number },
): Record<string, unknown> {
  return {
    pid: range.pid ?? 0,
    path: n.path ?? '',
    fid: n.fid,
    owner,
    kind,
    start: range.start,
    end: range.end === Infinity ? -1 : range.end,
  };
}

async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toFuseError(err);
  }
}
