/**
 * The share server: keeps links to bricks, attaches shares (taking over with a higher epoch),
 * serves the native protocol to clients and the admin operations to the backend driver.
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import type net from 'node:net';
import { ReplicatedError, toReplicatedError } from '../protocol/errors.ts';
import { FRAME_PREFIX, type Frame, MAX_HEADER, MAX_READ_BYTES } from '../protocol/frame.ts';
import { isAdminOp, MUTATING_CLIENT_OPS, OP } from '../protocol/opcodes.ts';
import { checkClientPath, checkName, checkPath, checkProject, joinPath } from '../protocol/paths.ts';
import { admitPeer, type HandlerResult, serveSocket } from '../protocol/rpc-server.ts';
import { type ClusterTls, createProtocolServer, peerIsClusterMember } from '../protocol/tls.ts';
import { type ShareInfo, SPLIT_BRAIN_POLICIES, type SplitBrainPolicy } from '../protocol/types.ts';
import { num, timeMs } from '../protocol/wire-args.ts';
import { type AccessLevel, accessFor, parseAccess } from './access.ts';
import { Assignments, HERE } from './assignments.ts';
import { BrickLink, DEFAULT_LINK_OPTIONS, type LinkOptions } from './brick-link.ts';
import { BrickAdmin } from './bricks-admin.ts';
import { type BrickSpace, gib, largestShare, pools, refusal } from './capacity.ts';
import { Healer } from './heal.ts';
import { type LockKind, type LockRequest, LockTable } from './locks.ts';
import { type BrickCandidate, placeReplicas } from './placement.ts';
import { type Member, outcomeOpen, type ReadSent, ShareCoordinator } from './share-coordinator.ts';
import { SnapshotHealer } from './snapshot-heal.ts';
import {
  cloneShare,
  createSnapshot,
  deleteSnapshot,
  listSnapshots,
  revertToSnapshot,
  type SnapshotServer,
} from './snapshots.ts';
import { TokenChecker, type TokenFacts } from './tokens.ts';

export interface ShareServerOptions {
  host?: string;
  port?: number;
  bricks?: string[];
  link?: Partial<LinkOptions>;
  /** Periodic index heal (ms) when something is known to be missing; 0 disables the timer. */
  healIntervalMs?: number;
  /** Heal at once when a brick returns, after a takeover, or when an operation missed a replica. */
  autoHeal?: boolean;
  handshakeMs?: number;
  maxReadBytes?: number;
  /**
   * The operator's secret: admin operations must carry it (header `token`), and a mount that
   * carries it is not held to the share's rules. Required: there is no open mode.
   */
  adminToken: string;
  /**
   * The identity API (…/identity/v3). When set, a client mount must also carry a token of the
   * share's project (or with the admin role), checked there and again every `tokenRecheckMs`.
   */
  authUrl?: string;
  tokenRecheckMs?: number;
  /** The lock grace period after a takeover (default DEFAULT_LOCK_GRACE_MS; 0: none, locks are lost). */
  lockGraceMs?: number;
  /**
   * Cluster TLS: the client port serves TLS only, and links to bricks are mutual TLS. Clients
   * may come without a certificate (mounts with a token); admin operations need one.
   */
  tls?: ClusterTls;
  /** Where the server's notes go (snapshot methods and times); default stderr, false: nowhere. */
  log?: ((msg: string) => void) | false;
  /**
   * One of several share servers under the cluster monitor (`--cluster`): clients are served only
   * the shares assigned here (server/assignments.ts), never a share attached on a client's first use.
   */
  managed?: boolean;
  /**
   * Read answers carry a grant with which the mount reads the same file from that brick directly
   * (protocol/read-grants.ts); default true. Never with cluster TLS: bricks then accept only peers
   * with a cluster certificate, which mounts do not have.
   */
  directReads?: boolean;
}

interface Attached {
  coord: ShareCoordinator;
  healer: Healer;
  timer: NodeJS.Timeout | undefined;
  unlisten: () => void;
  healSoon: () => void;
  /** Copies missed snapshots to bricks that return, deletes snapshots deleted meanwhile. */
  snapHeal: SnapshotHealer;
  /**
   * Until then (ms since the epoch), the lock grace period of a share taken over from a previous
   * owner: mounts reclaim the locks they held there, and new lock requests wait (server/locks.ts).
   */
  graceUntil: number;
}

/** How long mounts have to reclaim their locks after a takeover (a restart or a failover). */
export const DEFAULT_LOCK_GRACE_MS = 10_000;

/** The replica count pools are quoted for (the default of a share type). */
const QUOTED_REPLICAS = 3;

/** A brick's `stat` answer: its space, and each share's size and whether it is the first replica. */
type BrickReport = Omit<BrickSpace, 'shares'> & { shares: Record<string, { size: number; first: boolean }> };

const spaceOf = (r: BrickReport): BrickSpace => ({
  ...r,
  shares: Object.fromEntries(Object.entries(r.shares).map(([id, s]) => [id, s.size])),
});

interface Mount {
  share: string;
  /** Mounted with the admin token: the operator's, not held to rules or identity. */
  admin: boolean;
  /** The identity token the mount was admitted with (checked again as it ages). */
  token?: string;
  /** The share record's generation the level was decided at; a change of rules decides again. */
  gen: number;
  level: AccessLevel;
  /** File ids handed to this connection (newIds) and not used by a create yet. */
  ids?: Set<string>;
  /** A number for the connection, kept when it mounts again: who made a change (server/sole-changers.ts). */
  conn: number;
}

/** File ids a connection may hold unused at once, and hand out per request at most. */
const IDS_HELD = 4096;
const IDS_PER_REQUEST = 256;

export class ShareServer {
  readonly id = randomUUID();
  private readonly links = new Map<string, BrickLink>();
  private readonly shares = new Map<string, Attached>();
  private server: net.Server | undefined;
  private readonly linkOpts: LinkOptions;
  private readonly attaching = new Map<string, Promise<ShareInfo>>();
  /** The share each client connection mounted, and what its access rules let it do. */
  private readonly mounts = new WeakMap<net.Socket, Mount>();
  /** Numbers the client connections (Mount.conn). */
  private nextConn = 1;
  /** Whether read answers carry grants for direct reads (ShareServerOptions.directReads). */
  private get directReads(): boolean {
    return this.opts.directReads !== false && this.opts.tls === undefined;
  }
  private spaceQueue: Promise<void> = Promise.resolve();
  private readonly tokens: TokenChecker | undefined;
  /** Advisory locks of every share served here, keyed by share and file id. */
  readonly locks = new LockTable();
  /** Which shares are served here, and where the others are (the cluster monitor says). */
  readonly assignments: Assignments;

  constructor(private readonly opts: ShareServerOptions) {
    if (!opts.adminToken) throw new Error('the share server needs an admin token (ABACA_ADMIN_TOKEN)');
    this.linkOpts = { ...DEFAULT_LINK_OPTIONS, ...opts.link, tls: opts.tls };
    this.tokens = opts.authUrl
      ? new TokenChecker({ authUrl: opts.authUrl, recheckMs: opts.tokenRecheckMs })
      : undefined;
    for (const b of opts.bricks ?? []) this.link(b);
    this.assignments = new Assignments(opts.managed === true);
  }

  link(addr: string): BrickLink {
    let l = this.links.get(addr);
    if (!l) {
      const created = new BrickLink(addr, this.linkOpts);
      l = created;
      l.setMaxListeners(0);
      l.on('up', () => {
        this.onBrickUp(created).catch(() => {});
      });
      l.start();
      this.links.set(addr, l);
    }
    return l;
  }

  listen(): Promise<string> {
    // Mount clients may come without a certificate (their token authorises them); admin
    // operations need one (checkAdmin).
    const srv = createProtocolServer(this.opts.tls, 'optional', (sock, paused) =>
      serveSocket(sock, (f, s) => this.handle(f, s), {
        readInPlace: paused,
        handshakeMs: this.opts.handshakeMs ?? 10_000,
        // Anyone may connect: file data only from a mount let in, or with the admin token.
        strangerMaxFrame: FRAME_PREFIX + MAX_HEADER,
        onError: (err) => console.error('abaca-share-server: internal error', err),
      }),
    );
    this.server = srv;
    return new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => {
        const a = srv.address() as net.AddressInfo;
        resolve(`${a.address}:${a.port}`);
      });
    });
  }

  close(): void {
    this.server?.close();
    for (const id of [...this.shares.keys()]) this.detach(id);
    for (const l of this.links.values()) l.stop();
  }

  /** What snapshot operations need of this server (server/snapshots.ts). */
  private readonly snapshotHost: SnapshotServer = {
    serve: async (id) => {
      const a = await this.serve(id);
      return { coord: a.coord, healIndex: () => a.healer.healIndex() };
    },
    attach: (id) => this.attach(id),
    detach: (id) => this.detach(id),
    spaceLock: (fn) => this.spaceLock(fn),
    brickSpace: () => this.brickSpace(),
    findInfos: (id) => this.findInfos(id),
    deletedOn: (id) => this.deletedOn(id),
    links: () => [...this.links.values()],
    serverId: this.id,
    log: (msg) => {
      if (this.opts.log === false) return;
      if (this.opts.log) this.opts.log(msg);
      else console.error(`abaca-share-server: ${msg}`);
    },
  };

  /** Bricks added, replaced and drained (server/bricks-admin.ts). */
  private readonly bricks = new BrickAdmin({
    links: () => [...this.links.values()],
    link: (addr) => this.link(addr),
    unlink: (addr) => {
      this.links.get(addr)?.stop();
      this.links.delete(addr);
    },
    serves: (id) => !this.assignments.managed || this.assignments.isHere(id),
    serve: async (id) => {
      const a = await this.serve(id);
      return { coord: a.coord, healIndex: () => a.healer.healIndex() };
    },
    reclaim: (coord, m) => this.reclaim(coord, m),
    healSoon: (id) => this.shares.get(id)?.healSoon(),
    findInfos: (id) => this.findInfos(id),
    brickSpace: () => this.brickSpace(),
    linkTimeoutMs: () => this.linkOpts.timeoutMs,
    log: (msg) => this.snapshotHost.log(msg),
  });

  coordinator(id: string): ShareCoordinator | undefined {
    return this.shares.get(id)?.coord;
  }

  // ---- share lifecycle ---------------------------------------------------------------------
  private async findInfos(id: string): Promise<ShareInfo[]> {
    const res = await Promise.allSettled(
      [...this.links.values()]
        .filter((l) => l.up)
        .map((l) => l.request(OP.bShareInfo, { share: id }).then((r) => r.header['info'] as ShareInfo)),
    );
    return res.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  }

  private async waitLinks(addrs: string[], ms: number): Promise<void> {
    await Promise.allSettled(addrs.map((a) => this.link(a).waitUp(ms)));
  }

  /** Takes over a share: epoch = highest seen + 1, claimed on a majority of its replica set. */
  attach(id: string): Promise<ShareInfo> {
    checkName(id);
    // One takeover per share at a time in this server (concurrent admin calls share it).
    const running = this.attaching.get(id);
    if (running) return running;
    const p = this.doAttach(id).finally(() => this.attaching.delete(id));
    this.attaching.set(id, p);
    return p;
  }

  private async doAttach(id: string): Promise<ShareInfo> {
    const cur = this.shares.get(id);
    if (cur && !cur.coord.fenced) return cur.coord.info;
    if (cur) this.detach(id);
    await this.waitLinks([...this.links.keys()], 2000);
    let infos = await this.findInfos(id);
    if (infos.length === 0 || (await this.deletedOn(id)).length > 0)
      throw new ReplicatedError('ENOENT', `share ${id} not found on any brick`);
    // The newest record (size, access) wins; among equals the highest epoch.
    const newer = (a: ShareInfo, b: ShareInfo) =>
      (b.gen ?? 0) > (a.gen ?? 0) || ((b.gen ?? 0) === (a.gen ?? 0) && b.epoch > a.epoch);
    const best = infos.reduce((a, b) => (newer(a, b) ? b : a));
    await this.waitLinks(
      best.bricks.map((b) => b.addr),
      2000,
    );
    infos = await this.findInfos(id);
    const epoch = Math.max(...infos.map((i) => i.epoch)) + 1;
    const members: Member[] = best.bricks.map((b) => ({
      id: b.id,
      link: this.link(b.addr),
      ready: false,
      session: randomUUID(),
    }));
    const coord = new ShareCoordinator({ ...best, epoch, owner: this.id }, members);
    const claims = await Promise.allSettled(
      members.map((m) => m.link.request(OP.bClaim, { share: id, epoch, owner: this.id, session: m.session })),
    );
    claims.forEach((c, i) => {
      if (c.status === 'fulfilled') members[i]!.ready = true;
    });
    if (members.filter((m) => m.ready).length < coord.majority) {
      coord.stop();
      throw new ReplicatedError('ENOTCONN', `could not claim share ${id} on a majority of its bricks`);
    }
    const healer = new Healer(coord);
    const snapHeal = new SnapshotHealer(coord, (msg) => this.snapshotHost.log(msg));
    let healTimer: NodeJS.Timeout | undefined;
    const healSoon = (): void => {
      if (this.opts.autoHeal === false || healTimer) return;
      healTimer = setTimeout(() => {
        healTimer = undefined;
        // Snapshots after the live tree: the index heal pauses clients in short steps, the
        // snapshot copy does not need to.
        healer
          .healIndex()
          .catch(() => {})
          .finally(() => snapHeal.soon());
      }, 50);
    };
    const listeners: Array<() => void> = [];
    for (const m of members) {
      const onUp = (): void => {
        void this.reclaim(coord, m).then((ok) => {
          if (ok) healSoon();
        });
      };
      const onDown = (): void => {
        m.ready = false;
      };
      m.link.on('up', onUp);
      m.link.on('down', onDown);
      listeners.push(() => {
        m.link.off('up', onUp);
        m.link.off('down', onDown);
      });
    }
    coord.onNeedHeal = healSoon;
    if (this.opts.autoHeal !== false) coord.healNow = () => healer.healIndex();
    const interval = this.opts.healIntervalMs ?? 60_000;
    const timer =
      interval > 0
        ? setInterval(() => {
            if (coord.needsHeal()) healer.healIndex().catch(() => {});
            if (this.opts.autoHeal !== false) snapHeal.soon();
          }, interval)
        : undefined;
    timer?.unref();
    // A share served before (epoch 1 is its creation, 2 its first owner) may have had locks.
    const grace = best.epoch >= 2 ? (this.opts.lockGraceMs ?? DEFAULT_LOCK_GRACE_MS) : 0;
    this.shares.set(id, {
      coord,
      healer,
      timer,
      healSoon,
      snapHeal,
      graceUntil: grace > 0 ? Date.now() + grace : 0,
      unlisten: () => {
        for (const l of listeners) l();
        if (healTimer) clearTimeout(healTimer);
      },
    });
    const indexes = await healer.indexes();
    coord.loadIndexes(indexes);
    // Operations a previous owner left half-applied are settled before any client is served.
    await coord.settleDirty(indexes);
    await coord.reconcileUsage();
    // Members that are reachable but could not be claimed (e.g. they lost the share).
    await Promise.all(members.filter((m) => !m.ready && m.link.up).map((m) => this.reclaim(coord, m)));
    healSoon();
    this.assignments.serveHere(id);
    return coord.info;
  }

  /**
   * Brings a returning brick back into the replica set: claim at the current epoch with a new
   * session. A brick that lost the share (wiped or replaced disk) gets an empty copy and a pending
   * marker on its root, so heal refills it from the others.
   */
  private async reclaim(coord: ShareCoordinator, m: Member): Promise<boolean> {
    const base = { share: coord.info.id, epoch: coord.info.epoch };
    // A brick that left the replica set (bricks-admin.ts) is not brought back by its return.
    if (!coord.members.includes(m)) return false;
    try {
      const session = randomUUID();
      let refill = false;
      try {
        await m.link.request(OP.bClaim, { ...base, owner: this.id, session });
      } catch (err) {
        if (toReplicatedError(err).code !== 'ENXIO') throw err;
        const good = coord.readyMembers().find((x) => coord.isGood(x, ''));
        if (!good) return false;
        const root = await coord.getattr('');
        await m.link.request(OP.bShareCreate, { share: coord.info.id, info: coord.info, rootId: root.id });
        await m.link.request(OP.bClaim, { ...base, owner: this.id, session });
        refill = true;
      }
      await m.link.request(OP.bSetShareSize, { ...base, session, ...coord.recordFields() });
      if (refill) {
        const good = coord.readyMembers().filter((x) => coord.isGood(x, ''));
        await Promise.all(good.map((g) => coord.req(g, OP.bMark, { paths: [''], bricks: [m.id] })));
        coord.blamed.get(m.id)?.add('');
      }
      // What the others recorded against it is known before it serves a read.
      const attached = this.shares.get(coord.info.id);
      const indexes = attached ? await attached.healer.indexes() : undefined;
      if (indexes) coord.loadIndexes(indexes);
      m.session = session;
      m.ready = true;
      // It may hold an operation an old owner brought to it alone (it was not claimed yet).
      if (attached) await coord.barrier(async () => coord.settleDirty(await attached.healer.indexes()));
      return true;
    } catch (err) {
      if (toReplicatedError(err).code === 'ESTALE') coord.fenced = true;
      return false;
    }
  }

  /** A snapshot was created or deleted: bricks that missed it catch up (in the background). */
  private snapshotsChanged(id: string): void {
    if (this.opts.autoHeal !== false) this.shares.get(id)?.snapHeal.soon();
  }

  detach(id: string): void {
    this.assignments.notHere(id);
    const a = this.shares.get(id);
    if (!a) return;
    this.shares.delete(id);
    if (a.timer) clearInterval(a.timer);
    a.unlisten();
    a.coord.stop();
  }

  /**
   * The share for an admin call or a mount: attached here, or attached now (after a restart of
   * this server, shares are attached on first use). A share another server took over is ESTALE.
   */
  private async serve(id: unknown): Promise<Attached> {
    const sid = checkName(id);
    // The cluster put the share on another server: the caller goes there.
    if (this.assignments.elsewhere(sid) !== undefined) throw this.assignments.moved(sid);
    if (!this.shares.has(sid)) await this.attach(sid);
    return this.attached(sid);
  }

  private attached(id: unknown): Attached {
    const sid = checkName(id);
    const a = this.shares.get(sid);
    if (!a) {
      // Deleted or detached here. Under the cluster monitor (or when its new place is known) the
      // client looks for it elsewhere; a lone share server has nowhere else to send it.
      if (this.assignments.managed || this.assignments.elsewhere(sid) !== undefined)
        throw this.assignments.moved(sid);
      throw new ReplicatedError('ESTALE', `share ${sid} is not served here`);
    }
    if (a.coord.fenced) {
      this.assignments.notHere(sid);
      throw this.assignments.moved(sid);
    }
    return a;
  }

  /**
   * A client's error, as the client should see it: ESTALE from a share that is no longer served
   * here (fenced by another server's epoch, or moved away while the request waited) becomes EMOVED,
   * so the client goes to the share's owner and sends the request again. A file-level ESTALE (the
   * path names another file now) on a share still served here stays what it is.
   */
  private clientError(err: unknown, share: string | undefined): unknown {
    const e = toReplicatedError(err);
    if (share === undefined || e.code !== 'ESTALE') return err;
    const a = this.shares.get(share);
    if (a && !a.coord.fenced) return err;
    if (!a && !this.assignments.managed && this.assignments.elsewhere(share) === undefined) return err;
    this.assignments.notHere(share);
    return this.assignments.moved(share);
  }

  /** What `serverState` answers the cluster monitor: who this is, what it serves, its bricks. */
  private state(): Record<string, unknown> {
    const links = [...this.links.values()];
    return {
      id: this.id,
      managed: this.assignments.managed,
      shares: [...this.shares].filter(([, a]) => !a.coord.fenced).map(([id]) => id),
      bricksUp: links.filter((l) => l.up).length,
      bricks: links.length,
    };
  }

  /**
   * The cluster monitor's word: `shares` maps share ids to `{ at, gen }`, `at` being "here" (attach
   * and serve it) or the `host:port` of the share server that serves it (detach it here, send
   * clients there), `gen` the generation of that decision (an older one than heard is ignored).
   */
  private async assign(h: Record<string, unknown>): Promise<Record<string, unknown>> {
    const shares = h['shares'];
    if (shares === null || typeof shares !== 'object' || Array.isArray(shares))
      throw new ReplicatedError('EINVAL', 'shares must map share ids to { at, gen }');
    const entries = Object.entries(shares as Record<string, unknown>).map(([id, v]) => {
      const { at, gen } = (v ?? {}) as { at?: unknown; gen?: unknown };
      if (typeof at !== 'string' || (at !== HERE && !/^[^\s/]+:\d{1,5}$/.test(at)))
        throw new ReplicatedError(
          'EINVAL',
          `share ${id}: at must be "here" or host:port, not ${JSON.stringify(at)}`,
        );
      return { id: checkName(id), at, gen: num(gen, 0) };
    });
    const failed: Record<string, string> = {};
    const ignored: string[] = [];
    await Promise.all(
      entries.map(async ({ id, at, gen }) => {
        if (!this.assignments.accept(id, gen)) {
          ignored.push(id);
          return;
        }
        if (at === HERE) {
          this.assignments.serveHere(id);
          try {
            await this.attach(id);
          } catch (err) {
            failed[id] = toReplicatedError(err).message;
          }
        } else {
          this.detach(id);
          this.assignments.servedAt(id, at);
        }
      }),
    );
    return { failed, ignored };
  }

  async createShare(h: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = checkName(h['id']);
    const size = Number(h['size']);
    if (!Number.isSafeInteger(size) || size < 0)
      throw new ReplicatedError('EINVAL', 'size must be a byte count');
    const existing = this.shares.get(id);
    if (existing && !existing.coord.fenced) return { info: existing.coord.info };
    await this.waitLinks([...this.links.keys()], 2000);
    if ((await this.deletedOn(id)).length > 0)
      throw new ReplicatedError('EINVAL', `share ${id} was deleted; a new share needs a new id`);
    if ((await this.findInfos(id)).length > 0) return { info: await this.attach(id) };
    // One placement at a time: two creates must not both take the last free space.
    return this.spaceLock(() => this.placeShare(id, size, h));
  }

  private async placeShare(
    id: string,
    size: number,
    h: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    const replicas = h['replicas'] === undefined ? 3 : Number(h['replicas']);
    const space = await this.brickSpace();
    const canTake = (brickId: string | undefined) => refusal(space, [brickId ?? ''], size) === null;
    const cands = this.candidates(space);
    let chosen = cands;
    let warning: string | undefined;
    if (Array.isArray(h['bricks'])) {
      const want = h['bricks'] as string[];
      chosen = want.map((w) => {
        const c = cands.find((x) => x.id === w || x.addr === w);
        if (!c?.up) throw new ReplicatedError('ENOTCONN', `brick ${w} is not registered or not up`);
        return c;
      });
      if (new Set(chosen.map((c) => c.id)).size !== chosen.length)
        throw new ReplicatedError('EINVAL', 'a brick appears twice in the replica set');
      if (chosen.length < 1 || chosen.length > 5)
        throw new ReplicatedError('EINVAL', 'replica count must be 1..5');
      const hosts = new Set(chosen.map((c) => c.host)).size;
      if (hosts < chosen.length) warning = `only ${hosts} distinct host(s) for ${chosen.length} replicas`;
    } else {
      const roomy = cands.map((c) => ({ ...c, up: c.up && canTake(c.id) }));
      if (roomy.filter((c) => c.up).length < replicas && cands.filter((c) => c.up).length >= replicas) {
        const most = Math.max(0, ...cands.filter((c) => c.up).map((c) => largestShare(space, [c.id])));
        throw new ReplicatedError(
          'ENOSPC',
          `not enough free capacity: ${replicas} replicas of ${gib(size)} GiB asked, but fewer than ${replicas} bricks can promise that much (the roomiest can promise ${gib(most)} GiB more)`,
        );
      }
      const zone = typeof h['pool'] === 'string' && h['pool'] !== '' ? h['pool'] : undefined;
      const p = placeReplicas(roomy, replicas, zone);
      chosen = p.bricks;
      warning = p.warning;
    }
    const refused = refusal(
      space,
      chosen.map((c) => c.id),
      size,
    );
    if (refused) throw new ReplicatedError('ENOSPC', `not enough free capacity: ${refused}`);
    const info: ShareInfo = {
      id,
      size,
      bricks: chosen.map((c) => ({ id: c.id, addr: c.addr })),
      epoch: 1,
      owner: this.id,
      ...(h['access'] === undefined ? {} : { access: parseAccess(h['access']) }),
      ...(h['project'] === undefined ? {} : { project: checkProject(h['project']) }),
    };
    const rootId = randomUUID();
    await Promise.all(
      chosen.map((c) => this.link(c.addr).request(OP.bShareCreate, { share: id, info, rootId })),
    );
    const attachedInfo = await this.attach(id);
    return warning ? { info: attachedInfo, warning } : { info: attachedInfo };
  }

  async deleteShare(id: string): Promise<void> {
    checkName(id);
    await this.waitLinks([...this.links.keys()], 2000);
    const infos = await this.findInfos(id);
    this.detach(id);
    if (infos.length === 0) return;
    const best = infos.reduce((a, b) => (b.epoch > a.epoch ? b : a));
    // Every reachable replica deletes it and keeps a tombstone; a replica that is down deletes its
    // copy when it returns (onBrickUp), so the share never comes back.
    const res = await Promise.allSettled(
      best.bricks.map((b) => this.link(b.addr).request(OP.bShareDelete, { share: id, tombstone: true })),
    );
    const done = res.filter((r) => r.status === 'fulfilled').length;
    if (done < Math.floor(best.bricks.length / 2) + 1)
      throw new ReplicatedError(
        'ENOTCONN',
        `share ${id} deleted on ${done} of ${best.bricks.length} bricks, not a majority yet; retry`,
      );
  }

  /** The up bricks that hold a tombstone for the share. */
  private async deletedOn(id: string): Promise<string[]> {
    const res = await Promise.allSettled(
      [...this.links.values()]
        .filter((l) => l.up)
        .map((l) =>
          l
            .request(OP.bTombstoned, { shares: [id] })
            .then((r) => ((r.header['deleted'] as string[]).length ? [l.addr] : [])),
        ),
    );
    return res.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
  }

  /** A returning brick drops the shares deleted while it was away (tombstoned on another brick). */
  private async onBrickUp(link: BrickLink): Promise<void> {
    if (link.shares.length === 0) return;
    const others = [...this.links.values()].filter((l) => l !== link && l.up);
    const res = await Promise.allSettled(
      others.map((l) => l.request(OP.bTombstoned, { shares: link.shares })),
    );
    const deleted = new Set(
      res.flatMap((r) => (r.status === 'fulfilled' ? (r.value.header['deleted'] as string[]) : [])),
    );
    for (const id of deleted) {
      this.detach(id);
      await link.request(OP.bShareDelete, { share: id, tombstone: true }).catch(() => {});
    }
  }

  /** The up bricks' space reports (brick op `stat`). */
  private async brickReports(): Promise<BrickReport[]> {
    const res = await Promise.allSettled(
      [...this.links.values()].filter((l) => l.up).map((l) => l.request(OP.bStat, {})),
    );
    return res.flatMap((r) => (r.status === 'fulfilled' ? [r.value.header as unknown as BrickReport] : []));
  }

  /** The up bricks' space, as the capacity rules count it. */
  private async brickSpace(): Promise<BrickSpace[]> {
    return (await this.brickReports()).map(spaceOf);
  }

  /** Bricks, their space and the pools (one per zone), for the backend driver's stats(). */
  async capacity(): Promise<Record<string, unknown>> {
    await this.waitLinks([...this.links.keys()], 2000);
    const reports = await this.brickReports();
    const firstZone = new Map<string, string>();
    for (const b of reports)
      for (const [id, s] of Object.entries(b.shares)) if (s.first) firstZone.set(id, b.zone);
    const flat = reports.map(spaceOf);
    const cands = this.candidates(flat);
    const placement = (zone: string) => {
      try {
        return placeReplicas(cands, QUOTED_REPLICAS, zone).bricks.map((c) => c.id);
      } catch {
        return null; // fewer bricks up than a replica set needs
      }
    };
    return { bricks: reports, pools: pools(flat, (id) => firstZone.get(id), placement) };
  }

  /** The bricks a new share may be placed on: linked, up, and reporting their space. */
  private candidates(space: Array<{ id: string }>): BrickCandidate[] {
    return [...this.links.values()].map((l) => ({
      id: l.id ?? l.addr,
      addr: l.addr,
      host: l.hostLabel,
      zone: l.zone,
      // A brick being drained or replaced takes no new share.
      up: l.up && l.id !== undefined && space.some((b) => b.id === l.id) && !this.bricks.leaving(l.id),
    }));
  }

  /** Runs fn after every earlier call of spaceLock has finished. */
  private spaceLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.spaceQueue.then(fn, fn);
    this.spaceQueue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Resizes a share; growth must fit on every replica's brick. */
  private resize(a: Attached, size: number): Promise<void> {
    return this.spaceLock(async () => {
      const growth = size - a.coord.info.size;
      if (growth > 0) {
        const space = await this.brickSpace();
        const refused = refusal(
          space,
          a.coord.info.bricks.map((b) => b.id),
          growth,
        );
        if (refused) throw new ReplicatedError('ENOSPC', `not enough free capacity: ${refused}`);
      }
      await a.coord.setSize(size);
    });
  }

  brickStatus(): Array<Record<string, unknown>> {
    return [...this.links.values()].map((l) => ({
      id: l.id ?? null,
      addr: l.addr,
      host: l.hostLabel,
      zone: l.zone,
      up: l.up,
      last_error: l.up ? null : l.lastError,
      queued_bytes: l.queuedBytes,
      queued_peak_bytes: l.queuedPeak,
    }));
  }

  // ---- protocol ----------------------------------------------------------------------------
  /**
   * Whether the request carries the admin token. With cluster TLS the connection must also hold a
   * certificate of the cluster CA: the token alone, from a client without one, is refused (and
   * never taken for an identity token).
   */
  private isAdmin(h: Record<string, unknown>, sock: net.Socket): boolean {
    const want = this.opts.adminToken;
    const got = Buffer.from(typeof h['token'] === 'string' ? h['token'] : '');
    const exp = Buffer.from(want);
    if (!(got.length === exp.length && timingSafeEqual(got, exp))) return false;
    if (!peerIsClusterMember(sock, this.opts.tls))
      throw new ReplicatedError(
        'EACCES',
        'admin operations need a client certificate of the cluster CA (ABACA_CLUSTER_CERT)',
      );
    return true;
  }

  private checkAdmin(h: Record<string, unknown>, sock: net.Socket): void {
    if (!this.isAdmin(h, sock)) throw new ReplicatedError('EACCES', 'admin operation needs the admin token');
    admitPeer(sock);
  }

  private handle(f: Frame, sock: net.Socket): HandlerResult | Promise<HandlerResult> {
    const h = f.header;
    if (isAdminOp(f.op)) this.checkAdmin(h, sock);
    switch (f.op) {
      case OP.ping:
        return {};
      case OP.mount:
        return this.mount(h, sock).catch((err: unknown) => {
          throw this.clientError(err, typeof h['share'] === 'string' ? h['share'] : undefined);
        });
      case OP.serverState:
        return { header: this.state() };
      case OP.assignShares:
        return this.assign(h).then((header) => ({ header }));
      case OP.setAccess: {
        const access = parseAccess(h['access']);
        const project = h['project'] === undefined ? undefined : checkProject(h['project']);
        return this.serve(h['id'])
          .then((a) => a.coord.setAccess(access, project).then(() => a.coord.info.access ?? []))
          .then((applied) => ({ header: { applied: applied.map((r) => r.id) } }));
      }
      case OP.createShare:
        return this.createShare(h).then((header) => ({ header }));
      case OP.deleteShare:
        return this.deleteShare(String(h['id'])).then(() => ({}));
      case OP.attachShare:
        return this.attach(String(h['id'])).then((info) => ({ header: { info } }));
      case OP.detachShare:
        this.detach(checkName(h['id']));
        return {};
      case OP.setSize:
        return this.serve(h['id'])
          .then((a) => this.resize(a, num(h['size'], -1)))
          .then(() => ({}));
      case OP.usage:
        return this.serve(h['id']).then(({ coord: c }) => ({
          header: { ...c.statfs(), nondirs: c.files, epoch: c.info.epoch },
        }));
      case OP.healInfo:
        return this.serve(h['id']).then(async (a) => ({
          header: {
            bricks: await a.healer.healInfo(),
            lastHeal: a.healer.last,
            snapshots: await a.snapHeal.pending().catch(() => []),
            lastSnapshotHeal: a.snapHeal.last,
          },
        }));
      case OP.healNow:
        return this.serve(h['id']).then((a) => {
          const live = h['full'] === true ? a.healer.fullHeal() : a.healer.healIndex();
          const run = live.then(async (stats) => ({ ...stats, snapshots: await a.snapHeal.run() }));
          // In the background: the caller follows it through heal info (lastHeal).
          if (h['background'] === true) {
            run.catch(() => {});
            return { header: { started: true } };
          }
          return run.then((stats) => ({ header: { ...stats } }));
        });
      case OP.capacity:
        return this.capacity().then((header) => ({ header }));
      case OP.resolveSplitBrain: {
        const policy = String(h['policy']);
        if (!(SPLIT_BRAIN_POLICIES as readonly string[]).includes(policy))
          throw new ReplicatedError('EINVAL', `policy must be one of ${SPLIT_BRAIN_POLICIES.join(', ')}`);
        const path = checkPath(h['path']);
        return this.serve(h['id'])
          .then((a) =>
            a.healer.resolveSplitBrain(path, policy as SplitBrainPolicy, h['source'] as string | undefined),
          )
          .then((source) => ({ header: { source } }));
      }
      case OP.brickStatus:
        return { header: { bricks: this.brickStatus() } };
      case OP.createSnapshot:
        if (h['list'] === true)
          return listSnapshots(this.snapshotHost, String(h['id'])).then((snapshots) => ({
            header: { snapshots },
          }));
        return createSnapshot(this.snapshotHost, String(h['id']), String(h['snapshot']), h['method']).then(
          (header) => {
            // Replicas that did not take part (behind, or down) get it by snapshot heal.
            this.snapshotsChanged(String(h['id']));
            return { header };
          },
        );
      case OP.deleteSnapshot:
        return deleteSnapshot(this.snapshotHost, String(h['id']), String(h['snapshot'])).then(() => {
          this.snapshotsChanged(String(h['id']));
          return {};
        });
      case OP.revertToSnapshot:
        return revertToSnapshot(this.snapshotHost, String(h['id']), String(h['snapshot'])).then((header) => ({
          header,
        }));
      case OP.cloneShare:
        return cloneShare(this.snapshotHost, h).then((header) => ({ header }));
      case OP.registerBrick: {
        const l = this.link(String(h['addr']));
        return l
          .waitUp(this.linkOpts.timeoutMs)
          .then(() => ({ header: { id: l.id, host: l.hostLabel, zone: l.zone } }));
      }
      case OP.brickList:
        return this.bricks.list().then((header) => ({ header }));
      case OP.brickAdd:
        return this.bricks.add(h['addr'] as string).then((header) => ({ header }));
      case OP.brickReplace:
        return this.bricks
          .replace(String(h['brick']), h['addr'] as string, optionalId(h['id']), h['resume'] === true)
          .then((job) => ({ header: { job } }));
      case OP.brickRemove:
        return this.bricks
          .remove(String(h['brick']), optionalId(h['id']))
          .then((job) => ({ header: { job } }));
      case OP.brickForget:
        return this.bricks.forget(String(h['brick'])).then(() => ({}));
      default:
        return this.clientOp(f, sock);
    }
  }

  /** A file operation, with errors of a share that moved away turned into EMOVED. */
  private clientOp(f: Frame, sock: net.Socket): HandlerResult | Promise<HandlerResult> {
    const share = this.mounts.get(sock)?.share;
    try {
      const r = this.fileOp(f, sock);
      return r instanceof Promise
        ? r.catch((err: unknown) => {
            throw this.clientError(err, share);
          })
        : r;
    } catch (err) {
      throw this.clientError(err, share);
    }
  }

  /**
   * Admits a connection to a share: the admin token, or (with an identity service) a token of the
   * share's project, and in both non-admin cases an access rule covering the client's address.
   */
  private async mount(h: Record<string, unknown>, sock: net.Socket): Promise<HandlerResult> {
    this.assignments.admitClient(checkName(h['share']));
    const a = await this.serve(h['share']);
    const info = a.coord.info;
    const admin = this.isAdmin(h, sock);
    let token: string | undefined;
    if (!admin && this.tokens) {
      if (typeof h['token'] !== 'string' || h['token'] === '')
        throw new ReplicatedError('EACCES', `share ${info.id} needs an identity token to mount`);
      token = h['token'];
      this.allowedBy(await this.tokens.check(token), info);
    }
    const level = admin ? 'rw' : accessFor(info.access, sock.remoteAddress);
    if (level === null)
      throw new ReplicatedError('EACCES', `no access rule of share ${info.id} allows ${sock.remoteAddress}`);
    const prev = this.mounts.get(sock);
    if (!prev) sock.once('close', () => this.locks.dropClient(sock));
    // Mounted again on this connection (a renewed token): the ids it reserved stay its own.
    const ids = prev?.share === info.id ? prev.ids : undefined;
    const conn = prev?.conn ?? this.nextConn++;
    this.mounts.set(sock, { share: info.id, admin, token, gen: info.gen ?? 0, level, ids, conn });
    admitPeer(sock);
    return { header: { epoch: info.epoch, access: level } };
  }

  /** A valid token may use a share of its own project, or any share with the admin role. */
  private allowedBy(facts: TokenFacts, info: ShareInfo): void {
    if (facts.isAdmin || (info.project !== undefined && facts.projectId === info.project)) return;
    throw new ReplicatedError('EACCES', `the token is not scoped to the project of share ${info.id}`);
  }

  private fileOp(f: Frame, sock: net.Socket): HandlerResult | Promise<HandlerResult> {
    const h = f.header;
    if (f.op < OP.lookup || f.op > OP.newIds || f.op === OP.ping)
      throw new ReplicatedError('ENOSYS', `unknown opcode ${f.op}`);
    const mount = this.mounts.get(sock);
    if (mount === undefined) throw new ReplicatedError('EINVAL', 'mount a share first');
    const attached = this.attached(mount.share);
    const c = attached.coord;
    if (!mount.admin) {
      // The identity token is asked about again once its answer is older than the recheck time.
      if (mount.token !== undefined && this.tokens) {
        const known = this.tokens.fresh(mount.token);
        if (known === undefined) return this.tokens.check(mount.token).then(() => this.fileOp(f, sock));
        if (known instanceof ReplicatedError) throw known;
        this.allowedBy(known, c.info);
      }
      // Rules changed since this connection was admitted: decide again, for this operation on.
      if (mount.gen !== (c.info.gen ?? 0)) {
        mount.level = accessFor(c.info.access, sock.remoteAddress);
        mount.gen = c.info.gen ?? 0;
      }
    }
    if (mount.level === null)
      throw new ReplicatedError(
        'EACCES',
        `access to share ${mount.share} was revoked for ${sock.remoteAddress}`,
      );
    if (mount.level === 'ro' && MUTATING_CLIENT_OPS.has(f.op))
      throw new ReplicatedError('EROFS', `share ${mount.share} is read-only for ${sock.remoteAddress}`);
    const p = () => checkClientPath(h['path']);
    // Who asks, for changes of directory entries (server/sole-changers.ts).
    const by = mount.conn;
    switch (f.op) {
      case OP.lookup:
        return c
          .getattr(checkClientPath(joinPath(checkPath(h['dir']), checkName(h['name']))))
          .then((attr) => ({ header: { attr } }));
      case OP.getattr: {
        // `grant`: asked by a mount's open, so that the file's first reads go to the bricks too.
        if (h['grant'] !== true || !this.directReads)
          return c.getattr(p()).then((attr) => ({ header: { attr } }));
        const sent: ReadSent = {};
        const path = p();
        return c.getattr(path, sent).then((attr) => {
          const grant =
            attr.type === 'file' && sent.member ? c.readGrant(path, sent.member, attr.id, attr.v) : undefined;
          return { header: grant ? { attr, grant } : { attr } };
        });
      }
      case OP.setattr: {
        const a: Record<string, unknown> = { path: p(), ...fidOf(h), ...once(h) };
        if (h['mode'] !== undefined) a['mode'] = num(h['mode'], 0);
        if (h['size'] !== undefined) a['size'] = num(h['size'], 0);
        if (h['atimeMs'] !== undefined) a['atimeMs'] = timeMs(h['atimeMs'], 0);
        if (h['mtimeMs'] !== undefined) a['mtimeMs'] = timeMs(h['mtimeMs'], 0);
        const onlySize = h['mode'] === undefined && h['atimeMs'] === undefined && h['mtimeMs'] === undefined;
        return c
          .mutate(onlySize && h['size'] !== undefined ? 'truncate' : 'setattr', a)
          .then((header) => ({ header }));
      }
      case OP.read: {
        const len = num(h['len'], 0);
        if (len > (this.opts.maxReadBytes ?? MAX_READ_BYTES))
          throw new ReplicatedError('EINVAL', 'bad read length');
        // `fid`: through an open file, which must still be the one at this path.
        const fid = typeof h['fid'] === 'string' ? h['fid'] : undefined;
        const sent: ReadSent = {};
        return c
          .readFrom(
            p(),
            OP.bRead,
            fid === undefined ? { off: num(h['off'], 0), len } : { off: num(h['off'], 0), len, fid },
            sent,
          )
          .then(
            (r) => {
              const grant =
                this.directReads && sent.member
                  ? c.readGrant(p(), sent.member, r.header['id'], r.header['v'])
                  : undefined;
              return grant ? { header: { grant }, payload: r.parts } : { payload: r.parts };
            },
            (err: unknown) => {
              const e = toReplicatedError(err);
              if (fid !== undefined && e.code === 'ENOENT')
                throw new ReplicatedError(
                  'ESTALE',
                  `${String(h['path'])} is no longer the file that was opened`,
                );
              throw e;
            },
          );
      }
      case OP.write:
        return c
          .mutate(
            'write',
            {
              path: p(),
              off: num(h['off'], 0),
              sync: h['sync'] === true,
              // At the file's end as the share server orders writes (O_APPEND), not at `off`.
              ...(h['append'] === true ? { append: true } : {}),
              ...fidOf(h),
              ...once(h),
            },
            f.parts,
          )
          .then((header) => ({ header }));
      case OP.create: {
        // A reserved id is used once, by this connection only; any other is not taken. A create
        // that surely failed leaves it reserved (the client may try again under it).
        const path = p();
        const want = typeof h['id'] === 'string' && mount.ids?.delete(h['id']) ? h['id'] : undefined;
        const giveBack = (err: unknown) => {
          if (want !== undefined && !outcomeOpen(toReplicatedError(err).code)) mount.ids?.add(want);
          throw err;
        };
        return c
          .mutate(
            'create',
            {
              path,
              ...(want !== undefined ? { want } : {}),
              mode: num(h['mode'], 0o644),
              excl: h['excl'] === true,
              trunc: h['trunc'] === true,
              sync: h['sync'] === true,
              ...once(h),
            },
            f.parts,
            by,
          )
          .then((header) => ({ header }), giveBack);
      }
      case OP.mkdir:
        return c
          .mutate('mkdir', { path: p(), mode: num(h['mode'], 0o755), ...once(h) }, undefined, by)
          .then((header) => ({ header }));
      // Answered, as every change, with what the coordinator says (for these the directories'
      // attributes after it: the kernel asks for them next; and, as for a create or mkdir,
      // whether this connection alone changed them: server/sole-changers.ts).
      case OP.unlink:
        return c.mutate('unlink', { path: p(), ...once(h) }, undefined, by).then((header) => ({ header }));
      case OP.rmdir:
        return c.mutate('rmdir', { path: p(), ...once(h) }, undefined, by).then((header) => ({ header }));
      case OP.rename:
        return c
          .mutate('rename', { path: p(), newPath: checkClientPath(h['newPath']), ...once(h) }, undefined, by)
          .then((header) => ({ header }));
      case OP.link:
        return c
          .mutate('link', { path: p(), newPath: checkClientPath(h['newPath']), ...once(h) }, undefined, by)
          .then((header) => ({ header }));
      case OP.symlink:
        return c
          .mutate('symlink', { path: p(), target: h['target'], ...once(h) }, undefined, by)
          .then((header) => ({ header }));
      case OP.readdir: {
        const count = Math.min(Math.max(1, Number(h['count'] ?? 1000) || 1000), 10_000);
        const after = h['after'] === undefined || h['after'] === '' ? '' : checkName(h['after']);
        return c.readFrom(p(), OP.bReaddir, { after, count }).then((r) => ({ header: r.header }));
      }
      case OP.readlink:
        return c.readFrom(p(), OP.bReadlink, {}).then((r) => ({ header: r.header }));
      case OP.statfs:
        return { header: c.statfs() };
      case OP.fsync:
        return c.mutate('fsync', { path: p() }).then(() => ({}));
      case OP.lock:
      case OP.getlk: {
        const { key, req } = lockRequest(mount.share, h, sock);
        const type = h['type'];
        const graceLeft = attached.graceUntil - Date.now();
        if (h['reclaim'] === true) {
          // A lock the mount held through the share's previous owner, taken again.
          if (f.op !== OP.lock || (type !== 'r' && type !== 'w'))
            throw new ReplicatedError('EINVAL', 'only a lock of type r or w is reclaimed');
          if (graceLeft <= 0)
            throw new ReplicatedError(
              'ENOLCK',
              `the grace period for reclaiming locks of share ${mount.share} is over`,
            );
          if (this.locks.conflict(key, req, type))
            throw new ReplicatedError('ENOLCK', 'a conflicting lock was reclaimed first');
          return this.locks.lock(key, req, type, false).then(() => ({}));
        }
        // During the grace period only reclaims are granted or tested: the rest wait for its end.
        if (graceLeft > 0 && type !== 'u') {
          const wid = typeof h['wid'] === 'string' ? h['wid'] : undefined;
          return this.locks.graceWait(sock, wid, graceLeft).then(() => this.fileOp(f, sock));
        }
        if (f.op === OP.getlk) {
          if (type !== 'r' && type !== 'w') throw new ReplicatedError('EINVAL', 'type must be r or w');
          const held = this.locks.conflict(key, req, type);
          const lock = held
            ? {
                type: held.type,
                start: held.start,
                end: held.end === Infinity ? -1 : held.end,
                pid: held.pid,
              }
            : null;
          return { header: { lock } };
        }
        if (type === 'u') {
          this.locks.unlock(key, req);
          return {};
        }
        if (type !== 'r' && type !== 'w') throw new ReplicatedError('EINVAL', 'type must be r, w or u');
        const wid = typeof h['wid'] === 'string' ? h['wid'] : undefined;
        return this.locks.lock(key, req, type, h['wait'] === true, wid).then(() => ({}));
      }
      case OP.lockCancel:
        this.locks.cancel(sock, String(h['wid']));
        return {};
      case OP.newIds: {
        mount.ids ??= new Set();
        const n = Math.min(num(h['count'], 0), IDS_PER_REQUEST, IDS_HELD - mount.ids.size);
        const ids = Array.from({ length: Math.max(0, n) }, () => randomUUID());
        for (const id of ids) mount.ids.add(id);
        // This server's clock: the times of what the client makes up before sending (deferred
        // creates) come from it, as every stored time does.
        return { header: { ids, now: Date.now() } };
      }
      default:
        throw new ReplicatedError('ENOSYS', `unknown opcode ${f.op}`);
    }
  }
}

/** A brick id sent along with an address (a brick not linked here), if any. */
function optionalId(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * A mutation's request id, and whether the client sends it again: the coordinator applies a request
 * id once (server/share-coordinator.ts, brick/recent-requests.ts).
 */
function once(h: Record<string, unknown>): { rid?: string; resent?: boolean } {
  const rid = h['rid'];
  if (typeof rid !== 'string' || rid === '' || rid.length > 128) return {};
  return h['resent'] === true ? { rid, resent: true } : { rid };
}

/** An open file's id sent with a read, write or setattr through it (the file must still be there). */
function fidOf(h: Record<string, unknown>): { fid?: string } {
  return typeof h['fid'] === 'string' ? { fid: h['fid'] } : {};
}

/** A lock request's table key (share and file id) and its owner and range, from the wire. */
function lockRequest(
  share: string,
  h: Record<string, unknown>,
  sock: net.Socket,
): { key: string; req: LockRequest } {
  const fid = h['fid'];
  if (typeof fid !== 'string' || fid === '') throw new ReplicatedError('EINVAL', 'fid is required');
  const kind: LockKind = h['kind'] === 'flock' ? 'flock' : 'posix';
  const start = num(h['start'], 0);
  const end = h['end'] === -1 || h['end'] === undefined ? Infinity : num(h['end'], 0);
  if (end < start) throw new ReplicatedError('EINVAL', 'lock range ends before it starts');
  return {
    key: `${share}/${fid}`,
    req: { client: sock, owner: String(h['owner'] ?? ''), kind, start, end, pid: num(h['pid'] ?? 0, 0) },
  };
}
