// A minimal in-memory tree for the FUSE prototype. With `sink`, file data is discarded (sizes are
// kept, reads return zeros): it measures the binding alone, without any cost of storing data.
import { constants } from 'node:os';
import type { Attr, DirEntry, StatFs } from './protocol.ts';
import { FUSE_ROOT_ID } from './protocol.ts';
import { FuseError, type FuseOps, type SetAttr } from './session.ts';

const E = constants.errno;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const CHUNK = 1024 * 1024;
const ZEROS = Buffer.alloc(CHUNK);

interface Node {
  attr: Attr;
  children?: Map<string, number>;
  chunks?: Map<number, Buffer>;
}

export interface MemoryFsOptions {
  sink?: boolean;
  /** Added delay per read/write in ms, to stand for a network round trip (shows concurrency). */
  latencyMs?: number;
}

export class MemoryFs implements FuseOps {
  private readonly nodes = new Map<number, Node>();
  private nextIno = FUSE_ROOT_ID + 1;
  /** Reads and writes in their latency delay now, and the most there were at once. */
  private delayed = 0;
  mostDelayed = 0;

  constructor(private readonly opts: MemoryFsOptions = {}) {
    this.nodes.set(FUSE_ROOT_ID, { attr: this.newAttr(FUSE_ROOT_ID, S_IFDIR | 0o777), children: new Map() });
  }

  private newAttr(ino: number, mode: number): Attr {
    const now = Date.now();
    return {
      ino,
      size: 0,
      mode,
      nlink: mode & S_IFDIR ? 2 : 1,
      uid: 0,
      gid: 0,
      atimeMs: now,
      mtimeMs: now,
      ctimeMs: now,
    };
  }

  private node(ino: number): Node {
    const n = this.nodes.get(ino);
    if (!n) throw new FuseError(E.ESTALE);
    return n;
  }

  private dir(ino: number): Map<string, number> {
    const c = this.node(ino).children;
    if (!c) throw new FuseError(E.ENOTDIR);
    return c;
  }

  private delay(): Promise<void> | undefined {
    const ms = this.opts.latencyMs;
    if (!ms) return undefined;
    this.mostDelayed = Math.max(this.mostDelayed, ++this.delayed);
    return new Promise((r) =>
      setTimeout(() => {
        this.delayed--;
        r();
      }, ms),
    );
  }

  async lookup(parent: number, name: string): Promise<Attr> {
    const ino = this.dir(parent).get(name);
    if (ino === undefined) throw new FuseError(E.ENOENT);
    return this.node(ino).attr;
  }

  async getattr(ino: number): Promise<Attr> {
    return this.node(ino).attr;
  }

  async setattr(ino: number, set: SetAttr): Promise<Attr> {
    const n = this.node(ino);
    if (set.mode !== undefined) n.attr.mode = (n.attr.mode & ~0o7777) | (set.mode & 0o7777);
    if (set.size !== undefined) this.truncate(n, set.size);
    if (set.atimeMs !== undefined) n.attr.atimeMs = set.atimeMs;
    if (set.mtimeMs !== undefined) n.attr.mtimeMs = set.mtimeMs;
    n.attr.ctimeMs = Date.now();
    return n.attr;
  }

  private truncate(n: Node, size: number): void {
    if (n.children) throw new FuseError(E.EISDIR);
    for (const [i, c] of n.chunks ?? []) {
      if (i * CHUNK >= size) n.chunks!.delete(i);
      else if ((i + 1) * CHUNK > size) c.fill(0, size - i * CHUNK);
    }
    n.attr.size = size;
  }

  private add(parent: number, name: string, mode: number): Node {
    const d = this.dir(parent);
    if (d.has(name)) throw new FuseError(E.EEXIST);
    if (Buffer.byteLength(name) > 255) throw new FuseError(E.ENAMETOOLONG);
    const ino = this.nextIno++;
    const n: Node = { attr: this.newAttr(ino, mode) };
    if (mode & S_IFDIR) {
      n.children = new Map();
      this.node(parent).attr.nlink++;
    } else n.chunks = new Map();
    this.nodes.set(ino, n);
    d.set(name, ino);
    return n;
  }

  async mkdir(parent: number, name: string, mode: number): Promise<Attr> {
    return this.add(parent, name, S_IFDIR | (mode & 0o7777)).attr;
  }

  async create(
    parent: number,
    name: string,
    mode: number,
    _flags: number,
  ): Promise<{ attr: Attr; fh: number }> {
    return { attr: this.add(parent, name, S_IFREG | (mode & 0o7777)).attr, fh: 0 };
  }

  async unlink(parent: number, name: string): Promise<void> {
    const d = this.dir(parent);
    const ino = d.get(name);
    if (ino === undefined) throw new FuseError(E.ENOENT);
    if (this.node(ino).children) throw new FuseError(E.EISDIR);
    d.delete(name);
    this.nodes.delete(ino); // no hard links in the prototype
  }

  async rmdir(parent: number, name: string): Promise<void> {
    const d = this.dir(parent);
    const ino = d.get(name);
    if (ino === undefined) throw new FuseError(E.ENOENT);
    const c = this.node(ino).children;
    if (!c) throw new FuseError(E.ENOTDIR);
    if (c.size) throw new FuseError(E.ENOTEMPTY);
    d.delete(name);
    this.nodes.delete(ino);
    this.node(parent).attr.nlink--;
  }

  async rename(
    parent: number,
    name: string,
    newParent: number,
    newName: string,
    flags: number,
  ): Promise<void> {
    if (flags) throw new FuseError(E.EINVAL);
    const from = this.dir(parent);
    const to = this.dir(newParent);
    const ino = from.get(name);
    if (ino === undefined) throw new FuseError(E.ENOENT);
    const old = to.get(newName);
    if (old !== undefined && old !== ino) {
      if (this.node(old).children) await this.rmdir(newParent, newName);
      else await this.unlink(newParent, newName);
    }
    from.delete(name);
    to.set(newName, ino);
  }

  async open(ino: number, _flags: number): Promise<number> {
    if (this.node(ino).children) throw new FuseError(E.EISDIR);
    return 0;
  }

  async read(ino: number, _fh: number, offset: number, size: number): Promise<Buffer> {
    await this.delay();
    const n = this.node(ino);
    const len = Math.max(0, Math.min(size, n.attr.size - offset));
    const first = Math.floor(offset / CHUNK);
    const within = offset - first * CHUNK;
    if (within + len <= CHUNK) {
      // Within one chunk: reply straight from the stored data (or zeros), without a copy.
      const c = this.opts.sink ? undefined : n.chunks!.get(first);
      return (c ?? ZEROS).subarray(within, within + len);
    }
    const out = Buffer.alloc(len);
    for (let done = 0; !this.opts.sink && done < len; ) {
      const pos = offset + done;
      const i = Math.floor(pos / CHUNK);
      const at = pos - i * CHUNK;
      const take = Math.min(len - done, CHUNK - at);
      n.chunks!.get(i)?.copy(out, done, at, at + take);
      done += take;
    }
    return out;
  }

  async write(ino: number, _fh: number, offset: number, data: Buffer): Promise<number> {
    await this.delay();
    const n = this.node(ino);
    if (!this.opts.sink) {
      for (let done = 0; done < data.length; ) {
        const pos = offset + done;
        const i = Math.floor(pos / CHUNK);
        const within = pos - i * CHUNK;
        const take = Math.min(data.length - done, CHUNK - within);
        let c = n.chunks!.get(i);
        if (!c) {
          c = Buffer.alloc(CHUNK);
          n.chunks!.set(i, c);
        }
        data.copy(c, within, done, done + take);
        done += take;
      }
    }
    n.attr.size = Math.max(n.attr.size, offset + data.length);
    n.attr.mtimeMs = n.attr.ctimeMs = Date.now();
    return data.length;
  }

  async release(_ino: number, _fh: number): Promise<void> {}

  async readdir(ino: number): Promise<DirEntry[]> {
    const entries: DirEntry[] = [
      { ino, name: '.', mode: S_IFDIR },
      { ino, name: '..', mode: S_IFDIR },
    ];
    for (const [name, child] of this.dir(ino))
      entries.push({ ino: child, name, mode: this.node(child).attr.mode });
    return entries;
  }

  async statfs(): Promise<StatFs> {
    const blocks = 1 << 24; // 64 GiB of 4 KiB blocks: the prototype has no size limit
    return {
      blocks,
      bfree: blocks,
      bavail: blocks,
      files: 1 << 20,
      ffree: (1 << 20) - this.nodes.size,
      bsize: 4096,
    };
  }
}
