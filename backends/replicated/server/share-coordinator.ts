/**
 * The writer of one share: orders mutations, replicates each to the replica set, decides the outcome
 * by quorum, keeps the pending markers (who missed what), enforces the quota exactly, serves reads
 * from an in-sync replica, and runs heal (heal.ts) through a write barrier.
 */
import { randomUUID } from 'node:crypto';
import { ReplicatedError, toReplicatedError } from '../protocol/errors.ts';
import { holdPayload, type Payload, payloadLength } from '../protocol/frame.ts';
import { healPathsOf, rangeOf } from '../protocol/heal-paths.ts';
import { type MutationKind, OP } from '../protocol/opcodes.ts';
import { ancestorsOf, checkPath, isLinkPath, isUnder, LINKS_ROOT, parentOf } from '../protocol/paths.ts';
import { type DerivedKey, grantKeyFor, type ReadGrant } from '../protocol/read-grants.ts';
import type { Reply } from '../protocol/rpc-client.ts';
import type { Attr, BrickIndex, ShareInfo, StatFs } from '../protocol/types.ts';
import type { BrickLink } from './brick-link.ts';
import { PathIds } from './path-ids.ts';
import { SoleChangers } from './sole-changers.ts';

export interface Member {
  id: string;
  link: BrickLink;
  /** Connected and claimed at the current epoch: receives mutations. */
  ready: boolean;
  /** Session sent with the last claim; every fenced request carries it. */
  session: string;
}

interface Job {
  /** Growth reserved for this mutation until it is accounted. */
  growth: number;
  /** Usage updated from a good reply (at the early acknowledgement or at completion). */
  accounted: boolean;
  kind: MutationKind;
  h: Record<string, unknown>;
  payload: Payload | undefined;
  /** Lets go of the queue's hold on the payload (holdPayload); called once issued or dropped. */
  letGo: () => void;
  resolve: (r: Record<string, unknown>) => void;
  reject: (e: ReplicatedError) => void;
  /** The issue number the mutation was given, and the absence caches' generation then. */
  seq?: number;
  absenceGen?: number;
  /** The client connection that asked for it (see SoleChangers); undefined for the server's own. */
  by?: unknown;
}

/** Failures that leave the outcome of a mutation open: a re-send asks again. */
const UNDECIDED = new Set(['ENOTCONN', 'ETIMEDOUT', 'EIO', 'ESTALE', 'EMOVED', 'EAGAIN', 'ENXIO']);

/** Whether a mutation that failed with `code` may still have been applied. */
export function outcomeOpen(code: string): boolean {
  return UNDECIDED.has(code);
}

/** Request ids answered by this coordinator and kept for re-sends (a client has far fewer in flight). */
/** Dirty paths settled at once after a takeover (settleDirty). */
const SETTLE_PARALLEL = 32;
const RIDS_KEPT = 16_384;

interface MutateReply {
  v: number;
  sizeBefore: number;
  sizeAfter: number;
  freed: number;
  gone?: number;
  /** Attributes for the client's cache: see the brick's MutateResult. */
  attr?: Attr;
  dir?: Attr;
  fromDir?: Attr;
}

/** What a mutation answers its client: the version and size, and a new name's attributes. */
function answer(rep: MutateReply): Record<string, unknown> {
  const out: Record<string, unknown> = { v: rep.v, size: rep.sizeAfter };
  if (rep.attr) out['attr'] = rep.attr;
  if (rep.dir) out['dir'] = rep.dir;
  if (rep.fromDir) out['fromDir'] = rep.fromDir;
  return out;
}

interface Carried {
  path: string;
  bricks: string[];
}

/** The mutation header for one replica: carried blame is written by the others, never against oneself. */
function withCarry(header: Record<string, unknown>, carry: Carried[], self: string): Record<string, unknown> {
  if (carry.length === 0) return header;
  const mine = carry
    .map((c) => ({ path: c.path, bricks: c.bricks.filter((b) => b !== self) }))
    .filter((c) => c.bricks.length > 0);
  return mine.length > 0 ? { ...header, carry: mine } : header;
}

function hasLinkBlame(paths: Set<string>): boolean {
  for (const q of paths) if (isLinkPath(q)) return true;
  return false;
}

function validPath(p: string): boolean {
  try {
    checkPath(p);
    return true;
  } catch {
    return false;
  }
}

const TRANSPORT = new Set(['ENOTCONN', 'ETIMEDOUT']);
/** Mutations that change a file's data or link count (see `issue`). */
const DATA_KINDS = new Set<MutationKind>(['create', 'write', 'truncate', 'setattr', 'link']);
const CACHE_LIMIT = 200_000;
/** Mutations that give a path a name. */
const NAMING = new Set<MutationKind>(['create', 'mkdir', 'symlink', 'link', 'rename']);

/** The owner's own dirty paths when heal began reading markers, and how many mutations were issued. */
export interface OwnDirtyMark {
  seq: number;
  paths: Set<string>;
}

/** Which replica a read went to, and how many mutations had been issued when it was sent. */
export interface ReadSent {
  seq?: number;
  member?: Member;
}

export class ShareCoordinator {
  info: ShareInfo;
  readonly members: Member[];
  fenced = false;
  /** Set by stop(): the share is detached here, and nothing more is issued. */
  private stopped = false;
  /** Bytes of regular-file data acknowledged by the replica set. */
  confirmed = 0;
  /** Growth promised to mutations issued but not yet completed. */
  reserved = 0;
  /** Files and symlinks (inodes, hard links counted once), and directories, of the live tree. */
  files = 0;
  dirs = 0;
  /** In-memory mirror of the pending markers: brick id -> paths it must be healed on. */
  readonly blamed = new Map<string, Set<string>>();
  readonly splitBrain = new Set<string>();
  /** Paths recently touched by clients: heal takes them first. */
  readonly hot = new Set<string>();
  onNeedHeal: (() => void) | undefined;
  /** Runs the share's heal now, when heal may run (recall waits for it); set by the share server. */
  healNow: (() => Promise<unknown>) | undefined;

  private readonly queue: Job[] = [];
  /** Mutations by the client's request id, running or answered (a re-send gets the same answer). */
  private readonly byRid = new Map<string, Promise<Record<string, unknown>>>();
  private pumping = false;
  private paused = 0;
  private inflight = 0;
  private drainWaiters: Array<() => void> = [];
  private readonly pathIds = new PathIds();
  /** Mutations issued so far: orders what a read saw against what was issued after it was sent. */
  private issued = 0;
  /** Paths a mutation may have given a name (create, mkdir, symlink; a link's or rename's target), by issue number. */
  private readonly namedAt = new Map<string, number>();
  /** Paths a getattr found missing: the issue number when it was sent, and the replica that said so. */
  private readonly absent = new Map<string, { seq: number; member: Member }>();
  /**
   * Directories this owner made (a successful mkdir), by the mkdir's issue number: empty then, so
   * a name in one is missing unless a mutation issued since named it (the lookups of `tar x` or
   * `cp -r` into a new directory need no read).
   */
  private readonly madeEmpty = new Map<string, number>();
  /** Directories only one client connection changed since it made them (their mount answers lookups). */
  private readonly sole = new SoleChangers();
  /** Moves each time the absence caches are forgotten (a mkdir issued before says nothing after). */
  private absenceGen = 0;
  private readonly idSize = new Map<string, number>();
  private readonly pathInflight = new Map<string, number>();
  private readonly pathFailed = new Set<string>();
  private readonly cleanable = new Set<string>();
  /** The issue number of the last mutation that marked each path (heal's `ownDirty`). */
  private readonly markedAt = new Map<string, number>();
  /** Paths whose clean was sent to the replicas and is not answered by all yet (how many cleans). */
  private readonly cleaning = new Map<string, number>();
  private cleanTimer: NodeJS.Timeout;
  private readRr = 0;

  constructor(info: ShareInfo, members: Member[]) {
    this.info = info;
    this.members = members;
    for (const m of members) this.blamed.set(m.id, new Set());
    this.cleanTimer = setInterval(() => this.flushClean(), 200);
    this.cleanTimer.unref();
  }

  get majority(): number {
    return Math.floor(this.members.length / 2) + 1;
  }

  stop(): void {
    clearInterval(this.cleanTimer);
    this.stopped = true;
    for (const j of this.queue.splice(0)) {
      j.reject(new ReplicatedError('ESTALE', 'share detached'));
      // The pump may still hold the first of them across an await: `stopped` keeps it from
      // being issued (see issue), so its payload is nobody's any more.
      j.letGo();
    }
  }

  readyMembers(): Member[] {
    return this.members.filter((m) => m.ready && m.link.up);
  }

  /** A member holds a known-good copy of `p` when neither `p` nor an ancestor is pending on it. */
  isGood(m: Member, p: string): boolean {
    const set = this.blamed.get(m.id);
    if (!set || set.size === 0) return true;
    for (const a of ancestorsOf(p)) if (set.has(a)) return false;
    return !set.has(p);
  }

  /** A directory above `p` (not `p` itself) is pending on `m`: its entry for `p` may be stale. */
  blamedAbove(m: Member, p: string): boolean {
    const set = this.blamed.get(m.id);
    if (p === '' || !set || set.size === 0) return false;
    return ancestorsOf(p).some((a) => set.has(a));
  }

  /** Something is known to be missing somewhere (pending markers or failed operations). */
  needsHeal(): boolean {
    if (this.pathFailed.size > 0) return true;
    for (const s of this.blamed.values()) if (s.size > 0) return true;
    return false;
  }

  /**
   * What heal needs, before it reads the replicas' markers, to tell which of them are this
   * owner's own and still on their way to a clean (see `ownDirty`).
   */
  ownDirtyMark(): OwnDirtyMark {
    const paths = new Set<string>([...this.pathInflight.keys(), ...this.cleanable, ...this.cleaning.keys()]);
    return { seq: this.issued, paths };
  }

  /**
   * A dirty marker on `p`, read after `mark` was taken, is only this owner's own: a mutation of
   * it was in flight or waiting for its clean then or is now, or was issued since; and none of
   * its mutations failed. Such markers end in a clean or a blame by themselves.
   */
  ownDirty(p: string, mark: OwnDirtyMark): boolean {
    if (this.pathFailed.has(p)) return false;
    return (
      mark.paths.has(p) ||
      this.pathInflight.has(p) ||
      this.cleanable.has(p) ||
      this.cleaning.has(p) ||
      (this.markedAt.get(p) ?? -1) > mark.seq
    );
  }

  isClean(m: Member): boolean {
    return (this.blamed.get(m.id)?.size ?? 0) === 0;
  }

  inSplitBrain(p: string): boolean {
    if (this.splitBrain.size === 0) return false;
    for (const s of this.splitBrain) if (isUnder(p, s)) return true;
    return false;
  }

  /**
   * Adds the bricks' pending markers to the in-memory mirror. Entries are removed only by heal
   * (`healed`), never here: a blame still on its way to the bricks must not be forgotten.
   */
  loadIndexes(indexes: Map<string, BrickIndex>): void {
    for (const idx of indexes.values())
      for (const e of idx.pending) for (const b of Object.keys(e.blame)) this.blamed.get(b)?.add(e.path);
  }

  /**
   * Settles the paths a replica marks dirty before this owner serves them. A dirty path had an
   * operation in flight that may have reached only some replicas, and the owner that sent it
   * cannot say which any more: it died before recording the misses, or — the case that made this
   * necessary — a newer owner's claim fenced it between a majority's success (acknowledged at
   * once) and the late replica's refusal, so its pending marker was never written. Nothing blamed
   * the replica that missed it, so a read, or the size an append is planned against, could come
   * from that replica and the next append overwrite an acknowledged one. The versions decide: a
   * replica whose copy of the same file is older than the newest is blamed for the path, on the
   * replicas holding the newest and here, and heal copies the newest to it. Call with no mutation
   * in flight (attach, or under the barrier).
   */
  async settleDirty(indexes: Map<string, BrickIndex>): Promise<void> {
    const dirty = new Set<string>();
    for (const idx of indexes.values()) for (const d of idx.dirty) dirty.add(d);
    const ready = this.readyMembers();
    if (dirty.size === 0 || ready.length < 2) return;
    // Many at once (a crash under a burst of creates leaves a marker per name), a bounded number.
    const paths = [...dirty];
    const worker = async (): Promise<void> => {
      for (let p = paths.pop(); p !== undefined; p = paths.pop()) await this.settleOne(p, ready);
    };
    await Promise.all(Array.from({ length: Math.min(SETTLE_PARALLEL, paths.length) }, worker));
  }

  private async settleOne(p: string, ready: Member[]): Promise<void> {
    const attrs = await Promise.all(
      ready.map((m) =>
        this.req(m, OP.bGetattr, { path: p, probe: true }).then(
          (r) => (r.header['attr'] as Attr | undefined) ?? null,
          () => undefined, // not asked: left as it is
        ),
      ),
    );
    const known = attrs.filter((a): a is Attr => a !== undefined && a !== null);
    if (known.length === 0) return;
    const newest = known.reduce((a, b) => (b.v > a.v ? b : a));
    // Only copies of the same file compare by version (another id is for heal to sort out). A
    // replica already blamed for it has its pending marker, with the ranges it missed: kept.
    const older = ready.filter((m, i) => {
      const a = attrs[i];
      return a !== undefined && a !== null && a.id === newest.id && a.v < newest.v && this.isGood(m, p);
    });
    if (older.length === 0) return;
    const holders = ready.filter((_, i) => attrs[i]?.id === newest.id && attrs[i]?.v === newest.v);
    const bricks = older.map((m) => m.id);
    await Promise.allSettled(holders.map((m) => this.req(m, OP.bMark, { paths: [p], bricks })));
    for (const b of bricks) this.blamed.get(b)?.add(p);
    this.pathFailed.add(p);
    this.onNeedHeal?.();
  }

  // ---- requests to bricks ------------------------------------------------------------------
  req(
    m: Member,
    op: number,
    header: Record<string, unknown>,
    payload?: Payload,
    timeoutMs?: number,
  ): Promise<Reply> {
    return m.link.request(
      op,
      { share: this.info.id, epoch: this.info.epoch, session: m.session, ...header },
      payload,
      timeoutMs,
    );
  }

  /**
   * A reply from a ready replica that holds a good copy of `p`: the one with the fewest requests
   * unanswered, rotating among equals. A replica that has fallen behind (slow, or hung until the
   * brick timeout declares it down) is asked last, so that a read the planner needs before the
   * next mutation does not wait for it.
   */
  async readFrom(p: string, op: number, header: Record<string, unknown>, sent?: ReadSent): Promise<Reply> {
    if (this.fenced) throw new ReplicatedError('ESTALE', 'share server was fenced by a newer epoch');
    if (this.inSplitBrain(p)) throw new ReplicatedError('EIO', `${p} is in split-brain`);
    const good: Member[] = [];
    for (const m of this.readyMembers())
      if (this.isGood(m, p) && !(await this.staleInode(m, p))) good.push(m);
    if (good.length === 0)
      throw new ReplicatedError(
        this.readyMembers().length === 0 ? 'ENOTCONN' : 'EIO',
        'no in-sync replica reachable',
      );
    const turn = this.readRr % good.length;
    const order = good
      .map((m, i) => ({ m, load: m.link.outstanding, turn: (i - turn + good.length) % good.length }))
      .sort((x, y) => x.load - y.load || x.turn - y.turn)
      .map((x) => x.m);
    let last: ReplicatedError | undefined;
    for (const m of order) {
      try {
        if (sent) {
          sent.seq = this.issued;
          sent.member = m;
        }
        const r = await this.req(m, op, { path: p, ...header });
        this.readRr++;
        return r;
      } catch (err) {
        const e = toReplicatedError(err);
        if (e.code === 'ESTALE') this.fenced = true;
        if (!TRANSPORT.has(e.code) && e.code !== 'ENXIO') throw e;
        last = e;
      }
    }
    throw last ?? new ReplicatedError('ENOTCONN', 'no replica answered');
  }

  /**
   * A grant for direct reads of the file `p` (id `id`, at version `v`) as `m` just read or stat'ed
   * it (protocol/read-grants.ts): its id and version, and each replica in sync for it (`m` first) with the key that brick
   * derives from its session and the share's record generation. None from a fenced server.
   */
  readGrant(p: string, m: Member, id: unknown, v: unknown): ReadGrant | undefined {
    if (typeof id !== 'string' || typeof v !== 'number' || !m.ready || this.fenced) return undefined;
    const gen = this.info.gen ?? 0;
    const bricks: ReadGrant['bricks'] = [];
    for (const x of [m, ...this.readyMembers().filter((y) => y !== m)]) {
      // As readFrom: a replica with a blame on a file's other name (hard links) may miss a write.
      const set = this.blamed.get(x.id);
      if (!this.isGood(x, p) || (set && hasLinkBlame(set))) continue;
      // A replica that stopped answering (paused, hung) would hold the mount's reads.
      if (x !== m && x.link.lagging) continue;
      const k = grantKeyFor(this.grantKeys.get(x), x.session, this.info.id, gen);
      this.grantKeys.set(x, k);
      bricks.push({ addr: x.link.addr, key: k.key });
    }
    return bricks.length > 0 ? { id, v, bricks } : undefined;
  }

  private readonly grantKeys = new WeakMap<Member, DerivedKey>();

  /**
   * A file with several names may have missed a write made through another of them: its index
   * entry is blamed, not this path. Only asked of a replica with such a blame (rare), by file id.
   */
  private async staleInode(m: Member, p: string): Promise<boolean> {
    const set = this.blamed.get(m.id);
    if (!set || set.size === 0 || !hasLinkBlame(set)) return false;
    try {
      const a = (await this.req(m, OP.bGetattr, { path: p })).header['attr'] as Attr;
      return a.type === 'file' && set.has(`${LINKS_ROOT}/${a.id}`);
    } catch {
      return false; // the read itself will report it
    }
  }

  /** `sent`, when given, learns which replica answered. */
  async getattr(p: string, sent: ReadSent = {}): Promise<Attr> {
    // A name known missing needs no read (the lookup before each create), while a replica answers.
    if (!this.fenced && !this.inSplitBrain(p) && this.knownAbsent(p) && this.readyMembers().length > 0)
      throw new ReplicatedError('ENOENT', `no such file or directory: ${p}`);
    try {
      return (await this.readFrom(p, OP.bGetattr, {}, sent)).header['attr'] as Attr;
    } catch (err) {
      if (sent.member && toReplicatedError(err).code === 'ENOENT') {
        if (this.absent.size > CACHE_LIMIT) this.absent.clear();
        this.absent.set(p, { seq: sent.seq ?? 0, member: sent.member });
      }
      throw err;
    }
  }

  /**
   * `p` is known not to exist as of every mutation issued: a getattr found it missing on a replica
   * that applies mutations in issue order and is still in sync, and nothing issued since could have
   * named it or a directory above it. (The lookup before a create: the create then needs no read.)
   */
  private knownAbsent(p: string): boolean {
    const made = p === '' ? undefined : this.madeEmpty.get(parentOf(p));
    if (made !== undefined) {
      const since = (q: string) => (this.namedAt.get(q) ?? -1) > made;
      if (!since(p) && !ancestorsOf(p).some(since)) return true;
    }
    const a = this.absent.get(p);
    if (!a) return false;
    const named = (q: string) => (this.namedAt.get(q) ?? -1) > a.seq;
    if (named(p) || ancestorsOf(p).some(named) || !a.member.ready || !this.isGood(a.member, p)) {
      this.absent.delete(p);
      return false;
    }
    return true;
  }

  statfs(): StatFs {
    const used = this.confirmed + this.reserved;
    return {
      size: this.info.size,
      used,
      free: Math.max(0, this.info.size - used),
      files: this.files + this.dirs,
    };
  }

  // ---- mutations -----------------------------------------------------------------------------
  /** `by`: the client connection asking (its answers say whether it alone changed the directories). */
  mutate(
    kind: MutationKind,
    h: Record<string, unknown>,
    payload?: Payload,
    by?: unknown,
  ): Promise<Record<string, unknown>> {
    if (this.fenced)
      return Promise.reject(new ReplicatedError('ESTALE', 'share server was fenced by a newer epoch'));
    try {
      checkPath(h['path']);
      if (h['newPath'] !== undefined) checkPath(h['newPath']);
    } catch (err) {
      return Promise.reject(toReplicatedError(err));
    }
    const rid = typeof h['rid'] === 'string' && h['rid'] !== '' ? h['rid'] : undefined;
    const resent = h['resent'] === true;
    delete h['resent'];
    if (rid === undefined) return this.enqueue(kind, h, payload, by);
    // A request id seen here: the same answer, whether the first one is still running or done.
    const known = this.byRid.get(rid);
    if (known) return known;
    // Sent again after a lost connection or a takeover: applied already if a brick says so.
    const p = (resent ? this.recall(kind, h, rid) : Promise.resolve(undefined)).then(
      (prev) => prev ?? this.enqueue(kind, h, payload, by),
    );
    this.byRid.set(rid, p);
    // A failure that says nothing about the operation itself (no quorum, fenced, timed out) is not
    // its answer: a re-send must look again (and may be applied), not get the same failure for as
    // long as the client retries.
    p.catch((err: unknown) => {
      if (UNDECIDED.has(toReplicatedError(err).code) && this.byRid.get(rid) === p) this.byRid.delete(rid);
    });
    if (this.byRid.size > RIDS_KEPT) this.byRid.delete(this.byRid.keys().next().value as string);
    return p;
  }

  private enqueue(
    kind: MutationKind,
    h: Record<string, unknown>,
    payload: Payload | undefined,
    by: unknown,
  ): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const path = h['path'] as string;
      const np = h['newPath'] as string | undefined;
      this.queue.push({
        kind,
        h,
        payload,
        // A request's payload may be pooled memory (protocol/rpc-server.ts readInPlace): held
        // while queued, so that an answer given meanwhile (stop) cannot return it to the pool.
        letGo: holdPayload(payload),
        by,
        resolve: (r) => resolve(by === undefined ? r : { ...r, ...this.sole.flags(kind, path, np, by) }),
        reject: (e) => {
          this.sole.failed(kind, path);
          reject(e);
        },
        growth: 0,
        accounted: false,
      });
      void this.pump();
    });
  }

  /**
   * What the bricks remember of a re-sent mutation (sent before a lost connection or a takeover),
   * asked before it is planned again (`bRecent`):
   * - no brick knows its request id: undefined, and it is planned as a new mutation;
   * - a quorum recorded one outcome: that is its answer, and it is not applied again (a replica
   *   that missed it gets it from heal);
   * - fewer than a quorum recorded it (the first send reached one brick while the others were
   *   away): it is not applied again anywhere. A brick that applied it and restarted since no
   *   longer knows it, and an append planned anew would land at a new offset. A recorded failure
   *   changed nothing and is the answer. A recorded success is the answer only once a quorum holds
   *   the change: the replicas that missed it are blamed for its paths (by the first owner's
   *   markers, or by settleDirty after a takeover) and heal copies the recorder's version to them.
   *   So heal runs here, and the success is answered when a majority of replicas is good for the
   *   change's paths, the recorders good among them from the start. Until then it fails with
   *   ENOTCONN, and the client sends it again.
   */
  private async recall(
    kind: MutationKind,
    h: Record<string, unknown>,
    rid: string,
  ): Promise<Record<string, unknown> | undefined> {
    const asked = this.readyMembers();
    const replies = await Promise.allSettled(asked.map((m) => this.req(m, OP.bRecent, { rid })));
    const recorders: Member[] = [];
    const outcomes = new Map<string, { n: number; header?: MutateReply; m?: string }>();
    replies.forEach((r, i) => {
      if (r.status !== 'fulfilled') return;
      const o = r.value.header['outcome'] as { header?: MutateReply; e?: string; m?: string } | null;
      if (!o || (!o.header && o.e === undefined)) return;
      recorders.push(asked[i]!);
      const key = o.header ? 'ok' : String(o.e);
      const seen = outcomes.get(key) ?? { n: 0, ...(o.header ? { header: o.header } : { m: o.m ?? '' }) };
      seen.n++;
      outcomes.set(key, seen);
    });
    if (outcomes.size === 0) return undefined;
    for (const [key, o] of outcomes) {
      if (o.n < this.majority) continue;
      if (o.header) return answer(o.header);
      throw new ReplicatedError(key as ReplicatedError['code'], o.m ?? '');
    }
    if (outcomes.size > 1)
      throw new ReplicatedError(
        'EIO',
        `replicas recorded different outcomes for request ${rid}; heal decides`,
      );
    const [key, only] = [...outcomes][0]!;
    if (!only.header) throw new ReplicatedError(key as ReplicatedError['code'], only.m ?? '');
    const marks = healPathsOf(
      kind,
      h['path'] as string,
      h['newPath'] as string | undefined,
      h['over'] === true,
    );
    const good = (m: Member): boolean => marks.every((mk) => this.isGood(m, mk));
    if (!recorders.every(good))
      throw new ReplicatedError('ENOTCONN', `request ${rid} reached a replica whose copy is not known good`);
    const holding = (): number => this.readyMembers().filter(good).length;
    if (holding() < this.majority) await this.healNow?.().catch(() => {});
    const n = holding();
    if (n < this.majority)
      throw new ReplicatedError('ENOTCONN', `request ${rid} is on ${n} of ${this.members.length} replicas`);
    return answer(only.header);
  }

  /** Runs `fn` with no mutation in flight and none issued until it returns. */
  async barrier<T>(fn: () => Promise<T>): Promise<T> {
    this.paused++;
    try {
      while (this.pumping || this.inflight > 0) await new Promise<void>((r) => this.drainWaiters.push(r));
      return await fn();
    } finally {
      this.paused--;
      void this.pump();
    }
  }

  private wakeDrain(): void {
    if (this.inflight > 0 || this.pumping) return;
    const ws = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of ws) w();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0 && this.paused === 0 && !this.stopped) {
        const job = this.queue[0]!;
        await this.roomOnEveryReplica();
        try {
          await this.plan(job);
        } catch (err) {
          job.reject(toReplicatedError(err));
        } finally {
          // Issued (each send holds the payload itself) or failed: the queue's hold goes.
          job.letGo();
        }
        // stop() emptied the queue meanwhile: there is nothing of this job's left to take off.
        if (this.stopped) break;
        this.queue.shift();
      }
    } finally {
      this.pumping = false;
      this.wakeDrain();
    }
  }

  /**
   * Holds the next mutation while a replica is more than its link's window behind (brick-link.ts):
   * acknowledged by a majority, a mutation still waits in memory for the slower replicas, so a
   * slow or paused one would otherwise cost this process memory without bound.
   */
  private async roomOnEveryReplica(): Promise<void> {
    for (;;) {
      const full = this.members.find((m) => m.ready && !m.link.hasRoom);
      if (!full) return;
      await full.link.whenRoom();
    }
  }

  /** File id and size of `p` as of all issued mutations (from cache, else from an in-sync replica). */
  private async sizeOf(p: string): Promise<{ id: string; size: number; type: string } | undefined> {
    const id = this.pathIds.get(p);
    if (id !== undefined) {
      const size = this.idSize.get(id);
      if (size !== undefined) return { id, size, type: 'file' };
    }
    if (this.knownAbsent(p)) return undefined;
    let a: Attr;
    try {
      a = await this.getattr(p);
    } catch (err) {
      if (toReplicatedError(err).code === 'ENOENT') return undefined;
      throw err;
    }
    if (a.type === 'file' && a.id) {
      this.remember(p, a.id, a.size);
    }
    return { id: a.id, size: a.size, type: a.type };
  }

  private remember(p: string, id: string, size: number): void {
    if (this.pathIds.size > CACHE_LIMIT) {
      this.pathIds.clear();
      this.idSize.clear();
    }
    this.pathIds.set(p, id);
    this.idSize.set(id, size);
  }

  private async plan(job: Job): Promise<void> {
    if (this.fenced) throw new ReplicatedError('ESTALE', 'share server was fenced by a newer epoch');
    const { kind, h } = job;
    const p = h['path'] as string;
    let growth = 0;
    let sizeKey: string | undefined;
    let newSize: number | undefined;
    const limit = this.info.size;
    if (h['fid'] !== undefined) {
      // Through an open file: it must still be the file at this path (another client may have
      // renamed or removed it since), checked in order with every other mutation.
      const cur = await this.sizeOf(p);
      if (cur?.id !== h['fid'])
        throw new ReplicatedError('ESTALE', `${p} is no longer the file that was opened`);
      delete h['fid'];
    }
    switch (kind) {
      case 'create': {
        const len = payloadLength(job.payload);
        const cur = h['excl'] === true ? undefined : await this.sizeOf(p);
        const exists = cur !== undefined && cur.type === 'file' && cur.id !== '';
        // A new file takes the id the client reserved for it (share-server.ts, newIds), if any.
        const want = h['want'];
        delete h['want'];
        h['id'] = exists ? cur.id : typeof want === 'string' ? want : randomUUID();
        // Over an existing file with data or a truncation: a data change of that file as well.
        if (exists && (h['trunc'] === true || len > 0)) h['over'] = true;
        const before = exists ? cur.size : 0;
        newSize = Math.max(h['trunc'] === true ? 0 : before, len);
        growth = Math.max(0, newSize - before);
        sizeKey = String(h['id']);
        break;
      }
      case 'mkdir':
      case 'symlink':
        h['id'] = randomUUID();
        break;
      case 'write':
      case 'truncate':
      case 'setattr': {
        if (kind === 'write' && h['append'] === true) {
          // O_APPEND from any number of clients: the end as of every mutation issued before this one.
          const end = await this.sizeOf(p);
          if (!end) throw new ReplicatedError('ENOENT', p);
          h['off'] = end.size;
          delete h['append'];
        }
        const target =
          kind === 'write'
            ? Number(h['off']) + payloadLength(job.payload)
            : h['size'] === undefined
              ? undefined
              : Number(h['size']);
        if (target === undefined) break;
        const cur = await this.sizeOf(p);
        if (!cur) throw new ReplicatedError('ENOENT', p);
        if (cur.type !== 'file') break; // the bricks answer EISDIR / EINVAL
        newSize = kind === 'write' ? Math.max(cur.size, target) : target;
        growth = Math.max(0, newSize - cur.size);
        sizeKey = cur.id;
        break;
      }
      default:
        break;
    }
    if (growth > 0 && this.confirmed + this.reserved + growth > limit)
      throw new ReplicatedError('EDQUOT', `share ${this.info.id} is full (${limit} bytes)`);
    this.issue(job, growth, sizeKey, newSize);
  }

  private issue(job: Job, growth: number, sizeKey: string | undefined, newSize: number | undefined): void {
    // Detached while the plan awaited: the job was answered ESTALE and its payload given up.
    if (this.stopped) throw new ReplicatedError('ESTALE', 'share detached');
    const { kind, h } = job;
    const p = h['path'] as string;
    const np = h['newPath'] as string | undefined;
    if (this.inSplitBrain(p) || (np !== undefined && this.inSplitBrain(np)))
      throw new ReplicatedError('EIO', `${p} is in split-brain`);
    const reachable = this.readyMembers();
    // A replica whose directory above the target is pending may hold a different file (or none)
    // under that name: applied there, a data change could land on the wrong inode and look like a
    // success. It is left out and blamed, as if down, until the directory is healed.
    const ready = DATA_KINDS.has(kind)
      ? reachable.filter((m) => !this.blamedAbove(m, p) && (np === undefined || !this.blamedAbove(m, np)))
      : reachable;
    if (ready.length < this.majority)
      throw new ReplicatedError(
        'ENOTCONN',
        `only ${ready.length} of ${this.members.length} replicas reachable and in sync for ${p}`,
      );
    const marks = healPathsOf(kind, p, np, h['over'] === true);
    const checkPaths = kind === 'rename' || kind === 'link' ? [p, np ?? ''] : [p];
    const good = new Set(ready.filter((m) => checkPaths.every((c) => this.isGood(m, c))).map((m) => m.id));
    if (good.size === 0) throw new ReplicatedError('EIO', `no reachable replica holds a good copy of ${p}`);
    const down = this.members.filter((m) => !ready.includes(m)).map((m) => m.id);
    for (const d of down) for (const mk of marks) this.blamed.get(d)?.add(mk);
    const carry = np !== undefined ? this.carriedBlame(ready, p, np) : [];
    for (const c of carry) for (const b of c.bricks) this.blamed.get(b)?.add(c.path);

    this.issued++;
    this.sole.issued(kind, p, np, job.by);
    const named = kind === 'link' || kind === 'rename' ? np : NAMING.has(kind) ? p : undefined;
    if (named !== undefined) {
      if (this.namedAt.size > CACHE_LIMIT) {
        this.namedAt.clear();
        this.forgetAbsence();
      }
      this.namedAt.set(named, this.issued);
    }
    job.seq = this.issued;
    job.absenceGen = this.absenceGen;
    // Optimistic cache update, in issue order (later mutations are planned against it).
    if (sizeKey !== undefined && newSize !== undefined) this.idSize.set(sizeKey, newSize);
    if (kind === 'create' && h['id']) {
      if (!this.pathIds.has(p)) this.files++;
      this.remember(p, String(h['id']), this.idSize.get(String(h['id'])) ?? 0);
    }
    if (kind === 'rename' || kind === 'rmdir' || kind === 'unlink') {
      this.pathIds.forgetUnder(p);
      if (np !== undefined) this.pathIds.forgetUnder(np);
    }
    // Paths clients touch are healed first (their marks: the file, or the parent for entries).
    for (const mk of marks) this.hot.add(mk);
    if (this.hot.size > 10_000) this.hot.clear();
    this.reserved += growth;
    job.growth = growth;
    this.inflight++;
    if (this.markedAt.size > CACHE_LIMIT) this.markedAt.clear();
    for (const mk of marks) {
      this.pathInflight.set(mk, (this.pathInflight.get(mk) ?? 0) + 1);
      this.cleanable.delete(mk);
      this.markedAt.set(mk, this.issued);
    }
    // One clock for the times the operation changes on every replica (the bricks set them).
    const header: Record<string, unknown> = { ...h, k: kind, now: Date.now() };
    if (down.length > 0) header['blame'] = down;
    const sends = ready.map((m) => this.req(m, OP.bMutate, withCarry(header, carry, m.id), job.payload));
    // Acknowledge as soon as a majority (with a good copy) succeeded; the slower replicas are
    // accounted for (and blamed if they fail) when every reply is in. Errors wait for all replies.
    const early = { ok: false };
    const arrived: Array<string | undefined> = new Array(ready.length);
    const okReplies: Array<Reply | undefined> = new Array(ready.length);
    sends.forEach((s, i) => {
      s.then(
        (r) => {
          arrived[i] = 'ok';
          okReplies[i] = r;
          if (!early.ok) this.tryEarly(job, ready, good, arrived, okReplies, early);
        },
        (e) => {
          arrived[i] = toReplicatedError(e).code;
        },
      );
    });
    if (carry.length > 0) this.onNeedHeal?.();
    void Promise.allSettled(sends).then((results) =>
      this.complete(job, ready, good, down, marks, results, early.ok)
        .catch((err) => job.reject(toReplicatedError(err)))
        .finally(() => {
          if (!job.accounted) this.reserved -= growth;
          this.inflight--;
          for (const mk of marks) {
            const n = (this.pathInflight.get(mk) ?? 1) - 1;
            if (n <= 0) {
              this.pathInflight.delete(mk);
              if (!this.pathFailed.has(mk)) this.cleanable.add(mk);
            } else this.pathInflight.set(mk, n);
          }
          this.wakeDrain();
        }),
    );
  }

  /**
   * Pending markers are keyed by path, and a rename or link gives an inode a new name on every
   * replica that applies it. A replica whose copy at or under the old name is not known good
   * (the name, an ancestor or a descendant is blamed on it) would carry stale data to a name no
   * marker points at, and a later heal, seeing no marker, would call it clean. So the blame moves
   * with the inode: the new name, and the new place of every blamed descendant, are blamed on it
   * too, written by the other replicas before they apply the operation (the `carry` argument).
   */
  private carriedBlame(sent: Member[], from: string, to: string): Carried[] {
    const out = new Map<string, string[]>();
    const add = (path: string, brick: string): void => {
      const list = out.get(path) ?? [];
      if (!list.includes(brick)) list.push(brick);
      out.set(path, list);
    };
    if (from === '') return []; // the root is never renamed or linked
    for (const m of sent) {
      const set = this.blamed.get(m.id);
      if (!set || set.size === 0) continue;
      if (!this.isGood(m, from)) add(to, m.id);
      for (const q of set) {
        if (q === from || !isUnder(q, from)) continue;
        const moved = to + q.slice(from.length);
        // A descendant the protocol cannot name any more: heal the moved tree from its top.
        add(validPath(moved) ? moved : to, m.id);
      }
    }
    return [...out].map(([path, bricks]) => ({ path, bricks }));
  }

  private tryEarly(
    job: Job,
    sent: Member[],
    good: Set<string>,
    arrived: Array<string | undefined>,
    okReplies: Array<Reply | undefined>,
    early: { ok: boolean },
  ): void {
    let ok = 0;
    let goodReply: Reply | undefined;
    for (let i = 0; i < sent.length; i++) {
      const o = arrived[i];
      if (o === undefined) continue;
      const isGood = good.has(sent[i]!.id);
      if (o === 'ok') {
        ok++;
        if (isGood) goodReply ??= okReplies[i];
      } else if (o === 'ESTALE' || (isGood && !TRANSPORT.has(o))) return; // disagreement: wait for all
    }
    if (ok < this.majority || !goodReply) return;
    early.ok = true;
    const rep = goodReply.header as unknown as MutateReply;
    this.account(job, rep);
    job.resolve(answer(rep));
  }

  private async complete(
    job: Job,
    sent: Member[],
    good: Set<string>,
    down: string[],
    marks: string[],
    results: PromiseSettledResult<Reply>[],
    ackedEarly: boolean,
  ): Promise<void> {
    const outcome = new Map<string, string>();
    const replies = new Map<string, MutateReply>();
    let stale = false;
    sent.forEach((m, i) => {
      const r = results[i]!;
      if (r.status === 'fulfilled') {
        outcome.set(m.id, 'ok');
        replies.set(m.id, r.value.header as unknown as MutateReply);
      } else {
        const e = toReplicatedError(r.reason);
        if (e.code === 'ESTALE') stale = true;
        outcome.set(m.id, e.code);
      }
    });
    if (stale) {
      this.fenced = true;
      job.reject(new ReplicatedError('ESTALE', 'a brick holds a newer epoch: this share server was fenced'));
      return;
    }
    // The outcome of the good copies is the reference; they must agree.
    const goodOutcomes = new Map<string, number>();
    for (const id of good) {
      const o = outcome.get(id)!;
      if (TRANSPORT.has(o)) continue;
      goodOutcomes.set(o, (goodOutcomes.get(o) ?? 0) + 1);
    }
    if (ackedEarly) {
      // A majority with a good copy succeeded: that is the reference, whoever disagreed later.
      goodOutcomes.clear();
      goodOutcomes.set('ok', 1);
    }
    if (goodOutcomes.size === 0) {
      for (const mk of marks) this.pathFailed.add(mk);
      this.onNeedHeal?.();
      job.reject(new ReplicatedError('ENOTCONN', 'no replica with a good copy answered'));
      return;
    }
    if (goodOutcomes.size > 1) {
      for (const mk of marks) this.pathFailed.add(mk);
      this.onNeedHeal?.();
      job.reject(new ReplicatedError('EIO', `replicas disagree on ${String(job.h['path'])}`));
      return;
    }
    const ref = [...goodOutcomes.keys()][0]!;
    const agree = sent.filter((m) => outcome.get(m.id) === ref);
    const failed = sent.filter((m) => outcome.get(m.id) !== ref).map((m) => m.id);
    if (failed.length > 0) {
      for (const mk of marks) this.pathFailed.add(mk);
      for (const f of failed) for (const mk of marks) this.blamed.get(f)?.add(mk);
      // Record, on the replicas that applied it, that the others missed this operation.
      await Promise.allSettled(
        agree.map((m) =>
          this.req(m, OP.bMark, {
            paths: marks,
            bricks: failed,
            range: rangeOf(job.kind, job.h, payloadLength(job.payload)),
          }).catch(() => {}),
        ),
      );
      this.onNeedHeal?.();
    }
    if (down.length > 0) for (const mk of marks) this.pathFailed.add(mk);
    if (agree.length < this.majority) {
      job.reject(
        new ReplicatedError(
          failed.some((f) => TRANSPORT.has(outcome.get(f) ?? '')) ? 'ENOTCONN' : 'EIO',
          `write quorum not reached (${agree.length} of ${this.members.length})`,
        ),
      );
      return;
    }
    if (ref !== 'ok') {
      this.afterFailure(job);
      job.reject(new ReplicatedError(ref as ReplicatedError['code'], `${job.kind} ${String(job.h['path'])}`));
      return;
    }
    const src = agree.find((m) => good.has(m.id)) ?? agree[0]!;
    const rep = replies.get(src.id)!;
    this.account(job, rep);
    job.resolve(answer(rep));
  }

  /**
   * Moves a successful mutation from "reserved" to "used" (once): at the early acknowledgement,
   * so a client sees its own change in statfs at once, or when every reply is in.
   */
  private account(job: Job, rep: MutateReply): void {
    if (job.accounted) return;
    job.accounted = true;
    this.reserved -= job.growth;
    this.confirmed += rep.sizeAfter - rep.sizeBefore - rep.freed;
    if ((job.kind === 'unlink' || job.kind === 'rename') && rep.gone) this.files--;
    if (job.kind === 'symlink') this.files++;
    if (job.kind === 'mkdir') {
      this.dirs++;
      if (this.madeEmpty.size > CACHE_LIMIT) this.madeEmpty.clear();
      if (job.seq !== undefined && job.absenceGen === this.absenceGen)
        this.madeEmpty.set(String(job.h['path']), job.seq);
    }
    if (job.kind === 'rmdir') this.dirs--;
  }

  /** What is known missing is forgotten: names may have come back other than by a mutation. */
  private forgetAbsence(): void {
    this.absenceGen++;
    this.absent.clear();
    this.madeEmpty.clear();
    this.sole.clear();
  }

  private afterFailure(job: Job): void {
    const p = job.h['path'] as string;
    const id = this.pathIds.get(p);
    this.pathIds.forgetUnder(p);
    if (id) this.idSize.delete(id);
  }

  private flushClean(): void {
    if (this.cleanable.size === 0 || this.fenced) return;
    const ready = this.readyMembers();
    if (ready.length !== this.members.length) return;
    const paths = [...this.cleanable];
    this.cleanable.clear();
    for (const p of paths) this.cleaning.set(p, (this.cleaning.get(p) ?? 0) + 1);
    void Promise.allSettled(ready.map((m) => this.req(m, OP.bClean, { paths }))).then(() => {
      for (const p of paths) {
        const n = (this.cleaning.get(p) ?? 1) - 1;
        if (n <= 0) this.cleaning.delete(p);
        else this.cleaning.set(p, n);
      }
    });
  }

  /** Forgets failure state for a path once heal has made all replicas equal. */
  healed(p: string, bricks: string[]): void {
    this.forgetAbsence(); // heal may have given names back to replicas
    for (const b of bricks) this.blamed.get(b)?.delete(p);
    let any = false;
    for (const s of this.blamed.values()) if (s.has(p)) any = true;
    if (!any) this.pathFailed.delete(p);
  }

  /** Recomputes usage from an in-sync replica (start-up, and after an uncertain outcome). */
  async reconcileUsage(): Promise<void> {
    await this.barrier(async () => {
      const m = this.readyMembers().find((x) => this.isClean(x)) ?? this.readyMembers()[0];
      if (!m) return;
      const u = (await this.req(m, OP.bUsage, {}, undefined, 120_000)).header;
      this.confirmed = Number(u['bytes']);
      this.files = Number(u['files']);
      this.dirs = Number(u['dirs']);
      this.pathIds.clear();
      this.idSize.clear();
      this.forgetAbsence();
    });
  }

  /** Quota change: immediate; a shrink below the space in use is refused (ENOSPC). */
  async setSize(size: number): Promise<void> {
    if (!Number.isSafeInteger(size) || size < 0)
      throw new ReplicatedError('EINVAL', 'size must be a byte count');
    await this.barrier(async () => {
      if (size < this.confirmed) {
        throw new ReplicatedError('ENOSPC', `cannot shrink to ${size} bytes: ${this.confirmed} bytes in use`);
      }
      await this.saveInfo({ size });
    });
  }

  /** Replaces the share's access rules (enforced by the share server on every connection). */
  /** Replaces the access rules (and records the owning project when given). */
  async setAccess(access: NonNullable<ShareInfo['access']>, project?: string): Promise<void> {
    await this.barrier(() => this.saveInfo(project === undefined ? { access } : { access, project }));
  }

  /**
   * Writes a change of the share's record (size, access) to its replicas, with a new generation;
   * a quorum must take it. Replicas that miss it get it when they return (recordFields()).
   */
  async saveInfo(change: Partial<Pick<ShareInfo, 'size' | 'access' | 'project'>>): Promise<void> {
    const gen = (this.info.gen ?? 0) + 1;
    const ready = this.readyMembers();
    const res = await Promise.allSettled(ready.map((m) => this.req(m, OP.bSetShareSize, { ...change, gen })));
    const ok = res.filter((r) => r.status === 'fulfilled').length;
    if (ok < this.majority) throw new ReplicatedError('ENOTCONN', 'the change did not reach a quorum');
    this.info = { ...this.info, ...change, gen };
  }

  /** The record fields a returning replica is brought up to date with. */
  recordFields(): Record<string, unknown> {
    return {
      size: this.info.size,
      gen: this.info.gen ?? 0,
      ...(this.info.access ? { access: this.info.access } : {}),
      ...(this.info.project ? { project: this.info.project } : {}),
      // The replica set changes too (server/bricks-admin.ts): a returning replica learns it.
      bricks: this.info.bricks,
      drain: this.info.drain ?? null,
    };
  }
}
