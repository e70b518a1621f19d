/**
 * Large file writes of a brick go around the page cache (O_DIRECT), the way databases stream
 * their data files: a replica-3 stream otherwise puts three copies of every byte into fresh
 * page-cache pages on one host, and filling fresh pages (zeroing them, and on a VM faulting them in
 * from the hypervisor) costs more CPU than the disk write itself. Small writes, and the unaligned
 * head and tail of a large one, stay buffered.
 *
 * O_DIRECT needs the buffer, the file offset and the length aligned to the device's logical block
 * size. The staging buffer lives in a WebAssembly.Memory, whose backing store is page aligned; data
 * arrives in socket chunks anyway, so the one copy into it replaces the kernel's copy into the
 * page cache. Where a file system refuses O_DIRECT (tmpfs on older kernels, some FUSE mounts) the
 * writer turns itself off and every write is buffered, as before.
 *
 * Durability does not change: an O_DIRECT write may still sit in the device's cache and its size
 * and extents in the journal, so fsync remains the only promise (docs/replicated.md).
 */
import fs from 'node:fs';

/** Alignment used for offsets, lengths and memory: 4 KiB covers 512-byte and 4Kn devices. */
export const DIRECT_ALIGN = 4096;
/** Only writes with at least this much aligned data go direct; smaller ones stay buffered. */
export const DIRECT_MIN = 256 * 1024;
const STAGING_BYTES = 4 * 1024 * 1024;
const WASM_PAGE = 64 * 1024;

/** The one WebAssembly API used here (the project's TypeScript libs do not include the DOM's). */
declare const WebAssembly: { Memory: new (d: { initial: number }) => { buffer: ArrayBuffer } };

/** Calls fn(buffer, from, to) for the byte range [from, to) of the concatenation of parts. */
function eachSpan(parts: Buffer[], from: number, to: number, fn: (b: Buffer, s: number, e: number) => void) {
  let base = 0;
  for (const b of parts) {
    const end = base + b.length;
    if (end > from && base < to) fn(b, Math.max(from, base) - base, Math.min(to, end) - base);
    if (end >= to) return;
    base = end;
  }
}

/** Writes bytes [from, to) of parts at file offset `pos` through fd, buffered (one writev if it can). */
export function writeParts(fd: number, parts: Buffer[], from: number, to: number, pos: number): void {
  if (to <= from) return;
  const views: Buffer[] = [];
  eachSpan(parts, from, to, (b, s, e) => views.push(b.subarray(s, e)));
  let done = views.length <= 256 ? fs.writevSync(fd, views, pos) : 0;
  const total = to - from;
  if (done >= total) return;
  eachSpan(views, done, total, (b, s, e) => {
    for (let k = s; k < e; ) {
      const n = fs.writeSync(fd, b, k, e - k, pos + done);
      k += n;
      done += n;
    }
  });
}

export interface DirectWriterOptions {
  /** Off when false; by default on unless ABACA_BRICK_DIRECT_IO=0. */
  enabled?: boolean;
  /** Told once, with the reason, when the file system refuses O_DIRECT (default: stderr). */
  onDisable?: (reason: string) => void;
  /** The aligned buffer data is copied into (default: 4 MiB of page-aligned memory). */
  staging?: Buffer;
}

export class DirectWriter {
  private staging: Buffer | undefined;
  /** False once the file system refused O_DIRECT: everything is buffered from then on. */
  private enabled: boolean;
  private readonly onDisable: (reason: string) => void;
  /** Buffered descriptor -> an O_DIRECT descriptor of the same open file's inode. */
  private readonly direct = new Map<number, number>();

  constructor(opts: DirectWriterOptions = {}) {
    this.enabled = opts.enabled ?? process.env['ABACA_BRICK_DIRECT_IO'] !== '0';
    this.onDisable = opts.onDisable ?? ((why) => console.error(`abaca-brick: direct writes off: ${why}`));
    this.staging = opts.staging;
  }

  /** Whether large writes still go direct (false after the file system refused O_DIRECT). */
  get active(): boolean {
    return this.enabled;
  }

  /**
   * Writes parts at `off` through buffered descriptor `fd`, sending the aligned middle through an
   * O_DIRECT descriptor when it is large enough. Returns how many bytes went direct.
   */
  write(fd: number, parts: Buffer[], off: number, len: number): number {
    const a = Math.ceil(off / DIRECT_ALIGN) * DIRECT_ALIGN;
    const b = Math.floor((off + len) / DIRECT_ALIGN) * DIRECT_ALIGN;
    const dfd = this.enabled && b - a >= DIRECT_MIN ? this.directFd(fd) : undefined;
    if (dfd === undefined) {
      writeParts(fd, parts, 0, len, off);
      return 0;
    }
    writeParts(fd, parts, 0, a - off, off);
    const stage = this.stagingBuffer();
    let pos = a;
    while (pos < b && this.enabled) {
      const n = Math.min(stage.length, b - pos);
      let at = 0;
      eachSpan(parts, pos - off, pos - off + n, (buf, s, e) => {
        at += buf.copy(stage, at, s, e);
      });
      let k = 0;
      try {
        while (k < n) k += fs.writeSync(dfd, stage, k, n - k, pos + k);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
        // The device wants a coarser alignment than this buffer and offset have: buffered from
        // here on (the rest of this write included).
        this.disable(`O_DIRECT write refused (EINVAL) at offset ${pos + k}`);
      }
      pos += k;
    }
    writeParts(fd, parts, pos - off, len, pos);
    return pos - a;
  }

  /** Closes the O_DIRECT twin of `fd`, if one was opened. */
  release(fd: number): void {
    const dfd = this.direct.get(fd);
    if (dfd === undefined) return;
    this.direct.delete(fd);
    fs.closeSync(dfd);
  }

  private directFd(fd: number): number | undefined {
    const known = this.direct.get(fd);
    if (known !== undefined) return known;
    let dfd: number;
    try {
      // A second open file description of the same inode, whatever its name is by now.
      dfd = fs.openSync(`/proc/self/fd/${fd}`, fs.constants.O_WRONLY | fs.constants.O_DIRECT);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EINVAL' || code === 'ENOENT' || code === 'EOPNOTSUPP')
        this.disable(`the file system refuses O_DIRECT opens (${code})`);
      return undefined; // EACCES (mode changed since the buffered open) and the like: this write only
    }
    this.direct.set(fd, dfd);
    return dfd;
  }

  private disable(reason: string): void {
    if (!this.enabled) return;
    this.enabled = false;
    this.onDisable(reason);
  }

  private stagingBuffer(): Buffer {
    if (!this.staging) {
      const memory = new WebAssembly.Memory({ initial: STAGING_BYTES / WASM_PAGE });
      this.staging = Buffer.from(memory.buffer);
    }
    return this.staging;
  }
}
