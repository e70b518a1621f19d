// A FUSE session on /dev/fuse without native code: open the device, have mount(8) mount it with
// the descriptor inherited as fd 3, then read requests on the event loop as epoll reports them
// and serve up to `readers` at once.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { constants } from 'node:os';
import path from 'node:path';
import {
  type Attr,
  attrOut,
  cstring,
  type DirEntry,
  entryOut,
  FATTR,
  type FileLock,
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION,
  FUSE_LK_FLOCK,
  FUSE_RELEASE_FLOCK_UNLOCK,
  IN_HEADER_SIZE,
  INIT_OUT_SIZE,
  InitFlag,
  lkOut,
  NO_REPLY,
  Notify,
  Op,
  type Opened,
  openOut,
  outHeader,
  packDirents,
  packDirentsPlus,
  RW_IN_SIZE,
  readFileLock,
  readInHeader,
  type StatFs,
  statfsOut,
  writeOut,
} from './protocol.ts';

const E = constants.errno;

/** Throw this from an operation to answer the request with that errno. */
export class FuseError extends Error {
  constructor(readonly errno: number) {
    super(`errno ${errno}`);
  }
}

export interface SetAttr {
  mode?: number;
  size?: number;
  atimeMs?: number;
  mtimeMs?: number;
  uid?: number;
  gid?: number;
  /** The open file the change came through (ftruncate, futimens), when there is one. */
  fh?: number;
}

/** Inode-based operations, as the kernel asks them (the low-level FUSE model). */
/** A READ's data in memory the file system takes back once the reply is written. */
export interface ReadData {
  parts: Buffer[];
  release(): void;
}

export interface FuseOps {
  lookup(parent: number, name: string): Promise<Attr>;
  forget?(ino: number, nlookup: number): void;
  getattr(ino: number): Promise<Attr>;
  setattr(ino: number, set: SetAttr): Promise<Attr>;
  mkdir(parent: number, name: string, mode: number): Promise<Attr>;
  readlink?(ino: number): Promise<string>;
  symlink?(parent: number, name: string, target: string): Promise<Attr>;
  /** A new name `newName` in `newParent` for the file `ino` (a hard link). */
  link?(ino: number, newParent: number, newName: string): Promise<Attr>;
  unlink(parent: number, name: string): Promise<void>;
  rmdir(parent: number, name: string): Promise<void>;
  rename(parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void>;
  /** Answers the file handle, or the handle and FOPEN_* flags (direct_io, keep_cache). */
  open(ino: number, flags: number): Promise<number | Opened>;
  create(
    parent: number,
    name: string,
    mode: number,
    flags: number,
  ): Promise<{ attr: Attr; fh: number; flags?: number }>;
  /**
   * The data, in one buffer or in pieces (written to the device as they are, without joining);
   * or pieces with a `release` called once they are written (their memory is then reused).
   */
  read(ino: number, fh: number, offset: number, size: number): Promise<Buffer | Buffer[] | ReadData>;
  /**
   * `data` is a view of the session's read buffer, reused after the reply. `keep` hands that buffer
   * to the file system instead (for writes answered before they are sent on): the session reads
   * the next request into another one, and the returned function gives it back once `data` is no
   * longer needed. No copy, and no fresh memory per request.
   */
  write(ino: number, fh: number, offset: number, data: Buffer, keep?: () => () => void): Promise<number>;
  /** close(2) of a descriptor; `owner` is its lock owner, whose POSIX locks go now. */
  flush?(ino: number, fh: number, owner: string): Promise<void>;
  fsync?(ino: number, fh: number, datasync: boolean): Promise<void>;
  /** The last close; `flockOwner` is set when the flock locks of that owner must go. */
  release(ino: number, fh: number, flockOwner?: string): Promise<void>;
  /** The first lock of another owner that conflicts with `lock`, or null. */
  getlk?(ino: number, fh: number, owner: string, lock: FileLock): Promise<FileLock | null>;
  /**
   * Takes or releases (type F_UNLCK) a lock: fcntl, or flock with `flock`. With `wait`, until it
   * is granted or `signal` aborts (the kernel's INTERRUPT), which must end in EINTR.
   */
  setlk?(
    ino: number,
    fh: number,
    owner: string,
    lock: FileLock,
    opts: { wait: boolean; flock: boolean; signal: AbortSignal },
  ): Promise<void>;
  /** A handle for READDIR to keep a listing under (default 0). */
  opendir?(ino: number): Promise<number>;
  /**
   * The whole listing of a directory, entries indexed from 0; the session answers READDIR at
   * `offset` from it (a file system may cache it under `fh` for offsets after 0).
   */
  readdir(ino: number, fh: number, offset: number): Promise<DirEntry[]>;
  /** Listings carry attributes (DirEntry.plus): the session asks for READDIRPLUS. */
  readonly readdirPlus?: boolean;
  releasedir?(ino: number, fh: number): Promise<void>;
  statfs(): Promise<StatFs>;
}

export interface SessionOptions {
  /** Requests served at once, lock waits not counted (default 8). */
  readers?: number;
  /** Largest WRITE the kernel may send, in bytes (default 1 MiB; the kernel caps it at max_pages). */
  maxWrite?: number;
  entryTimeout?: number;
  attrTimeout?: number;
  fsname?: string;
  /**
   * Readahead in KiB, set on the mount's bdi after mounting (default 16 × max_write): INIT can
   * only lower the kernel's 128 KiB default. Each READ is at most max_write, so a window of
   * several keeps that many READs in flight for one sequential reader.
   */
  readaheadKb?: number;
  /** Extra mount options, e.g. ['ro']. */
  mountOptions?: string[];
  /** Log each request to stderr. */
  debug?: boolean;
}

const PAGE = 4096;
const OPNAME = new Map(Object.entries(Op).map(([k, v]) => [v as number, k]));

export class FuseSession {
  readonly fd: number;
  private readonly readers: number;
  private readonly maxWrite: number;
  private readonly entryTimeout: number;
  private readonly attrTimeout: number;
  private closed = false;
  /** The device stream has closed: the mount is gone (unmounted from here or from outside). */
  private ended = false;
  /** Settles when the device stream has closed. */
  private served: Promise<void> = Promise.resolve();
  /**
   * Uses of the descriptor still to come: requests being served (not lock waits, which may last
   * forever) and notifications queued on the thread pool. Once the device is gone, the descriptor
   * is closed only when this reaches 0 (`whenIdle`), so no reply can reach a closed descriptor, or
   * another file that took its number.
   */
  private outstanding = 0;
  private whenIdle: (() => void) | undefined;
  /** Device read buffers: one to read into, one per WRITE being served or held by write-behind. */
  private readonly buffers: BufferPool;
  /** Requests the kernel may interrupt (lock waits), by unique. */
  private readonly interruptible = new Map<bigint, AbortController>();
  /** What INIT settled: the kernel's protocol minor, flags granted, max_write and max_pages. */
  negotiated: {
    kernelMinor: number;
    minor: number;
    flags: number;
    maxWrite: number;
    maxPages: number;
    maxReadahead: number;
  } | null = null;

  readonly mountpoint: string;

  private constructor(
    mountpoint: string,
    private readonly ops: FuseOps,
    private readonly opts: SessionOptions,
  ) {
    this.readers = opts.readers ?? 8;
    this.maxWrite = opts.maxWrite ?? 1024 * 1024;
    this.entryTimeout = opts.entryTimeout ?? 1;
    this.attrTimeout = opts.attrTimeout ?? 1;
    this.mountpoint = path.resolve(mountpoint);
    this.fd = fs.openSync('/dev/fuse', 'r+');
    this.buffers = new BufferPool(this.maxWrite + PAGE);
  }

  /** Mounts `ops` at `mountpoint` (root only) and starts serving. */
  static async mount(mountpoint: string, ops: FuseOps, opts: SessionOptions = {}): Promise<FuseSession> {
    const s = new FuseSession(mountpoint, ops, opts);
    let handle: PipeHandle | undefined;
    try {
      handle = pollable(s.fd);
      await s.runMount();
    } catch (err) {
      if (handle) handle.close();
      else fs.closeSync(s.fd);
      throw err;
    }
    s.served = s.serveDevice(handle);
    void s.served.then(() => {
      s.ended = true;
    });
    return s;
  }

  private runMount(): Promise<void> {
    const options = [
      'fd=3',
      'rootmode=40000',
      `user_id=${process.getuid?.() ?? 0}`,
      `group_id=${process.getgid?.() ?? 0}`,
      'allow_other',
      'default_permissions',
      ...(this.opts.mountOptions ?? []),
    ];
    // -i: no /sbin/mount.<type> helper (mount.fuse would try to run a program named by the source).
    const args = [
      '-i',
      '-t',
      'fuse.abaca',
      '-o',
      options.join(','),
      this.opts.fsname ?? 'abaca',
      this.mountpoint,
    ];
    return runCommand('mount', args, [this.fd]);
  }

  /**
   * The bdi is named by the mount's device number, read from mountinfo: a stat of the mountpoint
   * would be a FUSE request this (single) thread has to answer itself.
   */
  private setReadahead(kb: number): void {
    const line = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[4] === this.mountpoint && l.includes(' - fuse.abaca '));
    const dev = line?.split(' ')[2];
    if (!dev) return;
    try {
      fs.writeFileSync(`/sys/class/bdi/${dev}/read_ahead_kb`, String(kb));
    } catch {
      // Best effort: without it reads come in 128 KiB requests.
    }
  }

  /** Unmounts (lazily if busy and `lazy`); the device read then sees ENODEV and the session ends. */
  async unmount(lazy = false): Promise<void> {
    try {
      if (!this.ended) await runCommand('umount', lazy ? ['-l', this.mountpoint] : [this.mountpoint]);
    } catch (err) {
      if (!this.ended) throw err; // else someone else unmounted it meanwhile
    }
    await this.closedPromise();
  }

  /**
   * Tells the kernel to drop what it cached of inode `ino`: its attributes, and with `off` ≥ 0
   * its pages from `off` (`len` bytes, 0 for all). Never call it for pages while serving a request
   * on that inode (the kernel may wait on a page that request holds); attributes alone are safe.
   */
  notifyInvalInode(ino: number, off = -1, len = 0): void {
    const b = Buffer.alloc(24);
    b.writeBigUInt64LE(BigInt(ino), 0);
    b.writeBigInt64LE(BigInt(off), 8);
    b.writeBigInt64LE(BigInt(len), 16);
    this.notify(Notify.INVAL_INODE, [b]);
  }

  /**
   * The same for pages too, written from a pool thread: the kernel may wait there on a page an
   * in-flight READ of that inode holds, which this thread stays free to answer.
   */
  notifyInvalInodeAsync(ino: number, off = 0, len = 0): Promise<void> {
    if (this.ended || this.closed || this.negotiated === null) return Promise.resolve();
    const b = Buffer.alloc(24);
    b.writeBigUInt64LE(BigInt(ino), 0);
    b.writeBigInt64LE(BigInt(off), 8);
    b.writeBigInt64LE(BigInt(len), 16);
    this.outstanding++;
    return new Promise((resolve) => {
      fs.writev(this.fd, [outHeader(0n, Notify.INVAL_INODE, b.length), b], () => {
        this.settled();
        resolve();
      });
    });
  }

  /** One use of the descriptor is over; the last one after the device went away closes it. */
  private settled(): void {
    if (--this.outstanding > 0 || !this.whenIdle) return;
    const close = this.whenIdle;
    this.whenIdle = undefined;
    close();
  }

  /** Tells the kernel to drop the name `name` in directory `parent` from its dentry cache. */
  notifyInvalEntry(parent: number, name: string): void {
    const n = Buffer.from(name);
    const b = Buffer.alloc(16);
    b.writeBigUInt64LE(BigInt(parent), 0);
    b.writeUInt32LE(n.length, 8);
    this.notify(Notify.INVAL_ENTRY, [b, n, Buffer.alloc(1)]);
  }

  private notify(code: number, body: Buffer[]): void {
    if (this.ended || this.closed || this.negotiated === null) return;
    let len = 0;
    for (const b of body) len += b.length;
    try {
      fs.writevSync(this.fd, [outHeader(0n, code, len), ...body]);
    } catch {
      // ENOENT: the kernel does not hold that inode or name (nothing to drop); ENODEV: unmounted.
    }
  }

  /** Resolves once the device stream has closed (after an unmount from anywhere), and with it the fd. */
  async closedPromise(): Promise<void> {
    await this.served;
    if (!this.closed) {
      this.closed = true;
      fs.closeSync(this.fd);
    }
  }

  /**
   * Reads the device from the event loop: the descriptor is wrapped in a libuv stream, so epoll
   * says when a request is waiting and each read(2) returns one request, with no thread-pool
   * hand-off. A WRITE keeps the buffer it was read into (the handler may keep it longer); other
   * requests are copied out of it. Reading pauses while `readers` requests are being served; lock
   * waits do not count, since one may last as long as another program holds the lock.
   */
  private serveDevice(handle: PipeHandle): Promise<void> {
    let busy = 0;
    let paused = false;
    let next = this.buffers.get();
    let socket: net.Socket;
    const done = (): void => {
      busy--;
      if (paused && busy < this.readers) {
        paused = false;
        socket.resume();
      }
    };
    const onRequest = (n: number, buf: Buffer): boolean => {
      const op = n >= IN_HEADER_SIZE ? buf.readUInt32LE(4) : -1;
      // A WRITE is served from the device buffer itself (its payload is forwarded, or kept by
      // write-behind, without a copy), so the next read needs another. Anything else is small:
      // it is copied out, and the buffer takes the next request. A lock wait, which may last
      // long, then holds no large buffer either.
      const write = op === Op.WRITE;
      let kept = false;
      const keep = (): (() => void) => {
        if (!write) return () => {};
        kept = true;
        return () => this.buffers.put(buf);
      };
      const req = write ? buf.subarray(0, n) : Buffer.from(buf.subarray(0, n));
      if (write) next = this.buffers.get();
      const waits = op === Op.SETLKW;
      if (!waits) {
        busy++;
        this.outstanding++;
      }
      this.handle(req, keep)
        .catch((e: unknown) => process.stderr.write(`fuse: ${String(e)}\n`))
        .finally(() => {
          if (write && !kept) this.buffers.put(buf);
          if (!waits) {
            done();
            this.settled();
          }
        });
      if (busy >= this.readers) paused = true;
      return !paused;
    };
    return new Promise((resolve) => {
      socket = new net.Socket({
        handle,
        readable: true,
        writable: false,
        onread: { buffer: () => next, callback: onRequest },
      } as net.SocketConstructorOpts);
      // A failed read (ENODEV once unmounted) destroys the stream, and destroying it closes the
      // descriptor: that waits until the requests still being served have replied. Reading has
      // stopped by then (libuv stops a stream at a read error).
      const closeDescriptor = socket._destroy.bind(socket);
      socket._destroy = (err, callback) => {
        const close = () => {
          this.closed = true;
          closeDescriptor(err, callback);
        };
        if (this.outstanding === 0) close();
        else this.whenIdle = close;
      };
      socket.on('error', (e: NodeJS.ErrnoException) => {
        // ENODEV: unmounted (from here or outside); ECONNABORTED: the connection was aborted
        // (a read racing the unmount sees it too). Anything else ends the session the same way.
        if (e.code !== 'ENODEV' && e.code !== 'ECONNABORTED')
          process.stderr.write(`fuse: reading /dev/fuse: ${String(e)}\n`);
      });
      socket.on('close', () => resolve());
    });
  }

  private reply(unique: bigint, error: number, body: Buffer[] = []): void {
    // A lock wait that ends after the descriptor closed (the mount is gone): nobody to tell.
    if (this.closed) return;
    let len = 0;
    for (const b of body) len += b.length;
    try {
      fs.writevSync(this.fd, [outHeader(unique, error, len), ...body]);
    } catch (err) {
      // ENOENT: the request was interrupted and is gone; ENODEV: unmounted meanwhile.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENODEV') throw err;
    }
  }

  /** Read replies whose memory goes back to the file system once written (ReadData). */
  private readonly releases = new WeakMap<Buffer[], () => void>();

  private async handle(req: Buffer, keep: () => () => void): Promise<void> {
    const h = readInHeader(req);
    const arg = req.subarray(IN_HEADER_SIZE, h.len);
    if (this.opts.debug) process.stderr.write(`fuse: ${OPNAME.get(h.opcode) ?? h.opcode} node ${h.nodeid}\n`);
    try {
      const body = await this.dispatch(h.opcode, h.nodeid, arg, h.unique, keep);
      try {
        if (body && !NO_REPLY.has(h.opcode)) this.reply(h.unique, 0, body);
      } finally {
        const release = body ? this.releases.get(body) : undefined;
        if (release) {
          this.releases.delete(body!);
          release();
        }
      }
      // After INIT's reply: the kernel lowers readahead to what INIT said when it applies it.
      if (h.opcode === Op.INIT)
        this.setReadahead(this.opts.readaheadKb ?? Math.floor((16 * this.maxWrite) / 1024));
    } catch (err) {
      if (NO_REPLY.has(h.opcode)) return;
      const errno = err instanceof FuseError ? err.errno : E.EIO;
      if (!(err instanceof FuseError))
        process.stderr.write(`fuse: ${OPNAME.get(h.opcode)}: ${String(err)}\n`);
      this.reply(h.unique, -errno);
    }
  }

  /** Returns the reply body, or null for requests that take no reply. */
  private async dispatch(
    op: number,
    ino: number,
    a: Buffer,
    unique: bigint,
    keep: () => () => void,
  ): Promise<Buffer[] | null> {
    const ops = this.ops;
    switch (op) {
      case Op.INIT:
        return [this.init(a)];
      case Op.DESTROY:
        return [];
      case Op.LOOKUP:
        return [entryOut(await ops.lookup(ino, cstring(a, 0)[0]), this.entryTimeout, this.attrTimeout)];
      case Op.FORGET:
        ops.forget?.(ino, Number(a.readBigUInt64LE(0)));
        return null;
      case Op.BATCH_FORGET: {
        const count = a.readUInt32LE(0);
        for (let i = 0; i < count; i++)
          ops.forget?.(Number(a.readBigUInt64LE(8 + i * 16)), Number(a.readBigUInt64LE(16 + i * 16)));
        return null;
      }
      case Op.INTERRUPT:
        this.interruptible.get(a.readBigUInt64LE(0))?.abort();
        return null;
      case Op.GETLK: {
        if (!ops.getlk) throw new FuseError(E.ENOSYS);
        const lock = readFileLock(a, 16);
        const held = await ops.getlk(
          ino,
          Number(a.readBigUInt64LE(0)),
          a.readBigUInt64LE(8).toString(16),
          lock,
        );
        return [lkOut(held ?? { ...lock, type: 2 })];
      }
      case Op.SETLK:
      case Op.SETLKW: {
        if (!ops.setlk) throw new FuseError(E.ENOSYS);
        const ac = new AbortController();
        this.interruptible.set(unique, ac);
        try {
          await ops.setlk(
            ino,
            Number(a.readBigUInt64LE(0)),
            a.readBigUInt64LE(8).toString(16),
            readFileLock(a, 16),
            {
              wait: op === Op.SETLKW,
              flock: (a.readUInt32LE(40) & FUSE_LK_FLOCK) !== 0,
              signal: ac.signal,
            },
          );
        } finally {
          this.interruptible.delete(unique);
        }
        return [];
      }
      case Op.GETATTR:
        return [attrOut(await ops.getattr(ino), this.attrTimeout)];
      case Op.SETATTR:
        return [attrOut(await ops.setattr(ino, parseSetattr(a)), this.attrTimeout)];
      case Op.READLINK: {
        if (!ops.readlink) throw new FuseError(E.ENOSYS);
        return [Buffer.from(await ops.readlink(ino))];
      }
      case Op.SYMLINK: {
        if (!ops.symlink) throw new FuseError(E.ENOSYS);
        const [name, next] = cstring(a, 0);
        const attr = await ops.symlink(ino, name, cstring(a, next)[0]);
        return [entryOut(attr, this.entryTimeout, this.attrTimeout)];
      }
      case Op.LINK: {
        if (!ops.link) throw new FuseError(E.ENOSYS);
        const attr = await ops.link(Number(a.readBigUInt64LE(0)), ino, cstring(a, 8)[0]);
        return [entryOut(attr, this.entryTimeout, this.attrTimeout)];
      }
      case Op.MKDIR: {
        const attr = await ops.mkdir(ino, cstring(a, 8)[0], a.readUInt32LE(0) & ~a.readUInt32LE(4));
        return [entryOut(attr, this.entryTimeout, this.attrTimeout)];
      }
      case Op.UNLINK:
        await ops.unlink(ino, cstring(a, 0)[0]);
        return [];
      case Op.RMDIR:
        await ops.rmdir(ino, cstring(a, 0)[0]);
        return [];
      case Op.RENAME:
      case Op.RENAME2: {
        const at = op === Op.RENAME ? 8 : 16;
        const [from, next] = cstring(a, at);
        const flags = op === Op.RENAME ? 0 : a.readUInt32LE(8);
        await ops.rename(ino, from, Number(a.readBigUInt64LE(0)), cstring(a, next)[0], flags);
        return [];
      }
      case Op.OPEN: {
        const r = await ops.open(ino, a.readUInt32LE(0));
        return [typeof r === 'number' ? openOut(r, 0) : openOut(r.fh, r.flags ?? 0)];
      }
      case Op.CREATE: {
        const mode = a.readUInt32LE(4) & ~a.readUInt32LE(8);
        const r = await ops.create(ino, cstring(a, 16)[0], mode, a.readUInt32LE(0));
        return [entryOut(r.attr, this.entryTimeout, this.attrTimeout), openOut(r.fh, r.flags ?? 0)];
      }
      case Op.READ: {
        const fh = Number(a.readBigUInt64LE(0));
        const data = await ops.read(ino, fh, Number(a.readBigUInt64LE(8)), a.readUInt32LE(16));
        if (Buffer.isBuffer(data)) return [data];
        if (Array.isArray(data)) return data;
        this.releases.set(data.parts, data.release);
        return data.parts;
      }
      case Op.WRITE: {
        const fh = Number(a.readBigUInt64LE(0));
        const size = a.readUInt32LE(16);
        const n = await ops.write(
          ino,
          fh,
          Number(a.readBigUInt64LE(8)),
          a.subarray(RW_IN_SIZE, RW_IN_SIZE + size),
          keep,
        );
        return [writeOut(n)];
      }
      case Op.FLUSH:
        await ops.flush?.(ino, Number(a.readBigUInt64LE(0)), a.readBigUInt64LE(16).toString(16));
        return [];
      case Op.FSYNC:
        await ops.fsync?.(ino, Number(a.readBigUInt64LE(0)), (a.readUInt32LE(8) & 1) !== 0);
        return [];
      case Op.RELEASE: {
        const flockUnlock = (a.readUInt32LE(12) & FUSE_RELEASE_FLOCK_UNLOCK) !== 0;
        await ops.release(
          ino,
          Number(a.readBigUInt64LE(0)),
          flockUnlock ? a.readBigUInt64LE(16).toString(16) : undefined,
        );
        return [];
      }
      case Op.OPENDIR:
        return [openOut(ops.opendir ? await ops.opendir(ino) : 0, 0)];
      case Op.READDIR: {
        const fh = Number(a.readBigUInt64LE(0));
        const offset = Number(a.readBigUInt64LE(8));
        const entries = await ops.readdir(ino, fh, offset);
        return [packDirents(entries, offset, a.readUInt32LE(16))];
      }
      case Op.READDIRPLUS: {
        const fh = Number(a.readBigUInt64LE(0));
        const offset = Number(a.readBigUInt64LE(8));
        const entries = await ops.readdir(ino, fh, offset);
        return [packDirentsPlus(entries, offset, a.readUInt32LE(16), this.entryTimeout, this.attrTimeout)];
      }
      case Op.RELEASEDIR:
        await ops.releasedir?.(ino, Number(a.readBigUInt64LE(0)));
        return [];
      case Op.FSYNCDIR:
        return [];
      case Op.STATFS:
        return [statfsOut(await ops.statfs())];
      default:
        throw new FuseError(E.ENOSYS);
    }
  }

  private init(a: Buffer): Buffer {
    const major = a.readUInt32LE(0);
    const minor = a.readUInt32LE(4);
    const maxReadahead = a.readUInt32LE(8);
    const kernelFlags = a.readUInt32LE(12);
    const out = Buffer.alloc(INIT_OUT_SIZE);
    out.writeUInt32LE(FUSE_KERNEL_VERSION, 0);
    out.writeUInt32LE(FUSE_KERNEL_MINOR_VERSION, 4);
    if (major !== FUSE_KERNEL_VERSION) return out.subarray(0, 8); // the kernel retries or gives up
    const locks = this.ops.setlk ? InitFlag.POSIX_LOCKS | InitFlag.FLOCK_LOCKS : 0;
    const want =
      locks |
      InitFlag.ASYNC_READ |
      InitFlag.BIG_WRITES |
      InitFlag.MAX_PAGES |
      InitFlag.ATOMIC_O_TRUNC |
      InitFlag.PARALLEL_DIROPS |
      InitFlag.ASYNC_DIO |
      (this.ops.readdirPlus ? InitFlag.DO_READDIRPLUS : 0);
    const flags = kernelFlags & want;
    const maxPages = Math.ceil(this.maxWrite / PAGE);
    out.writeUInt32LE(maxReadahead, 8);
    out.writeUInt32LE(flags, 12);
    out.writeUInt16LE(64, 16); // max_background: readahead and async direct I/O in flight
    out.writeUInt16LE(48, 18); // congestion_threshold
    out.writeUInt32LE(this.maxWrite, 20);
    out.writeUInt32LE(1, 24); // time_gran: nanoseconds
    out.writeUInt16LE(maxPages, 28);
    this.negotiated = {
      kernelMinor: minor,
      minor: Math.min(minor, FUSE_KERNEL_MINOR_VERSION),
      flags,
      maxWrite: this.maxWrite,
      maxPages,
      maxReadahead,
    };
    return out;
  }
}

/** Buffers of one size, recycled: faulting in fresh memory for every request costs more than the copy. */
type PipeHandle = { open(fd: number): number; close(): void };

/**
 * A libuv stream handle over `fd`. Node's net has no public way to wrap a character device, but
 * its internal pipe handle takes any descriptor (making it non-blocking), and epoll works on
 * /dev/fuse.
 */
function pollable(fd: number): PipeHandle {
  const { Pipe, constants: pipe } = (
    process as unknown as {
      binding(name: 'pipe_wrap'): { Pipe: new (type: number) => PipeHandle; constants: { SOCKET: number } };
    }
  ).binding('pipe_wrap');
  const handle = new Pipe(pipe.SOCKET);
  const err = handle.open(fd);
  if (err) throw new Error(`cannot poll /dev/fuse: libuv error ${err}`);
  return handle;
}

class BufferPool {
  private readonly free: Buffer[] = [];
  constructor(
    private readonly size: number,
    private readonly maxFree = 64,
  ) {}
  get(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }
  put(b: Buffer): void {
    if (this.free.length < this.maxFree) this.free.push(b);
  }
}

function parseSetattr(a: Buffer): SetAttr {
  const valid = a.readUInt32LE(0);
  const set: SetAttr = {};
  const time = (secAt: number, nsecAt: number) =>
    Number(a.readBigUInt64LE(secAt)) * 1000 + a.readUInt32LE(nsecAt) / 1e6;
  if (valid & FATTR.MODE) set.mode = a.readUInt32LE(68);
  if (valid & FATTR.UID) set.uid = a.readUInt32LE(76);
  if (valid & FATTR.GID) set.gid = a.readUInt32LE(80);
  if (valid & FATTR.FH) set.fh = Number(a.readBigUInt64LE(8));
  if (valid & FATTR.SIZE) set.size = Number(a.readBigUInt64LE(16));
  if (valid & FATTR.ATIME_NOW) set.atimeMs = Date.now();
  else if (valid & FATTR.ATIME) set.atimeMs = time(32, 56);
  if (valid & FATTR.MTIME_NOW) set.mtimeMs = Date.now();
  else if (valid & FATTR.MTIME) set.mtimeMs = time(40, 60);
  return set;
}

function runCommand(cmd: string, args: string[], passFds: number[] = []): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe', ...passFds] });
    let stderr = '';
    child.stderr?.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${stderr.trim()}`)),
    );
  });
}
