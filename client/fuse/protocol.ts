// The kernel FUSE protocol as this client speaks it: opcodes, INIT flags and the fixed-layout
// structures of include/uapi/linux/fuse.h (little-endian, as the host). Only what the client uses.

export const FUSE_KERNEL_VERSION = 7;
/** The minor version we implement: 7.28 added max_pages; nothing we rely on is newer than 7.31. */
export const FUSE_KERNEL_MINOR_VERSION = 31;
export const FUSE_ROOT_ID = 1;

export const Op = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  DESTROY: 38,
  BATCH_FORGET: 42,
  READDIRPLUS: 44,
  RENAME2: 45,
} as const;

/** Requests the kernel sends without waiting for (and never accepts) a reply. */
export const NO_REPLY = new Set<number>([Op.FORGET, Op.BATCH_FORGET, Op.INTERRUPT]);

export const InitFlag = {
  ASYNC_READ: 1 << 0,
  POSIX_LOCKS: 1 << 1,
  ATOMIC_O_TRUNC: 1 << 3,
  BIG_WRITES: 1 << 5,
  FLOCK_LOCKS: 1 << 10,
  AUTO_INVAL_DATA: 1 << 12,
  DO_READDIRPLUS: 1 << 13,
  ASYNC_DIO: 1 << 15,
  WRITEBACK_CACHE: 1 << 16,
  PARALLEL_DIROPS: 1 << 18,
  MAX_PAGES: 1 << 22,
} as const;

export const FOPEN_DIRECT_IO = 1;
export const FOPEN_KEEP_CACHE = 2;

/** Notification codes: written to /dev/fuse unsolicited, with unique 0 and the code as `error`. */
export const Notify = {
  INVAL_INODE: 2,
  INVAL_ENTRY: 3,
} as const;

export const FATTR = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
} as const;

export const IN_HEADER_SIZE = 40;
export const OUT_HEADER_SIZE = 16;
/** fuse_read_in and fuse_write_in are both 40 bytes; WRITE data follows the latter. */
export const RW_IN_SIZE = 40;
export const ATTR_SIZE = 88;
export const ENTRY_OUT_SIZE = 40 + ATTR_SIZE;
export const ATTR_OUT_SIZE = 16 + ATTR_SIZE;
export const OPEN_OUT_SIZE = 16;
export const INIT_OUT_SIZE = 64;
export const STATFS_OUT_SIZE = 80;

export interface InHeader {
  len: number;
  opcode: number;
  unique: bigint;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
}

export function readInHeader(b: Buffer): InHeader {
  return {
    len: b.readUInt32LE(0),
    opcode: b.readUInt32LE(4),
    unique: b.readBigUInt64LE(8),
    nodeid: Number(b.readBigUInt64LE(16)),
    uid: b.readUInt32LE(24),
    gid: b.readUInt32LE(28),
    pid: b.readUInt32LE(32),
  };
}

export function outHeader(unique: bigint, error: number, bodyLen: number): Buffer {
  const h = Buffer.alloc(OUT_HEADER_SIZE);
  h.writeUInt32LE(OUT_HEADER_SIZE + bodyLen, 0);
  h.writeInt32LE(error, 4);
  h.writeBigUInt64LE(unique, 8);
  return h;
}

/** File attributes as the prototype keeps them; times in milliseconds since the epoch. */
export interface Attr {
  /** st_ino, and the node ID too unless `nodeid` says otherwise. */
  ino: number;
  /** The node ID the kernel names this file by, when it is not `ino`. */
  nodeid?: number;
  size: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
}

function writeTime(b: Buffer, ms: number, secAt: number, nsecAt: number): void {
  const sec = Math.floor(ms / 1000);
  b.writeBigUInt64LE(BigInt(sec), secAt);
  b.writeUInt32LE(Math.floor((ms - sec * 1000) * 1e6), nsecAt);
}

export function writeAttr(b: Buffer, o: number, a: Attr): void {
  b.writeBigUInt64LE(BigInt(a.ino), o);
  b.writeBigUInt64LE(BigInt(a.size), o + 8);
  b.writeBigUInt64LE(BigInt(Math.ceil(a.size / 512)), o + 16);
  writeTime(b, a.atimeMs, o + 24, o + 48);
  writeTime(b, a.mtimeMs, o + 32, o + 52);
  writeTime(b, a.ctimeMs, o + 40, o + 56);
  b.writeUInt32LE(a.mode, o + 60);
  b.writeUInt32LE(a.nlink, o + 64);
  b.writeUInt32LE(a.uid, o + 68);
  b.writeUInt32LE(a.gid, o + 72);
  b.writeUInt32LE(0, o + 76); // rdev
  b.writeUInt32LE(4096, o + 80); // blksize
  b.writeUInt32LE(0, o + 84);
}

/** Timeouts are given in seconds (fractions allowed). */
export function entryOut(a: Attr, entryTimeout: number, attrTimeout: number): Buffer {
  const b = Buffer.alloc(ENTRY_OUT_SIZE);
  b.writeBigUInt64LE(BigInt(a.nodeid ?? a.ino), 0);
  b.writeBigUInt64LE(0n, 8); // generation
  writeValid(b, entryTimeout, 16, 32);
  writeValid(b, attrTimeout, 24, 36);
  writeAttr(b, 40, a);
  return b;
}

export function attrOut(a: Attr, attrTimeout: number): Buffer {
  const b = Buffer.alloc(ATTR_OUT_SIZE);
  writeValid(b, attrTimeout, 0, 8);
  writeAttr(b, 16, a);
  return b;
}

function writeValid(b: Buffer, seconds: number, secAt: number, nsecAt: number): void {
  const s = Math.floor(seconds);
  b.writeBigUInt64LE(BigInt(s), secAt);
  b.writeUInt32LE(Math.round((seconds - s) * 1e9), nsecAt);
}

export function openOut(fh: number, openFlags: number): Buffer {
  const b = Buffer.alloc(OPEN_OUT_SIZE);
  b.writeBigUInt64LE(BigInt(fh), 0);
  b.writeUInt32LE(openFlags, 8);
  return b;
}

/** An open reply's file handle and FOPEN_* flags. */
export interface Opened {
  fh: number;
  flags?: number;
}

export function writeOut(size: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(size, 0);
  return b;
}

export interface StatFs {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
}

export function statfsOut(s: StatFs): Buffer {
  const b = Buffer.alloc(STATFS_OUT_SIZE);
  b.writeBigUInt64LE(BigInt(s.blocks), 0);
  b.writeBigUInt64LE(BigInt(s.bfree), 8);
  b.writeBigUInt64LE(BigInt(s.bavail), 16);
  b.writeBigUInt64LE(BigInt(s.files), 24);
  b.writeBigUInt64LE(BigInt(s.ffree), 32);
  b.writeUInt32LE(s.bsize, 40);
  b.writeUInt32LE(255, 44); // namelen
  b.writeUInt32LE(s.bsize, 48); // frsize
  return b;
}

export interface DirEntry {
  ino: number;
  name: string;
  mode: number;
  /**
   * For READDIRPLUS: the entry's attributes with its node ID, counting one lookup of that node
   * (the kernel then holds one); null when the kernel should look the name up itself.
   */
  plus?: () => Attr | null;
}

/**
 * Packs entries from index `from` into at most `size` bytes of fuse_dirent records; each record's
 * `off` is the index of the entry after it, which the kernel hands back as the next offset.
 * (Entries are indexed from the listing's start: the caller keeps the listing of an open directory.)
 */
/**
 * READDIRPLUS: each entry with its fuse_entry_out. An entry's `plus()` counts a lookup, so it is
 * called only for the entries that fit. Without attributes (no `plus`, or null, and always for
 * "." and "..") the node ID is 0: the kernel takes the name alone and looks it up when it needs it.
 */
export function packDirentsPlus(
  entries: DirEntry[],
  from: number,
  size: number,
  entryTimeout: number,
  attrTimeout: number,
): Buffer {
  const parts: Buffer[] = [];
  let used = 0;
  for (let i = from; i < entries.length; i++) {
    const e = entries[i]!;
    const name = Buffer.from(e.name);
    const recLen = (ENTRY_OUT_SIZE + 24 + name.length + 7) & ~7;
    if (used + recLen > size) break;
    const r = Buffer.alloc(recLen);
    const attr = e.name === '.' || e.name === '..' ? null : (e.plus?.() ?? null);
    if (attr) entryOut(attr, entryTimeout, attrTimeout).copy(r, 0);
    const d = ENTRY_OUT_SIZE;
    r.writeBigUInt64LE(BigInt(e.ino), d);
    r.writeBigUInt64LE(BigInt(i + 1), d + 8);
    r.writeUInt32LE(name.length, d + 16);
    r.writeUInt32LE((e.mode >> 12) & 0o17, d + 20);
    name.copy(r, d + 24);
    parts.push(r);
    used += recLen;
  }
  return Buffer.concat(parts, used);
}

export function packDirents(entries: DirEntry[], from: number, size: number): Buffer {
  const parts: Buffer[] = [];
  let used = 0;
  for (let i = from; i < entries.length; i++) {
    const e = entries[i]!;
    const name = Buffer.from(e.name);
    const recLen = (24 + name.length + 7) & ~7;
    if (used + recLen > size) break;
    const r = Buffer.alloc(recLen);
    r.writeBigUInt64LE(BigInt(e.ino), 0);
    r.writeBigUInt64LE(BigInt(i + 1), 8);
    r.writeUInt32LE(name.length, 16);
    r.writeUInt32LE((e.mode >> 12) & 0o17, 20);
    name.copy(r, 24);
    parts.push(r);
    used += recLen;
  }
  return Buffer.concat(parts, used);
}

/** Reads a NUL-terminated name at `o`; returns it and the offset after the NUL. */
export function cstring(b: Buffer, o: number): [string, number] {
  const end = b.indexOf(0, o);
  const stop = end < 0 ? b.length : end;
  return [b.toString('utf8', o, stop), stop + 1];
}

/** fcntl lock types as FUSE carries them. */
export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;
/** lk_flags: the request is a flock(2), not an fcntl lock. */
export const FUSE_LK_FLOCK = 1;
/** release_flags: drop the flock locks of lock_owner. */
export const FUSE_RELEASE_FLOCK_UNLOCK = 2;
/** The kernel's OFFSET_MAX: a lock to the end of the file. */
const OFFSET_MAX = 0x7fffffffffffffffn;

/** A byte-range lock; `end` is inclusive, Infinity for "to the end of the file". */
export interface FileLock {
  start: number;
  end: number;
  type: number;
  pid: number;
}

/** fuse_file_lock at `o`. */
export function readFileLock(b: Buffer, o: number): FileLock {
  const end = b.readBigUInt64LE(o + 8);
  return {
    start: Number(b.readBigUInt64LE(o)),
    end: end >= OFFSET_MAX ? Infinity : Number(end),
    type: b.readUInt32LE(o + 16),
    pid: b.readUInt32LE(o + 20),
  };
}

/** fuse_lk_out: the conflicting lock, or type F_UNLCK when there is none. */
export function lkOut(l: FileLock): Buffer {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(BigInt(l.start), 0);
  b.writeBigUInt64LE(l.end === Infinity ? OFFSET_MAX : BigInt(l.end), 8);
  b.writeUInt32LE(l.type, 16);
  b.writeUInt32LE(l.pid, 20);
  return b;
}
