/**
 * Capacity accounting for the share servers: what each brick can still promise, whether a set of
 * bricks can take a share of a given size, and the pools (one per availability zone) the backend
 * driver reports to the scheduler.
 *
 * A share's size is a promise (the quota is exact, so a share never holds more): a replica of a
 * share of S bytes reserves S on its brick. A brick promises at most its capacity — the
 * `--capacity-gib` it was started with, or else its file system's size. Bricks on one file system
 * of one host (solo mode runs three on one disk) share that file system: together they promise at
 * most its size.
 */

/** What a brick reports about its space (brick op `stat`). */
export interface BrickSpace {
  id: string;
  host: string;
  zone: string;
  /** The brick directory's device number: bricks of one host with the same one share a disk. */
  dev: number;
  fsTotalBytes: number;
  fsFreeBytes: number;
  /** Configured limit, or null for "the file system's size". */
  capacityBytes: number | null;
  /** Shares held on this brick: id → size in bytes. */
  shares: Record<string, number>;
}

const groupKey = (b: BrickSpace) => `${b.host}\u0000${b.dev}`;

const brickLimit = (b: BrickSpace) =>
  b.capacityBytes === null ? b.fsTotalBytes : Math.min(b.capacityBytes, b.fsTotalBytes);

const allocatedOn = (b: BrickSpace) => Object.values(b.shares).reduce((a, s) => a + s, 0);

interface Group {
  limit: number;
  allocated: number;
  free: number;
  bricks: BrickSpace[];
}

function groups(bricks: BrickSpace[]): Map<string, Group> {
  const out = new Map<string, Group>();
  for (const b of bricks) {
    const k = groupKey(b);
    const g = out.get(k) ?? { limit: 0, allocated: 0, free: b.fsFreeBytes, bricks: [] };
    g.bricks.push(b);
    g.allocated += allocatedOn(b);
    // Bricks on one file system promise at most its size together.
    g.limit = Math.min(b.fsTotalBytes, g.limit + brickLimit(b));
    g.free = Math.min(g.free, b.fsFreeBytes);
    out.set(k, g);
  }
  return out;
}

/**
 * Why the bricks `chosen` (among all known `bricks`) cannot each take `growth` more bytes — a new
 * share of that size, or an extension — or null when they can.
 */
export function refusal(bricks: BrickSpace[], chosen: string[], growth: number): string | null {
  if (growth <= 0) return null;
  const picked = bricks.filter((b) => chosen.includes(b.id));
  for (const b of picked) {
    const left = brickLimit(b) - allocatedOn(b);
    if (growth > left)
      return `brick ${b.id} (${b.host}) can promise ${gib(Math.max(0, left))} GiB more, ${gib(growth)} GiB asked`;
  }
  for (const g of groups(bricks).values()) {
    const need = growth * g.bricks.filter((b) => chosen.includes(b.id)).length;
    if (need > 0 && g.allocated + need > g.limit)
      return `the file system shared by bricks ${g.bricks.map((b) => b.id).join(', ')} can promise ${gib(Math.max(0, g.limit - g.allocated))} GiB more, ${gib(need)} GiB asked`;
  }
  return null;
}

/** The largest share (bytes) that the bricks `chosen` can each still take. */
export function largestShare(bricks: BrickSpace[], chosen: string[]): number {
  let most = Number.POSITIVE_INFINITY;
  for (const b of bricks) if (chosen.includes(b.id)) most = Math.min(most, brickLimit(b) - allocatedOn(b));
  for (const g of groups(bricks).values()) {
    const n = g.bricks.filter((b) => chosen.includes(b.id)).length;
    if (n > 0) most = Math.min(most, Math.floor((g.limit - g.allocated) / n));
  }
  return Number.isFinite(most) ? Math.max(0, most) : 0;
}

export interface PoolSpace {
  name: string;
  totalBytes: number;
  allocatedBytes: number;
  freeBytes: number;
}

/**
 * One pool per availability zone of the known bricks. A pool's free space is the largest share
 * the bricks a new share of the pool would be placed on (`placement(zone)`, its first replica in
 * the zone) can still take; its allocation is the sizes of the shares whose first replica is in the
 * zone; its total is the two together — what the pool holds plus what it can still take.
 */
export function pools(
  bricks: BrickSpace[],
  firstZoneOf: (share: string) => string | undefined,
  placement: (zone: string) => string[] | null,
): PoolSpace[] {
  const zones = [...new Set(bricks.map((b) => b.zone))].sort();
  const sizes = new Map<string, number>();
  for (const b of bricks) for (const [id, size] of Object.entries(b.shares)) sizes.set(id, size);
  return zones.map((zone) => {
    let allocated = 0;
    for (const [id, size] of sizes) if (firstZoneOf(id) === zone) allocated += size;
    const chosen = placement(zone);
    const free = chosen ? largestShare(bricks, chosen) : 0;
    return { name: zone, totalBytes: allocated + free, allocatedBytes: allocated, freeBytes: free };
  });
}

/** Bytes as GiB with two decimals, for messages. */
export const gib = (bytes: number) => Math.round((bytes / 1024 ** 3) * 100) / 100;
