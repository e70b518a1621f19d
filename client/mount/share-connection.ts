/**
 * The mount's connection to its share server: connects and mounts the share (with the admin
 * token, or an identity token of the share's project), reconnects when the connection drops and
 * sends again what was in flight, for up to `retryMs`; after that a request fails with ENOTCONN,
 * so a mount whose server stays away answers programs instead of hanging.
 *
 * A share can have several share-server addresses (one export location each, or several hosts
 * in one location). The connection tries them in order: first the one it was last connected to,
 * then the ones after it, wrapping around, so a mount follows the share to another server when
 * its own stays away. A server that answers EMOVED names the share's owner: the connection goes
 * there (an address it did not know is added to the list).
 *
 * Every mutation carries a request id (this connection's random id and a sequence number), and a
 * mutation sent again says so (`resent`): the share server answers it with what it answered the
 * first time when a brick already applied it (brick/recent-requests.ts), so a write, append, create
 * or rename lost in flight by a crash is applied once.
 */
import { randomUUID } from 'node:crypto';
import { ReplicatedClient } from '../../backends/replicated/client/client.ts';
import { ReplicatedError, toReplicatedError } from '../../backends/replicated/protocol/errors.ts';
import { MUTATING_CLIENT_OPS, OP } from '../../backends/replicated/protocol/opcodes.ts';
import { clusterTlsFromEnv } from '../../backends/replicated/protocol/tls.ts';

export interface ServerAddress {
  host: string;
  port: number;
}

export interface ShareAddress extends ServerAddress {
  share: string;
  /** Further share servers of the share, tried in order after host:port. */
  others?: ServerAddress[];
}

const HOST_PORT = /^(\[[^\]]+\]|[^/:,[\]]+):(\d{1,5})$/;

/** `HOST:PORT` (an IPv6 host in brackets) as an address; null when it is not one. */
function parseHostPort(at: string): ServerAddress | null {
  const hp = HOST_PORT.exec(at);
  const port = Number(hp?.[2]);
  if (!hp || port < 1 || port > 65535) return null;
  return { host: hp[1]!.replace(/^\[|\]$/g, ''), port };
}

/**
 * `abaca://HOST:PORT/SHARE_ID` (the replicated driver's export location), or several servers of
 * one share in one location: `abaca://HOST:PORT,HOST:PORT/SHARE_ID` (for fstab and the CSI
 * volume handle, which hold one string).
 */
export function parseExportLocation(location: string): ShareAddress | null {
  const m = /^abaca:\/\/([^/]+)\/([^/]+)\/?$/.exec(location);
  if (!m) return null;
  const servers: ServerAddress[] = [];
  for (const part of m[1]!.split(',')) {
    const server = parseHostPort(part);
    if (!server) return null;
    servers.push(server);
  }
  const [first, ...others] = servers;
  return { ...first!, share: m[2]!, ...(others.length > 0 ? { others } : {}) };
}

/**
 * One address from a share's export locations (as the share API lists them, preferred first):
 * every `abaca://` location of the same share, in that order, without repeats. Null when none is
 * an `abaca://` location.
 */
export function shareAddressOf(locations: Array<{ path: string; preferred?: boolean }>): ShareAddress | null {
  const parsed = [...locations]
    .sort((a, b) => Number(b.preferred === true) - Number(a.preferred === true))
    .map((l) => parseExportLocation(l.path))
    .filter((a): a is ShareAddress => a !== null);
  if (parsed.length === 0) return null;
  const share = parsed[0]!.share;
  const seen = new Set<string>();
  const servers: ServerAddress[] = [];
  for (const a of parsed.filter((p) => p.share === share))
    for (const s of serversOf(a)) {
      const key = `${s.host}|${s.port}`;
      if (!seen.has(key)) {
        seen.add(key);
        servers.push(s);
      }
    }
  const [first, ...others] = servers;
  return { ...first!, share, ...(others.length > 0 ? { others } : {}) };
}

/** Every server of an address, in the order they are tried. */
export function serversOf(a: ShareAddress): ServerAddress[] {
  return [{ host: a.host, port: a.port }, ...(a.others ?? [])];
}

export const hostPort = (s: ServerAddress): string =>
  `${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}`;

export interface ConnectionOptions extends ShareAddress {
  /** The share server's admin token: an operator's mount, not held to access rules. */
  adminToken?: string;
  /** The identity token to mount with, asked for at every (re)connection. */
  token?: () => Promise<string | undefined>;
  /** How long requests are sent again while the server cannot be reached (default 30 s). */
  retryMs?: number;
  /** How long one request may take before it counts as lost (default 60 s). */
  requestTimeoutMs?: number;
  log?: (msg: string) => void;
  /** While requests wait: how often the server is pinged, and how long a ping may take (ms). */
  heartbeatMs?: number;
  pingTimeoutMs?: number;
  /** How long a server may take to answer a mount before the next one is tried (ms). */
  mountTimeoutMs?: number;
}

const HEARTBEAT_MS = 2000;
const PING_TIMEOUT_MS = 3000;
const MOUNT_TIMEOUT_MS = 10_000;

type Reply = Awaited<ReturnType<ReplicatedClient['call']>>;

/** Codes that mean "the connection is gone", not "the server said no". */
const TRANSPORT = new Set(['ENOTCONN', 'ETIMEDOUT']);

/**
 * Whether a request failed for want of a connection to the share's owner (gone, timed out, or
 * the server no longer owns the share) rather than by the server's answer: asking again on
 * another connection is the right response.
 */
export function connectionLost(code: string): boolean {
  return TRANSPORT.has(code) || code === 'EMOVED';
}

/** Redirects followed in one connection attempt (a loop between two servers ends here). */
const MAX_REDIRECTS = 4;

export class ShareConnection {
  private client: ReplicatedClient | null = null;
  private connecting: Promise<ReplicatedClient> | null = null;
  private closed = false;
  /** What the share's access rules allow this client, as the last mount answered. */
  access: 'rw' | 'ro' = 'rw';
  /** Connections made (the first one included). */
  connects = 0;
  private readonly servers: ServerAddress[];
  /** The server connected to last (where a reconnection starts). */
  private at = 0;
  /** This connection's part of every request id. */
  private readonly clientId = randomUUID();
  private seq = 0;

  private constructor(private readonly opts: ConnectionOptions) {
    this.servers = serversOf(opts);
  }

  /** Connects and mounts once; errors (no access, bad token, nothing listening) are thrown as they are. */
  static async open(opts: ConnectionOptions): Promise<ShareConnection> {
    const c = new ShareConnection(opts);
    c.client = await c.connect();
    c.heartbeat = setInterval(() => c.checkAlive(), opts.heartbeatMs ?? HEARTBEAT_MS);
    c.heartbeat.unref();
    return c;
  }

  /** Requests waiting for an answer (the heartbeat runs only while there are some). */
  private inflight = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private pinging = false;

  /**
   * A share server that stops answering without closing the connection (paused, cut off, its
   * machine gone) would hold every request until its timeout (a minute). While requests wait, the
   * connection is pinged; a ping unanswered for `pingTimeoutMs` drops the connection, and what was
   * in flight is sent again elsewhere — to the share's new owner once the cluster has moved it.
   */
  private checkAlive(): void {
    const c = this.client;
    if (!c || c.rpc.closed || this.inflight === 0 || this.pinging) return;
    this.pinging = true;
    c.rpc
      .request(OP.ping, {}, undefined, this.opts.pingTimeoutMs ?? PING_TIMEOUT_MS)
      .catch((err: unknown) => {
        if (toReplicatedError(err).code !== 'ETIMEDOUT' || c !== this.client) return;
        this.opts.log?.(`share server ${this.address} does not answer: trying the others`);
        this.at = (this.at + 1) % this.servers.length;
        c.close();
      })
      .finally(() => {
        this.pinging = false;
      });
  }

  /** Whether a connection is up now (not lost, nor being made again). */
  get connected(): boolean {
    return this.client !== null && !this.client.rpc.closed && this.connecting === null;
  }

  /** The share server in use (or tried last), `HOST:PORT`. */
  get address(): string {
    return hostPort(this.servers[this.at]!);
  }

  /**
   * Connects and mounts on the first server that answers, from the one in use onwards. A server
   * that cannot be reached (or drops the connection) passes to the next; a refusal (no access,
   * bad token, no such share) is thrown as it is. When none answers, the last failure is thrown.
   */
  private async connect(): Promise<ReplicatedClient> {
    let last: ReplicatedError | undefined;
    let redirects = 0;
    const start = this.at;
    for (let i = 0; i < this.servers.length; i++) {
      const at = (start + i) % this.servers.length;
      try {
        const c = await this.connectTo(this.servers[at]!);
        this.at = at;
        return c;
      } catch (err) {
        const e = toReplicatedError(err);
        if (e.code === 'EMOVED' && e.at !== undefined && redirects < MAX_REDIRECTS) {
          // The owner is named: try it next (and count this attempt again).
          const owner = this.indexOf(e.at);
          if (owner !== undefined && owner !== at) {
            redirects++;
            this.at = owner;
            return this.connect();
          }
        }
        // Not served there (moved, or not assigned yet while the cluster decides): next server.
        if (!TRANSPORT.has(e.code) && e.code !== 'EMOVED' && e.code !== 'EAGAIN') throw e;
        last = e;
      }
    }
    throw TRANSPORT.has(last?.code ?? '')
      ? last
      : new ReplicatedError(
          'ENOTCONN',
          `no share server serves share ${this.opts.share} now: ${last?.message}`,
        );
  }

  /** The index of `host:port` in the server list, added when new; undefined when not an address. */
  private indexOf(at: string): number | undefined {
    const s = parseHostPort(at);
    if (!s) return undefined;
    const i = this.servers.findIndex((x) => x.host === s.host && x.port === s.port);
    if (i >= 0) return i;
    this.servers.push(s);
    return this.servers.length - 1;
  }

  private async connectTo(server: ServerAddress): Promise<ReplicatedClient> {
    const c = await ReplicatedClient.connect({
      host: server.host,
      port: server.port,
      timeoutMs: this.opts.requestTimeoutMs ?? 60_000,
      // Cluster TLS from the environment: the CA alone verifies the share server; a certificate,
      // when set, is presented too (an operator's admin mount needs one).
      tls: clusterTlsFromEnv(process.env, false),
    }).catch((err: unknown) => {
      // No connection (refused, unreachable, timed out): the server is away, whatever the cause.
      if (err instanceof ReplicatedError && TRANSPORT.has(err.code)) throw err;
      throw new ReplicatedError(
        'ENOTCONN',
        `cannot connect to ${hostPort(server)}: ${(err as Error).message}`,
      );
    });
    try {
      await this.mountOn(c, this.opts.adminToken ?? (await this.opts.token?.()));
    } catch (err) {
      c.close();
      throw err;
    }
    this.connects++;
    c.rpc.onClose(() => {
      if (this.closed || c !== this.client || !this.keepConnected?.()) return;
      // Back at once, not at the next request: held locks must be reclaimed within the grace period.
      this.opts.log?.(`connection to ${this.address} lost: reconnecting to reclaim locks`);
      this.call(OP.ping, {}).catch((err: unknown) =>
        this.opts.log?.(`could not reconnect: ${(err as Error).message}`),
      );
    });
    return c;
  }

  private async mountOn(c: ReplicatedClient, token: string | undefined): Promise<void> {
    const header = token ? { share: this.opts.share, token } : { share: this.opts.share };
    // Bounded: a server that accepts the connection but does not answer (paused) is passed over.
    const r = await c.rpc.request(OP.mount, header, undefined, this.opts.mountTimeoutMs ?? MOUNT_TIMEOUT_MS);
    this.access = r.header['access'] === 'ro' ? 'ro' : 'rw';
  }

  /** Mounts again on the open connection with a renewed identity token (before the old one expires). */
  async renewToken(token: string): Promise<void> {
    if (this.opts.adminToken) return;
    const c = this.client;
    if (c && !c.rpc.closed) await this.mountOn(c, token);
  }

  /**
   * Run on every new connection after the first, before any other request goes through it (the
   * mount reclaims its locks there). Its own requests go straight to `c`.
   */
  onReconnect: ((c: ReplicatedClient) => Promise<void>) | undefined;
  /** Whether a dropped connection is made again at once rather than at the next request. */
  keepConnected: (() => boolean) | undefined;

  private current(): Promise<ReplicatedClient> {
    if (this.closed) return Promise.reject(new ReplicatedError('ENOTCONN', 'unmounted'));
    if (this.client && !this.client.rpc.closed) return Promise.resolve(this.client);
    this.client = null;
    this.connecting ??= this.connect()
      .then(async (c) => {
        this.opts.log?.(`reconnected to ${this.address}`);
        try {
          await this.onReconnect?.(c);
        } catch (err) {
          c.close();
          throw err;
        }
        this.client = c;
        return c;
      })
      .finally(() => {
        this.connecting = null;
      });
    return this.connecting;
  }

  /**
   * One request; while the connection is down it is sent again on a new one until `retryMs` has
   * passed. (Writes at an offset are idempotent; a create, mkdir, unlink or rename sent twice may
   * answer EEXIST or ENOENT the second time, as over NFS without a reply cache.) `sendIf`, when
   * given, is asked before each send: a reason instead of undefined fails the request with EIO
   * unsent (a write whose lock was lost meanwhile).
   */
  async call(
    op: number,
    header: object,
    payload?: Buffer,
    sendIf?: () => string | undefined,
  ): Promise<Reply> {
    const deadline = Date.now() + this.retryMs;
    let wait = 50;
    const first = MUTATING_CLIENT_OPS.has(op) ? { ...header, rid: `${this.clientId}:${++this.seq}` } : header;
    let sent = first;
    for (;;) {
      let c: ReplicatedClient | undefined;
      try {
        c = await this.current();
        // Checked on the connection it would go through (after a reconnection's reclaim).
        const refused = sendIf?.();
        if (refused !== undefined) throw new ReplicatedError('EIO', refused);
        this.inflight++;
        try {
          return await c.call(op, sent, payload);
        } finally {
          this.inflight--;
        }
      } catch (err) {
        const e = toReplicatedError(err);
        const moved = e.code === 'EMOVED';
        if (!connectionLost(e.code) || this.closed || Date.now() >= deadline)
          throw moved ? new ReplicatedError('ENOTCONN', e.message) : e;
        // A lost answer: start over on a new connection. Moved: to the owner it names, if any.
        if (e.code === 'ETIMEDOUT' || moved) c?.close();
        if (moved && e.at !== undefined) {
          const owner = this.indexOf(e.at);
          if (owner !== undefined) this.at = owner;
        } else if (moved) this.at = (this.at + 1) % this.servers.length;
      }
      // Whatever happened to the first send, the server checks before applying it again.
      if (sent === first && MUTATING_CLIENT_OPS.has(op)) sent = { ...first, resent: true };
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(wait * 2, 1000);
    }
  }

  /** How long a request is sent again while no connection answers (ms). */
  get retryMs(): number {
    return this.opts.retryMs ?? 30_000;
  }

  /**
   * A request that may wait as long as it needs (a lock wait): no timeout, and not sent again
   * here (the caller decides: ShareFs sends a lock wait again on the next connection).
   */
  async callWaiting(op: number, header: object): Promise<Reply> {
    const c = await this.current();
    this.inflight++;
    try {
      return await c.rpc.request(op, header, undefined, 0);
    } finally {
      this.inflight--;
    }
  }

  close(): void {
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.client?.close();
    this.client = null;
  }
}
