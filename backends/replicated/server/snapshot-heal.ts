/**
 * Snapshot heal, share server side. The bricks' snapshot catalogs are compared (server/snapshots.ts
 * `catalogs`): a snapshot that a majority of the share's bricks hold and none has deleted is copied
 * to a ready brick that lacks it (and has no tombstone for it), from a brick that holds it; a
 * snapshot some brick deleted is deleted, with its tombstone, on every brick that still holds it or
 * lacks the tombstone. A snapshot held by fewer than a majority is never spread (the catalog does not
 * list it, so revert and clone never use it either).
 *
 * The copy streams the source's snapshot tree through this server into a staging tree on the target
 * (brick/snapshot-heal.ts): pages of the walk with small files inline, large files in 1 MiB ranges
 * with a few in flight (holes skipped), every inode with the snapshot's file id and version, one
 * inode per hard-linked file. The target publishes it with one rename after flushing it, snap.json
 * last, so an interrupted heal leaves nothing listed and the next run starts it again from scratch.
 * Snapshot trees never change, so no write barrier is needed: clients keep working.
 */
import { ReplicatedError, toReplicatedError } from '../protocol/errors.ts';
import { payloadBuffer } from '../protocol/frame.ts';
import { OP } from '../protocol/opcodes.ts';
import type { SnapshotHealEntry, WalkEntry } from '../protocol/types.ts';
import type { Member, ShareCoordinator } from './share-coordinator.ts';
import { agreed, type BrickCatalog, catalogs, type SnapRecord } from './snapshots.ts';

const CHUNK = 1 << 20;
const CHUNKS_IN_FLIGHT = 4;
const PUT_HEADER_BYTES = 96 * 1024;
/** Commit flushes the whole staging tree to disk (asynchronously on the brick). */
const COMMIT_TIMEOUT_MS = 600_000;

export interface SnapshotHealStats {
  copied: number;
  deleted: number;
  files: number;
  bytes: number;
  failed: number;
  ms: number;
}

interface Task {
  m: Member;
  snap: string;
  action: 'copy' | 'delete';
  rec?: SnapRecord;
  sources: Member[];
}

/** What must change on which brick, from the catalogs of the ready bricks. */
export function planSnapshotHeal(c: ShareCoordinator, cats: BrickCatalog[]): Task[] {
  const deleted = new Set(cats.flatMap((x) => x.deleted));
  const wanted = agreed(c, cats);
  const tasks: Task[] = [];
  for (const x of cats) {
    const have = new Set(x.snaps.map((s) => s.id));
    const gone = new Set(x.deleted);
    for (const id of [...deleted].sort())
      if (have.has(id) || !gone.has(id)) tasks.push({ m: x.m, snap: id, action: 'delete', sources: [] });
    for (const rec of wanted) {
      if (have.has(rec.id) || gone.has(rec.id)) continue;
      const sources = cats.filter((y) => y !== x && y.snaps.some((s) => s.id === rec.id)).map((y) => y.m);
      tasks.push({ m: x.m, snap: rec.id, action: 'copy', rec, sources });
    }
  }
  return tasks;
}

export class SnapshotHealer {
  private running: Promise<SnapshotHealStats> | undefined;
  private again = false;
  private current: { brick: string; snapshot: string } | undefined;
  /** The outcome of the last run. */
  last: (SnapshotHealStats & { finishedAt: string }) | null = null;

  constructor(
    private readonly c: ShareCoordinator,
    private readonly log: (msg: string) => void,
  ) {}

  /** Starts a run in the background (one at a time; one more if asked while running). */
  soon(): void {
    this.run().catch(() => {});
  }

  run(): Promise<SnapshotHealStats> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.heal().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.soon();
      }
    });
    return this.running;
  }

  /** Snapshots to copy or delete per ready brick (heal info). */
  async pending(): Promise<SnapshotHealEntry[]> {
    if (this.c.fenced) return [];
    const tasks = planSnapshotHeal(this.c, await catalogs(this.c));
    return tasks.map((t) => ({
      brick: t.m.id,
      snapshot: t.snap,
      action: t.action,
      healing: this.current?.brick === t.m.id && this.current.snapshot === t.snap,
    }));
  }

  private async heal(): Promise<SnapshotHealStats> {
    const t0 = Date.now();
    const stats: SnapshotHealStats = { copied: 0, deleted: 0, files: 0, bytes: 0, failed: 0, ms: 0 };
    if (this.c.fenced) return stats;
    const tasks = planSnapshotHeal(this.c, await catalogs(this.c));
    // Deletions first: they free space and are quick.
    tasks.sort((a, b) => Number(a.action === 'copy') - Number(b.action === 'copy'));
    for (const t of tasks) {
      if (this.c.fenced || !t.m.ready) continue;
      this.current = { brick: t.m.id, snapshot: t.snap };
      try {
        if (t.action === 'delete') {
          await this.c.req(t.m, OP.bSnapDelete, { snapshot: t.snap });
          stats.deleted++;
          this.log(`snapshot heal: deleted snapshot ${t.snap} of share ${this.c.info.id} on brick ${t.m.id}`);
        } else {
          const src = t.sources.find((s) => s.ready && s.link.up);
          if (!src) continue;
          const r = await this.copy(t.snap, src, t.m);
          if (r) {
            stats.copied++;
            stats.files += r.files;
            stats.bytes += r.bytes;
            this.log(
              `snapshot heal: copied snapshot ${t.snap} of share ${this.c.info.id} from brick ${src.id} to brick ${t.m.id}: ${r.files} names, ${r.bytes} bytes, ${r.ms} ms`,
            );
          }
        }
      } catch (err) {
        const e = toReplicatedError(err);
        if (e.code === 'ESTALE') this.c.fenced = true;
        stats.failed++;
        this.log(
          `snapshot heal of ${t.snap} (share ${this.c.info.id}) on brick ${t.m.id} failed, retried on the next run: ${e.code} ${e.message}`,
        );
      } finally {
        this.current = undefined;
      }
    }
    stats.ms = Date.now() - t0;
    this.last = { ...stats, finishedAt: new Date().toISOString() };
    return stats;
  }

  /** Copies snapshot `snap` from `src` to `dst`; undefined when `dst` has it (or deleted it) already. */
  private async copy(
    snap: string,
    src: Member,
    dst: Member,
  ): Promise<{ files: number; bytes: number; ms: number } | undefined> {
    const t0 = Date.now();
    const b = (await this.c.req(dst, OP.bSnapHealBegin, { snapshot: snap })).header;
    if (b['have'] === true || b['deleted'] === true) return undefined;
    const token = String(b['token']);
    const firstName = new Map<number, string>();
    let after: string | null = null;
    let info: unknown;
    let files = 0;
    let bytes = 0;
    for (;;) {
      const page = await this.c.req(src, OP.bSnapWalk, { snapshot: snap, after });
      const entries = page.header['entries'] as WalkEntry[];
      info = page.header['info'];
      const data = payloadBuffer(page.parts);
      let at = 0;
      let puts: Record<string, unknown>[] = [];
      let parts: Buffer[] = [];
      let putBytes = 0;
      const large: WalkEntry[] = [];
      /** Files the target took from its own live tree (unchanged since the snapshot). */
      const fromLive = new Set<string>();
      // Headers are JSON limited to 256 KiB: a batch is sent before it grows near that.
      const send = async (): Promise<void> => {
        if (puts.length === 0) return;
        const r = await this.c.req(dst, OP.bSnapHealPut, { snapshot: snap, token, entries: puts }, parts);
        for (const p of (r.header['live'] ?? []) as string[]) {
          // A change missed (and maybe half healed) since the check: the copy taken may be torn.
          // Blame comes before any heal write and goes only after the last one, so checking again
          // after the answer covers the whole window. This run gives the snapshot up; the next
          // starts it again.
          if (!this.c.isGood(dst, p))
            throw new ReplicatedError('EBUSY', `${p} changed on brick ${dst.id} while it was taken`);
          fromLive.add(p);
        }
        puts = [];
        parts = [];
        putBytes = 0;
      };
      const add = async (entry: Record<string, unknown>, inline?: Buffer): Promise<void> => {
        const n = Buffer.byteLength(JSON.stringify(entry)) + 1;
        if (putBytes + n > PUT_HEADER_BYTES) await send();
        puts.push(entry);
        putBytes += n;
        if (inline) parts.push(inline);
      };
      for (const e of entries) {
        const inline = e.n === undefined ? undefined : data.subarray(at, at + e.n);
        at += e.n ?? 0;
        files++;
        const base = { p: e.p, id: e.id, v: e.v, mode: e.mode, at: e.at, mt: e.mt };
        if (e.t === 'dir') await add({ ...base, t: 'dir' });
        else if (e.t === 'symlink') await add({ ...base, t: 'symlink', target: e.target });
        else {
          const first = firstName.get(e.ino);
          if (first !== undefined) {
            await add({ p: e.p, t: 'link', to: first });
            continue;
          }
          firstName.set(e.ino, e.p);
          bytes += e.size;
          // Its live copy there may be the same file still (the brick checks id, version, size and
          // mode), when nothing marks that copy as missing a change.
          const live = this.c.isGood(dst, e.p) ? { live: true } : {};
          if (inline && inline.length === e.size) {
            await add({ ...base, ...live, t: 'file', size: e.size, n: inline.length }, inline);
          } else {
            await add({ ...base, ...live, t: 'file', size: e.size });
            large.push(e);
          }
        }
      }
      await send();
      for (const e of large) if (!fromLive.has(e.p)) await this.copyFile(snap, token, src, dst, e);
      const last = entries[entries.length - 1];
      if (page.header['done'] === true || !last) break;
      after = last.p;
    }
    await this.c.req(
      dst,
      OP.bSnapHealCommit,
      { snapshot: snap, token, info, ms: Date.now() - t0 },
      undefined,
      COMMIT_TIMEOUT_MS,
    );
    return { files, bytes, ms: Date.now() - t0 };
  }

  /** A large file in 1 MiB ranges, a few in flight; all-zero ranges are not sent (holes stay holes). */
  private async copyFile(snap: string, token: string, src: Member, dst: Member, e: WalkEntry): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      for (;;) {
        const off = next;
        if (off >= e.size) return;
        next += CHUNK;
        const len = Math.min(CHUNK, e.size - off);
        const r = await this.c.req(src, OP.bSnapRead, { snapshot: snap, path: e.p, off, len });
        const n = Number(r.header['n']);
        if (n !== len)
          throw new ReplicatedError('EIO', `snapshot ${snap}: ${e.p} is shorter than its walk said`);
        if (r.header['zero'] === true) continue;
        await this.c.req(
          dst,
          OP.bSnapHealPut,
          { snapshot: snap, token, entries: [{ p: e.p, t: 'chunk', off, n }] },
          r.parts,
        );
      }
    };
    await Promise.all(Array.from({ length: CHUNKS_IN_FLIGHT }, worker));
    await this.c.req(dst, OP.bSnapHealPut, {
      snapshot: snap,
      token,
      entries: [{ p: e.p, t: 'fin', size: e.size, mode: e.mode, at: e.at, mt: e.mt }],
    });
  }
}
