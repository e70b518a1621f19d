/** Request/response over one TCP connection with pipelining: many requests in flight, matched by id. */
import type net from 'node:net';
import { isErrorCode, ReplicatedError, toReplicatedError } from './errors.ts';
import {
  DEFAULT_MAX_FRAME,
  encodeFrame,
  FrameDecoder,
  KIND_INTERIM,
  KIND_RESPONSE,
  type Payload,
  writeFrame,
} from './frame.ts';
import type { ReusedBuffers } from './reused-buffers.ts';
import { type ClusterTls, connectSocket } from './tls.ts';

export interface Reply {
  header: Record<string, unknown>;
  /** The payload as it arrived in socket chunks (forward these: no copy). */
  parts: Buffer[];
  /** The payload as one buffer (concatenated on first use). */
  readonly payload: Buffer;
  /** Gives the answer's pooled memory back (see Frame.release); absent when it has none. */
  release?: () => void;
}

interface Waiter {
  resolve: (r: Reply) => void;
  reject: (e: ReplicatedError) => void;
  timer: NodeJS.Timeout | undefined;
  /** Starts the timeout again (an interim frame came), unless the request's cap is reached. */
  rearm?: () => void;
}

/** However many interim frames come, a request with a timeout fails after this many timeouts. */
const INTERIM_CAP = 24;

export class RpcClient {
  private nextId = 1;
  private readonly waiters = new Map<number, Waiter>();
  private readonly decoder: FrameDecoder;
  private closeListeners: Array<(err: ReplicatedError) => void> = [];
  closed = false;

  /** True until the first bytes arrived (a plaintext end checks them for a TLS answer). */
  private first: boolean;

  /**
   * @param external the socket's bytes come through receive(chunk, true) (a socket that reads
   *   into one reused buffer: protocol/tls.ts connectSocket), not its 'data' events
   */
  constructor(
    private readonly socket: net.Socket,
    maxFrame = DEFAULT_MAX_FRAME,
    plaintext = false,
    external = false,
    buffers?: ReusedBuffers,
  ) {
    this.decoder = new FrameDecoder(maxFrame, buffers);
    socket.setNoDelay(true);
    this.first = plaintext;
    if (!external) socket.on('data', (chunk: Buffer) => this.receive(chunk, false));
    // A TLS-only peer closes a plaintext connection without a word: say what may be wrong.
    const hint = (m: string): string =>
      this.first
        ? `${m} before any answer (a TLS-only peer does this: set ABACA_CLUSTER_CA, docs/tls.md)`
        : m;
    socket.on('error', (err) => this.fail(new ReplicatedError('ENOTCONN', hint(err.message))));
    socket.on('close', () => this.fail(new ReplicatedError('ENOTCONN', hint('connection closed'))));
  }

  /** Bytes from the socket; `ephemeral`: `chunk` is reused once this returns (copied as needed). */
  receive(chunk: Buffer, ephemeral: boolean): void {
    if (this.closed) return;
    // A TLS server answers a plaintext request with a TLS record (an alert), not with a frame.
    if (this.first && chunk.length >= 2 && (chunk[0] === 0x15 || chunk[0] === 0x16) && chunk[1] === 0x03) {
      this.fail(
        new ReplicatedError(
          'ENOTCONN',
          'the peer speaks TLS and this end plaintext: set ABACA_CLUSTER_CA (docs/tls.md)',
        ),
      );
      return;
    }
    this.first = false;
    let frames: ReturnType<FrameDecoder['push']>;
    try {
      frames = ephemeral ? this.decoder.pushCopy(chunk) : this.decoder.push(chunk);
    } catch (err) {
      this.fail(toReplicatedError(err));
      return;
    }
    for (const f of frames) {
      if (f.kind === KIND_INTERIM) {
        this.waiters.get(f.reqId)?.rearm?.();
        continue;
      }
      if (f.kind !== KIND_RESPONSE) continue;
      if (f.reqId === 0) {
        const code = isErrorCode(f.header['e']) ? f.header['e'] : 'EIO';
        this.fail(new ReplicatedError(code, String(f.header['m'] ?? 'connection error')));
        return;
      }
      const w = this.waiters.get(f.reqId);
      if (!w) continue;
      this.waiters.delete(f.reqId);
      if (w.timer) clearTimeout(w.timer);
      const e = f.header['e'];
      if (e !== undefined) {
        const at = typeof f.header['at'] === 'string' ? f.header['at'] : undefined;
        w.reject(new ReplicatedError(isErrorCode(e) ? e : 'EIO', String(f.header['m'] ?? ''), at));
      } else {
        w.resolve(f);
      }
    }
  }

  static async connect(
    host: string,
    port: number,
    timeoutMs = 3000,
    /** `buffers`: large answers of a plaintext connection are received into these (Reply.release). */
    opts: { maxFrame?: number; tls?: ClusterTls; buffers?: ReusedBuffers } = {},
  ): Promise<RpcClient> {
    // Plaintext: the socket reads into one reused buffer; bytes that come before the client
    // exists (none are expected: the peer speaks only when asked) are kept as copies.
    let rpc: RpcClient | undefined;
    const early: Buffer[] = [];
    const socket = await connectSocket(
      host,
      port,
      timeoutMs,
      opts.tls,
      opts.tls ? undefined : (chunk) => (rpc ? rpc.receive(chunk, true) : early.push(Buffer.from(chunk))),
    );
    socket.setKeepAlive(true, 5000);
    rpc = new RpcClient(socket, opts.maxFrame, !opts.tls, !opts.tls, opts.buffers);
    for (const b of early) rpc.receive(b, false);
    return rpc;
  }

  onClose(fn: (err: ReplicatedError) => void): void {
    if (this.closed) fn(new ReplicatedError('ENOTCONN', 'connection closed'));
    else this.closeListeners.push(fn);
  }

  request(op: number, header: object, payload?: Payload, timeoutMs?: number): Promise<Reply> {
    if (this.closed) return Promise.reject(new ReplicatedError('ENOTCONN', 'connection closed'));
    const id = this.nextId;
    this.nextId = this.nextId >= 0xfffffff0 ? 1 : this.nextId + 1;
    let parts: Buffer[];
    try {
      // First: a request that cannot be sent (a header over MAX_HEADER) leaves no waiter behind.
      parts = encodeFrame(id, op, 0, header, payload);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<Reply>((resolve, reject) => {
      if (!timeoutMs || timeoutMs <= 0) {
        this.waiters.set(id, { resolve, reject, timer: undefined });
      } else {
        const started = Date.now();
        const expire = (): void => {
          this.waiters.delete(id);
          const waited = Date.now() - started;
          reject(
            new ReplicatedError(
              'ETIMEDOUT',
              waited > timeoutMs * 1.5
                ? `request timed out after ${waited} ms (still in progress on the peer)`
                : `request timed out after ${timeoutMs} ms`,
            ),
          );
        };
        const w: Waiter = { resolve, reject, timer: setTimeout(expire, timeoutMs) };
        // The peer says it is still working: wait another timeout, up to INTERIM_CAP of them.
        w.rearm = () => {
          if (Date.now() - started >= timeoutMs * INTERIM_CAP) return;
          clearTimeout(w.timer);
          w.timer = setTimeout(expire, timeoutMs);
        };
        this.waiters.set(id, w);
      }
      // A request's payload the share server forwards may be pooled memory: writeFrame holds it.
      writeFrame(this.socket, parts, payload);
    });
  }

  close(): void {
    this.socket.destroy();
    this.fail(new ReplicatedError('ENOTCONN', 'connection closed'));
  }

  private fail(err: ReplicatedError): void {
    if (!this.closed) {
      this.closed = true;
      this.socket.destroy();
    }
    for (const [id, w] of this.waiters) {
      this.waiters.delete(id);
      if (w.timer) clearTimeout(w.timer);
      w.reject(err);
    }
    const ls = this.closeListeners;
    this.closeListeners = [];
    for (const l of ls) l(err);
  }
}
