/**
 * Snapshot heal, brick side: a brick that missed a snapshot (down or behind when it was taken)
 * gets it from a brick that holds it, through the share server. Opcodes 0x11b–0x11f.
 *
 * Source (read-only, snapshot trees never change):
 *   bSnapWalk {snapshot, after}   a page of the snapshot's tree in pre-order, sorted names, after
 *                                 the path `after` (null: from the root): type, mode, size, times,
 *                                 symlink target, the inode (for hard links within the snapshot)
 *                                 and the snapshot's record (file id, version); small files come
 *                                 with their data in the payload
 *   bSnapRead {snapshot, path, off, len}   a range of a snapshot file (an all-zero range answers
 *                                 `zero` without data, so holes stay holes)
 * Target:
 *   bSnapHealBegin {snapshot}     a fresh staging tree `snaps/<id>.tmp-heal-<token>/` (leftovers of
 *                                 an interrupted heal of the same snapshot go first)
 *   bSnapHealPut {snapshot, token, entries} + data   entries into the staging tree, each with the
 *                                 snapshot's record (file id and version) under its new inode
 *   bSnapHealCommit {snapshot, token, info}   directory modes and times, everything flushed to
 *                                 disk, snap.json written last, then one rename publishes it
 *
 * A staging tree has no snap.json and its name holds `.tmp-`, so bSnapList never shows it; a brick
 * killed mid-heal leaves only staging, which the next heal of that snapshot removes. A snapshot
 * deleted while it was being healed here is not published (the tombstone is checked in the same
 * synchronous step as the rename).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ReplicatedError } from '../protocol/errors.ts';
import { payloadBuffer } from '../protocol/frame.ts';
import { OP } from '../protocol/opcodes.ts';
import { checkName, checkPath, isLinkPath, LINKS_ROOT } from '../protocol/paths.ts';
import type { HandlerResult } from '../protocol/rpc-server.ts';
import type { WalkEntry } from '../protocol/types.ts';
import { num, timeMs } from '../protocol/wire-args.ts';
import type { ShareStore } from './brick-store.ts';
import { readRecord, writeRecord } from './records.ts';
import { bestMethod, readSnap, type SnapInfo } from './snapshots.ts';

export const SNAPSHOT_HEAL_OPS = new Set<number>([
  OP.bSnapWalk,
  OP.bSnapRead,
  OP.bSnapHealBegin,
  OP.bSnapHealPut,
  OP.bSnapHealCommit,
]);

/** Files up to this size travel inside the walk page (no read round trip per small file). */
export const INLINE_MAX = 64 * 1024;
const PAGE_ENTRIES = 1000;
/** Headers are JSON and limited to 256 KiB on the wire: a page stops well below. */
const PAGE_HEADER_BYTES = 160 * 1024;
const PAGE_DATA_BYTES = 4 * 1024 * 1024;
const MAX_READ = 16 * 1024 * 1024;
const { O_WRONLY, O_RDONLY, O_CREAT, O_TRUNC, O_NOFOLLOW } = fs.constants;

/** What the operations need of the brick server. */
export interface SnapshotHealHost {
  share(id: unknown): ShareStore;
}

function snapsDir(s: ShareStore): string {
  return path.join(s.dir, 'snaps');
}

function tombstoned(s: ShareStore, snapId: string): boolean {
  return fs.existsSync(path.join(s.dir, 'meta', 'snaps-deleted', snapId));
}

/**
 * `rel` under `root`, never through a symlink: every intermediate component must be a real
 * directory (the trees hold client data, symlinks included).
 */
function under(root: string, rel: string): string {
  if (rel === '') return root;
  const parts = rel.split('/');
  let cur = root;
  for (let i = 0; i < parts.length - 1; i++) {
    cur = path.join(cur, parts[i]!);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(cur);
    } catch {
      throw new ReplicatedError('ENOENT', `no such directory: ${parts.slice(0, i + 1).join('/')}`);
    }
    if (!st.isDirectory()) throw new ReplicatedError('ENOTDIR', `not a directory: ${parts[i]!}`);
  }
  return path.join(cur, parts[parts.length - 1]!);
}

/** Component-wise order of pre-order paths: a parent before its children, siblings by name. */
function cmpPath(a: string[], b: string[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return a.length - b.length;
}

function isZero(buf: Buffer): boolean {
  let o = 0;
  // Compare 8 bytes at a time where the buffer allows it.
  for (; o + 8 <= buf.length; o += 8) if (buf.readBigUInt64LE(o) !== 0n) return false;
  for (; o < buf.length; o++) if (buf[o] !== 0) return false;
  return true;
}

function readAll(fd: number, buf: Buffer, off: number): number {
  let done = 0;
  while (done < buf.length) {
    const r = fs.readSync(fd, buf, done, buf.length - done, off + done);
    if (r === 0) break;
    done += r;
  }
  return done;
}

// ---- source -----------------------------------------------------------------------------------

function snapRoot(s: ShareStore, snapId: string): { dir: string; info: SnapInfo } {
  const info = readSnap(s.dir, snapId);
  if (!info) throw new ReplicatedError('ENOENT', `snapshot ${snapId} not found`);
  return { dir: path.join(snapsDir(s), snapId), info };
}

/** A page of the snapshot's tree after `after` (pre-order, sorted names). */
function walk(
  s: ShareStore,
  snapId: string,
  after: string | null,
): { header: Record<string, unknown>; payload: Buffer[] } {
  const { dir, info } = snapRoot(s, snapId);
  const data = path.join(dir, 'data');
  const cursor = after === null ? null : after === '' ? [] : after.split('/');
  const entries: WalkEntry[] = [];
  const payload: Buffer[] = [];
  let headerBytes = 0;
  let dataBytes = 0;
  const inlined = new Set<number>();
  const full = (): boolean =>
    entries.length >= PAGE_ENTRIES || headerBytes >= PAGE_HEADER_BYTES || dataBytes >= PAGE_DATA_BYTES;
  const recFd = fs.openSync(path.join(dir, 'records.bin'), 'r');
  const STOP = Symbol('page full');
  try {
    const emit = (rel: string, abs: string, st: fs.Stats): void => {
      const r = readRecord(recFd, st.ino);
      const e: WalkEntry = {
        p: rel,
        t: st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file',
        ino: st.ino,
        id: r.id,
        v: r.v,
        mode: st.mode & 0o7777,
        size: st.isDirectory() ? 0 : st.size,
        at: st.atimeMs,
        mt: st.mtimeMs,
      };
      if (st.isSymbolicLink()) e.target = fs.readlinkSync(abs);
      else if (st.isFile() && st.size <= INLINE_MAX && !inlined.has(st.ino)) {
        const fd = fs.openSync(abs, O_RDONLY | O_NOFOLLOW);
        try {
          const buf = Buffer.allocUnsafe(st.size);
          e.n = readAll(fd, buf, 0);
          payload.push(buf.subarray(0, e.n));
          dataBytes += e.n;
        } finally {
          fs.closeSync(fd);
        }
        inlined.add(st.ino);
      }
      entries.push(e);
      headerBytes += JSON.stringify(e).length + 1;
    };
    const visit = (rel: string, abs: string, parts: string[]): void => {
      const names = fs.readdirSync(abs).sort();
      for (const name of names) {
        const cparts = [...parts, name];
        const crel = rel === '' ? name : `${rel}/${name}`;
        const cabs = path.join(abs, name);
        let descendOnly = false;
        if (cursor) {
          const c = cmpPath(cparts, cursor);
          if (c < 0) {
            // Before the cursor: skipped with its subtree, unless it is an ancestor of the cursor
            // (then its children after the cursor are still to come).
            const ancestor = cmpPath(cparts, cursor.slice(0, cparts.length)) === 0;
            if (!ancestor) continue;
            descendOnly = true;
          } else if (c === 0) descendOnly = true; // sent in the last page; its children were not
        }
        const st = fs.lstatSync(cabs);
        if (!descendOnly) {
          if (full()) throw STOP;
          if (!st.isDirectory() && !st.isFile() && !st.isSymbolicLink()) continue;
          emit(crel, cabs, st);
        }
        if (st.isDirectory()) visit(crel, cabs, cparts);
      }
    };
    let done = true;
    try {
      if (cursor === null) emit('', data, fs.lstatSync(data));
      visit('', data, []);
    } catch (err) {
      if (err !== STOP) throw err;
      done = false;
    }
    return { header: { entries, done, info }, payload };
  } finally {
    fs.closeSync(recFd);
  }
}

function readRange(s: ShareStore, snapId: string, rel: string, off: number, len: number): HandlerResult {
  if (len > MAX_READ) throw new ReplicatedError('EINVAL', `read over ${MAX_READ} bytes`);
  const { dir } = snapRoot(s, snapId);
  let fd: number;
  try {
    fd = fs.openSync(under(path.join(dir, 'data'), rel), O_RDONLY | O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP')
      throw new ReplicatedError('EINVAL', `${rel} is a symlink`);
    throw err;
  }
  try {
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.allocUnsafe(Math.max(0, Math.min(len, size - off)));
    const n = readAll(fd, buf, off);
    const out = buf.subarray(0, n);
    // A hole (or zeros) costs nothing on the wire and stays a hole on the target.
    if (isZero(out)) return { header: { n, zero: true } };
    return { header: { n }, payload: out };
  } finally {
    fs.closeSync(fd);
  }
}

// ---- target -----------------------------------------------------------------------------------

function checkToken(v: unknown): string {
  if (typeof v !== 'string' || !/^[0-9a-f]{16}$/.test(v))
    throw new ReplicatedError('EINVAL', 'bad snapshot heal token');
  return v;
}

function stagingOf(s: ShareStore, snapId: string, token: string): string {
  const dir = path.join(snapsDir(s), `${snapId}.tmp-heal-${token}`);
  if (!fs.existsSync(dir))
    throw new ReplicatedError('ENOENT', `no snapshot heal ${token} of ${snapId} here (restarted?)`);
  return dir;
}

/** Removes every unfinished tree of snapshot `snapId` (an interrupted create or heal). */
function dropStaging(s: ShareStore, snapId: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(snapsDir(s));
  } catch {
    return;
  }
  for (const n of names)
    if (n.startsWith(`${snapId}.tmp-`))
      fs.rmSync(path.join(snapsDir(s), n), { recursive: true, force: true });
}

/**
 * Whether a snapshot heal stages a tree in this share (its files may link the live tree's inodes:
 * the copy-on-write set must stay).
 */
export function healStaging(shareDir: string): boolean {
  try {
    return fs.readdirSync(path.join(shareDir, 'snaps')).some((n) => n.includes('.tmp-heal-'));
  } catch {
    return false;
  }
}

/** Staging trees of snapshots this brick now holds or deleted (their heal was cut short). */
function sweep(s: ShareStore): void {
  let names: string[];
  try {
    names = fs.readdirSync(snapsDir(s));
  } catch {
    return;
  }
  for (const n of names) {
    const i = n.indexOf('.tmp-heal-');
    if (i < 0) continue;
    const id = n.slice(0, i);
    if (readSnap(s.dir, id) || tombstoned(s, id))
      fs.rmSync(path.join(snapsDir(s), n), { recursive: true, force: true });
  }
}

function begin(s: ShareStore, snapId: string): Record<string, unknown> {
  sweep(s);
  if (readSnap(s.dir, snapId)) return { have: true };
  if (tombstoned(s, snapId)) return { deleted: true };
  dropStaging(s, snapId);
  const token = randomBytes(8).toString('hex');
  const dir = path.join(snapsDir(s), `${snapId}.tmp-heal-${token}`);
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true, mode: 0o700 });
  fs.closeSync(fs.openSync(path.join(dir, 'records.bin'), 'w', 0o600));
  fs.closeSync(fs.openSync(path.join(dir, 'dirs.jsonl'), 'w', 0o600));
  return { token };
}

interface PutEntry {
  p: string;
  t: 'dir' | 'file' | 'symlink' | 'link' | 'chunk' | 'fin';
  id?: string;
  v?: number;
  mode?: number;
  size?: number;
  at?: number;
  mt?: number;
  target?: string;
  to?: string;
  off?: number;
  n?: number;
  zero?: boolean;
  /** The share server knows this brick's live copy of the path is good: it may be used. */
  live?: boolean;
}

/**
 * The target's live file at the same path, when it still is the snapshot's file (same file id,
 * version, size and mode; no operation on it left unfinished here; one client-visible name): it
 * is reflinked into the staging tree where the file system clones, else hard-linked and added to
 * the share's copy-on-write set, as a snapshot taken here would have done. Undefined: copy it.
 */
function fromLive(
  s: ShareStore,
  rel: string,
  abs: string,
  e: PutEntry,
  reflink: boolean,
  dirty: Set<string>,
): { ino: number; linked: boolean } | undefined {
  if (rel === '' || rel === LINKS_ROOT || isLinkPath(rel) || dirty.has(rel)) return undefined;
  let src: string;
  let st: fs.Stats;
  try {
    src = s.resolve(rel);
    st = fs.lstatSync(src);
  } catch {
    return undefined;
  }
  if (!st.isFile()) return undefined;
  const r = s.getRecord(st.ino);
  if (r.id === '' || r.id !== e.id || r.v !== e.v || st.size !== e.size) return undefined;
  if ((st.mode & 0o7777) !== (num(e.mode, 0) & 0o7777)) return undefined;
  if (!(s.shared.has(st.ino) || st.nlink === 1)) return undefined;
  fs.rmSync(abs, { force: true });
  try {
    if (reflink) {
      fs.copyFileSync(src, abs, fs.constants.COPYFILE_FICLONE_FORCE);
      fs.chmodSync(abs, st.mode & 0o7777);
      fs.utimesSync(abs, timeMs(e.at, 0) / 1000, timeMs(e.mt, 0) / 1000);
      return { ino: fs.lstatSync(abs).ino, linked: false };
    }
    fs.linkSync(src, abs);
    return { ino: st.ino, linked: true };
  } catch {
    fs.rmSync(abs, { force: true });
    return undefined;
  }
}

/** Applies entries to the staging tree; answers the files taken from the live tree (not to be sent). */
function put(s: ShareStore, snapId: string, token: string, raw: unknown, payload: Buffer): string[] {
  if (!Array.isArray(raw) || raw.length > 10_000)
    throw new ReplicatedError('EINVAL', 'entries must be a list');
  const dir = stagingOf(s, snapId, token);
  const data = path.join(dir, 'data');
  const recFd = fs.openSync(path.join(dir, 'records.bin'), fs.constants.O_RDWR);
  const dirLines: string[] = [];
  const fromLiveTree: string[] = [];
  const linkedInos: number[] = [];
  let reflinked = false;
  let liveSetup: { reflink: boolean; dirty: Set<string> } | undefined;
  let at = 0;
  const take = (n: number): Buffer => {
    if (at + n > payload.length) throw new ReplicatedError('EINVAL', 'entries name more data than sent');
    const b = payload.subarray(at, at + n);
    at += n;
    return b;
  };
  try {
    for (const x of raw) {
      const e = (x ?? {}) as PutEntry;
      const rel = checkPath(e.p);
      const abs = under(data, rel);
      const rec = () => ({ id: String(e.id ?? ''), v: num(e.v, 0) });
      const times = (): [number, number] => [timeMs(e.at, 0) / 1000, timeMs(e.mt, 0) / 1000];
      switch (e.t) {
        case 'dir':
          if (rel !== '' && !fs.existsSync(abs)) fs.mkdirSync(abs, 0o700);
          if (!fs.lstatSync(abs).isDirectory())
            throw new ReplicatedError('EEXIST', `${rel} is not a directory`);
          writeRecord(recFd, fs.lstatSync(abs).ino, rec());
          // Modes and times of directories are set at commit, deepest first (children change them).
          dirLines.push(JSON.stringify({ p: rel, mode: num(e.mode, 0o755) & 0o7777, at: e.at, mt: e.mt }));
          break;
        case 'symlink': {
          const target = e.target;
          if (typeof target !== 'string' || target === '' || target.includes('\0'))
            throw new ReplicatedError('EINVAL', 'bad symlink target');
          fs.rmSync(abs, { force: true });
          fs.symlinkSync(target, abs);
          fs.lutimesSync(abs, ...times());
          writeRecord(recFd, fs.lstatSync(abs).ino, rec());
          break;
        }
        case 'file': {
          if (e.live === true) {
            liveSetup ??= { reflink: bestMethod(s.dir) === 'reflink', dirty: new Set(s.index().dirty) };
            const got = fromLive(s, rel, abs, e, liveSetup.reflink, liveSetup.dirty);
            if (got) {
              if (e.n !== undefined) take(num(e.n, 0));
              writeRecord(recFd, got.ino, rec());
              if (got.linked) linkedInos.push(got.ino);
              else reflinked = true;
              fromLiveTree.push(rel);
              break;
            }
          }
          const fd = fs.openSync(abs, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o600);
          try {
            const size = num(e.size, 0);
            if (e.n !== undefined) {
              const buf = take(num(e.n, 0));
              if (!isZero(buf)) fs.writeSync(fd, buf, 0, buf.length, 0);
              // The whole file came inline: it is complete.
              fs.ftruncateSync(fd, size);
              fs.fchmodSync(fd, num(e.mode, 0o644) & 0o7777);
              fs.futimesSync(fd, ...times());
            }
            writeRecord(recFd, fs.fstatSync(fd).ino, rec());
          } finally {
            fs.closeSync(fd);
          }
          break;
        }
        case 'chunk': {
          const n = num(e.n, 0);
          const buf = e.zero === true ? undefined : take(n);
          if (!buf || isZero(buf)) break;
          const fd = fs.openSync(abs, O_WRONLY | O_NOFOLLOW);
          try {
            let done = 0;
            while (done < buf.length)
              done += fs.writeSync(fd, buf, done, buf.length - done, num(e.off, 0) + done);
          } finally {
            fs.closeSync(fd);
          }
          break;
        }
        case 'fin': {
          const fd = fs.openSync(abs, O_WRONLY | O_NOFOLLOW);
          try {
            fs.ftruncateSync(fd, num(e.size, 0));
            fs.fchmodSync(fd, num(e.mode, 0o644) & 0o7777);
            fs.futimesSync(fd, ...times());
          } finally {
            fs.closeSync(fd);
          }
          break;
        }
        case 'link': {
          // Another name of an inode already staged: one inode, as in the source snapshot.
          const to = under(data, checkPath(e.to));
          fs.rmSync(abs, { force: true });
          fs.linkSync(to, abs);
          break;
        }
        default:
          throw new ReplicatedError('EINVAL', `bad entry type ${String(e.t)}`);
      }
    }
  } finally {
    fs.closeSync(recFd);
  }
  if (dirLines.length > 0) fs.appendFileSync(path.join(dir, 'dirs.jsonl'), `${dirLines.join('\n')}\n`);
  if (linkedInos.length > 0) {
    // In the same synchronous step as the links: no write reaches these inodes before they are in
    // the copy-on-write set. The staging tree keeps the list for its shared.bin.
    s.shared.add(linkedInos);
    fs.appendFileSync(path.join(dir, 'linked.bin'), inoBytes(linkedInos));
  }
  if (reflinked) fs.writeFileSync(path.join(dir, 'reflinked'), '');
  return fromLiveTree;
}

/** Flushes the staging tree: syncfs of its file system, else an fsync per file. */
async function flush(dir: string): Promise<void> {
  const ok = await new Promise<boolean>((resolve) =>
    execFile('sync', ['-f', dir], { timeout: 600_000 }, (err) => resolve(!err)),
  );
  if (ok) return;
  const files: string[] = [];
  const walkDir = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) walkDir(f);
      if (!e.isSymbolicLink()) files.push(f);
    }
    files.push(d);
  };
  walkDir(dir);
  for (let i = 0; i < files.length; i += 16)
    await Promise.all(
      files.slice(i, i + 16).map(async (f) => {
        const h = await fs.promises.open(f, 'r');
        try {
          await h.sync();
        } finally {
          await h.close();
        }
      }),
    );
}

/**
 * shared.bin of a healed snapshot: its files with one name in the snapshot — private copies, and
 * inodes hard-linked from the live tree — which a revert or clone may hard-link into a live tree
 * (and then copy on write) like those of a snapshot taken with the link method. A file with
 * several names in the snapshot is never listed: a revert copies it, so its names stay one inode.
 */
async function writeLinkable(dir: string): Promise<void> {
  const names = new Map<number, number>();
  const nlink = new Map<number, number>();
  const visit = async (d: string): Promise<void> => {
    for (const e of await fs.promises.readdir(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) await visit(f);
      else if (e.isFile()) {
        const st = await fs.promises.lstat(f);
        names.set(st.ino, (names.get(st.ino) ?? 0) + 1);
        nlink.set(st.ino, st.nlink);
      }
    }
  };
  await visit(path.join(dir, 'data'));
  const fromLive = new Set<number>();
  try {
    const buf = await fs.promises.readFile(path.join(dir, 'linked.bin'));
    for (let o = 0; o + 8 <= buf.length; o += 8) fromLive.add(buf.readDoubleLE(o));
  } catch {
    // nothing taken from the live tree by a hard link
  }
  const inos = [...names].filter(([ino, n]) => n === 1 && (nlink.get(ino) === 1 || fromLive.has(ino)));
  await fs.promises.writeFile(path.join(dir, 'shared.bin'), inoBytes(inos.map(([ino]) => ino)), {
    mode: 0o600,
  });
}

function inoBytes(inos: number[]): Buffer {
  const buf = Buffer.alloc(inos.length * 8);
  for (const [i, ino] of inos.entries()) buf.writeDoubleLE(ino, i * 8);
  return buf;
}

function fsyncDir(d: string): void {
  const fd = fs.openSync(d, O_RDONLY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** `copyMs`: how long the share server took to bring the tree over (snap.json's `ms` adds the commit). */
async function commit(
  s: ShareStore,
  snapId: string,
  token: string,
  rawInfo: unknown,
  copyMs: number,
): Promise<Record<string, unknown>> {
  const dir = stagingOf(s, snapId, token);
  const src = (rawInfo ?? {}) as Partial<SnapInfo>;
  if (src.id !== snapId || typeof src.createdAt !== 'string')
    throw new ReplicatedError('EINVAL', 'commit needs the snapshot info of the source');
  const t0 = Date.now();
  const data = path.join(dir, 'data');
  const lines = fs
    .readFileSync(path.join(dir, 'dirs.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { p: string; mode: number; at?: number; mt?: number });
  // Deepest first: setting a child's times never changes its parent's, but creating it did.
  lines.sort((a, b) => b.p.split('/').length - a.p.split('/').length || (a.p < b.p ? 1 : -1));
  for (const l of lines) {
    const abs = under(data, l.p);
    fs.chmodSync(abs, l.mode);
    fs.utimesSync(abs, timeMs(l.at, 0) / 1000, timeMs(l.mt, 0) / 1000);
  }
  fs.rmSync(path.join(dir, 'dirs.jsonl'), { force: true });
  await writeLinkable(dir);
  const method = fs.existsSync(path.join(dir, 'linked.bin'))
    ? 'link'
    : fs.existsSync(path.join(dir, 'reflinked'))
      ? 'reflink'
      : 'copy';
  fs.rmSync(path.join(dir, 'linked.bin'), { force: true });
  fs.rmSync(path.join(dir, 'reflinked'), { force: true });
  await flush(dir);
  const info: SnapInfo = {
    id: snapId,
    size: num(src.size, 0),
    method,
    files: num(src.files, 0),
    bytes: num(src.bytes, 0),
    createdAt: src.createdAt,
    ms: copyMs + Date.now() - t0,
  };
  // From here on one synchronous step: nothing can delete or create the snapshot in between.
  if (!fs.existsSync(dir))
    throw new ReplicatedError('ENOENT', `snapshot heal ${token} of ${snapId} was dropped`);
  if (readSnap(s.dir, snapId) || tombstoned(s, snapId)) {
    fs.rmSync(dir, { recursive: true, force: true });
    return { have: readSnap(s.dir, snapId) !== undefined };
  }
  const json = path.join(dir, 'snap.json');
  const fd = fs.openSync(json, 'w', 0o600);
  try {
    fs.writeSync(fd, JSON.stringify({ ...info, healed: true }));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  const final = path.join(snapsDir(s), snapId);
  fs.rmSync(final, { recursive: true, force: true }); // never complete here (no snap.json)
  fs.renameSync(dir, final);
  fsyncDir(snapsDir(s));
  return { snap: info };
}

export function handleSnapshotHealOp(
  b: SnapshotHealHost,
  op: number,
  h: Record<string, unknown>,
  parts: Buffer[],
): HandlerResult | Promise<HandlerResult> {
  const s = b.share(h['share']);
  const snapId = checkName(h['snapshot']);
  switch (op) {
    case OP.bSnapWalk: {
      if (h['epoch'] !== undefined) s.checkEpoch(h['epoch'], h['session']);
      const after = h['after'] === null || h['after'] === undefined ? null : checkPath(h['after']);
      return walk(s, snapId, after);
    }
    case OP.bSnapRead:
      if (h['epoch'] !== undefined) s.checkEpoch(h['epoch'], h['session']);
      return readRange(s, snapId, checkPath(h['path']), num(h['off'], 0), num(h['len'], 0));
    case OP.bSnapHealBegin:
      s.checkEpoch(h['epoch'], h['session']);
      return { header: begin(s, snapId) };
    case OP.bSnapHealPut:
      s.checkEpoch(h['epoch'], h['session']);
      return {
        header: { live: put(s, snapId, checkToken(h['token']), h['entries'], payloadBuffer(parts)) },
      };
    case OP.bSnapHealCommit:
      s.checkEpoch(h['epoch'], h['session']);
      return commit(s, snapId, checkToken(h['token']), h['info'], num(h['ms'], 0)).then((header) => ({
        header,
      }));
    default:
      throw new ReplicatedError('ENOSYS', `unknown opcode ${op}`);
  }
}
