/**
 * The storage backend contract, modelled on Manila's ShareDriver. Services call it from the task
 * worker, outside any database transaction. Every call is keyed by share/snapshot id and is
 * idempotent: repeating a call after a crash (the worker re-runs a task whose lease expired) gives
 * the same end state and does not fail because the first attempt already did the work.
 *
 * Backends never import knex or Koa. They report failures with BackendError (backends/errors.ts).
 */

/** Protocols a share can be created with (Manila's names; NATIVE is abaca's own FUSE protocol). */
export const SHARE_PROTOCOLS = ['NFS', 'CIFS', 'GLUSTERFS', 'CEPHFS', 'NATIVE'] as const;
export type ShareProtocol = (typeof SHARE_PROTOCOLS)[number];

export const ACCESS_TYPES = ['ip', 'user', 'cert', 'cephx'] as const;
export type AccessType = (typeof ACCESS_TYPES)[number];
export type AccessLevel = 'rw' | 'ro';

export interface ShareRef {
  id: string;
  /** Size in GiB, as Manila counts it. */
  size: number;
  shareProto: ShareProtocol;
  /** The pool the scheduler placed the share in (a name from stats().pools). */
  pool: string;
  /**
   * The project that owns the share (the share API always sets it; a backend that checks identity
   * on its data path records it).
   */
  projectId?: string;
  /**
   * The share type's extra specs, given to the calls that create a share (a backend reads its own
   * specs there, e.g. the replicated backend's `abaca:replica_count`).
   */
  specs?: Readonly<Record<string, string>>;
}

export interface SnapshotRef {
  id: string;
  shareId: string;
  /** Size of the share (GiB) when the snapshot was taken. */
  size: number;
}

export interface ExportLocation {
  path: string;
  preferred: boolean;
  isAdminOnly: boolean;
}

export interface AccessRule {
  id: string;
  accessType: AccessType;
  /** Normalised: an ip rule is an address or CIDR in canonical form. */
  accessTo: string;
  accessLevel: AccessLevel;
}

export type AccessRuleState = 'active' | 'error';

export interface PoolStats {
  name: string;
  totalCapacityGiB: number;
  freeCapacityGiB: number;
  /** GiB promised to shares in this pool (sum of their sizes). */
  allocatedCapacityGiB: number;
}

/** What the scheduler matches share type extra specs against. */
export interface BackendCapabilities {
  snapshotSupport: boolean;
  createShareFromSnapshotSupport: boolean;
  revertToSnapshotSupport: boolean;
  mountSnapshotSupport: boolean;
  /** Always false: abaca does not manage share servers (DHSS=False only). */
  driverHandlesShareServers: false;
  protocols: ShareProtocol[];
  /**
   * Access rule types the backend can honour. Rules of other types are never 'active': the backend
   * reports them 'error' or throws NotSupported.
   */
  accessTypes: AccessType[];
}

export interface BackendStats {
  backendName: string;
  driver: string;
  vendorName: string;
  driverVersion: string;
  capabilities: BackendCapabilities;
  pools: PoolStats[];
}

export interface ShareUsage {
  usedBytes: number;
  files: number;
}

export interface Backend {
  /** The configured backend name (the `host@backend` part of a share's host). */
  readonly name: string;

  /** Capacity and capabilities, polled by the scheduler. */
  stats(): Promise<BackendStats>;

  /**
   * Creates an empty share of `share.size` GiB; returns where clients mount it. An existing share
   * of the same size returns its export locations; a different size is InvalidRequest.
   */
  createShare(share: ShareRef): Promise<ExportLocation[]>;
  /** Creates an independent share holding the snapshot's data; share.size ≥ snapshot.size. */
  createShareFromSnapshot(share: ShareRef, snapshot: SnapshotRef): Promise<ExportLocation[]>;
  /**
   * Removes the share and its data. A share that does not exist is already deleted: success.
   * Snapshots are not touched (the API refuses to delete a share that still has snapshots).
   */
  deleteShare(share: ShareRef): Promise<void>;
  /** Grows the share to newSize GiB. */
  extendShare(share: ShareRef, newSize: number): Promise<void>;
  /**
   * Shrinks the share to newSize GiB. Refuses with BackendError 'ShrinkPossibleDataLoss', data
   * untouched, when more than newSize GiB is in use.
   */
  shrinkShare(share: ShareRef, newSize: number): Promise<void>;

  /** Takes a point-in-time copy of the share. */
  createSnapshot(snapshot: SnapshotRef): Promise<void>;
  /** Removes a snapshot; a missing one is success. */
  deleteSnapshot(snapshot: SnapshotRef): Promise<void>;
  /**
   * Makes the share's data equal, byte for byte, to the snapshot's; the snapshot remains. The
   * share's size becomes snapshot.size (the API settles the quota difference).
   */
  revertToSnapshot(share: ShareRef, snapshot: SnapshotRef): Promise<void>;

  /**
   * Applies the complete rule set of a share atomically (rules not listed are removed) and says,
   * per rule id, whether it is in force.
   */
  updateAccess(share: ShareRef, rules: AccessRule[]): Promise<Record<string, AccessRuleState>>;

  /** Where clients mount the share; stable across restarts. */
  exportLocations(share: ShareRef): Promise<ExportLocation[]>;
  /** Space and files in use. */
  usage(share: ShareRef): Promise<ShareUsage>;

  /** Releases resources (timers, connections). */
  close(): Promise<void>;

  /** Self-heal of a replicating backend (optional: the API answers that the backend has none). */
  heal?: ShareHeal;
  /** The processes the backend is made of, shown as rows of os-services (optional). */
  components?(): Promise<StorageComponent[]>;
  /**
   * Disables or enables one of those processes (Manila's service disable). NotSupported for a
   * kind of process that cannot be; NotFound for one the backend does not have.
   */
  setComponentDisabled?(
    component: { binary: string; host: string },
    disabled: boolean,
    reason: string | null,
  ): Promise<void>;
  /** Bricks an operator adds, replaces and drains (optional: backends made of bricks). */
  bricks?: BackendBricks;
}

/**
 * A brick's place in the registry: `active` takes shares; `draining` has its replicas moved away
 * before it becomes `removed`; `replacing` has its replicas moved to `replacedBy` (a new, empty
 * brick) before it becomes `replaced`.
 */
export const BRICK_STATES = ['active', 'draining', 'removed', 'replacing', 'replaced'] as const;
export type BrickState = (typeof BRICK_STATES)[number];

/** One brick as the registry keeps it (services/repos/bricks.ts). */
export interface BrickRecord {
  address: string;
  brickId: string | null;
  state: BrickState;
  /** The brick that takes this one's place (replacing, replaced). */
  replacedBy: string | null;
}

/**
 * Where a backend keeps the bricks an operator added or removed, so they survive restarts of its
 * daemons (which otherwise know only the bricks they were started with). Given to createBackend in
 * its context; implemented over the API's database.
 */
export interface BrickStore {
  list(backend: string): Promise<BrickRecord[]>;
  save(backend: string, record: BrickRecord): Promise<void>;
}

export type BrickJobKind = 'replace' | 'remove';
export type BrickJobState = 'running' | 'done' | 'failed';

/** A long brick operation and how far it got. */
export interface BrickJob {
  kind: BrickJobKind;
  brick: { id: string; address: string };
  target: { id: string; address: string } | null;
  state: BrickJobState;
  /** Shares with a replica on the brick when the job started, and those moved off it. */
  shares: number;
  moved: number;
  /** Paths still to copy to new replicas (heal markers). */
  pending: number;
  current: string | null;
  error: string | null;
  startedAt: string;
  finishedAt: string | null;
}

export interface BrickStatus {
  id: string | null;
  address: string;
  host: string;
  zone: string;
  up: boolean;
  /** Shares the brick held when it last said hello. */
  shares: number;
  state: BrickState;
  lastError: string | null;
  job: BrickJob | null;
}

export interface BackendBricks {
  list(): Promise<BrickStatus[]>;
  /** Adds the brick at `address` (it must answer); new shares may be placed on it. */
  add(address: string): Promise<BrickStatus>;
  /** Puts the empty brick at `newAddress` in place of `brick` (id or address); heal refills it. */
  replace(brick: string, newAddress: string): Promise<BrickJob>;
  /** Drains `brick` (its replicas moved first), then removes it. */
  remove(brick: string): Promise<BrickJob>;
}

/** Split-brain policies (GlusterFS's): which copy of a path in split-brain wins. */
export const SPLIT_BRAIN_POLICIES = ['source-brick', 'latest-mtime', 'bigger-file'] as const;
export type SplitBrainPolicy = (typeof SPLIT_BRAIN_POLICIES)[number];

export interface HealReplica {
  brick: string;
  address: string;
  connected: boolean;
  /** Paths this replica holds markers for, at most a few hundred (count has them all). */
  entries: Array<{ path: string; splitBrain: boolean; healing: boolean }>;
  count: number;
}

export interface HealInfo {
  replicas: HealReplica[];
  lastHeal: {
    kind: 'index' | 'full';
    startedAt: string;
    finishedAt: string | null;
    stats: Record<string, number> | null;
    error: string | null;
  } | null;
  /** Snapshots a replica still lacks (copy) or still holds after a deletion elsewhere (delete). */
  snapshots?: Array<{ brick: string; snapshot: string; action: 'copy' | 'delete'; healing: boolean }>;
}

export interface ShareHeal {
  info(share: ShareRef): Promise<HealInfo>;
  /** Starts a heal of the share (an index heal, or a full walk) and returns without waiting. */
  start(share: ShareRef, full: boolean): Promise<void>;
  /** Resolves one path in split-brain by a policy; returns the replica whose copy won. */
  resolve(share: ShareRef, path: string, policy: SplitBrainPolicy, source?: string): Promise<string>;
}

export interface StorageComponent {
  /** e.g. abaca-brick, abaca-share-server */
  binary: string;
  /** Where it runs, as the backend names it (address, brick id). */
  host: string;
  zone: string;
  up: boolean;
  /** Disabled by an operator (setComponentDisabled), with the reason given. */
  disabled?: boolean;
  disabledReason?: string | null;
}
