/** Server side of the framing: decode requests, run a handler, write responses (in completion order). */
import type net from 'node:net';
import { toReplicatedError } from './errors.ts';
import {
  DEFAULT_MAX_FRAME,
  encodeFrame,
  type Frame,
  FrameDecoder,
  KIND_REQUEST,
  KIND_RESPONSE,
  type Payload,
} from './frame.ts';

export interface HandlerResult {
  header?: object;
  payload?: Payload;
}

export type Handler = (frame: Frame, socket: net.Socket) => HandlerResult | Promise<HandlerResult>;

export interface ServeOptions {
  maxFrame?: number;
  /**
   * A connection that has not sent one whole frame within this time is closed, and so is one
   * that stops this long in the middle of a frame (idle between frames is fine).
   */
  handshakeMs?: number;
  onError?: (err: unknown) => void;
}

export function serveSocket(socket: net.Socket, handler: Handler, opts: ServeOptions = {}): void {
  const decoder = new FrameDecoder(opts.maxFrame ?? DEFAULT_MAX_FRAME);
  let gotFrame = false;
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 10_000);
  const handshake = setTimeout(() => {
    if (!gotFrame) socket.destroy();
  }, opts.handshakeMs ?? 10_000);
  socket.on('close', () => clearTimeout(handshake));
  socket.setTimeout(opts.handshakeMs ?? 10_000, () => {
    if (decoder.pendingBytes > 0) socket.destroy();
  });
  socket.on('error', () => socket.destroy());

  const send = (f: Frame, header: object, payload?: Payload): void => {
    if (socket.destroyed) return;
    const parts = encodeFrame(f.reqId, f.op, KIND_RESPONSE, header, payload);
    socket.cork();
    for (const p of parts) socket.write(p);
    socket.uncork();
  };

  socket.on('data', (chunk: Buffer) => {
    let frames: Frame[];
    try {
      frames = decoder.push(chunk);
    } catch (err) {
      const e = toReplicatedError(err);
      // The stream cannot be resynchronised after a bad frame: answer on request id 0 and close.
      socket.end(Buffer.concat(encodeFrame(0, 0, KIND_RESPONSE, { e: e.code, m: e.message })));
      socket.pause();
      setTimeout(() => socket.destroy(), 200).unref();
      return;
    }
    for (const f of frames) {
      gotFrame = true;
      if (f.kind !== KIND_REQUEST) continue;
      let r: HandlerResult | Promise<HandlerResult>;
      try {
        r = handler(f, socket);
      } catch (err) {
        const e = toReplicatedError(err);
        if (e.code === 'EIO') opts.onError?.(err);
        send(f, { e: e.code, m: e.message });
        continue;
      }
      if (r instanceof Promise) {
        r.then(
          (res) => send(f, res.header ?? {}, res.payload),
          (err) => {
            const e = toReplicatedError(err);
            if (e.code === 'EIO') opts.onError?.(err);
            send(f, { e: e.code, m: e.message });
          },
        );
      } else {
        send(f, r.header ?? {}, r.payload);
      }
    }
  });
}
