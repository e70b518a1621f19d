/**
 * Binary framing shared by client <-> share server and share server <-> brick.
 *
 *   0  u32 BE  length of everything after this field (12 + H + P)
 *   4  u32 BE  request id (echoed in the response; 0 = connection-level error)
 *   8  u16 BE  opcode (echoed in the response)
 *  10  u8      kind: 0 request, 1 response, 2 interim ("still working on it": no header
 *              fields, sent for a long request so the peer's timeout starts again)
 *  11  u8      reserved, 0
 *  12  u32 BE  H, length of the JSON header
 *  16  H bytes JSON header (UTF-8, an object)
 *  16+H        P bytes of payload (file data), possibly empty
 */
import type net from 'node:net';
import { ReplicatedError } from './errors.ts';
import type { ReusedBuffers } from './reused-buffers.ts';

export const FRAME_PREFIX = 16;
export const DEFAULT_MAX_FRAME = 17 * 1024 * 1024;
/** The most file data one read may ask for (its answer fits in a frame); more is EINVAL. */
export const MAX_READ_BYTES = 16 * 1024 * 1024;
export const MAX_HEADER = 256 * 1024;

export const KIND_REQUEST = 0;
export const KIND_RESPONSE = 1;
export const KIND_INTERIM = 2;

/** File data: one buffer, or the socket chunks it arrived in (forwarded and written without a copy). */
export type Payload = Buffer | Buffer[];

export function payloadLength(p: Payload | undefined): number {
  if (!p) return 0;
  if (Buffer.isBuffer(p)) return p.length;
  let n = 0;
  for (const b of p) n += b.length;
  return n;
}

export function payloadBuffer(p: Payload | undefined): Buffer {
  if (!p) return Buffer.alloc(0);
  if (Buffer.isBuffer(p)) return p;
  return p.length === 1 ? p[0]! : Buffer.concat(p);
}

export interface Frame {
  reqId: number;
  op: number;
  kind: number;
  header: Record<string, unknown>;
  /** The payload as received (no copy). */
  parts: Buffer[];
  /** The payload as one buffer (concatenated on first use). */
  readonly payload: Buffer;
  /**
   * Present when the frame's memory came from a pool (FrameDecoder's `buffers`): gives it back.
   * Call it once nothing uses the frame's header or payload any more; without a call the memory
   * is simply collected. Whatever keeps the payload longer takes a hold of its own (holdPayload),
   * and the memory goes back when the last hold is let go.
   */
  release?: () => void;
}

/** Encodes a frame as [prefix+header, payload] so the payload is never copied. */
export function encodeFrame(
  reqId: number,
  op: number,
  kind: number,
  header: object,
  payload?: Payload,
): Buffer[] {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  // The peer's decoder refuses a longer header and drops the connection: fail this frame alone.
  if (json.length > MAX_HEADER)
    throw new ReplicatedError('EMSGSIZE', `a header of ${json.length} bytes is over ${MAX_HEADER}`);
  const plen = payloadLength(payload);
  const head = Buffer.allocUnsafe(FRAME_PREFIX + json.length);
  head.writeUInt32BE(12 + json.length + plen, 0);
  head.writeUInt32BE(reqId >>> 0, 4);
  head.writeUInt16BE(op, 8);
  head.writeUInt8(kind, 10);
  head.writeUInt8(0, 11);
  head.writeUInt32BE(json.length, 12);
  json.copy(head, FRAME_PREFIX);
  if (!payload || plen === 0) return [head];
  return Buffer.isBuffer(payload) ? [head, payload] : [head, ...payload];
}

/** Frames at least this large are copied into pooled memory by pushCopy, when there is a pool (by default). */
const POOLED_FRAME = 64 * 1024;
/** The rest of a frame is read straight into its memory (readTarget) when at least this much is left. */
const IN_PLACE_MIN = 16 * 1024;

/**
 * Pooled frame memory still in use, by its ArrayBuffer (so that any view of it counts, however a
 * payload was re-wrapped): how many holders it has, and how to give it back once none is left.
 */
const holds = new WeakMap<ArrayBufferLike, { n: number; free: () => void }>();

function letGoOnce(memory: ArrayBufferLike, hold: { n: number; free: () => void }): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    hold.n--;
    if (hold.n === 0 && holds.get(memory) === hold) {
      holds.delete(memory);
      hold.free();
    }
  };
}

/**
 * Takes a hold on the pooled memory `p` is in, if any (a frame that pushCopy put in pooled memory):
 * the memory is not given back to its pool until every hold, and the frame's own (`release`), is
 * let go. Anything that keeps a payload past the handler's answer — a socket write queued to a slow
 * peer — holds it. Returns the function that lets this hold go (once; a no-op for other memory).
 */
export function holdPayload(p: Payload | undefined): () => void {
  if (!p) return noop;
  const one = (b: Buffer): (() => void) | undefined => {
    const hold = holds.get(b.buffer);
    if (!hold) return undefined;
    hold.n++;
    return letGoOnce(b.buffer, hold);
  };
  if (Buffer.isBuffer(p)) return one(p) ?? noop;
  const gos: Array<() => void> = [];
  for (const b of p) {
    const go = one(b);
    if (go) gos.push(go);
  }
  if (gos.length === 0) return noop;
  if (gos.length === 1) return gos[0]!;
  return () => {
    for (const go of gos) go();
  };
}

const noop = (): void => {};

/**
 * Writes a frame's `parts` (from encodeFrame) to `socket` in one corked batch. The pooled memory
 * `payload` is in (if any) stays out of its pool until the socket has written the last part or
 * dropped it with the connection; then `written` is called.
 */
export function writeFrame(
  socket: net.Socket,
  parts: Buffer[],
  payload?: Payload,
  written?: () => void,
): void {
  const letGo = holdPayload(payload);
  const last = parts.length - 1;
  socket.cork();
  for (let i = 0; i < last; i++) socket.write(parts[i]!);
  socket.write(parts[last]!, () => {
    letGo();
    written?.();
  });
  socket.uncork();
}

/** Incremental decoder: push socket chunks, get whole frames. Throws ReplicatedError on bad input. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /**
   * @param buffers pushCopy puts large frames into these (the frame's `release` gives it back)
   * @param minPooled the smallest frame put into `buffers`: each takes a whole buffer, so a
   *   receiver that bounds memory by payload bytes wants only frames near the buffers' size
   */
  constructor(
    private maxFrame: number = DEFAULT_MAX_FRAME,
    private readonly buffers?: ReusedBuffers,
    private readonly minPooled = POOLED_FRAME,
  ) {}

  /** Frames from now on may be up to `bytes` long (a frame whose length was read keeps its check). */
  setMaxFrame(bytes: number): void {
    this.maxFrame = bytes;
  }

  get pendingBytes(): number {
    return this.buffered + this.filled;
  }

  private checkLength(len: number): void {
    if (len < 12) throw new ReplicatedError('EINVAL', `frame length ${len} below minimum`);
    if (len + 4 > this.maxFrame)
      throw new ReplicatedError('EMSGSIZE', `frame of ${len + 4} bytes over ${this.maxFrame}`);
  }

  /** The frame being filled by pushCopy, and how much of it (or of its length field) arrived. */
  private filling: Buffer | undefined;
  /** The pooled buffer `filling` is a view of, if any. */
  private pooled: Buffer | undefined;
  private filled = 0;
  private readonly lengthField = Buffer.alloc(4);

  /**
   * As push, for a chunk in memory that is used again once this returns (a socket read into one
   * reused buffer): each frame is copied into memory of its own, allocated once its length is
   * known, and nothing of `chunk` is kept. Fewer and larger socket reads, and no allocation per
   * read, cost the receiver less than the chunks Node allocates for each read.
   */
  pushCopy(chunk: Buffer): Frame[] {
    const out: Frame[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (!this.filling) {
        const k = Math.min(4 - this.filled, chunk.length - at);
        chunk.copy(this.lengthField, this.filled, at, at + k);
        this.filled += k;
        at += k;
        if (this.filled < 4) break;
        const len = this.lengthField.readUInt32BE(0);
        this.checkLength(len);
        const pooled = this.buffers && len + 4 >= this.minPooled && len + 4 <= this.buffers.size;
        this.pooled = pooled ? this.buffers!.take(len + 4) : undefined;
        this.filling = this.pooled ? this.pooled.subarray(0, len + 4) : Buffer.allocUnsafe(len + 4);
        this.lengthField.copy(this.filling, 0);
      }
      const k = Math.min(this.filling.length - this.filled, chunk.length - at);
      chunk.copy(this.filling, this.filled, at, at + k);
      this.filled += k;
      at += k;
      if (this.filled === this.filling.length) out.push(...this.filledFrame());
    }
    return out;
  }

  /**
   * Where the next socket read may go instead of a shared buffer: the unfilled rest of the frame
   * being received (pooled or of its own), so that its bytes land in place without another copy
   * (report them with pushInPlace). Undefined when less than IN_PLACE_MIN of a frame is left to
   * come; a read into this memory never goes past the frame's end.
   */
  readTarget(): Buffer | undefined {
    if (!this.filling) return undefined;
    const rest = this.filling.length - this.filled;
    return rest >= IN_PLACE_MIN ? this.filling.subarray(this.filled) : undefined;
  }

  /** `n` bytes were read into the memory readTarget() gave (and nothing else since). */
  pushInPlace(n: number): Frame[] {
    if (!this.filling || this.filled + n > this.filling.length)
      throw new ReplicatedError('EIO', 'a read in place went past the frame it was given for');
    this.filled += n;
    return this.filled === this.filling.length ? this.filledFrame() : [];
  }

  /** The frame pushCopy or pushInPlace completed; a pooled one holds its memory (see holdPayload). */
  private filledFrame(): Frame[] {
    const whole = this.filling!;
    const pooled = this.pooled;
    this.filling = undefined;
    this.pooled = undefined;
    this.filled = 0;
    const frames = this.push(whole);
    if (pooled) {
      const buffers = this.buffers!;
      const hold = { n: 1, free: () => buffers.give(pooled) };
      holds.set(pooled.buffer, hold);
      const release = letGoOnce(pooled.buffer, hold);
      for (const f of frames) f.release = release;
    }
    return frames;
  }

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Frame[] = [];
    for (;;) {
      if (this.buffered < 4) break;
      const first = this.peek(4);
      const len = first.readUInt32BE(0);
      this.checkLength(len);
      if (this.buffered < len + 4) break;
      const head = this.take(FRAME_PREFIX);
      const hlen = head.readUInt32BE(12);
      if (hlen > MAX_HEADER || FRAME_PREFIX + hlen > len + 4)
        throw new ReplicatedError('EINVAL', 'bad header length');
      let header: unknown;
      try {
        header = JSON.parse(this.take(hlen).toString('utf8'));
      } catch {
        throw new ReplicatedError('EINVAL', 'header is not JSON');
      }
      if (typeof header !== 'object' || header === null || Array.isArray(header))
        throw new ReplicatedError('EINVAL', 'header is not an object');
      const parts = this.takeParts(len + 4 - FRAME_PREFIX - hlen);
      let joined: Buffer | undefined;
      out.push({
        reqId: head.readUInt32BE(4),
        op: head.readUInt16BE(8),
        kind: head.readUInt8(10),
        header: header as Record<string, unknown>,
        parts,
        get payload(): Buffer {
          joined ??= payloadBuffer(parts);
          return joined;
        },
      });
    }
    return out;
  }

  /** Removes n bytes as a list of views on the received chunks. */
  private takeParts(n: number): Buffer[] {
    const out: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const c = this.chunks[0]!;
      if (c.length <= left) {
        out.push(c);
        this.chunks.shift();
        left -= c.length;
      } else {
        out.push(c.subarray(0, left));
        this.chunks[0] = c.subarray(left);
        left = 0;
      }
    }
    this.buffered -= n;
    return out;
  }

  private peek(n: number): Buffer {
    const head = this.chunks[0]!;
    if (head.length >= n) return head;
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    for (const c of this.chunks) {
      const k = Math.min(c.length, n - got);
      c.copy(out, got, 0, k);
      got += k;
      if (got === n) break;
    }
    return out;
  }

  private take(n: number): Buffer {
    const head = this.chunks[0]!;
    if (head.length >= n) {
      if (head.length === n) this.chunks.shift();
      else this.chunks[0] = head.subarray(n);
      this.buffered -= n;
      return head.subarray(0, n);
    }
    // Gather only the chunks this frame spans (never the whole backlog).
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      const c = this.chunks[0]!;
      const want = n - got;
      if (c.length <= want) {
        c.copy(out, got);
        got += c.length;
        this.chunks.shift();
      } else {
        c.copy(out, got, 0, want);
        this.chunks[0] = c.subarray(want);
        got += want;
      }
    }
    this.buffered -= n;
    return out;
  }
}
