/**
 * The cluster monitor: which share server owns each share, decided once for the cluster in the
 * API's database, and moved when the owner stops answering.
 *
 * Every abaca-server process that runs the replicated driver with several share servers runs one.
 * It probes every share server (`serverState`) every `probeMs`; a server that has not answered for
 * `failoverMs` is down, and each of its shares is moved to the live server that owns the fewest,
 * by a compare-and-set on the owner row (`ShareOwnerStore.move` with the generation it read). Only
 * one monitor wins that update, and only the winner tells the new owner to attach the share (its
 * epoch claim on the bricks fences the old owner, should it still be alive) and the others where
 * it went. A server that comes back (a new process id, or answering again) is told the whole map:
 * the shares it owns and where the others are. Assignments carry the row's generation, so a share
 * server ignores an older decision arriving late from a slower monitor.
 *
 * The store is PostgreSQL (services/repos/share-owners.ts); nothing here is consensus code.
 */
import { ReplicatedClient, type ServerState } from './client/client.ts';
import { toReplicatedError } from './protocol/errors.ts';
import type { ClusterTls } from './protocol/tls.ts';
import { splitAddr } from './protocol/wire-args.ts';

/** One share's owner, as the database holds it. */
export interface ShareOwner {
  share: string;
  /** The owning share server's admin address (as configured: `host:port`). */
  server: string;
  /** Raised by every move: the compare-and-set version of the row. */
  generation: number;
}

/** Where the owners live (one backend's rows): implemented over the API's database. */
export interface ShareOwnerStore {
  list(): Promise<ShareOwner[]>;
  get(share: string): Promise<ShareOwner | undefined>;
  /** The share's owner: `server` when the share has none yet, else the one it has. */
  claim(share: string, server: string): Promise<ShareOwner>;
  /** Moves the share to `server` if its row is still at `generation`; false when another won. */
  move(share: string, generation: number, server: string): Promise<boolean>;
  forget(share: string): Promise<void>;
  /**
   * Share servers an operator disabled (Manila's service disable), with the reason given: they
   * get no new shares, and the shares they own are handed to the others while they still answer
   * (a planned restart without a failover's stall).
   */
  disabled(): Promise<Map<string, string | null>>;
  setDisabled(server: string, disabled: boolean, reason: string | null): Promise<void>;
}

/**
 * The owner table in this process's memory: for a single API process without a shared database
 * (tests, benchmarks). Same semantics as the database's (claim keeps the first, move compares the
 * generation).
 */
export function memoryOwnerStore(): ShareOwnerStore & { rows: Map<string, ShareOwner> } {
  const rows = new Map<string, ShareOwner>();
  const off = new Map<string, string | null>();
  return {
    rows,
    disabled: async () => new Map(off),
    setDisabled: async (server, disabled, reason) => {
      if (disabled) off.set(server, reason);
      else off.delete(server);
    },
    list: async () => [...rows.values()].map((r) => ({ ...r })),
    get: async (share) => (rows.has(share) ? { ...rows.get(share)! } : undefined),
    claim: async (share, server) => {
      if (!rows.has(share)) rows.set(share, { share, server, generation: 1 });
      return { ...rows.get(share)! };
    },
    move: async (share, generation, server) => {
      const r = rows.get(share);
      if (!r || r.generation !== generation) return false;
      rows.set(share, { share, server, generation: generation + 1 });
      return true;
    },
    forget: async (share) => {
      rows.delete(share);
    },
  };
}

export interface ClusterOptions {
  /** Share servers' admin addresses, and the address clients use for each (same order). */
  servers: string[];
  exportAddresses: string[];
  adminToken: string;
  tls?: ClusterTls;
  store: ShareOwnerStore;
  /** How often every share server is asked how it is (ms). */
  probeMs?: number;
  /** A share server silent this long is down; its shares move (ms). */
  failoverMs?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export const DEFAULT_PROBE_MS = 500;
/** Assignments per message when a share server is sent the whole map. */
const TELL_BATCH = 500;
export const DEFAULT_FAILOVER_MS = 3000;

interface ServerView {
  admin: string;
  export: string;
  client: ReplicatedClient | undefined;
  connecting: boolean;
  /** When it last answered a probe (ms since epoch); 0: never since this monitor started. */
  lastOk: number;
  state: ServerState | undefined;
  /** The process id the whole map was last sent to. */
  toldId: string | undefined;
  /** Since when it reaches fewer than a majority of its bricks (ms since epoch), else undefined. */
  shortSince: number | undefined;
}

export class ShareServerCluster {
  private readonly views: ServerView[];
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> = Promise.resolve();
  private readonly started = Date.now();
  private closed = false;
  /** The disabled share servers as of the last round (see ShareOwnerStore.disabled). */
  private off = new Map<string, string | null>();
  readonly probeMs: number;
  readonly failoverMs: number;

  constructor(private readonly opts: ClusterOptions) {
    this.probeMs = opts.probeMs ?? DEFAULT_PROBE_MS;
    this.failoverMs = opts.failoverMs ?? DEFAULT_FAILOVER_MS;
    this.views = opts.servers.map((admin, i) => ({
      admin,
      export: opts.exportAddresses[i] ?? admin,
      client: undefined,
      connecting: false,
      lastOk: 0,
      state: undefined,
      toldId: undefined,
      shortSince: undefined,
    }));
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      // One round at a time: a slow database or a hung server must not pile rounds up.
      this.round = this.round
        .then(() => this.tick())
        .catch((err: unknown) => this.note('cluster round failed', err));
    }, this.probeMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.round.catch(() => {});
    for (const v of this.views) v.client?.close();
  }

  /** Is the share server at this admin address answering (as of the last probes)? */
  isUp(admin: string): boolean {
    const v = this.view(admin);
    return v !== undefined && this.up(v);
  }

  /** Whether an operator disabled the share server (as of the last round), and why. */
  disabledOf(admin: string): { disabled: boolean; reason: string | null } {
    return { disabled: this.off.has(admin), reason: this.off.get(admin) ?? null };
  }

  /**
   * Disables or enables a share server for the whole cluster (the store); this monitor acts on it
   * at once, the others at their next round.
   */
  async setDisabled(admin: string, disabled: boolean, reason: string | null): Promise<void> {
    await this.opts.store.setDisabled(admin, disabled, reason);
    this.off = await this.opts.store.disabled();
  }

  /** The export address clients use for the share server at this admin address. */
  exportOf(admin: string): string {
    return this.view(admin)?.export ?? admin;
  }

  /** The share's owner, if it has one. */
  owner(share: string): Promise<ShareOwner | undefined> {
    return this.opts.store.get(share);
  }

  /**
   * The owner of a new share: the one it has (a repeated create), else the live share server that
   * owns the fewest shares — `prefer` (the source's owner, for a clone) when given and up.
   */
  async place(share: string, prefer?: string): Promise<ShareOwner> {
    const known = await this.opts.store.get(share);
    if (known) return known;
    let server = prefer !== undefined && this.isUp(prefer) && !this.off.has(prefer) ? prefer : undefined;
    if (server === undefined) {
      const owners = await this.opts.store.list();
      server = this.leastLoaded(owners) ?? this.opts.servers[0]!;
    }
    return this.opts.store.claim(share, server);
  }

  /** Tells every other live share server where a share is served (after creation or a move). */
  async announce(owner: ShareOwner): Promise<void> {
    const at = this.exportOf(owner.server);
    await Promise.allSettled(
      this.views
        .filter((v) => v.admin !== owner.server && v.client)
        .map((v) => v.client!.assignShares({ [owner.share]: { at, gen: owner.generation } })),
    );
  }

  async forget(share: string): Promise<void> {
    await this.opts.store.forget(share);
  }

  /** One probe round, then the decisions it leads to. */
  async tick(): Promise<void> {
    if (this.closed) return;
    await Promise.all(this.views.map((v) => this.probe(v)));
    this.off = await this.opts.store.disabled();
    const owners = await this.opts.store.list();
    // Servers that came back, or restarted: the whole map, before anything moves to them.
    for (const v of this.views)
      if (this.up(v) && v.state && v.toldId !== v.state.id) await this.tell(v, owners);
    for (const o of owners) {
      const v = this.view(o.server);
      if (v && !this.down(v)) {
        // A disabled owner that answers hands its shares over (it is fenced by the new epoch).
        if (this.up(v) && this.off.has(v.admin)) await this.takeOver(o, owners);
        else if (this.up(v)) await this.checkServed(v, o);
        continue;
      }
      await this.takeOver(o, owners);
    }
  }

  /** Rounds an owner has answered without serving its share. */
  private readonly unserved = new Map<string, number>();

  /**
   * An owner that answers but does not serve its share (its attach failed: bricks out of its reach,
   * or it was fenced) is told again every 20 rounds (10 s by default), so it attaches once it can.
   */
  private async checkServed(v: ServerView, o: ShareOwner): Promise<void> {
    if (v.state?.shares.includes(o.share) || v.toldId !== v.state?.id) {
      this.unserved.delete(o.share);
      return;
    }
    const n = (this.unserved.get(o.share) ?? 0) + 1;
    this.unserved.set(o.share, n);
    if (n % 20 !== 0) return;
    await v.client
      ?.assignShares({ [o.share]: { at: 'here', gen: o.generation } })
      .catch((err: unknown) => this.note('could not tell the owner again', err));
  }

  private async takeOver(o: ShareOwner, owners: ShareOwner[]): Promise<void> {
    const to = this.leastLoaded(owners, o.server);
    if (to === undefined) return; // nobody to move it to: it waits for a server to answer
    if (!(await this.opts.store.move(o.share, o.generation, to))) return; // another monitor did it
    const moved: ShareOwner = { share: o.share, server: to, generation: o.generation + 1 };
    const i = owners.indexOf(o);
    if (i >= 0) owners[i] = moved;
    this.note('share moved to another share server', { share: o.share, from: o.server, to });
    const target = this.view(to)!;
    try {
      const r = await target.client!.assignShares({ [o.share]: { at: 'here', gen: moved.generation } });
      const failed = (r['failed'] ?? {}) as Record<string, string>;
      if (failed[o.share])
        this.note('the new owner could not attach the share yet', { share: o.share, error: failed[o.share] });
    } catch (err) {
      this.note('could not tell the new owner', err);
    }
    await this.announce(moved);
  }

  /** Sends a share server the whole map: what it owns, and where every other share is. */
  private async tell(v: ServerView, owners: ShareOwner[]): Promise<void> {
    const id = v.state!.id;
    const shares: Record<string, { at: string; gen: number }> = {};
    for (const o of owners)
      shares[o.share] = { at: o.server === v.admin ? 'here' : this.exportOf(o.server), gen: o.generation };
    try {
      // In parts: a frame's header holds at most 256 KiB (about 2,000 entries).
      const entries = Object.entries(shares);
      for (let i = 0; i < entries.length; i += TELL_BATCH)
        await v.client!.assignShares(Object.fromEntries(entries.slice(i, i + TELL_BATCH)));
      v.toldId = id;
    } catch (err) {
      this.note('could not send a share server its assignments', err);
    }
  }

  private async probe(v: ServerView): Promise<void> {
    try {
      if (!v.client || v.client.rpc.closed) {
        v.client?.close();
        v.client = undefined;
        if (v.connecting) return;
        v.connecting = true;
        const [host, port] = splitAddr(v.admin);
        try {
          v.client = await ReplicatedClient.connect({
            host,
            port,
            adminToken: this.opts.adminToken,
            timeoutMs: Math.max(this.probeMs * 2, 1000),
            tls: this.opts.tls,
          });
        } finally {
          v.connecting = false;
        }
      }
      v.state = await v.client.serverState();
      v.lastOk = Date.now();
      const short = v.state.bricksUp < Math.floor(v.state.bricks / 2) + 1;
      v.shortSince = short ? (v.shortSince ?? v.lastOk) : undefined;
    } catch (err) {
      // A probe that timed out may leave a hung server's socket: start over next time.
      if (toReplicatedError(err).code === 'ETIMEDOUT') {
        v.client?.close();
        v.client = undefined;
      }
    }
  }

  private up(v: ServerView): boolean {
    return v.lastOk > 0 && Date.now() - v.lastOk < this.failoverMs;
  }

  /**
   * Silent for failoverMs (counted from this monitor's start for one never heard) — or answering
   * but cut off from most of its bricks for that long while another server reaches a majority:
   * its shares cannot be written there, and can elsewhere.
   */
  private down(v: ServerView): boolean {
    if (Date.now() - Math.max(v.lastOk, this.started) >= this.failoverMs) return true;
    return (
      v.shortSince !== undefined &&
      Date.now() - v.shortSince >= this.failoverMs &&
      this.views.some((o) => o !== v && this.up(o) && o.shortSince === undefined)
    );
  }

  private view(admin: string): ServerView | undefined {
    return this.views.find((v) => v.admin === admin);
  }

  /** The live server owning the fewest shares (ties: the first configured), not `except`. */
  private leastLoaded(owners: ShareOwner[], except?: string): string | undefined {
    const count = new Map<string, number>();
    for (const o of owners) count.set(o.server, (count.get(o.server) ?? 0) + 1);
    let best: ServerView | undefined;
    for (const v of this.views) {
      if (v.admin === except || !this.up(v) || v.shortSince !== undefined || this.off.has(v.admin)) continue;
      if (!best || (count.get(v.admin) ?? 0) < (count.get(best.admin) ?? 0)) best = v;
    }
    return best?.admin;
  }

  private note(msg: string, detail?: unknown): void {
    const fields =
      detail instanceof Error
        ? { error: detail.message }
        : ((detail as Record<string, unknown> | undefined) ?? {});
    this.opts.log?.(msg, fields);
  }
}
