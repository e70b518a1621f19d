/**
 * Self-heal for one share (AFR's algorithm, simplified by the single writer):
 *  - index heal: every path named by a dirty or pending marker on a reachable replica;
 *  - full heal: a walk comparing every directory on all replicas, which marks differences and
 *    then runs an index heal;
 *  - sources are the replicas no unaccused replica blames; all accused = split-brain (reported,
 *    resolved only by an explicit policy); among sources the highest version wins;
 *  - directories: entry heal (names removed/created on the sink, small files copied inline, larger
 *    ones marked and copied by data heal); files: data heal in segments of blocks, comparing SHA-1
 *    block sums so only changed ranges travel; each step runs under the share's write barrier, so
 *    clients keep working between steps.
 */
import { ReplicatedError, toReplicatedError } from '../protocol/errors.ts';
import { payloadLength } from '../protocol/frame.ts';
import { addRange, type ByteRange } from '../protocol/heal-paths.ts';
import { OP } from '../protocol/opcodes.ts';
import { depthOf, isLinkPath, joinPath } from '../protocol/paths.ts';
import type {
  Attr,
  BrickIndex,
  DirEntry,
  HealInfoBrick,
  HealStats,
  LastHeal,
  SplitBrainPolicy,
} from '../protocol/types.ts';
import type { Member, ShareCoordinator } from './share-coordinator.ts';

export const BLOCK = 1 << 20;
const SEGMENT_BLOCKS = 16;
const INLINE_MAX = 1 << 20;
const DIR_BATCH = 64;

interface Side {
  m: Member;
  attr: Attr | undefined;
  blame: Record<string, number>;
  /** Byte ranges each blamed replica missed (null = unknown). */
  ranges: Record<string, ByteRange[] | null>;
}

/** A heal run's counters before it starts. */
const noStats = (): HealStats => ({
  checked: 0,
  entries: 0,
  files: 0,
  bytes: 0,
  summed: 0,
  splitBrain: 0,
  ms: 0,
});

export class Healer {
  private running: Promise<HealStats> | undefined;
  /** The most recent run, finished or not. */
  last: LastHeal | null = null;
  /** Paths being healed right now (heal info tags them). */
  private readonly current = new Set<string>();
  /** Paths some replica marked dirty (an operation on them may not have reached every replica). */
  private dirty = new Set<string>();
  private again = false;

  constructor(private readonly c: ShareCoordinator) {}

  /** Reports a split-brain: listed in heal info, EIO for clients, resolved only by a policy. */
  private splitBrainFound(p: string, why: string): void {
    if (this.c.splitBrain.has(p)) return;
    this.c.splitBrain.add(p);
    console.error(`abaca-share-server: split-brain in share ${this.c.info.id} at '${p}': ${why}`);
  }

  /** Index heal; concurrent calls share one run (and one more run is queued if asked meanwhile). */
  healIndex(): Promise<HealStats> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.recorded('index', () => this.run()).finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        void this.healIndex().catch(() => {});
      }
    });
    return this.running;
  }

  /** Runs a heal and keeps its outcome as `last`. */
  private async recorded(kind: LastHeal['kind'], fn: () => Promise<HealStats>): Promise<HealStats> {
    const run: LastHeal = {
      kind,
      startedAt: new Date().toISOString(),
      finishedAt: null,
      stats: null,
      error: null,
    };
    this.last = run;
    try {
      run.stats = await fn();
      return run.stats;
    } catch (err) {
      run.error = (err as Error).message;
      throw err;
    } finally {
      run.finishedAt = new Date().toISOString();
      // A full heal ends with an index heal of its own: the outer run is the one to report.
      this.last = run;
    }
  }

  async indexes(): Promise<Map<string, BrickIndex>> {
    const out = new Map<string, BrickIndex>();
    await Promise.all(
      this.c.readyMembers().map(async (m) => {
        try {
          out.set(m.id, (await this.c.req(m, OP.bIndex, {})).header as unknown as BrickIndex);
        } catch {
          // unreachable now: its markers wait for the next run
        }
      }),
    );
    return out;
  }

  private async run(): Promise<HealStats> {
    const t0 = Date.now();
    const stats = noStats();
    for (let round = 0; round < 50; round++) {
      if (this.c.fenced) break;
      const own = this.c.ownDirtyMark();
      const idx = await this.indexes();
      this.c.loadIndexes(idx);
      if (this.c.readyMembers().length < 2 && this.c.members.length > 1) break;
      const paths = new Set<string>();
      this.dirty = new Set();
      for (const i of idx.values()) {
        for (const d of i.dirty) this.dirty.add(d);
        for (const e of i.pending) paths.add(e.path);
      }
      // Misses known only in memory (an operation no replica applied) are checked as well.
      for (const set of this.c.blamed.values()) for (const q of set) paths.add(q);
      // A path dirty only through this owner's own mutations (in flight, or answered by every
      // replica and awaiting their clean) ends in a clean or a blame by itself: checking it now
      // would only hold the share's clients at the barrier until every replica has answered.
      for (const d of this.dirty) if (!this.c.ownDirty(d, own)) paths.add(d);
      for (const s of this.c.splitBrain) paths.delete(s);
      if (paths.size === 0) break;
      // Paths clients are touching first, then shallow before deep (parents before children; a
      // child whose parent is not healed yet fails this round and is retried in the next).
      const order = [...paths].sort(
        (a, b) => Number(this.c.hot.has(b)) - Number(this.c.hot.has(a)) || depthOf(a) - depthOf(b),
      );
      let progress = false;
      for (const p of order) {
        if (this.c.fenced) break;
        this.current.add(p);
        try {
          if (await this.healPath(p, stats)) progress = true;
        } catch (err) {
          const e = toReplicatedError(err);
          if (e.code === 'ESTALE') this.c.fenced = true;
        } finally {
          this.current.delete(p);
        }
      }
      if (!progress) break;
    }
    stats.splitBrain = this.c.splitBrain.size;
    stats.ms = Date.now() - t0;
    return stats;
  }

  private async sides(p: string): Promise<Side[]> {
    const ready = this.c.readyMembers();
    return Promise.all(
      ready.map(async (m): Promise<Side> => {
        const r = (await this.c.req(m, OP.bGetattr, { path: p, probe: true })).header;
        return {
          m,
          attr: r['attr'] as Attr | undefined,
          blame: (r['blame'] ?? {}) as Record<string, number>,
          ranges: (r['ranges'] ?? {}) as Record<string, ByteRange[] | null>,
        };
      }),
    );
  }

  /** Heals one path (and clears its markers where that is safe); true when something was repaired. */
  async healPath(p: string, stats: HealStats): Promise<boolean> {
    stats.checked++;
    const decision = await this.c.barrier(async () => {
      const sides = await this.sides(p);
      if (sides.length < 2 && this.c.members.length > 1) return undefined;
      const accused = new Set<string>();
      for (const a of sides) {
        if ((a.blame[a.m.id] ?? 0) > 0) continue; // a self-accused replica may not accuse others
        for (const [b, n] of Object.entries(a.blame)) if (n > 0 && b !== a.m.id) accused.add(b);
      }
      const unaccused = sides.filter((s) => !accused.has(s.m.id));
      if (unaccused.length === 0) {
        this.splitBrainFound(p, 'every replica is blamed by another');
        return undefined;
      }
      // A replica blamed for a directory above `p` may hold a stale entry here (an old file under
      // a name since re-created, a name since moved away): the entry heal above decides it first.
      const candidates = unaccused.filter((s) => !this.c.blamedAbove(s.m, p));
      if (candidates.length === 0) return undefined;
      const existing = candidates.filter((s) => s.attr);
      // Different files under one name among trusted copies: versions of different files say
      // nothing about which is right, and no marker does either.
      if (new Set(existing.map((s) => `${s.attr!.type}|${s.attr!.id}`)).size > 1) {
        this.splitBrainFound(
          p,
          `different files under one name: ${existing.map((s) => `${s.m.id}=${s.attr!.id}@${s.attr!.v}`).join(' ')}`,
        );
        return undefined;
      }
      let source: Side = candidates[0]!;
      if (existing.length > 0) {
        source = existing.reduce((best, s) => (s.attr!.v > best.attr!.v ? s : best));
        const rival = existing.find(
          (s) => s !== source && s.attr!.v === source.attr!.v && !sameAttr(s.attr!, source.attr!),
        );
        if (rival) {
          this.splitBrainFound(p, `equal versions, different copies (v ${source.attr!.v})`);
          return undefined;
        }
      }
      // A file's inode by its index entry is healed where the entry exists; a replica without one
      // has its names created and joined by the entry heals of their directories.
      const sinks = sides.filter(
        (s) =>
          s !== source &&
          (accused.has(s.m.id) || !sameAttr(s.attr, source.attr)) &&
          (!isLinkPath(p) || (s.attr !== undefined && source.attr !== undefined)),
      );
      return { source, sinks, all: sides, candidates };
    });
    if (!decision) return false;
    const { source, sinks, all, candidates } = decision;
    if (sinks.length > 0) stats.entries++;
    /** Sinks whose directory still holds an entry that had to wait: they stay blamed for `p`. */
    const unfinished = new Set<string>();
    for (const sink of sinks) {
      if (!source.attr) {
        // Gone on the source: the entry heal of its parent removes it; nothing to copy here.
        if (sink.attr && p !== '')
          await this.c.barrier(() => this.c.req(sink.m, OP.bRemoveTree, { path: p }).then(() => undefined));
        continue;
      }
      if (source.attr.type === 'dir') {
        if (!(await this.healDir(p, source.m, sink.m, stats))) unfinished.add(sink.m.id);
      } else await this.healFile(p, source.m, sink.m, stats, missedRanges(candidates, sink.m.id));
    }
    await this.c.barrier(async () => {
      // Clear blame only against the replicas that took part in the decision (and so were healed
      // or found equal), and only where no replica recorded a new miss meanwhile (clients keep
      // writing between heal steps). One that came back meanwhile still misses what it missed.
      const now = await this.sides(p);
      const before = (m: string, b: string): number => all.find((a) => a.m.id === m)?.blame[b] ?? 0;
      const ids = all
        .map((s) => s.m.id)
        .filter((b) => !unfinished.has(b) && now.every((n) => (n.blame[b] ?? 0) === before(n.m.id, b)));
      await Promise.all(
        all.map((s) =>
          Promise.all([
            this.c.req(s.m, OP.bClearPending, { path: p, bricks: ids }),
            this.c.req(s.m, OP.bClean, { paths: [p] }),
          ]),
        ),
      );
      this.c.healed(p, ids);
    });
    // Progress means something was repaired; a path whose only sink is down waits for it, and one
    // whose entries wait for their own heal (or a split-brain decision) is tried again later.
    return sinks.some((s) => !unfinished.has(s.m.id));
  }

  private async listAll(m: Member, p: string): Promise<Map<string, DirEntry>> {
    const out = new Map<string, DirEntry>();
    let after = '';
    for (;;) {
      const r = (await this.c.req(m, OP.bReaddir, { path: p, after, count: 1000 })).header;
      const entries = r['entries'] as DirEntry[];
      for (const e of entries) out.set(e.name, e);
      if (r['done'] === true || entries.length === 0) break;
      after = entries[entries.length - 1]!.name;
    }
    return out;
  }

  /**
   * Entry heal: make the sink's directory hold the source's names, then its metadata. Clients keep
   * working between batches, so names can appear, move or change after the first listing: a last
   * comparison of both whole listings, with clients paused, brings over every difference left, and
   * only then does the sink get the directory's version. False when an entry had to wait (its
   * own heal or a split-brain decides it), so the sink stays blamed for the directory.
   */
  async healDir(p: string, src: Member, sink: Member, stats: HealStats): Promise<boolean> {
    const first = await this.c.barrier(async () => {
      const a = (await this.c.req(src, OP.bGetattr, { path: p })).header['attr'] as Attr;
      await this.c.req(sink, OP.bHealPut, { path: p, type: 'dir', id: a.id, mode: a.mode });
      return [await this.listAll(src, p), await this.listAll(sink, p)] as const;
    });
    const names = [...new Set([...first[0].keys(), ...first[1].keys()])].sort();
    for (let i = 0; i < names.length; i += DIR_BATCH) {
      const batch = names.slice(i, i + DIR_BATCH);
      await this.c.barrier(() => this.healChildren(p, batch, src, sink, stats));
    }
    return this.c.barrier(async () => {
      const [a, b] = [await this.listAll(src, p), await this.listAll(sink, p)];
      const differ = [...new Set([...a.keys(), ...b.keys()])]
        .filter((n) => !sameAttr(a.get(n), b.get(n)))
        .sort();
      let complete = true;
      for (let i = 0; i < differ.length; i += DIR_BATCH)
        if (!(await this.healChildren(p, differ.slice(i, i + DIR_BATCH), src, sink, stats))) complete = false;
      const d = (await this.c.req(src, OP.bGetattr, { path: p })).header['attr'] as Attr;
      await this.c.req(sink, OP.bHealPut, {
        path: p,
        type: 'dir',
        id: d.id,
        mode: d.mode,
        mtimeMs: d.mtimeMs,
        atimeMs: d.atimeMs,
        v: d.v,
      });
      return complete;
    });
  }

  private async healChildren(
    p: string,
    names: string[],
    src: Member,
    sink: Member,
    stats: HealStats,
  ): Promise<boolean> {
    const done = await Promise.all(names.map((n) => this.healChild(joinPath(p, n), src, sink, stats)));
    return done.every(Boolean);
  }

  private async attrOr(m: Member, p: string): Promise<Attr | undefined> {
    try {
      return (await this.c.req(m, OP.bGetattr, { path: p })).header['attr'] as Attr;
    } catch (err) {
      const e = toReplicatedError(err);
      if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return undefined;
      throw e;
    }
  }

  /** Brings one entry of a directory on the sink to the source's; false when it has to wait. */
  private async healChild(cp: string, src: Member, sink: Member, stats: HealStats): Promise<boolean> {
    const [probe, k] = await Promise.all([
      this.c.req(src, OP.bGetattr, { path: cp, probe: true }),
      this.attrOr(sink, cp),
    ]);
    const s = probe.header['attr'] as Attr | undefined;
    const alreadyBlamed = ((probe.header['blame'] ?? {}) as Record<string, number>)[sink.id] ?? 0;
    if (!s) {
      if (k) await this.c.req(sink, OP.bRemoveTree, { path: cp });
      return true;
    }
    if (k && sameAttr(k, s)) return true;
    if (!this.decides(src, sink, cp, s, k)) return false;
    const base = {
      path: cp,
      type: s.type,
      id: s.id,
      mode: s.mode,
      mtimeMs: s.mtimeMs,
      atimeMs: s.atimeMs,
      linked: s.type === 'file' && s.nlink > 1,
    };
    if (s.type === 'symlink') {
      const target = String((await this.c.req(src, OP.bReadlink, { path: cp })).header['target']);
      await this.c.req(sink, OP.bHealPut, { ...base, target, v: s.v });
      stats.files++;
    } else if (
      s.type === 'file' &&
      s.size <= INLINE_MAX &&
      (k?.type !== 'file' || k.id !== s.id || s.size < 65536)
    ) {
      const data =
        s.size > 0 ? (await this.c.req(src, OP.bRead, { path: cp, off: 0, len: s.size })).parts : undefined;
      await this.c.req(sink, OP.bHealPut, { ...base, off: 0, size: s.size, v: s.v }, data);
      stats.files++;
      stats.bytes += s.size;
    } else {
      // A directory, or a file worth a ranged data heal: create the entry, mark it, heal it later
      // (a file the source already blames the sink for keeps its marker and recorded ranges).
      const fresh = !k || k.type !== s.type || k.id !== s.id;
      if (fresh) await this.c.req(sink, OP.bHealPut, base);
      if (fresh || alreadyBlamed === 0) await this.c.req(src, OP.bMark, { paths: [cp], bricks: [sink.id] });
      this.c.blamed.get(sink.id)?.add(cp);
    }
    return true;
  }

  /**
   * The directory's source decides one of its entries only when its own copy of that entry can be
   * trusted: not blamed there (the entry's own marker heals it, from a source chosen for it), not
   * dirty (an operation on it may not have reached every replica), and not older than, or as old
   * as but different from, the sink's copy of the same file — unless the sink is blamed for that
   * entry itself. Otherwise nothing recorded why the sink's copy would be that new, so nothing may
   * pick a winner: that entry is in split-brain.
   */
  private decides(src: Member, sink: Member, cp: string, s: Attr, k: Attr | undefined): boolean {
    if (this.c.blamed.get(src.id)?.has(cp) || this.dirty.has(cp)) return false;
    if (k && k.id === s.id && k.v >= s.v && !this.c.blamed.get(sink.id)?.has(cp)) {
      this.splitBrainFound(
        cp,
        `the entry's copy on ${sink.id} (v ${k.v}) is not older than the source's (v ${s.v}) and nothing blames it`,
      );
      return false;
    }
    return true;
  }

  /**
   * Data heal. With the byte ranges the sink missed (recorded by the sources since it went away),
   * only the blocks covering them travel; otherwise blocks are compared by checksum.
   */
  async healFile(
    p: string,
    src: Member,
    sink: Member,
    stats: HealStats,
    ranges?: ByteRange[] | null,
  ): Promise<void> {
    let block = 0;
    let pendingBlocks: number[] | undefined;
    for (;;) {
      const done = await this.c.barrier(async () => {
        const s = (await this.c.req(src, OP.bGetattr, { path: p })).header['attr'] as Attr;
        if (s.type !== 'file') {
          const base = { path: p, type: s.type, id: s.id, mode: s.mode, mtimeMs: s.mtimeMs, v: s.v };
          const target =
            s.type === 'symlink'
              ? (await this.c.req(src, OP.bReadlink, { path: p })).header['target']
              : undefined;
          await this.c.req(sink, OP.bHealPut, { ...base, target });
          return true;
        }
        let k = await this.attrOr(sink, p);
        const linked = s.nlink > 1;
        if (k?.type !== 'file' || k.id !== s.id || (linked && block === 0 && !pendingBlocks)) {
          // A file with several names may join another inode on the sink: look again after.
          await this.c.req(sink, OP.bHealPut, { path: p, type: 'file', id: s.id, linked });
          k = await this.attrOr(sink, p);
        }
        const sinkSize = k && k.type === 'file' && k.id === s.id ? k.size : 0;
        const nblocks = Math.ceil(s.size / BLOCK);
        // Recorded ranges describe what this name's inode missed; a joined inode may miss more.
        if (ranges && sinkSize > 0 && !linked) {
          // Only the blocks the sink is known to have missed, a segment per barrier.
          pendingBlocks ??= blocksOf(ranges, nblocks);
          await this.copyBlocks(p, src, sink, s.id, pendingBlocks.splice(0, SEGMENT_BLOCKS), stats);
          if (pendingBlocks.length > 0) return false;
          block = nblocks;
        } else {
          const to = Math.min(nblocks, block + SEGMENT_BLOCKS);
          if (block < to) {
            let differ = range(block, to);
            if (sinkSize > 0) {
              const sums = { path: p, blockSize: BLOCK, from: block, to };
              const [a, b] = await Promise.all([
                this.c.req(src, OP.bBlockSums, sums, undefined, 60_000),
                this.c.req(sink, OP.bBlockSums, sums, undefined, 60_000),
              ]);
              const sa = a.header['sums'] as string[];
              const sb = b.header['sums'] as string[];
              stats.summed += sa.length;
              differ = differ.filter((i) => sa[i - block] !== sb[i - block]);
            }
            await this.copyBlocks(p, src, sink, s.id, differ, stats);
            block = to;
          }
        }
        if (block >= nblocks) {
          await this.c.req(sink, OP.bHealPut, {
            path: p,
            type: 'file',
            id: s.id,
            size: s.size,
            mode: s.mode,
            mtimeMs: s.mtimeMs,
            atimeMs: s.atimeMs,
            v: s.v,
          });
          return true;
        }
        return false;
      });
      if (done) break;
    }
    stats.files++;
  }

  private async copyBlocks(
    p: string,
    src: Member,
    sink: Member,
    id: string,
    blocks: number[],
    stats: HealStats,
  ): Promise<void> {
    await Promise.all(
      blocks.map(async (i) => {
        const data = (await this.c.req(src, OP.bRead, { path: p, off: i * BLOCK, len: BLOCK })).parts;
        await this.c.req(sink, OP.bHealPut, { path: p, type: 'file', id, off: i * BLOCK }, data);
        stats.bytes += payloadLength(data);
      }),
    );
  }

  /**
   * Full heal: walk every directory on all reachable replicas; for each name, the attributes a
   * majority of them hold win, and the others are marked (the parent for a missing or different
   * entry, the entry itself for a differing version/size/mode). No majority = split-brain.
   * Then an index heal repairs what was marked.
   */
  fullHeal(): Promise<HealStats> {
    return this.recorded('full', () => this.walkAndHeal());
  }

  private async walkAndHeal(): Promise<HealStats> {
    const ready = this.c.readyMembers();
    if (ready.length < 2) throw new ReplicatedError('ENOTCONN', 'a full heal needs two reachable replicas');
    const need = Math.floor(ready.length / 2) + 1;
    const mark = async (on: Member, p: string, bricks: string[]): Promise<void> => {
      await this.c.req(on, OP.bMark, { paths: [p], bricks });
      for (const b of bricks) this.c.blamed.get(b)?.add(p);
    };
    const walk = async (dir: string): Promise<void> => {
      const lists = await this.c.barrier(() =>
        Promise.all(ready.map((m) => this.listAll(m, dir).catch(() => undefined))),
      );
      const names = new Set<string>();
      for (const l of lists) if (l) for (const n of l.keys()) names.add(n);
      const subdirs: string[] = [];
      for (const n of [...names].sort()) {
        const keys = lists.map((l) => {
          const e = l?.get(n);
          return e ? `${e.type}|${e.id}|${e.v}|${e.type === 'dir' ? 0 : e.size}|${e.mode}` : 'none';
        });
        const counts = new Map<string, number>();
        for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1);
        const [winner, votes] = [...counts.entries()].reduce((a, b) => (b[1] > a[1] ? b : a));
        const child = joinPath(dir, n);
        if (votes < need) {
          this.splitBrainFound(child, 'no majority among the replicas in a full heal');
          continue;
        }
        const holder = ready[keys.indexOf(winner)]!;
        const wType = winner.split('|')[0];
        const wId = winner.split('|')[1];
        const entryWrong: string[] = [];
        const dataWrong: string[] = [];
        keys.forEach((k, i) => {
          if (k === winner) return;
          const [t, id] = k.split('|');
          if (k === 'none' || winner === 'none' || t !== wType || id !== wId) entryWrong.push(ready[i]!.id);
          else dataWrong.push(ready[i]!.id);
        });
        if (entryWrong.length > 0) await mark(holder, dir, entryWrong);
        if (dataWrong.length > 0) await mark(holder, child, dataWrong);
        if (wType === 'dir') subdirs.push(child);
      }
      for (const d of subdirs) await walk(d);
    };
    await walk('');
    return this.healIndex();
  }

  /** Resolves a split-brain on `p` by an explicit policy, then clears every marker on it. */
  async resolveSplitBrain(p: string, policy: SplitBrainPolicy, sourceBrick?: string): Promise<string> {
    const stats = noStats();
    const sides = await this.c.barrier(() => this.sides(p));
    const present = sides.filter((s) => s.attr);
    const shown = p === '' ? 'the share root' : p;
    if (present.length === 0) throw new ReplicatedError('ENOENT', `${shown} does not exist on any replica`);
    const first = present[0]!.attr!;
    const agree =
      present.length === sides.length &&
      present.every((s) => s.attr!.type === first.type && s.attr!.id === first.id && s.attr!.v === first.v);
    if (agree && !this.c.splitBrain.has(p))
      throw new ReplicatedError(
        'EINVAL',
        `${shown} is not in split-brain: every replica holds the same version`,
      );
    let source: Side | undefined;
    if (policy === 'source-brick') {
      source = present.find((s) => s.m.id === sourceBrick || s.m.link.addr === sourceBrick);
      if (!source)
        throw new ReplicatedError('EINVAL', `source brick ${String(sourceBrick)} has no copy of ${p}`);
    } else if (policy === 'latest-mtime') {
      source = present.reduce((b, s) => (s.attr!.mtimeMs > b.attr!.mtimeMs ? s : b));
    } else if (policy === 'bigger-file') {
      source = present.reduce((b, s) => (s.attr!.size > b.attr!.size ? s : b));
    } else throw new ReplicatedError('EINVAL', `unknown policy ${String(policy)}`);
    const srcAttr = source.attr!;
    for (const s of sides) {
      if (s === source) continue;
      if (srcAttr.type === 'dir') await this.healDir(p, source.m, s.m, stats);
      else await this.healFile(p, source.m, s.m, stats);
    }
    // The winner's version must dominate: bump it above every copy's.
    const top = Math.max(...present.map((s) => s.attr!.v)) + 1;
    await this.c.barrier(async () => {
      const ids = sides.map((s) => s.m.id);
      await Promise.all(
        sides.map(async (s) => {
          await this.c.req(s.m, OP.bHealPut, { path: p, type: srcAttr.type, id: srcAttr.id, v: top });
          await this.c.req(s.m, OP.bClearPending, { path: p, bricks: ids });
          await this.c.req(s.m, OP.bClean, { paths: [p] });
        }),
      );
      this.c.splitBrain.delete(p);
      this.c.healed(p, ids);
    });
    // The winner's size may differ from what the quota counted.
    await this.c.reconcileUsage();
    return source.m.id;
  }

  async healInfo(): Promise<HealInfoBrick[]> {
    const idx = await this.indexes();
    return this.c.members.map((m) => {
      const i = idx.get(m.id);
      const entries: HealInfoBrick['entries'] = [];
      if (i) {
        const seen = new Set<string>();
        for (const e of i.pending) {
          if (Object.values(e.blame).some((n) => n > 0)) seen.add(e.path);
        }
        for (const d of i.dirty) seen.add(d);
        for (const s of this.c.splitBrain) seen.add(s);
        for (const path of [...seen].sort())
          entries.push({ path, splitBrain: this.c.splitBrain.has(path), healing: this.current.has(path) });
      }
      // The reply stays well under a frame header's limit however much waits: split-brains
      // first, then the others by path, up to HEAL_INFO_ENTRIES or HEAL_INFO_BYTES of paths per
      // brick; `count` is all of them.
      const listed: typeof entries = [];
      let bytes = 0;
      for (const e of [...entries.filter((x) => x.splitBrain), ...entries.filter((x) => !x.splitBrain)]) {
        bytes += Buffer.byteLength(e.path) + 64;
        if (listed.length >= HEAL_INFO_ENTRIES || bytes > HEAL_INFO_BYTES) break;
        listed.push(e);
      }
      return {
        brick: m.id,
        addr: m.link.addr,
        connected: m.ready && m.link.up,
        entries: listed,
        count: entries.length,
      };
    });
  }
}

/** Entries listed per brick in heal info, and the bytes of their paths (with some for the rest). */
export const HEAL_INFO_ENTRIES = 200;
const HEAL_INFO_BYTES = 48 * 1024;

function sameAttr(a: Attr | undefined, b: Attr | undefined): boolean {
  if (!a || !b) return a === b;
  return a.type === b.type && a.id === b.id && a.v === b.v && a.size === b.size && a.mode === b.mode;
}

/**
 * The union of the byte ranges the sources recorded against `sinkId`, or null when any source
 * that blames it does not know them (it restarted, or too many pieces).
 */
function missedRanges(sources: Side[], sinkId: string): ByteRange[] | null {
  const blamers = sources.filter((s) => (s.blame[sinkId] ?? 0) > 0);
  if (blamers.length === 0) return null;
  let out: ByteRange[] = [];
  for (const b of blamers) {
    const r = b.ranges[sinkId];
    if (!r) return null;
    for (const x of r) {
      const merged = addRange(out, x);
      if (!merged) return null;
      out = merged;
    }
  }
  return out;
}

/** Indexes of the BLOCK-sized blocks below `nblocks` that the ranges touch. */
function blocksOf(ranges: ByteRange[], nblocks: number): number[] {
  const out = new Set<number>();
  for (const [s, e] of ranges) {
    const last = Math.min(nblocks - 1, Math.ceil(e / BLOCK) - 1);
    for (let b = Math.floor(s / BLOCK); b <= last; b++) out.add(b);
  }
  return [...out].sort((a, b) => a - b);
}

function range(a: number, b: number): number[] {
  const out: number[] = [];
  for (let i = a; i < b; i++) out.push(i);
  return out;
}
