/**
 * On-disk format of one brick (one directory) and every operation a brick applies. All calls are
 * synchronous: a brick is a dedicated process that applies the operations of a connection strictly
 * in arrival order, which is what makes all replicas apply the same sequence.
 *
 *   <root>/brick.json                          { id }
 *   <root>/shares/<share>/share.json           ShareInfo (size, bricks, epoch, owner)
 *   <root>/shares/<share>/data/...             the share's tree, as clients see it
 *   <root>/shares/<share>/snaps/<snap>/        snapshots (layout in snapshots.ts)
 *   <root>/shares/<share>/meta/shared-inodes.bin  inodes of data/ that a snapshot also links
 *   <root>/shares/<share>/meta/records.bin     sparse table of 64-byte records indexed by inode
 *                                              number: magic "ABR1", version, file id
 *   <root>/shares/<share>/meta/index/dirty/markers.log  paths an operation started on here (markers.ts)
 *   <root>/shares/<share>/meta/index/pending/<sha1(path)>  {"path","blame":{brickId:n}}
 *   <root>/shares/<share>/meta/links/<file id> one more name of every file with several hard
 *                                              links, so heal can link a missing name to it
 *   <root>/shares/<share>/meta/tmp/            temp files for write + rename
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ReplicatedError } from '../protocol/errors.ts';
import { payloadLength } from '../protocol/frame.ts';
import { addRange, type ByteRange, healPathsOf, rangeOf } from '../protocol/heal-paths.ts';
import type { MutationKind } from '../protocol/opcodes.ts';
import { checkPath, isLinkPath, LINKS_ROOT, parentOf } from '../protocol/paths.ts';
import { type DerivedKey, grantKeyFor } from '../protocol/read-grants.ts';
import type { Attr, BrickIndex, DirEntry, FileType, PendingEntry, ShareInfo } from '../protocol/types.ts';
import { num, timeMs } from '../protocol/wire-args.ts';
import { DirectWriter, writeParts } from './direct-writes.ts';
import { MarkerLog } from './markers.ts';
import { RECORD_SIZE, type Rec, readRecord, writeRecord } from './records.ts';
import { breakLink, breakLinkAsync, SharedInodes } from './snapshots.ts';

/**
 * Early writeback (RocksDB's `bytes_per_sync`): after this many bytes written through one cached
 * descriptor, a background fdatasync (libuv thread pool) starts pushing them to disk while the
 * stream goes on, so an fsync finds little left to do. A hint only: durability still comes from
 * fsync alone.
 */
const WRITEBACK_BYTES = 16 * 1024 * 1024;
/**
 * A copy-on-write of a file this large runs off the event loop (largeCowOf/cowAsync): without
 * reflink, 1 GiB takes seconds, longer than the share server waits for a blocked brick.
 */
export const LARGE_COW = 8 * 1024 * 1024;
const LARGE_COW_KINDS = new Set<MutationKind>(['write', 'truncate', 'setattr', 'link']);
/** A large shared file a mutation is about to change (largeCowOf). */
export interface LargeCow {
  p: string;
  abs: string;
  st: fs.Stats;
}
const { O_WRONLY, O_RDONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY } = fs.constants;

/** The process's umask (from /proc; all bits when unknown): a create's mode needs no chmod when it clears none. */
const UMASK = ((): number => {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number.parseInt(m[1]!, 8) : 0o7777;
  } catch {
    return 0o7777;
  }
})();

/** How a create found its name: made a new file, joined the file's inode from the link index, or opened it. */
type CreateOutcome = 'made' | 'linked' | 'existed';

export interface MutateResult {
  v: number;
  sizeBefore: number;
  sizeAfter: number;
  /** Bytes of regular-file data released (unlink/rename over the last link). */
  freed: number;
  /** 1 when a file or symlink lost its last name (it no longer counts as a file of the share). */
  gone?: number;
  /**
   * After a create, mkdir, symlink or link: the new name's attributes and its directory's; after
   * an unlink or rmdir its directory's; after a rename the new name's directory's, and the old
   * name's (`fromDir`) when that is another.
   */
  attr?: Attr;
  dir?: Attr;
  fromDir?: Attr;
}

/** Mutations that make a name: their reply carries its attributes (no getattr after them). */
const NAMING = new Set<MutationKind>(['create', 'mkdir', 'symlink', 'link']);

function hashPath(p: string): string {
  return createHash('sha1').update(p).digest('hex');
}

function typeOf(st: fs.Stats): FileType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  return 'other';
}

/** Writes a small file atomically and durably: temp file, fsync, rename, fsync directory. */
export function writeFileDurable(file: string, data: string): void {
  const tmp = `${file}.tmp-${process.pid}-${randomUUID().slice(0, 8)}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export class ShareStore {
  readonly dataDir: string;
  private readonly recordsFile: string;
  private readonly recFd: number;
  private readonly rootIno: number;
  private readonly pendingDir: string;
  private readonly linksDir: string;
  private readonly records = new Map<number, Rec>();
  /** Directory paths known to be real directories, with their inode (cleared on any rename/rmdir). */
  private readonly dirs = new Map<string, number>();
  /** Open O_RDWR descriptors of regular files by path (cleared when names change). */
  private readonly fds = new Map<string, number>();
  /** Bytes written through a cached descriptor since its last background flush started. */
  private readonly unflushed = new Map<number, number>();
  /** Descriptors with a background fdatasync running -> close it when the flush ends. */
  private readonly flushing = new Map<number, boolean>();
  /** Inodes whose background flush failed: the next fsync of the file answers EIO. */
  private readonly writebackErrors = new Map<number, string>();
  /** Sends the aligned middle of large writes around the page cache. */
  private readonly directWriter = new DirectWriter();
  private readonly dirty: MarkerLog;
  private readonly pending = new Map<string, PendingEntry>();
  /**
   * path -> blamed brick -> the byte ranges it missed, or null when unknown. Memory only: entries
   * loaded from disk (after a restart) have no ranges, so heal compares block checksums for them.
   */
  private readonly ranges = new Map<string, Map<string, ByteRange[] | null>>();
  info: ShareInfo;
  /** Inodes of data/ that snapshots (or a clone's origin) also link: copied before a change. */
  readonly shared: SharedInodes;
  /** Session of the share server connection that claimed the share last (memory only). */
  session: string | undefined;

  constructor(readonly dir: string) {
    this.dataDir = path.join(dir, 'data');
    this.recordsFile = path.join(dir, 'meta', 'records.bin');
    this.recFd = fs.openSync(this.recordsFile, fs.constants.O_RDWR | O_CREAT, 0o600);
    this.rootIno = fs.lstatSync(this.dataDir).ino;
    this.pendingDir = path.join(dir, 'meta', 'index', 'pending');
    this.linksDir = path.join(dir, 'meta', 'links');
    fs.mkdirSync(this.linksDir, { recursive: true }); // shares made before the link index
    this.shared = new SharedInodes(path.join(dir, 'meta', 'shared-inodes.bin'));
    this.sweepLinks();
    this.info = JSON.parse(fs.readFileSync(path.join(dir, 'share.json'), 'utf8')) as ShareInfo;
    this.dirty = new MarkerLog(path.join(dir, 'meta', 'index', 'dirty'));
    for (const f of fs.readdirSync(this.pendingDir)) {
      const full = path.join(this.pendingDir, f);
      if (f.includes('.tmp-')) {
        fs.rmSync(full, { force: true });
        continue;
      }
      const e = JSON.parse(fs.readFileSync(full, 'utf8')) as PendingEntry;
      this.pending.set(e.path, e);
    }
  }

  static create(dir: string, info: ShareInfo, rootId: string): void {
    const tmp = `${dir}.tmp-${randomUUID().slice(0, 8)}`;
    for (const sub of ['data', 'snaps', 'meta/index/dirty', 'meta/index/pending', 'meta/links', 'meta/tmp'])
      fs.mkdirSync(path.join(tmp, sub), { recursive: true });
    fs.chmodSync(path.join(tmp, 'data'), 0o755);
    const ino = fs.statSync(path.join(tmp, 'data')).ino;
    const fd = fs.openSync(path.join(tmp, 'meta', 'records.bin'), 'w', 0o600);
    try {
      writeRecord(fd, ino, { id: rootId, v: 1 });
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    writeFileDurable(path.join(tmp, 'share.json'), JSON.stringify(info));
    fs.renameSync(tmp, dir);
    fsyncDir(path.dirname(dir));
  }

  saveInfo(): void {
    writeFileDurable(path.join(this.dir, 'share.json'), JSON.stringify(this.info));
  }

  /**
   * Fencing: the epoch must be the share's current one (else ESTALE: another share server took
   * over), and the session the one that claimed it last (else ENOTCONN: a request left over on a
   * connection the share server already gave up on, e.g. after this brick was SIGSTOPped).
   */
  checkEpoch(epoch: unknown, session: unknown): void {
    if (epoch !== this.info.epoch)
      throw new ReplicatedError(
        'ESTALE',
        `epoch ${String(epoch)} is not the share's epoch ${this.info.epoch}`,
      );
    if (session !== this.session) throw new ReplicatedError('ENOTCONN', 'stale share server session');
  }

  /** Absolute path of a share path; every intermediate component must be a real directory. */
  resolve(p: unknown): string {
    const rel = checkPath(p);
    if (rel === '') return this.dataDir;
    if (isLinkPath(rel)) {
      // Heal's name for the inode of a file with several links: its index entry.
      const at = rel.includes('/', LINKS_ROOT.length + 1)
        ? undefined
        : this.linkPath(rel.slice(LINKS_ROOT.length + 1));
      if (!at) throw new ReplicatedError('EINVAL', `bad link index path ${rel}`);
      return at;
    }
    const parts = rel.split('/');
    let cur = this.dataDir;
    let relCur = '';
    for (let i = 0; i < parts.length - 1; i++) {
      cur = path.join(cur, parts[i]!);
      relCur = relCur === '' ? parts[i]! : `${relCur}/${parts[i]!}`;
      if (this.dirs.has(relCur)) continue;
      let st: fs.Stats;
      try {
        st = fs.lstatSync(cur);
      } catch {
        throw new ReplicatedError('ENOENT', `no such directory: ${relCur}`);
      }
      if (!st.isDirectory()) throw new ReplicatedError('ENOTDIR', `not a directory: ${relCur}`);
      this.dirs.set(relCur, st.ino);
    }
    return path.join(cur, parts[parts.length - 1]!);
  }

  // ---- records ------------------------------------------------------------------------------
  close(): void {
    this.forgetNames();
    fs.closeSync(this.recFd);
    this.dirty.close();
  }

  /** Names changed (rename, unlink, rmdir, heal): drop path-keyed caches. */
  private forgetNames(): void {
    this.dirs.clear();
    for (const fd of this.fds.values()) this.closeFd(fd);
    this.fds.clear();
  }

  private dropFd(p: string): void {
    const fd = this.fds.get(p);
    if (fd === undefined) return;
    this.fds.delete(p);
    this.closeFd(fd);
  }

  private cacheFd(p: string, fd: number): void {
    if (this.fds.size >= 256) {
      const [k, old] = this.fds.entries().next().value as [string, number];
      this.fds.delete(k);
      this.closeFd(old);
    }
    this.fds.set(p, fd);
  }

  /** Closes a cached descriptor, after its background flush if one runs (the number stays taken). */
  private closeFd(fd: number): void {
    this.unflushed.delete(fd);
    this.directWriter.release(fd);
    if (this.flushing.has(fd)) this.flushing.set(fd, true);
    else fs.closeSync(fd);
  }

  /** Counts bytes written through cached `fd` and starts a background flush every WRITEBACK_BYTES. */
  private writeback(fd: number, ino: number, bytes: number): void {
    const n = (this.unflushed.get(fd) ?? 0) + bytes;
    if (n < WRITEBACK_BYTES || this.flushing.has(fd)) {
      this.unflushed.set(fd, n);
      return;
    }
    this.unflushed.set(fd, 0);
    this.flushing.set(fd, false);
    fs.fdatasync(fd, (err) => {
      const close = this.flushing.get(fd) === true;
      this.flushing.delete(fd);
      // The kernel reports a writeback error once; keep it for the fsync that must report it.
      if (err) this.writebackErrors.set(ino, err.message);
      if (close) fs.close(fd, () => {});
    });
  }

  /** Runs fn with a descriptor of regular file `p` (cached O_RDWR, or a one-off open). */
  private withFile<T>(p: string, fallbackFlags: number, fn: (fd: number) => T): T {
    const cached = this.fds.get(p);
    if (cached !== undefined) return fn(cached);
    const abs = this.resolve(p);
    let fd: number;
    try {
      fd = fs.openSync(abs, fs.constants.O_RDWR | O_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') throw new ReplicatedError('EINVAL', `${p} is a symlink`);
      if (code !== 'EACCES' && code !== 'EISDIR' && code !== 'EPERM') throw err;
      try {
        fd = fs.openSync(abs, fallbackFlags | O_NOFOLLOW);
      } catch (err2) {
        if ((err2 as NodeJS.ErrnoException).code === 'ELOOP')
          throw new ReplicatedError('EINVAL', `${p} is a symlink`);
        throw err2;
      }
      try {
        return fn(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
    this.cacheFd(p, fd);
    return fn(fd);
  }

  // ---- hard links ----------------------------------------------------------------------------
  // A file with several names keeps one more in meta/links/<id>: heal finds the inode by its id
  // there and links a missing name to it, so the replicas keep one inode (not copies that would
  // drift apart on the next write through one name). That extra name is never shown to clients.

  private linkPath(id: string): string | undefined {
    return /^[A-Za-z0-9-]{1,64}$/.test(id) ? path.join(this.linksDir, id) : undefined;
  }

  /** The indexed inode of file `id`, if it still is that file. */
  private indexedLink(id: string): { abs: string; st: fs.Stats } | undefined {
    const abs = this.linkPath(id);
    if (!abs) return undefined;
    try {
      // Mostly missing (every create asks): no exception for that.
      const st = fs.lstatSync(abs, { throwIfNoEntry: false });
      return st?.isFile() && this.getRecord(st.ino).id === id ? { abs, st } : undefined;
    } catch {
      return undefined;
    }
  }

  private indexLink(abs: string, id: string): void {
    const at = this.linkPath(id);
    if (!at || this.indexedLink(id)) return;
    fs.rmSync(at, { force: true });
    fs.linkSync(abs, at);
  }

  /** The index entry of `st` when `st` is the indexed inode of its file (it has, or had, other names). */
  private indexEntryOf(st: fs.Stats): { abs: string; id: string } | undefined {
    if (!st.isFile() || st.nlink < 2) return undefined;
    const id = this.getRecord(st.ino).id;
    const ix = this.indexedLink(id);
    return ix && ix.st.ino === st.ino ? { abs: ix.abs, id } : undefined;
  }

  /** Names of the file that clients see: the link count less the index's name. */
  private userLinks(st: fs.Stats): number {
    // A file shared with a snapshot has one name here (link() breaks the sharing first).
    if (this.shared.size > 0 && st.isFile() && this.shared.has(st.ino)) return 1;
    return this.indexEntryOf(st) ? st.nlink - 1 : st.nlink;
  }

  /**
   * A name of `st` was removed (unlink, rename over it, heal): true when it was the last name
   * clients could see, after which the index's name and the record go too.
   */
  private lastNameGone(st: fs.Stats, namesBefore: number): boolean {
    if (namesBefore > 1) return false;
    const ix = st.nlink > namesBefore ? this.indexEntryOf(st) : undefined;
    if (ix) fs.rmSync(ix.abs, { force: true });
    this.dropRecord(st.ino);
    return true;
  }

  /** `p` is a file with an index entry (it has, or had, several names). */
  private isIndexed(p: string): boolean {
    return isLinkPath(p) || this.indexEntryAt(p) !== undefined;
  }

  private indexEntryAt(p: string): { abs: string; id: string } | undefined {
    try {
      return this.indexEntryOf(fs.lstatSync(this.resolve(p)));
    } catch {
      return undefined;
    }
  }

  /** Index entries left without a client-visible name (a crash between the two unlinks). */
  private sweepLinks(): void {
    for (const n of fs.readdirSync(this.linksDir)) {
      const abs = path.join(this.linksDir, n);
      const st = fs.lstatSync(abs);
      if (st.nlink > 1) continue;
      fs.rmSync(abs, { force: true });
      this.dropRecord(st.ino);
    }
  }

  getRecord(ino: number): Rec {
    const c = this.records.get(ino);
    if (c) return c;
    const r = readRecord(this.recFd, ino);
    this.records.set(ino, r);
    return r;
  }

  setRecord(ino: number, r: Rec): void {
    this.records.set(ino, r);
    writeRecord(this.recFd, ino, r);
  }

  private bump(ino: number): number {
    const r = this.getRecord(ino);
    const n = { id: r.id, v: r.v + 1 };
    this.setRecord(ino, n);
    return n.v;
  }

  private dropRecord(ino: number): void {
    this.records.delete(ino);
    this.writebackErrors.delete(ino);
    fs.writeSync(this.recFd, Buffer.alloc(RECORD_SIZE), 0, RECORD_SIZE, ino * RECORD_SIZE);
  }

  attrOf(st: fs.Stats): Attr {
    const r = this.getRecord(st.ino);
    return {
      type: typeOf(st),
      id: r.id,
      v: r.v,
      size: st.isDirectory() ? 0 : st.size,
      mode: st.mode & 0o7777,
      nlink: this.userLinks(st),
      atimeMs: st.atimeMs,
      mtimeMs: st.mtimeMs,
      ctimeMs: st.ctimeMs,
    };
  }

  getattr(p: unknown): Attr {
    return this.attrOf(fs.lstatSync(this.resolve(p)));
  }

  // ---- markers ------------------------------------------------------------------------------
  markDirty(paths: string[]): void {
    this.dirty.mark(paths);
  }

  clean(paths: string[]): void {
    this.dirty.clean(paths);
  }

  addBlame(paths: string[], bricks: string[], range?: ByteRange): void {
    for (const p of this.withInodes(paths)) {
      const e = this.pending.get(p) ?? { path: p, blame: {} };
      let changed = !this.pending.has(p);
      let rmap = this.ranges.get(p);
      if (!rmap) {
        rmap = new Map();
        this.ranges.set(p, rmap);
      }
      for (const b of bricks) {
        if (!e.blame[b]) {
          changed = true;
          rmap.set(b, range ? [range] : null);
        } else {
          const cur = rmap.get(b);
          rmap.set(b, cur && range ? addRange(cur, range) : null);
        }
        e.blame[b] = (e.blame[b] ?? 0) + 1;
      }
      this.pending.set(p, e);
      // Persist when a (path, brick) pair first appears; the count itself is advisory.
      if (changed) writeFileDurable(path.join(this.pendingDir, hashPath(p)), JSON.stringify(e));
    }
  }

  /**
   * A miss on a file with several names is a miss on all of them: blame its index entry too, so
   * heal repairs the one inode every name shares (a path marker names only one of them).
   */
  private withInodes(paths: string[]): string[] {
    const out = [...paths];
    for (const p of paths) {
      if (p === '' || isLinkPath(p)) continue;
      const ix = this.indexEntryAt(p);
      if (ix) out.push(`${LINKS_ROOT}/${ix.id}`);
    }
    return out;
  }

  /** Byte ranges each blamed brick missed on `p` (null = unknown). */
  rangesFor(p: string): Record<string, ByteRange[] | null> {
    const out: Record<string, ByteRange[] | null> = {};
    // A file that has (or had) other names may have missed writes recorded against those names
    // only: what this path recorded is not the whole story, so heal compares checksums.
    const rmap = this.isIndexed(p) ? undefined : this.ranges.get(p);
    for (const b of Object.keys(this.pendingFor(p))) out[b] = rmap?.get(b) ?? null;
    return out;
  }

  clearPending(p: string, bricks: string[]): void {
    const e = this.pending.get(p);
    if (!e) return;
    const rmap = this.ranges.get(p);
    for (const b of bricks) {
      delete e.blame[b];
      rmap?.delete(b);
    }
    if (rmap?.size === 0) this.ranges.delete(p);
    const file = path.join(this.pendingDir, hashPath(p));
    if (Object.keys(e.blame).length === 0) {
      this.pending.delete(p);
      fs.rmSync(file, { force: true });
    } else {
      writeFileDurable(file, JSON.stringify(e));
    }
  }

  index(): BrickIndex {
    return { dirty: [...this.dirty.paths], pending: [...this.pending.values()] };
  }

  pendingFor(p: string): Record<string, number> {
    return this.pending.get(p)?.blame ?? {};
  }

  // ---- copy-on-write -------------------------------------------------------------------------
  /**
   * Before a change of file `p`'s data, size, mode, times or names: when a snapshot also links its
   * inode, `p` gets a private copy first. Shares without snapshots pay one Set lookup.
   */
  private cow(p: string): void {
    const f = this.sharedFile(p);
    if (!f) return;
    this.dropFd(p);
    this.relinked(f.st.ino, breakLink(f.abs, path.join(this.dir, 'meta', 'tmp'), f.st));
  }

  /**
   * The file of mutation `kind` when its copy-on-write would copy LARGE_COW bytes or more: the
   * brick does that copy first with cowAsync, with the share's other changes waiting.
   */
  largeCowOf(kind: MutationKind, h: Record<string, unknown>): LargeCow | undefined {
    if (this.shared.size === 0 || !LARGE_COW_KINDS.has(kind) || typeof h['path'] !== 'string')
      return undefined;
    let p: string;
    try {
      p = checkPath(h['path']);
    } catch {
      return undefined; // the mutation itself reports it
    }
    const f = this.sharedFile(p);
    return f && f.st.size >= LARGE_COW ? { p, ...f } : undefined;
  }

  /** cow() of a large file with the copy off the event loop (no other change of the share meanwhile). */
  async cowAsync(c: LargeCow): Promise<void> {
    this.dropFd(c.p);
    const ino = await breakLinkAsync(c.abs, path.join(this.dir, 'meta', 'tmp'), c.st);
    // Reads during the copy may have opened the old inode (the snapshot's): not for writes.
    this.dropFd(c.p);
    this.relinked(c.st.ino, ino);
  }

  /** File `p` when a snapshot (or clone) also links its inode. Shares without any pay one check. */
  private sharedFile(p: string): { abs: string; st: fs.Stats } | undefined {
    if (this.shared.size === 0) return undefined;
    try {
      const abs = this.resolve(p);
      const st = fs.lstatSync(abs);
      return st.isFile() && this.shared.has(st.ino) ? { abs, st } : undefined;
    } catch {
      return undefined; // the operation itself reports it
    }
  }

  /** The file's record moves to the private copy's inode. */
  private relinked(oldIno: number, newIno: number): void {
    this.setRecord(newIno, this.getRecord(oldIno));
    this.records.delete(oldIno);
  }

  // ---- mutations ----------------------------------------------------------------------------
  mutate(kind: MutationKind, h: Record<string, unknown>, payload: Buffer[]): MutateResult {
    const p = checkPath(h['path']);
    const np = h['newPath'] === undefined ? undefined : checkPath(h['newPath']);
    const marks = healPathsOf(kind, p, np, h['over'] === true);
    const blame = Array.isArray(h['blame']) ? (h['blame'] as string[]) : [];
    const carried = carriedOf(h['carry']);
    if (blame.length > 0) this.addBlame(marks, blame, rangeOf(kind, h, payloadLength(payload)));
    // Blame carried to the new names of a moved or linked inode (server/share-coordinator.ts carriedBlame).
    for (const c of carried) this.addBlame([c.path], c.bricks);
    if (kind !== 'fsync') this.markDirty(marks);
    // The share server's clock for the times this operation changes, so that every replica shows
    // the same mtime (each kernel would stamp its own moment, and reads rotate among replicas).
    const now = typeof h['now'] === 'number' && Number.isFinite(h['now']) ? h['now'] : undefined;
    let r: MutateResult;
    if (kind === 'create') {
      // The most frequent change of all (every small file): its times are known from how it went.
      const c = this.createWithData(p, h, payload);
      if (now !== undefined) this.stampCreate(p, c, now);
      r = c.result;
    } else {
      const touched = now === undefined ? [] : this.timesTouched(kind, p, np, h);
      const before = touched.map((t) => this.mtimeOf(t));
      r = this.apply(kind, p, np, h, payload);
      if (now !== undefined) this.stampTimes(touched, before, now);
    }
    // `sync`: flush before answering (create/write with fsync in one round trip).
    if (h['sync'] === true && kind !== 'fsync' && kind !== 'unlink' && kind !== 'rmdir') this.fsync(np ?? p);
    if (NAMING.has(kind)) {
      const named = kind === 'link' ? (np ?? p) : p;
      r.attr = this.getattr(named);
      r.dir = this.getattr(parentOf(named));
    } else if (kind === 'unlink' || kind === 'rmdir' || kind === 'rename') {
      // For the client's cache only: the change is done whatever these stats meet.
      try {
        const to = parentOf(np ?? p);
        r.dir = this.getattr(to);
        if (np !== undefined && parentOf(p) !== to) r.fromDir = this.getattr(parentOf(p));
      } catch {}
    }
    return r;
  }

  /**
   * The names whose mtime this operation may change, as the kernel changes them: the file written,
   * the inode created, the directories whose entries change. Never a name an entry operation only
   * moves or links: its inode may be shared with a snapshot (and the kernel leaves its mtime alone).
   */
  private timesTouched(
    kind: MutationKind,
    p: string,
    np: string | undefined,
    h: Record<string, unknown>,
  ): string[] {
    const dirOf = (x: string) => (x === '' ? [] : [parentOf(x)]);
    switch (kind) {
      case 'create': // stampCreate does these
        return [];
      case 'mkdir':
      case 'symlink':
        return [p, ...dirOf(p)];
      case 'link':
        return np === undefined ? [] : dirOf(np);
      case 'unlink':
      case 'rmdir':
        return dirOf(p);
      case 'rename':
        return [...new Set([...dirOf(p), ...(np === undefined ? [] : dirOf(np))])];
      case 'write':
      case 'truncate':
        return [p];
      case 'setattr':
        // Explicit times are set by the setattr itself.
        return h['mtimeMs'] !== undefined || h['atimeMs'] !== undefined ? [] : [p];
      case 'fsync':
        return [];
    }
  }

  /**
   * stampTimes for a create, without looking before: a new name changed its directory; a new file
   * gets the share server's time as all its times; an existing one changed only if data was
   * truncated or written.
   */
  private stampCreate(p: string, c: { how: CreateOutcome; dataChanged: boolean }, now: number): void {
    if (c.how === 'made') fs.lutimesSync(this.resolve(p), now / 1000, now / 1000);
    else if (c.dataChanged) this.stampTimes([p], [undefined], now);
    if (c.how !== 'existed') this.stampTimes([parentOf(p)], [undefined], now);
  }

  private mtimeOf(rel: string): number | undefined {
    try {
      // A create's new name is not there yet: no exception for that.
      return fs.lstatSync(this.resolve(rel), { throwIfNoEntry: false })?.mtimeMs;
    } catch {
      return undefined; // not there (yet, or any more)
    }
  }

  /** Sets the mtime of each name the kernel just changed (and ctime with it) to the share server's `now`. */
  private stampTimes(touched: string[], before: Array<number | undefined>, now: number): void {
    touched.forEach((rel, i) => {
      try {
        const abs = this.resolve(rel);
        const st = fs.lstatSync(abs);
        if (st.mtimeMs === before[i]) return;
        fs.lutimesSync(abs, st.atimeMs / 1000, now / 1000);
      } catch {
        // removed by the operation itself (unlink, rename's old name)
      }
    });
  }

  private apply(
    kind: MutationKind,
    p: string,
    np: string | undefined,
    h: Record<string, unknown>,
    payload: Buffer[],
  ): MutateResult {
    switch (kind) {
      case 'create':
        return this.createWithData(p, h, payload).result;
      case 'mkdir':
        return this.mkdir(p, String(h['id']), num(h['mode'], 0o755));
      case 'symlink':
        return this.symlink(p, String(h['id']), h['target']);
      case 'link':
        return this.link(p, np);
      case 'unlink':
        return this.unlink(p);
      case 'rmdir':
        return this.rmdir(p);
      case 'rename':
        return this.rename(p, np);
      case 'write':
        return this.write(p, num(h['off'], 0), payload);
      case 'truncate':
        return this.truncate(p, num(h['size'], 0));
      case 'setattr':
        return this.setattr(p, h);
      case 'fsync':
        return this.fsync(p);
    }
  }

  private parentIno(p: string): number {
    const parent = parentOf(p);
    if (parent === '') return this.rootIno;
    this.resolve(p); // checks and caches every directory above p
    const ino = this.dirs.get(parent);
    if (ino === undefined) throw new ReplicatedError('ENOTDIR', 'parent is not a directory');
    return ino;
  }

  private none(v: number): MutateResult {
    return { v, sizeBefore: 0, sizeAfter: 0, freed: 0 };
  }

  /** create [+ truncate] [+ write at 0]: a small file in one replicated operation. */
  private createWithData(
    p: string,
    h: Record<string, unknown>,
    payload: Buffer[],
  ): { result: MutateResult; how: CreateOutcome; dataChanged: boolean } {
    const c = this.create(p, String(h['id']), num(h['mode'], 0o644), h['excl'] === true);
    let after = c.sizeAfter;
    let v = c.v;
    let dataChanged = false;
    if (h['trunc'] === true && after > 0) {
      ({ v, sizeAfter: after } = this.truncate(p, 0));
      dataChanged = true;
    }
    if (payloadLength(payload) > 0) {
      // A file made just now is empty: no need to look at it again.
      ({ v, sizeAfter: after } = this.write(p, 0, payload, c.how === 'made' ? c.ino : undefined));
      dataChanged = true;
    }
    return { result: { v, sizeBefore: c.sizeBefore, sizeAfter: after, freed: 0 }, how: c.how, dataChanged };
  }

  private create(
    p: string,
    id: string,
    mode: number,
    excl: boolean,
  ): MutateResult & { how: CreateOutcome; ino?: number } {
    if (p === '') throw new ReplicatedError('EEXIST', 'share root exists');
    const abs = this.resolve(p);
    const pino = this.parentIno(p);
    // The file already exists here under other names (this replica lacked this one): one inode
    // per file, so the name joins it and the operation changes what every name shows.
    const other = excl ? undefined : this.indexedLink(id);
    if (other && !fs.existsSync(abs)) {
      fs.linkSync(other.abs, abs);
      this.bump(pino);
      const v = this.getRecord(other.st.ino).v;
      return { v, sizeBefore: other.st.size, sizeAfter: other.st.size, freed: 0, how: 'linked' };
    }
    let fd: number;
    try {
      fd = fs.openSync(abs, fs.constants.O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, mode & 0o7777);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || excl) throw err;
      const st = fs.lstatSync(abs);
      if (!st.isFile()) throw new ReplicatedError(st.isDirectory() ? 'EISDIR' : 'EEXIST', p);
      return {
        v: this.getRecord(st.ino).v,
        sizeBefore: st.size,
        sizeAfter: st.size,
        freed: 0,
        how: 'existed',
      };
    }
    let ino: number;
    try {
      // The umask took bits of the mode away: give them back.
      if ((mode & 0o7777 & UMASK) !== 0) fs.fchmodSync(fd, mode & 0o7777);
      ino = fs.fstatSync(fd).ino;
      this.setRecord(ino, { id, v: 1 });
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    this.cacheFd(p, fd);
    this.bump(pino);
    return { ...this.none(1), how: 'made', ino };
  }

  private mkdir(p: string, id: string, mode: number): MutateResult {
    if (p === '') throw new ReplicatedError('EEXIST', 'share root exists');
    const abs = this.resolve(p);
    const pino = this.parentIno(p);
    fs.mkdirSync(abs, mode & 0o7777);
    fs.chmodSync(abs, mode & 0o7777);
    this.setRecord(fs.lstatSync(abs).ino, { id, v: 1 });
    this.bump(pino);
    return this.none(1);
  }

  private symlink(p: string, id: string, target: unknown): MutateResult {
    if (
      typeof target !== 'string' ||
      target === '' ||
      target.includes('\0') ||
      Buffer.byteLength(target) > 4096
    )
      throw new ReplicatedError('EINVAL', 'bad symlink target');
    if (p === '') throw new ReplicatedError('EEXIST', 'share root exists');
    const abs = this.resolve(p);
    const pino = this.parentIno(p);
    fs.symlinkSync(target, abs);
    this.setRecord(fs.lstatSync(abs).ino, { id, v: 1 });
    this.bump(pino);
    return this.none(1);
  }

  private link(p: string, np: string | undefined): MutateResult {
    if (np === undefined || np === '') throw new ReplicatedError('EINVAL', 'link needs newPath');
    this.cow(p);
    const src = this.resolve(p);
    const st = fs.lstatSync(src);
    if (st.isDirectory()) throw new ReplicatedError('EPERM', 'hard link to a directory');
    const dst = this.resolve(np);
    const pino = this.parentIno(np);
    fs.linkSync(src, dst);
    if (st.isFile()) this.indexLink(src, this.getRecord(st.ino).id);
    const v = this.bump(st.ino);
    this.bump(pino);
    return this.none(v);
  }

  private unlink(p: string): MutateResult {
    if (p === '') throw new ReplicatedError('EISDIR', 'share root');
    const abs = this.resolve(p);
    const st = fs.lstatSync(abs);
    if (st.isDirectory()) throw new ReplicatedError('EISDIR', p);
    const pino = this.parentIno(p);
    this.dropFd(p);
    const names = this.userLinks(st);
    fs.unlinkSync(abs);
    // Only the directory changes version: a replica that missed this unlink is blamed on the
    // directory, whose entry heal removes the name; the file's other names stay as they were.
    const gone = this.lastNameGone(st, names);
    const freed = gone && st.isFile() ? st.size : 0;
    this.bump(pino);
    return { v: 0, sizeBefore: 0, sizeAfter: 0, freed, gone: gone ? 1 : 0 };
  }

  private rmdir(p: string): MutateResult {
    if (p === '') throw new ReplicatedError('EBUSY', 'cannot remove the share root');
    const abs = this.resolve(p);
    const st = fs.lstatSync(abs);
    if (!st.isDirectory()) throw new ReplicatedError('ENOTDIR', p);
    const pino = this.parentIno(p);
    fs.rmdirSync(abs);
    this.forgetNames();
    this.dropRecord(st.ino);
    this.bump(pino);
    return this.none(0);
  }

  private rename(p: string, np: string | undefined): MutateResult {
    if (np === undefined) throw new ReplicatedError('EINVAL', 'rename needs newPath');
    if (p === '' || np === '') throw new ReplicatedError('EBUSY', 'cannot rename the share root');
    const src = this.resolve(p);
    const dst = this.resolve(np);
    const st = fs.lstatSync(src);
    const p1 = this.parentIno(p);
    const p2 = this.parentIno(np);
    let old: fs.Stats | undefined;
    try {
      old = fs.lstatSync(dst);
    } catch {
      old = undefined;
    }
    const oldNames = old && !old.isDirectory() ? this.userLinks(old) : 0;
    fs.renameSync(src, dst);
    this.forgetNames();
    let freed = 0;
    let gone = 0;
    if (old && old.ino !== st.ino) {
      if (old.isDirectory()) this.dropRecord(old.ino);
      else if (this.lastNameGone(old, oldNames)) {
        gone = 1;
        if (old.isFile()) freed = old.size;
      }
    }
    this.bump(p1);
    if (p2 !== p1) this.bump(p2);
    return { v: this.getRecord(st.ino).v, sizeBefore: 0, sizeAfter: 0, freed, gone };
  }

  /** `newIno`: the file was made empty by this operation (no need to look at it). */
  private write(p: string, off: number, parts: Buffer[], newIno?: number): MutateResult {
    this.cow(p);
    return this.withFile(p, O_WRONLY, (fd) => {
      const st = newIno === undefined ? fs.fstatSync(fd) : { ino: newIno, size: 0, isFile: () => true };
      if (!st.isFile()) throw new ReplicatedError('EISDIR', p);
      const len = payloadLength(parts);
      if (this.fds.get(p) === fd) {
        // Bytes that went direct are already on their way to the disk: only the others count.
        const direct = this.directWriter.write(fd, parts, off, len);
        this.writeback(fd, st.ino, len - direct);
      } else writeParts(fd, parts, 0, len, off);
      const after = Math.max(st.size, off + len);
      return { v: this.bump(st.ino), sizeBefore: st.size, sizeAfter: after, freed: 0 };
    });
  }

  private truncate(p: string, size: number): MutateResult {
    this.cow(p);
    return this.withFile(p, O_WRONLY, (fd) => {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new ReplicatedError('EISDIR', p);
      fs.ftruncateSync(fd, size);
      return { v: this.bump(st.ino), sizeBefore: st.size, sizeAfter: size, freed: 0 };
    });
  }

  private setattr(p: string, h: Record<string, unknown>): MutateResult {
    this.cow(p);
    const abs = this.resolve(p);
    const st = fs.lstatSync(abs);
    let before = st.isFile() ? st.size : 0;
    let after = before;
    if (h['size'] !== undefined) {
      const r = this.truncate(p, num(h['size'], 0));
      before = r.sizeBefore;
      after = r.sizeAfter;
    }
    if (h['mode'] !== undefined && !st.isSymbolicLink()) fs.chmodSync(abs, num(h['mode'], 0) & 0o7777);
    if (h['atimeMs'] !== undefined || h['mtimeMs'] !== undefined) {
      const cur = fs.lstatSync(abs);
      const at = h['atimeMs'] === undefined ? cur.atimeMs : timeMs(h['atimeMs'], 0);
      const mt = h['mtimeMs'] === undefined ? cur.mtimeMs : timeMs(h['mtimeMs'], 0);
      fs.lutimesSync(abs, at / 1000, mt / 1000);
    }
    return { v: this.bump(st.ino), sizeBefore: before, sizeAfter: after, freed: 0 };
  }

  /** Flushes a file (or directory) and its record, its parent directory and the marker index. */
  private fsync(p: string): MutateResult {
    const abs = this.resolve(p);
    const st = fs.lstatSync(abs);
    const wbErr = this.writebackErrors.get(st.ino);
    if (wbErr !== undefined) {
      this.writebackErrors.delete(st.ino);
      throw new ReplicatedError('EIO', `writeback of ${p} failed: ${wbErr}`);
    }
    if (!st.isSymbolicLink()) {
      const fd = fs.openSync(abs, O_RDONLY | O_NOFOLLOW);
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
    if (p !== '') fsyncDir(path.dirname(abs));
    fs.fsyncSync(this.recFd);
    this.dirty.sync();
    return this.none(this.getRecord(st.ino).v);
  }

  // ---- reads ---------------------------------------------------------------------------------
  /**
   * `len` bytes at `off` (fewer at the end of the file), with the file's id and version. `fid`:
   * the file must be that one (else ENOENT); `v`: and at that version (else ESTALE, a direct read
   * whose grant this copy does not match: protocol/read-grants.ts).
   */
  read(
    p: unknown,
    off: number,
    len: number,
    fid?: string,
    v?: number,
    alloc: (n: number) => Buffer = Buffer.allocUnsafe,
  ): { data: Buffer; id: string; v: number } {
    return this.withFile(checkPath(p), O_RDONLY, (fd) => {
      const st = fs.fstatSync(fd);
      if (st.isDirectory()) throw new ReplicatedError('EISDIR', String(p));
      const rec = this.getRecord(st.ino);
      if (fid !== undefined && rec.id !== fid)
        throw new ReplicatedError('ENOENT', `${String(p)} is another file now`);
      if (v !== undefined && rec.v !== v)
        throw new ReplicatedError('ESTALE', `${String(p)} is at version ${rec.v} here, not ${v}`);
      const n = Math.max(0, Math.min(len, st.size - off));
      const buf = alloc(n);
      let done = 0;
      while (done < n) {
        const r = fs.readSync(fd, buf, done, n - done, off + done);
        if (r === 0) break;
        done += r;
      }
      return { data: buf.subarray(0, done), id: rec.id, v: rec.v };
    });
  }

  /**
   * The key a direct read's grant must carry (protocol/read-grants.ts): undefined while no share
   * server holds a session here.
   */
  readGrantKey(): string | undefined {
    if (this.session === undefined) return undefined;
    this.grantKey = grantKeyFor(this.grantKey, this.session, this.info.id, this.info.gen ?? 0);
    return this.grantKey.key;
  }

  private grantKey: DerivedKey | undefined;

  readlink(p: unknown): string {
    return fs.readlinkSync(this.resolve(p));
  }

  /** Names in sorted order after `after`, at most `count`, with attributes. */
  readdir(p: unknown, after: string, count: number): { entries: DirEntry[]; done: boolean } {
    const abs = this.resolve(p);
    const st = fs.lstatSync(abs);
    if (!st.isDirectory()) throw new ReplicatedError('ENOTDIR', String(p));
    const names = fs.readdirSync(abs).sort();
    let i = 0;
    if (after) {
      while (i < names.length && names[i]! <= after) i++;
    }
    const slice = names.slice(i, i + count);
    const entries: DirEntry[] = [];
    for (const name of slice) {
      try {
        entries.push({ name, ...this.attrOf(fs.lstatSync(path.join(abs, name))) });
      } catch {
        // raced with nothing (single-threaded); ignore a vanished name
      }
    }
    return { entries, done: i + count >= names.length };
  }

  blockSums(p: unknown, blockSize: number, from: number, to: number): string[] {
    return this.withFile(checkPath(p), O_RDONLY, (fd) => {
      const size = fs.fstatSync(fd).size;
      const out: string[] = [];
      const buf = Buffer.allocUnsafe(blockSize);
      for (let b = from; b < to && b * blockSize < size; b++) {
        const n = fs.readSync(fd, buf, 0, blockSize, b * blockSize);
        out.push(createHash('sha1').update(buf.subarray(0, n)).digest('hex'));
      }
      return out;
    });
  }

  usage(): { bytes: number; files: number; dirs: number } {
    const seen = new Set<number>();
    let bytes = 0;
    let files = 0;
    let dirs = 0;
    const walk = (dir: string): void => {
      for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, d.name);
        if (d.isDirectory()) {
          dirs++;
          walk(full);
        } else {
          const st = fs.lstatSync(full);
          if (seen.has(st.ino)) continue;
          seen.add(st.ino);
          files++;
          if (st.isFile()) bytes += st.size;
        }
      }
    };
    walk(this.dataDir);
    return { bytes, files, dirs };
  }

  // ---- heal ----------------------------------------------------------------------------------
  /**
   * Makes `path` exist with the given type and id (replacing whatever differs), then applies the
   * optional data range, size, mode, times and version. Used only by heal.
   */
  healPut(h: Record<string, unknown>, parts: Buffer[]): Attr {
    const len = payloadLength(parts);
    const p = checkPath(h['path']);
    const abs = this.resolve(p);
    const type = h['type'] as FileType;
    const id = String(h['id'] ?? '');
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(abs);
    } catch {
      st = undefined;
    }
    this.forgetNames();
    if (st?.isFile() && this.shared.has(st.ino)) {
      this.cow(p);
      st = fs.lstatSync(abs);
    }
    if (st && p !== '' && (typeOf(st) !== type || this.getRecord(st.ino).id !== id)) {
      this.removeTree(p);
      st = undefined;
    }
    if (st && type === 'file' && h['linked'] === true) {
      // Two inodes here for one file (another name was healed before this one was found): this
      // name joins the indexed inode, which heal brings to the source's contents like any other.
      const other = this.indexedLink(id);
      if (other && other.st.ino !== st.ino) {
        this.removeTree(p);
        st = undefined;
      }
    }
    if (!st) {
      // Another name of the same file already here: this name joins its inode.
      const other = type === 'file' ? this.indexedLink(id) : undefined;
      if (type === 'dir') fs.mkdirSync(abs, 0o700);
      else if (type === 'symlink') fs.symlinkSync(String(h['target']), abs);
      else if (other) fs.linkSync(other.abs, abs);
      else if (type === 'file')
        fs.closeSync(fs.openSync(abs, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600));
      else throw new ReplicatedError('EINVAL', `cannot heal type ${type}`);
      st = fs.lstatSync(abs);
      if (!other) this.setRecord(st.ino, { id, v: 0 });
    } else if (type === 'symlink' && h['target'] !== undefined && fs.readlinkSync(abs) !== h['target']) {
      fs.unlinkSync(abs);
      fs.symlinkSync(String(h['target']), abs);
      st = fs.lstatSync(abs);
      this.setRecord(st.ino, { id, v: 0 });
    }
    if (type === 'file' && (len > 0 || h['size'] !== undefined)) {
      const fd = fs.openSync(abs, O_WRONLY | O_NOFOLLOW);
      try {
        if (len > 0) this.directWriter.write(fd, parts, num(h['off'], 0), len);
        if (h['size'] !== undefined) fs.ftruncateSync(fd, num(h['size'], 0));
      } finally {
        this.directWriter.release(fd);
        fs.closeSync(fd);
      }
    }
    if (h['mode'] !== undefined && type !== 'symlink') fs.chmodSync(abs, num(h['mode'], 0) & 0o7777);
    if (h['mtimeMs'] !== undefined) {
      fs.lutimesSync(
        abs,
        timeMs(h['atimeMs'], timeMs(h['mtimeMs'], 0)) / 1000,
        timeMs(h['mtimeMs'], 0) / 1000,
      );
    }
    if (h['v'] !== undefined) this.setRecord(st.ino, { id, v: num(h['v'], 0) });
    // The source's file has other names: index it, so their heal links to this inode.
    if (type === 'file' && h['linked'] === true) this.indexLink(abs, id);
    return this.attrOf(fs.lstatSync(abs));
  }

  removeTree(p: unknown): void {
    const rel = checkPath(p);
    if (rel === '') throw new ReplicatedError('EBUSY', 'cannot remove the share root');
    const abs = this.resolve(rel);
    this.forgetNames();
    const rm = (full: string): void => {
      let st: fs.Stats;
      try {
        st = fs.lstatSync(full);
      } catch {
        return;
      }
      if (st.isDirectory()) {
        for (const n of fs.readdirSync(full)) rm(path.join(full, n));
        fs.rmdirSync(full);
        this.dropRecord(st.ino);
      } else {
        const names = this.userLinks(st);
        fs.unlinkSync(full);
        this.lastNameGone(st, names);
      }
    };
    rm(abs);
  }
}

/** The `carry` argument of a mutation: [{path, bricks}], checked like every other path. */
function carriedOf(v: unknown): Array<{ path: string; bricks: string[] }> {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > 10_000) throw new ReplicatedError('EINVAL', 'carry must be a list');
  return v.map((c: unknown) => {
    const o = (c ?? {}) as Record<string, unknown>;
    const bricks = o['bricks'];
    if (!Array.isArray(bricks) || !bricks.every((b) => typeof b === 'string' && b !== ''))
      throw new ReplicatedError('EINVAL', 'carry bricks must be brick ids');
    return { path: checkPath(o['path']), bricks: bricks as string[] };
  });
}
