/**
 * Bricks come and go (GlusterFS's add-brick, replace-brick, remove-brick): add a brick to the
 * share server's links, replace a brick by a new empty one in every replica set that holds it
 * (heal refills it), and drain a brick (each of its replicas is first copied to a brick chosen by
 * placement, and only then dropped from the set).
 *
 * A share's replica set is its record (share.json, ShareInfo.bricks) on each of its bricks. A
 * change of the set is a new record generation written under the coordinator's write barrier (no
 * mutation in flight) at the current epoch on the reachable replicas, a majority of the old set at
 * least; the coordinator's members change in place, so clients keep their connections. A brick
 * that joins a set is claimed empty with a pending marker on the share's root, and heal copies
 * the whole tree to it while clients keep writing (what they change meanwhile reaches it by
 * markers like any missed operation).
 *
 * Long work runs in the background as a job per brick; `brickList` reports jobs and progress.
 *
 * With several share servers under the cluster monitor, only a share's owner may change its set,
 * so the driver starts the same job on every share server: each moves the shares assigned to it
 * and then waits until no share anywhere lists the brick (a share that fails over mid-job is
 * moved by its new owner, which finds the drain target in the record). A job is done on a server
 * only when the brick holds no share of any owner, so any one server's "done" speaks for all.
 */
import { randomUUID } from 'node:crypto';
import { ReplicatedError, toReplicatedError } from '../protocol/errors.ts';
import { OP } from '../protocol/opcodes.ts';
import type { BrickIndex, BrickJob, BrickJobKind, BrickRef, ShareInfo } from '../protocol/types.ts';
import type { BrickLink } from './brick-link.ts';
import { type BrickSpace, refusal } from './capacity.ts';
import type { BrickCandidate } from './placement.ts';
import type { Member, ShareCoordinator } from './share-coordinator.ts';

/** What the brick operations need of the share server. */
export interface BrickAdminHost {
  links(): BrickLink[];
  link(addr: string): BrickLink;
  /** Stops the link to a brick and forgets it. */
  unlink(addr: string): void;
  /**
   * Whether this server acts on the share now: always for a lone share server; under the cluster
   * monitor only when the share is assigned here (its owner does the rest).
   */
  serves(id: string): boolean;
  /** The share attached here (attached now if need be), with its healer. */
  serve(id: string): Promise<{ coord: ShareCoordinator; healIndex(): Promise<unknown> }>;
  /** Claims a member at the share's epoch; one without the share gets an empty copy to refill. */
  reclaim(coord: ShareCoordinator, m: Member): Promise<boolean>;
  healSoon(id: string): void;
  findInfos(id: string): Promise<ShareInfo[]>;
  brickSpace(): Promise<BrickSpace[]>;
  linkTimeoutMs(): number;
  log(msg: string): void;
}

const POLL_MS = 300;
/** How often a job whose own shares are done looks again for shares other servers still move. */
const OTHERS_POLL_MS = 1000;
/** Passes over the shares left on a drained brick before the drain gives up. */
const MAX_DRAIN_PASSES = 5;
/** Polls without progress before the rest of a share's heal runs with its clients paused. */
const STALLED_POLLS = 5;
/**
 * At most this many paths left for the paused heal (a directory clients keep creating names in,
 * and the files created since its last heal); with more, heal goes on beside the clients first.
 */
const PAUSED_HEAL_MAX = 16;

const newer = (a: ShareInfo, b: ShareInfo) =>
  (b.gen ?? 0) > (a.gen ?? 0) || ((b.gen ?? 0) === (a.gen ?? 0) && b.epoch > a.epoch);

/**
 * A brick for one more replica of a set: up, outside the set, with room for the share, on a host
 * (then a zone) the set does not use yet, as placement.ts spreads a new set. Null when none can.
 */
export function placeOneMore(
  candidates: BrickCandidate[],
  set: BrickCandidate[],
  canTake: (c: BrickCandidate) => boolean,
): BrickCandidate | null {
  const inSet = new Set(set.map((c) => c.id));
  const hosts = new Set(set.map((c) => c.host));
  const zones = new Set(set.map((c) => c.zone));
  const pool = candidates
    .filter((c) => c.up && !inSet.has(c.id) && canTake(c))
    .sort((a, b) => a.id.localeCompare(b.id));
  if (pool.length === 0) return null;
  const score = (c: BrickCandidate): number => (hosts.has(c.host) ? 2 : 0) + (zones.has(c.zone) ? 1 : 0);
  return pool.reduce((b, c) => (score(c) < score(b) ? c : b));
}

export class BrickAdmin {
  /** Jobs by the id of the brick they move data off. */
  private readonly jobs = new Map<string, BrickJob>();
  private readonly running = new Map<string, Promise<void>>();
  /** The last change of each share's replica set, queued behind (see reshape). */
  private readonly reshaping = new Map<string, Promise<void>>();

  constructor(private readonly host: BrickAdminHost) {}

  /** Whether brick `id` is being drained or replaced (placement leaves it out). */
  leaving(id: string): boolean {
    return this.jobs.get(id)?.state === 'running';
  }

  // ---- reports ----------------------------------------------------------------------------
  /** Every linked brick with its state and job, plus jobs of bricks no longer linked. */
  async list(): Promise<Record<string, unknown>> {
    const links = this.host.links();
    // How many shares each up brick holds now (its hello's list is as old as its connection).
    const held = await Promise.all(
      links.map((l) =>
        l.up
          ? l.request(OP.bStat, {}).then(
              (r) => Object.keys((r.header['shares'] ?? {}) as Record<string, unknown>).length,
              () => l.shares.length,
            )
          : l.shares.length,
      ),
    );
    const bricks = links.map((l, i) => {
      const job = l.id === undefined ? undefined : this.jobs.get(l.id);
      return {
        id: l.id ?? null,
        addr: l.addr,
        host: l.hostLabel,
        zone: l.zone,
        up: l.up,
        shares: held[i],
        last_error: l.up ? null : l.lastError,
        state: job?.kind === 'remove' && job.state !== 'done' ? 'draining' : 'active',
      };
    });
    return { bricks, jobs: [...this.jobs.values()] };
  }

  // ---- add ----------------------------------------------------------------------------------
  /** Links a brick and waits until it answers; it takes new shares from then on. */
  async add(addr: string): Promise<Record<string, unknown>> {
    const l = this.host.link(checkAddr(addr));
    try {
      await l.waitUp(this.host.linkTimeoutMs());
    } catch {
      this.host.unlink(l.addr);
      throw new ReplicatedError(
        'ENOTCONN',
        `brick ${addr} did not answer within ${this.host.linkTimeoutMs()} ms: ${l.lastError || 'no hello'}`,
      );
    }
    return { id: l.id, addr: l.addr, host: l.hostLabel, zone: l.zone };
  }

  /** Forgets a brick that holds no replica (after a replace or a drain, or one added by mistake). */
  async forget(ref: string): Promise<void> {
    const l = this.resolveLink(ref);
    if (!l) return;
    const job = l.id === undefined ? undefined : this.jobs.get(l.id);
    if (job?.state === 'running')
      throw new ReplicatedError(
        'EBUSY',
        `brick ${ref} is being ${job.kind === 'remove' ? 'drained' : 'replaced'}`,
      );
    if (l.id !== undefined && l.up) {
      const held = await this.sharesOn(l.id);
      if (held.length > 0)
        throw new ReplicatedError(
          'EBUSY',
          `brick ${ref} still holds replicas of ${held.length} share(s) (${held.slice(0, 3).join(', ')}): remove (drain) or replace it first`,
        );
    }
    this.host.unlink(l.addr);
  }

  // ---- replace ------------------------------------------------------------------------------
  /**
   * Puts the brick at `newAddr` (empty, or holding no replicas) in place of brick `ref` in every
   * replica set, then heals. `knownId` names the old brick when it is not linked (a restart).
   */
  async replace(ref: string, newAddr: string, knownId?: string, resume = false): Promise<BrickJob> {
    const old = this.resolveRef(ref, knownId);
    const running = this.jobs.get(old.id);
    if (running?.state === 'running') {
      if (running.kind === 'replace' && running.target?.addr === newAddr) return running;
      throw new ReplicatedError(
        'EBUSY',
        `brick ${ref} is already being ${running.kind === 'remove' ? 'drained' : 'replaced'}`,
      );
    }
    const target = await this.add(newAddr);
    const to: BrickRef = { id: String(target['id']), addr: String(target['addr']) };
    if (to.id === old.id) throw new ReplicatedError('EINVAL', `brick ${newAddr} is brick ${ref} itself`);
    const held = await this.sharesOn(to.id);
    const shares = await this.sharesOn(old.id);
    // A resumed replace (after a restart of this server) finds the new brick in the sets it
    // already joined; otherwise the new brick must hold no replica.
    const resumed = resume || (running?.kind === 'replace' && running.target?.id === to.id);
    if (held.length > 0 && !resumed)
      throw new ReplicatedError(
        'EBUSY',
        `brick ${newAddr} is already in use: it holds replicas of ${held.length} share(s) (${held.slice(0, 3).join(', ')}); replace by an empty brick`,
      );
    const job = this.start('replace', old, shares.length, to);
    this.run(job, async () => {
      // Shares already on the new brick (a resumed job) are healed onto it like the ones moved now.
      const filled = new Set(held);
      await this.untilNoneOn(job, old, async (id) => {
        await this.swapIn(id, old, to);
        filled.add(id);
      });
      await this.untilHealed(job, [...filled], to.id);
      this.dropLink(old);
    });
    return job;
  }

  // ---- remove (drain) ---------------------------------------------------------------------------
  /**
   * Drains brick `ref`: refused unless every share it holds can get a replica elsewhere; then per
   * share a brick chosen by placement joins the set, is healed to a full copy, and `ref` leaves.
   */
  async remove(ref: string, knownId?: string): Promise<BrickJob> {
    const old = this.resolveRef(ref, knownId);
    const running = this.jobs.get(old.id);
    if (running?.state === 'running') {
      if (running.kind === 'remove') return running;
      throw new ReplicatedError('EBUSY', `brick ${ref} is being replaced`);
    }
    const shares = await this.sharesOn(old.id);
    const link = this.host.links().find((l) => l.id === old.id);
    if (shares.length > 0 && !link?.up)
      throw new ReplicatedError(
        'EBUSY',
        `brick ${ref} is down and holds replicas of ${shares.length} share(s): its data cannot be drained; replace it by a new brick instead`,
      );
    // Refuse before anything moves: every share must have somewhere to go.
    const plans = await this.planDrain(old, shares);
    const job = this.start('remove', old, shares.length);
    this.run(job, async () => {
      await this.untilNoneOn(job, old, (id) => this.drainOne(job, id, old, plans.get(id)));
      this.dropLink(old);
    });
    return job;
  }

  /**
   * Runs `act` on each share that still lists brick `old` and is served here, until no share
   * lists it (one placed there just before the job started included). Shares of other share
   * servers are theirs to move: this waits for them, and takes over any that fail over to here.
   */
  private async untilNoneOn(job: BrickJob, old: BrickRef, act: (id: string) => Promise<void>): Promise<void> {
    let passes = 0;
    for (;;) {
      const left = await this.sharesOn(old.id);
      job.shares = Math.max(job.shares, job.moved + left.length);
      if (left.length === 0) break;
      const mine = left.filter((id) => this.host.serves(id));
      if (mine.length === 0) {
        job.current = null;
        await new Promise((r) => setTimeout(r, OTHERS_POLL_MS));
        continue;
      }
      if (++passes > MAX_DRAIN_PASSES)
        throw new ReplicatedError('EBUSY', `shares keep appearing on brick ${old.addr}: ${mine.join(', ')}`);
      for (const id of mine) {
        job.current = id;
        try {
          await act(id);
          job.moved++;
        } catch (err) {
          // Failed over to another share server meanwhile: the new owner moves it.
          if (!this.movedAway(id, err)) throw err;
        }
      }
    }
    job.current = null;
  }

  /** Whether a failure on share `id` only says it is now served by another share server. */
  private movedAway(id: string, err: unknown): boolean {
    const code = toReplicatedError(err).code;
    return !this.host.serves(id) || code === 'EMOVED' || code === 'EAGAIN';
  }

  /** The brick each share would move to; throws EBUSY naming the first share nothing can take. */
  private async planDrain(old: BrickRef, shares: string[]): Promise<Map<string, BrickRef | undefined>> {
    const out = new Map<string, BrickRef | undefined>();
    if (shares.length === 0) return out;
    const space = await this.host.brickSpace();
    const cands = this.candidates(space);
    for (const id of shares) {
      const info = await this.record(id);
      if (!info) continue;
      // Already draining towards a brick (a resumed job): that brick stays the target.
      if (info.drain?.from === old.id) {
        out.set(
          id,
          info.bricks.find((b) => b.id === info.drain?.to),
        );
        continue;
      }
      const set = info.bricks.filter((b) => b.id !== old.id);
      const setCands = set.map(
        (b) =>
          cands.find((c) => c.id === b.id) ?? { id: b.id, addr: b.addr, host: b.id, zone: '', up: false },
      );
      const pick = placeOneMore(
        cands.filter((c) => c.id !== old.id),
        setCands,
        (c) => refusal(space, [c.id], info.size) === null,
      );
      if (!pick)
        throw new ReplicatedError(
          'EBUSY',
          `cannot remove brick ${old.addr}: share ${id} has ${info.bricks.length} replica(s) and no other brick can take the one on ${old.addr} (every up brick with room already holds a replica); removing it would leave the share under its replica count — add a brick first`,
        );
      out.set(id, { id: pick.id, addr: pick.addr });
    }
    return out;
  }

  private async drainOne(
    job: BrickJob,
    id: string,
    old: BrickRef,
    planned: BrickRef | undefined,
  ): Promise<void> {
    let a = await this.host.serve(id);
    if (!a.coord.info.bricks.some((b) => b.id === old.id)) return;
    let to =
      a.coord.info.drain?.from === old.id
        ? a.coord.info.bricks.find((b) => b.id === a.coord.info.drain?.to)
        : undefined;
    if (!to) {
      // Placement again at this moment (space and bricks may have changed since the plan).
      const space = await this.host.brickSpace();
      const cands = this.candidates(space).filter((c) => c.id !== old.id);
      const set = a.coord.info.bricks.filter((b) => b.id !== old.id);
      const setCands = set.map(
        (b) =>
          cands.find((c) => c.id === b.id) ?? { id: b.id, addr: b.addr, host: b.id, zone: '', up: false },
      );
      const pick =
        placeOneMore(cands, setCands, (c) => refusal(space, [c.id], a.coord.info.size) === null) ??
        (planned ? cands.find((c) => c.id === planned.id && c.up) : undefined);
      if (!pick) throw new ReplicatedError('EBUSY', `no brick can take the replica of share ${id} any more`);
      to = { id: pick.id, addr: pick.addr };
      await this.reshape(a.coord, { add: to, drain: { from: old.id, to: to.id } });
      this.host.healSoon(id);
    }
    await this.untilHealed(job, [id], to.id);
    a = await this.host.serve(id);
    await this.reshape(a.coord, { drop: old.id, drain: null });
    await this.deleteCopy(old, id);
  }

  // ---- the replica set changes -----------------------------------------------------------------
  /** Replace `old` by `to` in one share's set (nothing when already done). */
  private async swapIn(id: string, old: BrickRef, to: BrickRef): Promise<void> {
    const a = await this.host.serve(id);
    if (!a.coord.info.bricks.some((b) => b.id === old.id)) return;
    await this.reshape(a.coord, { drop: old.id, add: to, at: old.id });
    this.host.healSoon(id);
    await this.deleteCopy(old, id);
  }

  /**
   * Writes a new replica set under the write barrier and changes the coordinator's members to
   * match: `drop` leaves (blame recorded against it goes, since it will never be healed), `add`
   * joins empty and is refilled by heal (at `at`'s place, or at the end).
   */
  private reshape(
    coord: ShareCoordinator,
    change: { add?: BrickRef; drop?: string; at?: string; drain?: ShareInfo['drain'] | null },
  ): Promise<void> {
    // One change of a share's set at a time (a replace and a drain may both touch it).
    const id = coord.info.id;
    const run = (this.reshaping.get(id) ?? Promise.resolve()).then(() => this.reshapeNow(coord, change));
    const tail = run.catch(() => {});
    this.reshaping.set(id, tail);
    void tail.then(() => {
      if (this.reshaping.get(id) === tail) this.reshaping.delete(id);
    });
    return run;
  }

  private async reshapeNow(
    coord: ShareCoordinator,
    change: { add?: BrickRef; drop?: string; at?: string; drain?: ShareInfo['drain'] | null },
  ): Promise<void> {
    const { add, drop } = change;
    if (add && coord.members.some((m) => m.id === add.id)) return; // already joined (a repeat)
    if (!add && drop !== undefined && !coord.members.some((m) => m.id === drop)) return;
    if (add) {
      // A copy left over on the new brick (an old member of this share) must not pass for a good one.
      await this.host
        .link(add.addr)
        .request(OP.bShareDelete, { share: coord.info.id })
        .catch(() => {});
    }
    await coord.barrier(async () => {
      const info = coord.info;
      let bricks = [...info.bricks];
      if (add) {
        const i = change.at === undefined ? -1 : bricks.findIndex((b) => b.id === change.at);
        if (i >= 0) bricks[i] = add;
        else bricks.push(add);
      }
      if (drop) bricks = bricks.filter((b) => b.id !== drop);
      const gen = (info.gen ?? 0) + 1;
      const drain = change.drain === undefined ? info.drain : (change.drain ?? undefined);
      const writers = coord.readyMembers().filter((m) => m.id !== drop && m.id !== change.at);
      if (add) {
        // The joining brick is blamed for the whole tree before any record names it: a share
        // server that dies after the record and takes the share over finds it to refill, never a
        // good (empty) copy.
        const marked = await Promise.allSettled(
          writers.map((m) => coord.req(m, OP.bMark, { paths: [''], bricks: [add.id] })),
        );
        if (marked.filter((r) => r.status === 'fulfilled').length < coord.majority)
          throw new ReplicatedError(
            'ENOTCONN',
            `share ${info.id}: could not mark the new replica ${add.addr} as empty on a majority of ${coord.members.length}`,
          );
      }
      const res = await Promise.allSettled(
        writers.map((m) => coord.req(m, OP.bSetShareSize, { bricks, gen, drain: drain ?? null })),
      );
      const ok = res.filter((r) => r.status === 'fulfilled').length;
      if (ok < coord.majority && add)
        // The set stays as it was: the marks against the brick that did not join go.
        await Promise.allSettled(
          writers.map((m) => coord.req(m, OP.bClearPending, { path: '', bricks: [add.id] })),
        );
      if (ok < coord.majority)
        throw new ReplicatedError(
          'ENOTCONN',
          `share ${info.id}: the new replica set reached ${ok} replica(s), not a majority of ${coord.members.length}`,
        );
      // Spread the record as it is now: a size or access change may have landed meanwhile.
      coord.info = { ...coord.info, bricks, gen, ...(drain ? { drain } : {}) };
      if (!drain) delete coord.info.drain;
      const gone = drop ?? (add && change.at !== undefined ? change.at : undefined);
      if (gone !== undefined) {
        await this.forgetBlame(coord, gone);
        const i = coord.members.findIndex((m) => m.id === gone);
        const m = coord.members[i];
        if (m) m.ready = false;
        if (add && change.at !== undefined && i >= 0) coord.members.splice(i, 1, this.member(add));
        else if (i >= 0) coord.members.splice(i, 1);
        coord.blamed.delete(gone);
      }
      if (add && !coord.members.some((m) => m.id === add.id)) coord.members.push(this.member(add));
      if (add) {
        coord.blamed.set(add.id, new Set());
        const m = coord.members.find((x) => x.id === add.id)!;
        this.follow(coord, m);
        if (!(await this.host.reclaim(coord, m)))
          this.host.log(
            `share ${info.id}: new replica on ${add.addr} not reachable yet; heal fills it when it is`,
          );
      }
    });
  }

  private member(b: BrickRef): Member {
    return { id: b.id, link: this.host.link(b.addr), ready: false, session: randomUUID() };
  }

  /** A joined member is claimed again when its brick returns, and is not ready while it is down. */
  private follow(coord: ShareCoordinator, m: Member): void {
    const onUp = (): void => {
      if (!coord.members.includes(m) || coord.fenced) {
        m.link.off('up', onUp);
        m.link.off('down', onDown);
        return;
      }
      void this.host.reclaim(coord, m).then((ok) => {
        if (ok) this.host.healSoon(coord.info.id);
      });
    };
    const onDown = (): void => {
      m.ready = false;
    };
    m.link.on('up', onUp);
    m.link.on('down', onDown);
  }

  /** Clears every marker that blames `brick` on the other replicas (it left the set). */
  private async forgetBlame(coord: ShareCoordinator, brick: string): Promise<void> {
    await Promise.all(
      coord
        .readyMembers()
        .filter((m) => m.id !== brick)
        .map(async (m) => {
          const idx = (await coord.req(m, OP.bIndex, {})).header as unknown as BrickIndex;
          for (const e of idx.pending)
            if ((e.blame[brick] ?? 0) > 0)
              await coord.req(m, OP.bClearPending, { path: e.path, bricks: [brick] });
        }),
    );
  }

  /**
   * Waits until `brick` holds a full copy of each share (no marker against it anywhere). Heal runs
   * beside the clients; a directory they keep creating names in changes under every heal of it,
   * so when the count stops falling the rest is healed with clients paused (it is small by then).
   */
  private async untilHealed(job: BrickJob, shares: string[], brick: string): Promise<void> {
    const best = new Map<string, { left: number; stalled: number }>();
    for (;;) {
      let pending = 0;
      for (const id of shares) {
        // A share that failed over is healed, and waited for, by its new owner.
        if (!this.host.serves(id)) continue;
        let a: Awaited<ReturnType<BrickAdminHost['serve']>>;
        try {
          a = await this.host.serve(id);
        } catch (err) {
          if (this.movedAway(id, err)) continue;
          throw err;
        }
        const m = a.coord.members.find((x) => x.id === brick);
        if (!m) continue;
        const left = await this.missing(a.coord, m);
        pending += left;
        if (left === 0) continue;
        const seen = best.get(id) ?? { left, stalled: 0 };
        if (left < seen.left) best.set(id, { left, stalled: 0 });
        else best.set(id, { left: seen.left, stalled: seen.stalled + 1 });
        const stalled = seen.stalled + 1;
        if (
          ((left <= PAUSED_HEAL_MAX && stalled >= STALLED_POLLS) || stalled >= 8 * STALLED_POLLS) &&
          m.ready &&
          m.link.up
        ) {
          job.current = id;
          await a.coord.barrier(() => a.healIndex()).catch(() => {});
          best.delete(id);
        } else void a.healIndex().catch(() => {});
      }
      job.pending = pending;
      if (pending === 0) return;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  /** How many paths `m` still misses (markers against it, or unreachable: at least 1). */
  private async missing(coord: ShareCoordinator, m: Member): Promise<number> {
    if (!m.ready || !m.link.up) return Math.max(1, coord.blamed.get(m.id)?.size ?? 0);
    const paths = new Set(coord.blamed.get(m.id) ?? []);
    await Promise.all(
      coord.readyMembers().map(async (x) => {
        const idx = (await coord.req(x, OP.bIndex, {})).header as unknown as BrickIndex;
        for (const e of idx.pending) if ((e.blame[m.id] ?? 0) > 0) paths.add(e.path);
      }),
    );
    return paths.size;
  }

  /** The share's copy on a brick that left its set: deleted (no tombstone), if it answers. */
  private async deleteCopy(old: BrickRef, id: string): Promise<void> {
    const l = this.host.links().find((x) => x.id === old.id);
    if (l?.up) await l.request(OP.bShareDelete, { share: id }).catch(() => {});
  }

  private dropLink(old: BrickRef): void {
    const l = this.host.links().find((x) => x.id === old.id || x.addr === old.addr);
    if (l) this.host.unlink(l.addr);
  }

  // ---- jobs ------------------------------------------------------------------------------------
  private start(kind: BrickJobKind, brick: BrickRef, shares: number, target?: BrickRef): BrickJob {
    const job: BrickJob = {
      kind,
      brick,
      ...(target ? { target } : {}),
      state: 'running',
      shares,
      moved: 0,
      pending: 0,
      current: null,
      error: null,
      startedAt: new Date().toISOString(),
      finishedAt: null,
    };
    this.jobs.set(brick.id, job);
    return job;
  }

  private run(job: BrickJob, fn: () => Promise<void>): void {
    const p = fn().then(
      () => {
        job.state = 'done';
      },
      (err: unknown) => {
        job.state = 'failed';
        job.error = toReplicatedError(err).message;
        this.host.log(`brick ${job.kind} of ${job.brick.addr} failed: ${job.error}`);
      },
    );
    this.running.set(
      job.brick.id,
      p.finally(() => {
        job.finishedAt = new Date().toISOString();
        this.running.delete(job.brick.id);
      }),
    );
  }

  // ---- lookups -----------------------------------------------------------------------------------
  private resolveLink(ref: string): BrickLink | undefined {
    return this.host.links().find((l) => l.id === ref || l.addr === ref);
  }

  private resolveRef(ref: string, knownId?: string): BrickRef {
    if (typeof ref !== 'string' || ref === '') throw new ReplicatedError('EINVAL', 'brick is required');
    const l = this.resolveLink(ref);
    const id = l?.id ?? knownId;
    if (!id) throw new ReplicatedError('ENOENT', `brick ${ref} is not registered (or was never seen up)`);
    return { id, addr: l?.addr ?? ref };
  }

  /** The newest record of a share among the up bricks. */
  private async record(id: string): Promise<ShareInfo | undefined> {
    const infos = await this.host.findInfos(id);
    return infos.length === 0 ? undefined : infos.reduce((a, b) => (newer(a, b) ? b : a));
  }

  /** Shares whose newest record lists brick `id` in its replica set. */
  async sharesOn(id: string): Promise<string[]> {
    const ids = new Set<string>();
    for (const l of this.host.links()) for (const s of l.shares) ids.add(s);
    const res = await Promise.allSettled(
      this.host
        .links()
        .filter((l) => l.up)
        .map((l) => l.request(OP.bStat, {})),
    );
    for (const r of res)
      if (r.status === 'fulfilled')
        for (const s of Object.keys((r.value.header['shares'] ?? {}) as Record<string, unknown>)) ids.add(s);
    const out: string[] = [];
    for (const s of [...ids].sort()) {
      const info = await this.record(s);
      if (info?.bricks.some((b) => b.id === id)) out.push(s);
    }
    return out;
  }

  private candidates(space: BrickSpace[]): BrickCandidate[] {
    return this.host.links().map((l) => ({
      id: l.id ?? l.addr,
      addr: l.addr,
      host: l.hostLabel,
      zone: l.zone,
      up: l.up && l.id !== undefined && space.some((b) => b.id === l.id) && !this.leaving(l.id),
    }));
  }
}

function checkAddr(addr: unknown): string {
  if (typeof addr !== 'string' || !/^[^\s:]+:\d{1,5}$/.test(addr))
    throw new ReplicatedError('EINVAL', `a brick address is host:port, not ${JSON.stringify(addr)}`);
  return addr;
}
