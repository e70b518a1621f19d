/**
 * Reads file data from a brick directly, with a grant the share server put in a read's answer
 * (backends/replicated/protocol/read-grants.ts), so the data does not pass through the share
 * server. One connection per brick, opened on first use. Whatever goes wrong (the brick cannot
 * be reached from here, is slow, or refuses the grant because it went stale), the read answers
 * undefined and the caller reads through the share server, which is always right; a brick that
 * could not be reached is not tried again for a while.
 */
import { ReplicatedError, toReplicatedError } from '../../backends/replicated/protocol/errors.ts';
import { OP } from '../../backends/replicated/protocol/opcodes.ts';
import type { ReadGrant } from '../../backends/replicated/protocol/read-grants.ts';
import { ReusedBuffers } from '../../backends/replicated/protocol/reused-buffers.ts';
import { RpcClient } from '../../backends/replicated/protocol/rpc-client.ts';
import { splitAddr } from '../../backends/replicated/protocol/wire-args.ts';
import type { ReadData } from '../fuse/session.ts';

/** The largest answer received into reused memory: a 1 MiB read (FUSE's largest) with its frame. */
const ANSWER_BYTES = 1024 * 1024 + 4096;

/** How long a brick that could not be reached (or timed out) is left alone (ms). */
const DOWN_MS = 10_000;
/**
 * A file's bytes are read from its replicas in turn, this many at a time from each (one READ of
 * the kernel's readahead): the READs of one readahead window go to every replica at once. With
 * 4 MiB each, runs of READs queued on one brick's event loop, and a cold 1 GiB read ran at
 * 588–656 MB/s against 981–1,054 MB/s with 1 MiB (docs/benchmarks.md).
 */
const STRIPE = 1024 * 1024;

export interface DirectReadOptions {
  share: string;
  connectTimeoutMs?: number;
  /**
   * A direct read not answered within this time (default 2 s) is given up and read through the
   * share server, and the brick is left alone for a while.
   */
  requestTimeoutMs?: number;
  log?: (msg: string) => void;
}

interface BrickLink {
  client?: RpcClient;
  connecting?: Promise<RpcClient>;
  downUntil: number;
}

/** What direct reads did so far (the mount prints it on SIGUSR1). */
export interface DirectReadStats {
  /** Reads a brick answered, and their bytes, per brick address. */
  reads: Map<string, { reads: number; bytes: number }>;
  /** Reads that went to the share server instead, by why. */
  refused: number;
  unreachable: number;
}

export class DirectReads {
  private readonly links = new Map<string, BrickLink>();
  /** Answers are received into these, and given back once written to the kernel. */
  private readonly buffers = new ReusedBuffers(ANSWER_BYTES, 64);
  private closed = false;
  readonly stats: DirectReadStats = { reads: new Map(), refused: 0, unreachable: 0 };

  constructor(private readonly opts: DirectReadOptions) {}

  /**
   * The data, or undefined: read it through the share server. Call `release` once the data is
   * written where it goes: its memory is used for the next reads.
   */
  async read(g: ReadGrant, path: string, off: number, len: number): Promise<ReadData | undefined> {
    if (this.closed) return undefined;
    const now = Date.now();
    const up = g.bricks.filter((b) => this.link(b.addr).downUntil <= now);
    if (up.length === 0) return undefined;
    const { addr, key } = up[Math.floor(off / STRIPE) % up.length]!;
    const link = this.link(addr);
    let c: RpcClient;
    try {
      c = await this.client(addr, link);
    } catch (err) {
      this.down(addr, link, err);
      return undefined;
    }
    try {
      const r = await c.request(
        OP.bReadDirect,
        { share: this.opts.share, key, path, fid: g.id, v: g.v, off, len },
        undefined,
        this.opts.requestTimeoutMs ?? 2_000,
      );
      const s = this.stats.reads.get(addr) ?? { reads: 0, bytes: 0 };
      s.reads++;
      for (const p of r.parts) s.bytes += p.length;
      this.stats.reads.set(addr, s);
      return { parts: r.parts, release: r.release ?? (() => {}) };
    } catch (err) {
      const code = toReplicatedError(err).code;
      if (code === 'ENOTCONN' || code === 'ETIMEDOUT') {
        if (code === 'ETIMEDOUT') c.close();
        this.down(addr, link, err);
      } else this.stats.refused++;
      return undefined;
    }
  }

  /** One line: what each brick answered, and how many reads went to the share server instead. */
  describe(): string {
    const per = [...this.stats.reads].map(
      ([a, s]) => `${a} ${s.reads} (${(s.bytes / 1048576).toFixed(1)} MiB)`,
    );
    return `direct reads: ${per.length > 0 ? per.join(', ') : 'none'}; refused by a brick ${this.stats.refused}, brick unreachable ${this.stats.unreachable}`;
  }

  close(): void {
    this.closed = true;
    for (const l of this.links.values()) l.client?.close();
    this.links.clear();
  }

  private link(addr: string): BrickLink {
    let l = this.links.get(addr);
    if (!l) {
      l = { downUntil: 0 };
      this.links.set(addr, l);
    }
    return l;
  }

  private client(addr: string, link: BrickLink): Promise<RpcClient> {
    if (link.client && !link.client.closed) return Promise.resolve(link.client);
    link.client = undefined;
    link.connecting ??= (async () => {
      const [host, port] = splitAddr(addr);
      if (host === '' || !Number.isInteger(port) || port <= 0)
        throw new ReplicatedError('EINVAL', `bad brick address ${addr}`);
      const c = await RpcClient.connect(host, port, this.opts.connectTimeoutMs ?? 1000, {
        buffers: this.buffers,
      });
      if (this.closed) {
        c.close();
        throw new ReplicatedError('ENOTCONN', 'unmounted');
      }
      link.client = c;
      return c;
    })().finally(() => {
      link.connecting = undefined;
    });
    return link.connecting;
  }

  private down(addr: string, link: BrickLink, err: unknown): void {
    this.stats.unreachable++;
    if (link.downUntil <= Date.now())
      this.opts.log?.(
        `brick ${addr} cannot be read from directly (${(err as Error).message}): reading through the share server`,
      );
    link.downUntil = Date.now() + DOWN_MS;
  }
}
