/** Server side of the framing: decode requests, run a handler, write responses (in completion order). */
import net from 'node:net';
import { errorHeader, toReplicatedError } from './errors.ts';
import {
  DEFAULT_MAX_FRAME,
  encodeFrame,
  type Frame,
  FrameDecoder,
  KIND_INTERIM,
  KIND_REQUEST,
  KIND_RESPONSE,
  type Payload,
  payloadLength,
  writeFrame,
} from './frame.ts';
import { ReusedBuffers } from './reused-buffers.ts';

export interface HandlerResult {
  header?: object;
  payload?: Payload;
  /**
   * Called once the payload is in the socket's hands (written to the kernel, or the connection
   * is gone): the handler may then reuse the payload's memory.
   */
  sent?: () => void;
}

export type Handler = (frame: Frame, socket: net.Socket) => HandlerResult | Promise<HandlerResult>;

export interface ServeOptions {
  maxFrame?: number;
  /**
   * For a port anyone may reach: frames are at most this long (a header, no file data) until the
   * handler vouches for the peer with admitPeer. A bare length field from a stranger then sets
   * aside this much memory, not a whole frame's.
   */
  strangerMaxFrame?: number;
  /**
   * A connection that has not sent one whole frame within this time is closed, and so is one
   * that stops this long in the middle of a frame (idle between frames is fine).
   */
  handshakeMs?: number;
  onError?: (err: unknown) => void;
  /**
   * A request still being worked on after this long gets an interim frame, and another each time
   * this long passes, so that the peer waits for real work (a large copy-on-write) without
   * declaring this end hung. The event loop must be free for them: work that blocks it gets none.
   */
  interimMs?: number;
  /**
   * Reading from the connection pauses while the file data of requests still being worked on (a
   * request read into pooled memory counts the whole buffer), or the answers not yet taken by the
   * peer, exceed this many bytes; it resumes below it. A peer that sends faster than the work
   * gets done, or never reads its answers, is held back by TCP instead of filling this process's
   * memory.
   */
  maxHeldBytes?: number;
  /**
   * The socket was accepted paused (a plaintext server made with pauseOnConnect: protocol/tls.ts
   * createProtocolServer) and is taken over to read into memory this process reuses, instead of
   * the fresh buffer Node allocates for every read (see readInPlace). The handler gets the new
   * socket.
   */
  readInPlace?: boolean;
}

const admitters = new WeakMap<net.Socket, () => void>();

/**
 * The handler vouches for the peer of `socket` (a mount that was let in, an admin token that
 * checked out): its frames may be of the full size from now on (ServeOptions.strangerMaxFrame).
 */
export function admitPeer(socket: net.Socket): void {
  admitters.get(socket)?.();
}

/** See ServeOptions.maxHeldBytes. */
export const DEFAULT_MAX_HELD_BYTES = 64 * 1024 * 1024;

/**
 * Every connection of a process that reads in place reads its small frames into this one buffer:
 * each read is decoded (copied out) before the event loop does anything else, the next read included.
 */
const SHARED_READ_BYTES = 256 * 1024;
let sharedRead: Buffer | undefined;
/** Large request frames (a 1 MiB write with its header fits) are received into these. */
const POOLED_BYTES = 1024 * 1024 + 64 * 1024;
let requestMemory: ReusedBuffers | undefined;

function sharedReadBuffer(): Buffer {
  sharedRead ??= Buffer.allocUnsafeSlow(SHARED_READ_BYTES);
  return sharedRead;
}

function requestBuffers(): ReusedBuffers {
  requestMemory ??= new ReusedBuffers(POOLED_BYTES, 24);
  return requestMemory;
}

/**
 * Takes over an accepted, paused plaintext socket so that it reads into reused memory: the shared
 * buffer, or the rest of the large frame being received, in place (FrameDecoder.readTarget). Fresh
 * memory for every 64 KiB read cost the share server and the bricks a page fault per few pages of
 * file data they received, and the collector the buffers (docs/benchmarks.md). Node offers `onread`
 * only to sockets it creates, so the accepted handle moves to a new socket; the accepted one is
 * closed (without its handle) when the new one is, which keeps the server's connection count.
 */
function readInPlace(
  raw: net.Socket,
  decoder: FrameDecoder,
  got: (decode: () => Frame[]) => void,
): net.Socket {
  const shared = sharedReadBuffer();
  const holder = raw as unknown as { _handle: unknown };
  const handle = holder._handle;
  holder._handle = null;
  const socket = new net.Socket({
    handle,
    onread: {
      buffer: () => decoder.readTarget() ?? shared,
      callback: (n: number, buf: Buffer) => {
        got(() => (buf === shared ? decoder.pushCopy(shared.subarray(0, n)) : decoder.pushInPlace(n)));
        return true;
      },
    },
  } as net.SocketConstructorOpts);
  socket.once('close', () => raw.destroy());
  return socket;
}

export function serveSocket(accepted: net.Socket, handler: Handler, opts: ServeOptions = {}): void {
  const maxFrame = opts.maxFrame ?? DEFAULT_MAX_FRAME;
  const firstMax = Math.min(maxFrame, opts.strangerMaxFrame ?? maxFrame);
  // Only frames of half a pooled buffer or more are pooled: the share server's window on a slow
  // brick counts payload bytes (brick-link.ts), and a small frame would pin a whole buffer.
  const decoder = opts.readInPlace
    ? new FrameDecoder(firstMax, requestBuffers(), POOLED_BYTES / 2)
    : new FrameDecoder(firstMax);
  const socket = opts.readInPlace ? readInPlace(accepted, decoder, (decode) => received(decode)) : accepted;
  if (!opts.readInPlace) socket.on('data', (chunk: Buffer) => received(() => decoder.push(chunk)));
  if (firstMax < maxFrame) admitters.set(socket, () => decoder.setMaxFrame(maxFrame));

  let gotFrame = false;
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 10_000);
  const handshake = setTimeout(() => {
    if (!gotFrame) socket.destroy();
  }, opts.handshakeMs ?? 10_000);
  socket.on('close', () => clearTimeout(handshake));
  socket.setTimeout(opts.handshakeMs ?? 10_000, () => {
    // Not while reading is paused here (throttle): then the stall is this end's, not the peer's.
    if (decoder.pendingBytes > 0 && !socket.isPaused()) socket.destroy();
  });
  socket.on('error', () => socket.destroy());

  const maxHeld = opts.maxHeldBytes ?? DEFAULT_MAX_HELD_BYTES;
  const pooledBytes = opts.readInPlace ? POOLED_BYTES : 0;
  // File data of requests whose handler has not answered yet.
  let held = 0;
  let broken = false;
  const throttle = (): void => {
    if (broken || socket.destroyed) return;
    const over = held > maxHeld || socket.writableLength > maxHeld;
    if (over && !socket.isPaused()) socket.pause();
    else if (!over && socket.isPaused()) socket.resume();
  };
  socket.on('drain', throttle);

  const send = (f: Frame, header: object, payload?: Payload, sent?: () => void): void => {
    if (socket.destroyed) {
      sent?.();
      return;
    }
    let parts: Buffer[];
    let carried = payload;
    try {
      parts = encodeFrame(f.reqId, f.op, KIND_RESPONSE, header, payload);
    } catch (err) {
      // An answer the peer could not take (a header over MAX_HEADER): this request fails with
      // the reason, and the connection goes on.
      carried = undefined;
      parts = encodeFrame(f.reqId, f.op, KIND_RESPONSE, errorHeader(toReplicatedError(err)));
    }
    writeFrame(socket, parts, carried, sent);
  };

  // Requests answered asynchronously and not yet answered, with when each began.
  const working = new Map<Frame, number>();
  let ticker: NodeJS.Timeout | undefined;
  const interimMs = opts.interimMs ?? 0;
  const tick = (): void => {
    const due = Date.now() - interimMs;
    for (const [f, since] of working)
      if (since <= due && !socket.destroyed) {
        working.set(f, Date.now());
        socket.write(Buffer.concat(encodeFrame(f.reqId, f.op, KIND_INTERIM, {})));
      }
    if (working.size === 0 || socket.destroyed) {
      clearInterval(ticker);
      ticker = undefined;
    }
  };
  const began = (f: Frame): void => {
    if (interimMs <= 0) return;
    working.set(f, Date.now());
    ticker ??= setInterval(tick, Math.max(50, interimMs / 2));
  };

  /** What one socket read brought: the frames it completed, decoded by `decode`. */
  function received(decode: () => Frame[]): void {
    let frames: Frame[];
    try {
      frames = decode();
    } catch (err) {
      const e = toReplicatedError(err);
      // The stream cannot be resynchronised after a bad frame: answer on request id 0 and close.
      socket.end(Buffer.concat(encodeFrame(0, 0, KIND_RESPONSE, { e: e.code, m: e.message })));
      broken = true;
      socket.pause();
      setTimeout(() => socket.destroy(), 200).unref();
      return;
    }
    for (const f of frames) {
      gotFrame = true;
      if (f.kind !== KIND_REQUEST) {
        f.release?.();
        continue;
      }
      let r: HandlerResult | Promise<HandlerResult>;
      try {
        r = handler(f, socket);
      } catch (err) {
        const e = toReplicatedError(err);
        if (e.code === 'EIO') opts.onError?.(err);
        send(f, errorHeader(e));
        f.release?.();
        continue;
      }
      if (r instanceof Promise) {
        began(f);
        // A pooled frame keeps its whole buffer, whatever its length.
        const bytes = f.release ? Math.max(pooledBytes, payloadLength(f.parts)) : payloadLength(f.parts);
        held += bytes;
        r.then(
          (res) => {
            working.delete(f);
            send(f, res.header ?? {}, res.payload, res.sent);
          },
          (err) => {
            working.delete(f);
            const e = toReplicatedError(err);
            if (e.code === 'EIO') opts.onError?.(err);
            send(f, errorHeader(e));
          },
        ).finally(() => {
          held -= bytes;
          // The handler is done with the request's memory (what it handed on holds it: holdPayload).
          f.release?.();
          throttle();
        });
      } else {
        send(f, r.header ?? {}, r.payload, r.sent);
        f.release?.();
      }
    }
    throttle();
  }
}
