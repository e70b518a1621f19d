/** Shapes shared by the bricks, the share server and the client library. */
export type FileType = 'file' | 'dir' | 'symlink' | 'other';

export interface Attr {
  type: FileType;
  /** Per-file id (same on every replica, like a gfid). */
  id: string;
  /** Per-file version: bumped by every mutation applied to this inode. */
  v: number;
  size: number;
  mode: number;
  nlink: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
}

export interface DirEntry extends Attr {
  name: string;
}

export interface BrickRef {
  id: string;
  addr: string;
}

export type BrickJobKind = 'replace' | 'remove';
export type BrickJobState = 'running' | 'done' | 'failed';

/** One long brick operation (replace, drain) and how far it got, as a share server reports it. */
export interface BrickJob {
  kind: BrickJobKind;
  brick: BrickRef;
  /** The brick that takes the place of `brick` (replace). */
  target?: BrickRef;
  state: BrickJobState;
  /** Shares that held a replica on `brick` when the job started. */
  shares: number;
  /** Shares whose replica set no longer holds `brick`. */
  moved: number;
  /** Paths still to be copied to new replicas (heal markers), summed over the job's shares. */
  pending: number;
  /** The share being worked on. */
  current: string | null;
  error: string | null;
  startedAt: string;
  finishedAt: string | null;
}

export interface ShareInfo {
  id: string;
  /** Quota in bytes (logical size of regular files). */
  size: number;
  bricks: BrickRef[];
  epoch: number;
  owner: string;
  /**
   * Who may use the share (server/access.ts); absent on a share created without an access list,
   * which is then not restricted by address.
   */
  access?: Array<{ id: string; to: string; level: 'rw' | 'ro' }>;
  /**
   * The share API's project that owns the share: with an identity service configured, a client's
   * token must be scoped to it (or carry the admin role) to mount the share.
   */
  project?: string;
  /** Bumped by every change of size or access, so an attach takes the newest record. */
  gen?: number;
  /**
   * A drain in progress (server/bricks-admin.ts): brick `from` leaves the set once brick `to`,
   * already in `bricks`, holds a full copy.
   */
  drain?: { from: string; to: string };
}

export interface PendingEntry {
  path: string;
  /** brick id -> number of operations that brick missed (at least 1). */
  blame: Record<string, number>;
}

export interface BrickIndex {
  dirty: string[];
  pending: PendingEntry[];
}

export interface StatFs {
  size: number;
  used: number;
  free: number;
  files: number;
}

/** heal info for one brick of a share. */
export interface HealInfoBrick {
  brick: string;
  addr: string;
  connected: boolean;
  entries: Array<{ path: string; splitBrain: boolean; healing: boolean }>;
  count: number;
}

export const SPLIT_BRAIN_POLICIES = ['source-brick', 'latest-mtime', 'bigger-file'] as const;
export type SplitBrainPolicy = (typeof SPLIT_BRAIN_POLICIES)[number];

/** The share server's `capacity` answer: each up brick's space, and one pool per zone. */
export interface CapacityReport {
  bricks: Array<{
    id: string;
    host: string;
    zone: string;
    fsTotalBytes: number;
    fsFreeBytes: number;
    capacityBytes: number | null;
    shares: Record<string, { size: number; first: boolean }>;
  }>;
  pools: Array<{ name: string; totalBytes: number; allocatedBytes: number; freeBytes: number }>;
}

/** What one heal run did (heal info reports the last one). */
// A type alias (not an interface) so that it fits Record<string, number> in the Backend contract.
export type HealStats = {
  /** Paths examined (each under the share's write barrier). */
  checked: number;
  entries: number;
  files: number;
  bytes: number;
  /** Blocks compared by checksum (data heals without recorded ranges). */
  summed: number;
  splitBrain: number;
  ms: number;
};

/** The last heal run of a share, as heal info reports it. */
export interface LastHeal {
  kind: 'index' | 'full';
  startedAt: string;
  finishedAt: string | null;
  stats: HealStats | null;
  error: string | null;
}

/** heal info: a snapshot one brick is missing, or still holds after it was deleted elsewhere. */
export interface SnapshotHealEntry {
  brick: string;
  snapshot: string;
  action: 'copy' | 'delete';
  /** Being copied or deleted right now. */
  healing: boolean;
}

/** One name of a snapshot tree as a brick's snapshot walk reports it ('' is the root). */
export interface WalkEntry {
  p: string;
  t: 'dir' | 'file' | 'symlink';
  /** The source inode: names of one inode within the snapshot stay one inode. */
  ino: number;
  id: string;
  v: number;
  mode: number;
  size: number;
  at: number;
  mt: number;
  target?: string;
  /** Bytes of this file's data in the page's payload (the whole file). */
  n?: number;
}
