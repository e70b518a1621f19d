/**
 * The share server's connection to one brick: connects, says hello, pings, and declares the brick
 * down on a closed connection or on any request that outlives the timeout (a hung brick, e.g.
 * SIGSTOP). A down brick is retried every `reconnectMs`; it is up again only after a hello answers.
 *
 * It also counts the file data sent to the brick and not yet answered. A mutation is acknowledged
 * once a majority has it, so a slow or paused replica falls behind the others, and everything it
 * has not taken yet waits in this process's memory; `whenRoom` lets the share's planner hold new
 * mutations while that exceeds `windowBytes` (until the brick catches up or is declared down).
 */
import { EventEmitter } from 'node:events';
import { ReplicatedError } from '../protocol/errors.ts';
import { type Payload, payloadLength } from '../protocol/frame.ts';
import { OP } from '../protocol/opcodes.ts';
import { type Reply, RpcClient } from '../protocol/rpc-client.ts';
import type { ClusterTls } from '../protocol/tls.ts';

export interface LinkOptions {
  /** A brick request that takes longer declares the brick down (bounded stall for clients). */
  timeoutMs: number;
  pingMs: number;
  reconnectMs: number;
  /** File data a brick may have unanswered before new mutations wait for it (bytes). */
  windowBytes: number;
  /** Cluster TLS (mutual): the brick is verified against the cluster CA and sees our certificate. */
  tls?: ClusterTls;
}

/** See BrickLink.lagging. */
const LAG_MS = 750;

export const DEFAULT_LINK_OPTIONS: LinkOptions = {
  timeoutMs: 5000,
  pingMs: 1000,
  reconnectMs: 500,
  windowBytes: 64 * 1024 * 1024,
};

export class BrickLink extends EventEmitter {
  id: string | undefined;
  hostLabel = '';
  zone = '';
  /** The shares the brick held when it last said hello. */
  shares: string[] = [];
  up = false;
  lastError = '';
  /** Requests sent to the brick and not answered yet. */
  outstanding = 0;
  /** When the brick last answered anything (ms since the epoch). */
  private answeredAt = 0;
  /** File data sent to the brick and not answered yet, and the most there has been (bytes). */
  queuedBytes = 0;
  queuedPeak = 0;
  private roomWaiters: Array<() => void> = [];
  private rpc: RpcClient | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private connecting = false;

  constructor(
    readonly addr: string,
    private readonly opts: LinkOptions,
  ) {
    super();
  }

  start(): void {
    void this.tryConnect();
    this.timer = setInterval(
      () => {
        if (this.stopped) return;
        if (!this.up) void this.tryConnect();
        else this.request(OP.bPing, {}).catch(() => {});
      },
      Math.min(this.opts.pingMs, this.opts.reconnectMs),
    );
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.rpc?.close();
    this.up = false;
    this.wakeRoom();
  }

  /**
   * Whether the brick has left requests (a ping at least, every second) unanswered for a while:
   * paused, hung, or far behind. It may still be declared down; until then it is not worth
   * sending a mount to (read grants, share-coordinator.ts).
   */
  get lagging(): boolean {
    return this.outstanding > 0 && Date.now() - this.answeredAt > LAG_MS;
  }

  /** Whether the brick's unanswered data is within the window (or the brick is down). */
  get hasRoom(): boolean {
    return !this.up || this.queuedBytes <= this.opts.windowBytes;
  }

  /** Resolves once `hasRoom`. */
  whenRoom(): Promise<void> {
    if (this.hasRoom) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  private wakeRoom(): void {
    const ws = this.roomWaiters;
    this.roomWaiters = [];
    for (const w of ws) w();
  }

  /** Resolves when the brick is up (or rejects after `ms`). */
  waitUp(ms: number): Promise<void> {
    if (this.up) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.off('up', on);
        reject(new ReplicatedError('ENOTCONN', `brick ${this.addr} not reachable`));
      }, ms);
      const on = (): void => {
        clearTimeout(t);
        resolve();
      };
      this.once('up', on);
    });
  }

  private async tryConnect(): Promise<void> {
    if (this.connecting || this.up || this.stopped) return;
    this.connecting = true;
    const i = this.addr.lastIndexOf(':');
    try {
      const rpc = await RpcClient.connect(
        this.addr.slice(0, i),
        Number(this.addr.slice(i + 1)),
        this.opts.timeoutMs,
        { tls: this.opts.tls },
      );
      let hello: Reply;
      try {
        hello = await rpc.request(OP.bHello, {}, undefined, this.opts.timeoutMs);
      } catch (err) {
        rpc.close();
        throw err;
      }
      if (this.stopped) {
        rpc.close();
        return;
      }
      this.id = String(hello.header['id']);
      this.hostLabel = String(hello.header['host'] ?? '');
      this.zone = String(hello.header['zone'] ?? '');
      const shares = hello.header['shares'];
      this.shares = Array.isArray(shares) ? shares.map(String) : [];
      this.rpc = rpc;
      this.up = true;
      rpc.onClose((e) => this.markDown(e.message));
      this.emit('up');
    } catch (err) {
      this.lastError = (err as Error).message;
    } finally {
      this.connecting = false;
    }
  }

  markDown(reason: string): void {
    if (!this.up) return;
    this.up = false;
    this.lastError = reason;
    const rpc = this.rpc;
    this.rpc = undefined;
    rpc?.close();
    this.emit('down', reason);
    this.wakeRoom();
  }

  request(op: number, header: object, payload?: Payload, timeoutMs?: number): Promise<Reply> {
    const rpc = this.rpc;
    if (!this.up || !rpc)
      return Promise.reject(new ReplicatedError('ENOTCONN', `brick ${this.addr} is down`));
    const bytes = payloadLength(payload);
    this.outstanding++;
    this.queuedBytes += bytes;
    this.queuedPeak = Math.max(this.queuedPeak, this.queuedBytes);
    if (this.outstanding === 1) this.answeredAt = Date.now(); // nothing was waiting: not behind
    return rpc
      .request(op, header, payload, timeoutMs ?? this.opts.timeoutMs)
      .then((r) => {
        this.answeredAt = Date.now();
        return r;
      })
      .catch((err: ReplicatedError) => {
        if (err.code !== 'ETIMEDOUT' && err.code !== 'ENOTCONN') this.answeredAt = Date.now();
        if (err.code === 'ETIMEDOUT' || err.code === 'ENOTCONN') {
          if (this.rpc === rpc) this.markDown(`${err.code}: ${err.message}`);
          throw new ReplicatedError('ENOTCONN', `brick ${this.addr}: ${err.message}`);
        }
        throw err;
      })
      .finally(() => {
        this.outstanding--;
        this.queuedBytes -= bytes;
        if (bytes > 0 && this.queuedBytes <= this.opts.windowBytes) this.wakeRoom();
      });
  }
}
