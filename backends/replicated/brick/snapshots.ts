/**
 * Snapshots of a share on one brick. A snapshot is a tree under `snaps/<id>/` built while the
 * share server holds the share's write barrier, so every replica snapshots the same state:
 *
 *   snaps/<id>/data/          the share's tree at snapshot time
 *   snaps/<id>/records.bin    file id and version per inode of that tree (as meta/records.bin)
 *   snaps/<id>/shared.bin     inodes the tree shares with the live share (hard-link method)
 *   snaps/<id>/snap.json      SnapInfo; written last, so a tree without it is unfinished
 *   meta/shared-inodes.bin    inodes of `data` that a snapshot (or the share a clone came from)
 *                             also links: the brick copies such a file before changing it
 *   meta/snaps-deleted/<id>   a deleted snapshot never comes back through heal
 *
 * Methods, best first: reflink (FICLONE: new inodes, shared extents; files under LINK_BELOW are
 * hard-linked even there), a hard-link tree with copy-on-write done by the brick (ShareStore.cow,
 * itself a clone where the file system clones), a plain copy. The method a tree reports is the
 * best one it used for any file. A file with several names is
 * never hard-linked into a snapshot (its names would have to break together): it is copied once
 * and its other names linked to the copy.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ReplicatedError } from '../protocol/errors.ts';
import { checkName } from '../protocol/paths.ts';
import { type Rec, readRecord, writeRecordBatch } from './records.ts';

export type SnapMethod = 'reflink' | 'link' | 'copy';
export const SNAP_METHODS: readonly SnapMethod[] = ['reflink', 'link', 'copy'];

export interface SnapInfo {
  id: string;
  /** The share's quota (bytes) when the snapshot was taken: a revert restores it. */
  size: number;
  method: SnapMethod;
  files: number;
  bytes: number;
  createdAt: string;
  ms: number;
}

const { COPYFILE_FICLONE_FORCE } = fs.constants;
const NO_REFLINK = new Set(['ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EINVAL', 'ENOSYS', 'ENOTTY']);
const NO_LINK = new Set(['EMLINK', 'EPERM', 'EXDEV', 'ENOTSUP', 'EOPNOTSUPP']);
/**
 * On a file system that clones, files smaller than this are still hard-linked: one link(2) costs a
 * third of a clone's open/ioctl/close/utimes (10,000 files of 4 KiB on XFS: 0.15–0.21 s linked,
 * 0.46–0.49 s cloned, 0.45–0.48 s `cp -a`), and their copy on first write is a clone too.
 */
export const LINK_BELOW = 64 * 1024;
/** Records a tree copy keeps in memory before writing them out (4 MiB of records). */
const RECORD_BATCH = 65536;

/** Inodes of a share's `data` that other trees also link, kept in meta/shared-inodes.bin. */
export class SharedInodes {
  private readonly set = new Set<number>();
  constructor(private readonly file: string) {
    let buf: Buffer;
    try {
      buf = fs.readFileSync(file);
    } catch {
      return;
    }
    for (let o = 0; o + 8 <= buf.length; o += 8) this.set.add(buf.readDoubleLE(o));
  }

  get size(): number {
    return this.set.size;
  }

  has(ino: number): boolean {
    return this.set.has(ino);
  }

  add(inos: Iterable<number>): void {
    const fresh = [...inos].filter((i) => !this.set.has(i));
    if (fresh.length === 0) return;
    appendInodes(this.file, fresh);
    for (const i of fresh) this.set.add(i);
  }

  clear(): void {
    this.set.clear();
    fs.rmSync(this.file, { force: true });
  }
}

function appendInodes(file: string, inos: number[]): void {
  const buf = Buffer.alloc(inos.length * 8);
  for (const [i, ino] of inos.entries()) buf.writeDoubleLE(ino, i * 8);
  const fd = fs.openSync(file, 'a', 0o600);
  try {
    fs.writeSync(fd, buf);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function readInodes(file: string): Set<number> {
  const out = new Set<number>();
  try {
    const buf = fs.readFileSync(file);
    for (let o = 0; o + 8 <= buf.length; o += 8) out.add(buf.readDoubleLE(o));
  } catch {
    // none
  }
  return out;
}

/** Whether FICLONE works on the file system of `dir` (probed once per device). */
const reflinkByDev = new Map<number, boolean>();
export function reflinkWorks(dir: string): boolean {
  const dev = fs.statSync(dir).dev;
  const known = reflinkByDev.get(dev);
  if (known !== undefined) return known;
  const a = path.join(dir, `.probe-${randomUUID().slice(0, 8)}`);
  const b = `${a}-clone`;
  let ok = false;
  try {
    fs.writeFileSync(a, 'probe');
    fs.copyFileSync(a, b, COPYFILE_FICLONE_FORCE);
    ok = true;
  } catch {
    ok = false;
  } finally {
    fs.rmSync(a, { force: true });
    fs.rmSync(b, { force: true });
  }
  reflinkByDev.set(dev, ok);
  return ok;
}

interface TreeCopy {
  src: string;
  dst: string;
  /** Record of a source inode. */
  recOf: (ino: number) => Rec;
  /** Descriptor of the target's records file. */
  recFd: number;
  /** Added to every version written (revert moves versions past everything seen). */
  bump: number;
  /** Source inodes that may be hard-linked (a single name in the source tree). */
  mayLink: (st: fs.Stats) => boolean;
  method: SnapMethod;
  /** Where a target file with several names keeps its extra name (meta/links of a live share). */
  linksDir?: string;
}

interface TreeResult {
  method: SnapMethod;
  files: number;
  bytes: number;
  /** Target inodes hard-linked to source inodes. */
  linked: number[];
}

/**
 * Builds `dst` (which must not exist) as a copy of `src` using `method` where the file system
 * allows it, falling back per file: reflink → link → copy. Records follow every inode.
 */
function copyTree(o: TreeCopy): TreeResult {
  let reflink = o.method === 'reflink';
  // Links where reflink is not wanted or turns out not to work, and for small files (LINK_BELOW).
  let link = o.method === 'link';
  let linkSmall = reflink;
  const used = new Set<SnapMethod>();
  const res: TreeResult = { method: 'copy', files: 0, bytes: 0, linked: [] };
  const seen = new Map<number, string>();
  // Records are batched (writeRecordBatch) and flushed when many are pending and at the end.
  const pending = new Map<number, Rec>();
  let flushed = false;
  const flush = (): void => {
    writeRecordBatch(o.recFd, pending, !flushed);
    pending.clear();
    flushed = true;
  };
  const put = (ino: number, r: Rec): void => {
    pending.set(ino, { id: r.id, v: r.v + (r.v > 0 ? o.bump : 0) });
    if (pending.size >= RECORD_BATCH) flush();
  };
  const file = (from: string, to: string, st: fs.Stats): void => {
    res.files++;
    res.bytes += st.size;
    const r = o.recOf(st.ino);
    const again = seen.get(st.ino);
    if (again !== undefined) {
      fs.linkSync(again, to);
      if (o.linksDir && r.id && !fs.existsSync(path.join(o.linksDir, r.id)))
        fs.linkSync(to, path.join(o.linksDir, r.id));
      return;
    }
    if ((link || (linkSmall && st.size < LINK_BELOW)) && o.mayLink(st)) {
      try {
        fs.linkSync(from, to);
        used.add('link');
        res.linked.push(st.ino);
        put(st.ino, r);
        return;
      } catch (err) {
        if (!NO_LINK.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
        link = false;
        linkSmall = false;
      }
    }
    let cloned = false;
    if (reflink) {
      try {
        fs.copyFileSync(from, to, COPYFILE_FICLONE_FORCE);
        cloned = true;
        used.add('reflink');
      } catch (err) {
        if (!NO_REFLINK.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
        reflink = false;
        link = true;
      }
    }
    if (!cloned) {
      fs.copyFileSync(from, to);
      used.add('copy');
    }
    // copyFile gives the copy the source's mode already; chmod only where it did not.
    const nst = fs.lstatSync(to);
    if ((nst.mode & 0o7777) !== (st.mode & 0o7777)) fs.chmodSync(to, st.mode & 0o7777);
    fs.utimesSync(to, st.atime, st.mtime);
    put(nst.ino, r);
    if (st.nlink > 1) seen.set(st.ino, to);
  };
  const dir = (from: string, to: string, st: fs.Stats): void => {
    fs.mkdirSync(to, { mode: 0o700 });
    for (const d of fs.readdirSync(from, { withFileTypes: true })) {
      const f = path.join(from, d.name);
      const t = path.join(to, d.name);
      const cst = fs.lstatSync(f);
      if (cst.isDirectory()) dir(f, t, cst);
      else if (cst.isSymbolicLink()) {
        fs.symlinkSync(fs.readlinkSync(f), t);
        fs.lutimesSync(t, cst.atime, cst.mtime);
        put(fs.lstatSync(t).ino, o.recOf(cst.ino));
        res.files++;
      } else if (cst.isFile()) file(f, t, cst);
    }
    fs.chmodSync(to, st.mode & 0o7777);
    fs.utimesSync(to, st.atime, st.mtime);
    put(fs.lstatSync(to).ino, o.recOf(st.ino));
  };
  dir(o.src, o.dst, fs.lstatSync(o.src));
  flush();
  res.method = used.has('reflink')
    ? 'reflink'
    : used.has('link')
      ? 'link'
      : used.has('copy')
        ? 'copy'
        : o.method === 'reflink' && !reflink
          ? 'link'
          : o.method;
  return res;
}

/** The method a brick uses for a tree in `dir`: reflink where the file system clones, else links. */
export function bestMethod(dir: string, want?: unknown): SnapMethod {
  if (want !== undefined && want !== null) {
    if (!SNAP_METHODS.includes(want as SnapMethod))
      throw new ReplicatedError('EINVAL', `method must be one of ${SNAP_METHODS.join(', ')}`);
    return want as SnapMethod;
  }
  return reflinkWorks(dir) ? 'reflink' : 'link';
}

function snapDir(shareDir: string, snapId: string): string {
  return path.join(shareDir, 'snaps', checkName(snapId));
}

function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function writeJson(file: string, v: unknown): void {
  const tmp = `${file}.tmp-${randomUUID().slice(0, 8)}`;
  fs.writeFileSync(tmp, JSON.stringify(v));
  fsyncPath(tmp);
  fs.renameSync(tmp, file);
}

export function readSnap(shareDir: string, snapId: string): SnapInfo | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(snapDir(shareDir, snapId), 'snap.json'), 'utf8')) as SnapInfo;
  } catch {
    return undefined;
  }
}

export function listSnaps(shareDir: string): SnapInfo[] {
  let names: string[];
  try {
    names = fs.readdirSync(path.join(shareDir, 'snaps'));
  } catch {
    return [];
  }
  return names
    .filter((n) => !n.includes('.tmp-'))
    .map((n) => readSnap(shareDir, n))
    .filter((s): s is SnapInfo => s !== undefined)
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
}

export function deletedSnaps(shareDir: string): string[] {
  try {
    return fs.readdirSync(path.join(shareDir, 'meta', 'snaps-deleted')).filter((n) => !n.includes('.tmp-'));
  } catch {
    return [];
  }
}

/** What a snapshot needs of the live share on this brick. */
export interface LiveShare {
  readonly dir: string;
  readonly dataDir: string;
  readonly size: number;
  readonly shared: SharedInodes;
  getRecord(ino: number): Rec;
}

/**
 * Snapshots the live share (the caller holds the write barrier). Idempotent: an existing complete
 * snapshot is returned as it is. `createdAt` comes from the share server so replicas agree.
 */
export function createSnap(
  live: LiveShare,
  snapId: string,
  opts: { method?: unknown; createdAt?: unknown },
): SnapInfo {
  const dir = snapDir(live.dir, snapId);
  const have = readSnap(live.dir, snapId);
  if (have) return have;
  if (fs.existsSync(path.join(live.dir, 'meta', 'snaps-deleted', snapId)))
    throw new ReplicatedError('EINVAL', `snapshot ${snapId} was deleted; a new snapshot needs a new id`);
  const t0 = performance.now();
  const tmp = `${dir}.tmp-${randomUUID().slice(0, 8)}`;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  const method = bestMethod(live.dir, opts.method);
  const recFd = fs.openSync(path.join(tmp, 'records.bin'), 'w', 0o600);
  let r: TreeResult;
  try {
    r = copyTree({
      src: live.dataDir,
      dst: path.join(tmp, 'data'),
      recOf: (ino) => live.getRecord(ino),
      recFd,
      bump: 0,
      // One client-visible name: not a hard-linked file of the share.
      mayLink: (st) => live.shared.has(st.ino) || st.nlink === 1,
      method,
    });
    fs.fsyncSync(recFd);
  } finally {
    fs.closeSync(recFd);
  }
  if (r.linked.length > 0) {
    appendInodes(path.join(tmp, 'shared.bin'), r.linked);
    // Before the snapshot is complete: a crash in between only costs a needless copy later.
    live.shared.add(r.linked);
  }
  const info: SnapInfo = {
    id: snapId,
    size: live.size,
    method: r.method,
    files: r.files,
    bytes: r.bytes,
    createdAt: typeof opts.createdAt === 'string' ? opts.createdAt : new Date().toISOString(),
    ms: Math.round(performance.now() - t0),
  };
  writeJson(path.join(tmp, 'snap.json'), info);
  fs.renameSync(tmp, dir);
  fsyncPath(path.join(live.dir, 'snaps'));
  return info;
}

/**
 * Removes a tree already moved into the brick's trash, in the background: the caller's answer does
 * not wait for thousands of unlinks. A crash before it finishes is harmless (the brick empties its
 * trash when it starts).
 */
export function discard(trashed: string): void {
  fs.promises.rm(trashed, { recursive: true, force: true }).catch((err: Error) => {
    console.error(`brick: removing ${trashed} failed (removed at the next start): ${err.message}`);
  });
}

/** Deletes a snapshot (missing: nothing to do) and remembers it was deleted. */
export function deleteSnap(shareDir: string, snapId: string, trashDir: string): void {
  const dir = snapDir(shareDir, snapId);
  const tomb = path.join(shareDir, 'meta', 'snaps-deleted');
  fs.mkdirSync(tomb, { recursive: true });
  if (!fs.existsSync(path.join(tomb, snapId))) writeJson(path.join(tomb, snapId), new Date().toISOString());
  if (fs.existsSync(dir)) {
    const t = path.join(trashDir, `snap-${snapId}-${randomUUID().slice(0, 8)}`);
    fs.renameSync(dir, t);
    discard(t);
  }
}

/** The highest version of any inode of the live tree (revert moves past it). */
export function maxVersion(live: LiveShare): number {
  let max = live.getRecord(fs.lstatSync(live.dataDir).ino).v;
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      const st = fs.lstatSync(f);
      max = Math.max(max, live.getRecord(st.ino).v);
      if (st.isDirectory()) walk(f);
    }
  };
  walk(live.dataDir);
  return max;
}

/**
 * Builds a share tree from a snapshot into `<target>/data` and `<target>/meta/records.bin`
 * (the target directory must exist, with `meta/links`). Returns the inodes it hard-linked.
 */
function treeFromSnap(shareDir: string, snapId: string, target: string, bump: number): TreeResult {
  const sdir = snapDir(shareDir, snapId);
  const snapFd = fs.openSync(path.join(sdir, 'records.bin'), 'r');
  const shared = readInodes(path.join(sdir, 'shared.bin'));
  const recFd = fs.openSync(path.join(target, 'meta', 'records.bin'), 'w', 0o600);
  try {
    const r = copyTree({
      src: path.join(sdir, 'data'),
      dst: path.join(target, 'data'),
      recOf: (ino) => readRecord(snapFd, ino),
      recFd,
      bump,
      mayLink: (st) => shared.has(st.ino),
      method: bestMethod(shareDir),
      linksDir: path.join(target, 'meta', 'links'),
    });
    fs.fsyncSync(recFd);
    return r;
  } finally {
    fs.closeSync(recFd);
    fs.closeSync(snapFd);
  }
}

/**
 * Replaces the share's tree by the snapshot's (the share's store is closed by the caller). Every
 * version moves up by `bump`; markers of the old tree go. Returns the snapshot's info and the
 * method the new tree was built with.
 */
export function revertShare(
  shareDir: string,
  snapId: string,
  bump: number,
  trashDir: string,
): { info: SnapInfo; method: SnapMethod } {
  const info = readSnap(shareDir, snapId);
  if (!info) throw new ReplicatedError('ENOENT', `snapshot ${snapId} not found`);
  const stage = path.join(shareDir, 'meta', `revert.tmp-${randomUUID().slice(0, 8)}`);
  fs.mkdirSync(path.join(stage, 'meta', 'links'), { recursive: true });
  const r = treeFromSnap(shareDir, snapId, stage, bump);
  const trash = path.join(trashDir, `revert-${path.basename(shareDir)}-${randomUUID().slice(0, 8)}`);
  fs.mkdirSync(trash, { recursive: true });
  const meta = path.join(shareDir, 'meta');
  // The swap: old tree, records, link index and markers to the trash; the new ones in.
  fs.renameSync(path.join(shareDir, 'data'), path.join(trash, 'data'));
  fs.renameSync(path.join(stage, 'data'), path.join(shareDir, 'data'));
  fs.renameSync(path.join(stage, 'meta', 'records.bin'), path.join(meta, 'records.bin'));
  fs.renameSync(path.join(meta, 'links'), path.join(trash, 'links'));
  fs.renameSync(path.join(stage, 'meta', 'links'), path.join(meta, 'links'));
  for (const m of ['dirty', 'pending']) {
    fs.renameSync(path.join(meta, 'index', m), path.join(trash, m));
    fs.mkdirSync(path.join(meta, 'index', m));
  }
  const shared = new SharedInodes(path.join(meta, 'shared-inodes.bin'));
  shared.add(r.linked);
  fs.rmSync(stage, { recursive: true, force: true });
  discard(trash);
  return { info, method: r.method };
}

/**
 * A new share directory `dstDir` from a snapshot of the share in `srcDir`, with `shareJson` as its
 * record. Idempotent: an existing `dstDir` is left as it is.
 */
export function cloneFromSnap(
  srcDir: string,
  snapId: string,
  dstDir: string,
  shareJson: unknown,
): SnapMethod {
  const info = readSnap(srcDir, snapId);
  if (!info) throw new ReplicatedError('ENOENT', `snapshot ${snapId} not found`);
  const tmp = `${dstDir}.tmp-${randomUUID().slice(0, 8)}`;
  for (const sub of ['snaps', 'meta/index/dirty', 'meta/index/pending', 'meta/links', 'meta/tmp'])
    fs.mkdirSync(path.join(tmp, sub), { recursive: true });
  try {
    const r = treeFromSnap(srcDir, snapId, tmp, 0);
    if (r.linked.length > 0) appendInodes(path.join(tmp, 'meta', 'shared-inodes.bin'), r.linked);
    fs.writeFileSync(path.join(tmp, 'meta', 'clones'), `${path.basename(srcDir)}/${snapId}`);
    writeJson(path.join(tmp, 'share.json'), shareJson);
    fs.renameSync(tmp, dstDir);
    fsyncPath(path.dirname(dstDir));
    return r.method;
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

/**
 * breakLink off the event loop, for a large file on a file system that cannot clone (a copy of
 * seconds): the brick keeps answering pings and sends interim frames meanwhile.
 */
export async function breakLinkAsync(abs: string, tmpDir: string, st: fs.Stats): Promise<number> {
  const tmp = path.join(tmpDir, `cow-${randomUUID().slice(0, 8)}`);
  try {
    await fs.promises.copyFile(abs, tmp, fs.constants.COPYFILE_FICLONE);
    await fs.promises.chmod(tmp, st.mode & 0o7777);
    await fs.promises.utimes(tmp, st.atime, st.mtime);
    fs.renameSync(tmp, abs);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  return fs.lstatSync(abs).ino;
}

/**
 * Copy-on-write of one file of the live tree that another tree also links: a private copy with the
 * same mode and times takes its name. Returns the new inode.
 */
export function breakLink(abs: string, tmpDir: string, st: fs.Stats): number {
  const tmp = path.join(tmpDir, `cow-${randomUUID().slice(0, 8)}`);
  try {
    fs.copyFileSync(abs, tmp, fs.constants.COPYFILE_FICLONE);
    fs.chmodSync(tmp, st.mode & 0o7777);
    fs.utimesSync(tmp, st.atime, st.mtime);
    fs.renameSync(tmp, abs);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  return fs.lstatSync(abs).ino;
}
