/**
 * Snapshots of a replicated share, share server side: create, delete, list, revert and clone, each
 * idempotent. Create and revert run under the coordinator's write barrier (no mutation in flight),
 * so every replica snapshots or reverts the same state, versions included. The bricks keep the
 * snapshots and their catalog (brick/snapshots.ts); a snapshot exists when a majority of the
 * share's bricks hold it, and a deletion on any brick wins (its tombstone).
 */
import { ReplicatedError, toReplicatedError } from '../protocol/errors.ts';
import { OP } from '../protocol/opcodes.ts';
import { checkName, checkProject } from '../protocol/paths.ts';
import type { ShareInfo } from '../protocol/types.ts';
import type { BrickLink } from './brick-link.ts';
import { type BrickSpace, refusal } from './capacity.ts';
import type { Member, ShareCoordinator } from './share-coordinator.ts';

/** A snapshot as a brick records it (brick/snapshots.ts SnapInfo). */
export interface SnapRecord {
  id: string;
  size: number;
  method: string;
  files: number;
  bytes: number;
  createdAt: string;
  ms: number;
}

/** Revert moves every version up by a multiple of this, past anything any replica holds. */
const REVERT_STEP = 2 ** 20;

/** What the snapshot operations need of the share server. */
export interface SnapshotServer {
  serve(id: string): Promise<{ coord: ShareCoordinator; healIndex: () => Promise<unknown> }>;
  attach(id: string): Promise<ShareInfo>;
  detach(id: string): void;
  spaceLock<T>(fn: () => Promise<T>): Promise<T>;
  brickSpace(): Promise<BrickSpace[]>;
  findInfos(id: string): Promise<ShareInfo[]>;
  deletedOn(id: string): Promise<string[]>;
  /** Every brick link of this server (up or not). */
  links(): BrickLink[];
  readonly serverId: string;
  log(msg: string): void;
}

export interface BrickCatalog {
  m: Member;
  snaps: SnapRecord[];
  deleted: string[];
}

export async function catalogs(c: ShareCoordinator): Promise<BrickCatalog[]> {
  const res = await Promise.allSettled(
    c.readyMembers().map(async (m) => {
      const h = (await c.req(m, OP.bSnapList, {})).header;
      return { m, snaps: h['snaps'] as SnapRecord[], deleted: h['deleted'] as string[] };
    }),
  );
  return res.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
}

/** The snapshots a majority of the share's bricks hold and none has deleted (oldest first). */
export function agreed(c: ShareCoordinator, cats: BrickCatalog[]): SnapRecord[] {
  const deleted = new Set(cats.flatMap((x) => x.deleted));
  const count = new Map<string, { n: number; rec: SnapRecord }>();
  for (const x of cats)
    for (const s of x.snaps) {
      const e = count.get(s.id);
      count.set(s.id, { n: (e?.n ?? 0) + 1, rec: e?.rec ?? s });
    }
  return [...count.values()]
    .filter((e) => e.n >= c.majority && !deleted.has(e.rec.id))
    .map((e) => e.rec)
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
}

export async function listSnapshots(srv: SnapshotServer, shareId: string): Promise<SnapRecord[]> {
  const { coord } = await srv.serve(checkName(shareId));
  return agreed(coord, await catalogs(coord));
}

/** The shares (other than `shareId`) whose bricks hold, or deleted, snapshot `snapId`. */
async function ownersElsewhere(srv: SnapshotServer, shareId: string, snapId: string): Promise<string[]> {
  const res = await Promise.allSettled(
    srv
      .links()
      .filter((l) => l.up)
      .map(async (l) => (await l.request(OP.bSnapFind, { snapshot: snapId })).header['shares'] as string[]),
  );
  const all = new Set(res.flatMap((r) => (r.status === 'fulfilled' ? r.value : [])));
  all.delete(shareId);
  return [...all];
}

async function checkNotElsewhere(srv: SnapshotServer, shareId: string, snapId: string): Promise<void> {
  const other = await ownersElsewhere(srv, shareId, snapId);
  if (other.length > 0)
    throw new ReplicatedError(
      'EINVAL',
      `snapshot ${snapId} belongs to share ${other[0]}, not to share ${shareId}`,
    );
}

/** Bricks able to take part: ready, and holding no pending blame (their copy is complete). */
async function inSync(
  srv: SnapshotServer,
  shareId: string,
): Promise<{ coord: ShareCoordinator; members: Member[] }> {
  const a = await srv.serve(shareId);
  let members = a.coord.readyMembers().filter((m) => a.coord.isClean(m));
  if (members.length < a.coord.majority) {
    // Replicas behind: heal first, so the snapshot holds every acknowledged write.
    await a.healIndex().catch(() => {});
    members = a.coord.readyMembers().filter((m) => a.coord.isClean(m));
  }
  if (members.length < a.coord.majority)
    throw new ReplicatedError(
      'ENOTCONN',
      `share ${shareId}: ${members.length} in-sync replicas of ${a.coord.members.length}, a majority is needed`,
    );
  return { coord: a.coord, members };
}

/**
 * Snapshots every in-sync replica in parallel under the write barrier. Answers the snapshot's
 * record and the method each brick used.
 */
export async function createSnapshot(
  srv: SnapshotServer,
  shareId: string,
  snapId: string,
  method?: unknown,
): Promise<Record<string, unknown>> {
  checkName(snapId);
  const { coord } = await inSync(srv, checkName(shareId));
  await checkNotElsewhere(srv, shareId, snapId);
  return coord.barrier(async () => {
    const members = coord.readyMembers().filter((m) => coord.isClean(m));
    if (members.length < coord.majority)
      throw new ReplicatedError('ENOTCONN', `share ${shareId}: not enough in-sync replicas for a snapshot`);
    const cats = await catalogs(coord);
    if (cats.some((x) => x.deleted.includes(snapId)))
      throw new ReplicatedError('EEXIST', `snapshot ${snapId} was deleted; a new snapshot needs a new id`);
    // Taken already (a retry): a replica that lacks it must get the same point in time, by
    // snapshot heal, not a new snapshot of today's tree.
    const have = agreed(coord, cats).find((s) => s.id === snapId);
    if (have) {
      const holders = cats.flatMap((x) =>
        x.snaps.filter((s) => s.id === snapId).map((s) => [x.m.id, s.method]),
      );
      return { snapshot: have, methods: Object.fromEntries(holders) };
    }
    const createdAt =
      cats.flatMap((x) => x.snaps).find((s) => s.id === snapId)?.createdAt ?? new Date().toISOString();
    const res = await Promise.allSettled(
      members.map((m) =>
        coord.req(m, OP.bSnapCreate, { snapshot: snapId, createdAt, method }, undefined, 600_000),
      ),
    );
    const done: Array<{ brick: string; snap: SnapRecord }> = [];
    res.forEach((r, i) => {
      if (r.status === 'fulfilled')
        done.push({ brick: members[i]!.id, snap: r.value.header['snap'] as SnapRecord });
    });
    if (done.length < coord.majority) {
      const why = res.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
      throw new ReplicatedError(
        'ENOTCONN',
        `snapshot ${snapId} taken on ${done.length} of ${coord.members.length} replicas: ${toReplicatedError(why?.reason).message}`,
      );
    }
    const methods = Object.fromEntries(done.map((d) => [d.brick, d.snap.method]));
    const first = done[0]!.snap;
    srv.log(
      `snapshot ${snapId} of share ${shareId}: ${first.files} files, ${first.bytes} bytes, method ${[...new Set(Object.values(methods))].join('/')}, ${Math.max(...done.map((d) => d.snap.ms))} ms`,
    );
    return { snapshot: first, methods };
  });
}

/** Deletes a snapshot on every reachable replica; unknown snapshot (or share) is success. */
export async function deleteSnapshot(srv: SnapshotServer, shareId: string, snapId: string): Promise<void> {
  checkName(snapId);
  let coord: ShareCoordinator;
  try {
    ({ coord } = await srv.serve(checkName(shareId)));
  } catch (err) {
    if (toReplicatedError(err).code === 'ENOENT') return;
    throw err;
  }
  await coord.barrier(async () => {
    const ready = coord.readyMembers();
    const res = await Promise.allSettled(
      ready.map((m) => coord.req(m, OP.bSnapDelete, { snapshot: snapId })),
    );
    const done = res.filter((r) => r.status === 'fulfilled').length;
    if (done < coord.majority)
      throw new ReplicatedError(
        'ENOTCONN',
        `snapshot ${snapId} deleted on ${done} of ${coord.members.length} replicas, not a majority yet; retry`,
      );
  });
}

/**
 * Reverts the share to a snapshot (any snapshot the replicas agree on: the share API allows only
 * the latest, as Manila does). Under the barrier every in-sync replica rebuilds its tree from the
 * snapshot with versions moved past everything any replica holds; a replica that missed it is
 * blamed on the root, so heal overwrites it. The share's size becomes the snapshot's; the share is
 * attached again so usage and caches come from the new tree.
 */
export async function revertToSnapshot(
  srv: SnapshotServer,
  shareId: string,
  snapId: string,
): Promise<Record<string, unknown>> {
  checkName(snapId);
  const { coord } = await inSync(srv, checkName(shareId));
  const snap = agreed(coord, await catalogs(coord)).find((s) => s.id === snapId);
  if (!snap) {
    await checkNotElsewhere(srv, shareId, snapId);
    throw new ReplicatedError('ENOENT', `snapshot ${snapId} of share ${shareId} not found`);
  }
  const result = await srv.spaceLock(async () => {
    const growth = snap.size - coord.info.size;
    if (growth > 0) {
      const refused = refusal(
        await srv.brickSpace(),
        coord.info.bricks.map((b) => b.id),
        growth,
      );
      if (refused) throw new ReplicatedError('ENOSPC', `not enough free capacity: ${refused}`);
    }
    return coord.barrier(async () => {
      const cats = await catalogs(coord);
      const members = cats
        .filter((x) => coord.isClean(x.m) && x.snaps.some((s) => s.id === snapId))
        .map((x) => x.m);
      if (members.length < coord.majority)
        throw new ReplicatedError('ENOTCONN', `share ${shareId}: not enough in-sync replicas hold ${snapId}`);
      const maxes = await Promise.all(
        members.map(async (m) =>
          Number((await coord.req(m, OP.bSnapMaxVersion, {}, undefined, 600_000)).header['v']),
        ),
      );
      const bump = (Math.floor(Math.max(...maxes) / REVERT_STEP) + 1) * REVERT_STEP;
      const res = await Promise.allSettled(
        members.map((m) => coord.req(m, OP.bSnapRevert, { snapshot: snapId, bump }, undefined, 600_000)),
      );
      const ok = members.filter((_, i) => res[i]!.status === 'fulfilled');
      if (ok.length < coord.majority) {
        const why = res.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
        throw new ReplicatedError(
          'ENOTCONN',
          `revert to ${snapId} done on ${ok.length} replicas: ${toReplicatedError(why?.reason).message}`,
        );
      }
      const missed = coord.members.filter((m) => !ok.includes(m)).map((m) => m.id);
      if (missed.length > 0)
        await Promise.allSettled(ok.map((m) => coord.req(m, OP.bMark, { paths: [''], bricks: missed })));
      if (snap.size !== coord.info.size) await coord.saveInfo({ size: snap.size });
      const methods = Object.fromEntries(
        members.flatMap((m, i) => {
          const r = res[i]!;
          return r.status === 'fulfilled' ? [[m.id, r.value.header['method']]] : [];
        }),
      );
      return { snapshot: snap, bump, missed, methods };
    });
  });
  // Usage, open handles and the blame mirror come from the reverted tree.
  srv.detach(shareId);
  await srv.attach(shareId);
  srv.log(`share ${shareId} reverted to snapshot ${snapId} (versions +${result.bump})`);
  return result;
}

/**
 * A new share from a snapshot, on the source's bricks: independent of it (copy-on-write), of
 * `size` bytes, closed (no access rule) until the share API grants one.
 */
export async function cloneShare(
  srv: SnapshotServer,
  h: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const id = checkName(h['id']);
  const from = checkName(h['from']);
  const snapId = checkName(h['snapshot']);
  const size = Number(h['size']);
  if (!Number.isSafeInteger(size) || size < 0)
    throw new ReplicatedError('EINVAL', 'size must be a byte count');
  const project = h['project'] === undefined ? undefined : checkProject(h['project']);
  if ((await srv.deletedOn(id)).length > 0)
    throw new ReplicatedError('EINVAL', `share ${id} was deleted; a new share needs a new id`);
  if ((await srv.findInfos(id)).length > 0) return { info: await srv.attach(id) };
  const { coord } = await srv.serve(from);
  if (h['replicas'] !== undefined && Number(h['replicas']) !== coord.members.length)
    throw new ReplicatedError(
      'EINVAL',
      `a share from a snapshot has its source's ${coord.members.length} replicas, not ${String(h['replicas'])}`,
    );
  const cats = await catalogs(coord);
  const snap = agreed(coord, cats).find((s) => s.id === snapId);
  if (!snap) {
    await checkNotElsewhere(srv, from, snapId);
    throw new ReplicatedError('ENOENT', `snapshot ${snapId} of share ${from} not found`);
  }
  if (size < snap.size)
    throw new ReplicatedError(
      'EINVAL',
      `a share from snapshot ${snapId} needs at least ${snap.size} bytes, not ${size}`,
    );
  return srv.spaceLock(async () => {
    const refused = refusal(
      await srv.brickSpace(),
      coord.info.bricks.map((b) => b.id),
      size,
    );
    if (refused) throw new ReplicatedError('ENOSPC', `not enough free capacity: ${refused}`);
    const info: ShareInfo = {
      id,
      size,
      bricks: coord.info.bricks,
      epoch: 1,
      owner: srv.serverId,
      access: [],
      ...(project === undefined ? {} : { project }),
    };
    const holders = cats.filter((x) => x.snaps.some((s) => s.id === snapId)).map((x) => x.m);
    const res = await Promise.allSettled(
      holders.map((m) =>
        coord.req(m, OP.bSnapClone, { snapshot: snapId, newShare: id, info }, undefined, 600_000),
      ),
    );
    const ok = res.filter((r) => r.status === 'fulfilled') as Array<
      PromiseFulfilledResult<{ header: Record<string, unknown> }>
    >;
    if (ok.length < coord.majority) {
      const why = res.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
      throw new ReplicatedError(
        'ENOTCONN',
        `share ${id} from ${snapId} made on ${ok.length} replicas: ${toReplicatedError(why?.reason).message}`,
      );
    }
    const method = ok.map((r) => r.value.header['method']).find((m) => typeof m === 'string') ?? 'existing';
    // A replica that missed the clone gets an empty copy and a heal when the share attaches.
    const attached = await srv.attach(id);
    srv.log(`share ${id} created from snapshot ${snapId} of share ${from}, method ${String(method)}`);
    return { info: attached, method };
  });
}
