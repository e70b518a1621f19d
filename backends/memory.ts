/**
 * In-process fake backend for API and service tests (Manila's fake_driver, Unleash's fake stores), but
 * honest: shares hold real "contents" (path → bytes) so tests can check revert and create-from-snapshot,
 * snapshots are deep copies, capacity is accounted per pool, calls are idempotent like a real backend's.
 * Tests steer it with injected failures and delays (`inject`) and read and write share contents directly.
 */
import { BackendError } from './errors.ts';
import {
  ACCESS_TYPES,
  type AccessRule,
  type AccessRuleState,
  type Backend,
  type BackendCapabilities,
  type BackendStats,
  type ExportLocation,
  SHARE_PROTOCOLS,
  type ShareRef,
  type ShareUsage,
  type SnapshotRef,
} from './types.ts';

const GiB = 1024 ** 3;

/** Backend calls that can be observed and have failures or delays injected. */
export const MEMORY_BACKEND_OPS = [
  'stats',
  'createShare',
  'createShareFromSnapshot',
  'deleteShare',
  'extendShare',
  'shrinkShare',
  'createSnapshot',
  'deleteSnapshot',
  'revertToSnapshot',
  'updateAccess',
  'exportLocations',
  'usage',
] as const;
export type MemoryBackendOp = (typeof MEMORY_BACKEND_OPS)[number];

export interface MemoryInjection {
  op: MemoryBackendOp;
  /** Thrown by the call (after any delay). */
  error?: Error;
  /** The call waits this long before doing anything. */
  delayMs?: number;
  /** How many calls it applies to; every matching call until clearInjections() when omitted. */
  times?: number;
  /** Only calls on this id: the snapshot's for createSnapshot/deleteSnapshot, else the share's. */
  id?: string;
  /**
   * 'before' (default): the call fails without doing anything. 'after': the work is done and then the
   * error is thrown, which is what a worker sees when it crashes or times out after the backend acted.
   */
  when?: 'before' | 'after';
}

export interface MemoryCall {
  op: MemoryBackendOp;
  id?: string;
}

interface MemoryShare {
  id: string;
  size: number;
  shareProto: ShareRef['shareProto'];
  pool: string;
  files: Map<string, Buffer>;
  accessRules: AccessRule[];
  accessStates: Record<string, AccessRuleState>;
  usageOverride?: Partial<ShareUsage>;
}

interface MemorySnapshot {
  id: string;
  shareId: string;
  size: number;
  files: Map<string, Buffer>;
}

/** The state behind a memory backend; pass the same store to a new instance to simulate a restart. */
export interface MemoryStore {
  shares: Map<string, MemoryShare>;
  snapshots: Map<string, MemorySnapshot>;
}

export function createMemoryStore(): MemoryStore {
  return { shares: new Map(), snapshots: new Map() };
}

export interface MemoryPoolOptions {
  name: string;
  totalCapacityGiB: number;
}

export interface MemoryBackendOptions {
  name?: string;
  /** Default: one pool `memory` of 1000 GiB. */
  pools?: MemoryPoolOptions[];
  /** Overrides; everything is supported by default. */
  capabilities?: Partial<Omit<BackendCapabilities, 'driverHandlesShareServers'>>;
  /** Host part of export locations (`<host>:/shares/<id>`). */
  exportHost?: string;
  /** Also return an admin-only, non-preferred export location, so API tests can check filtering. */
  adminExportLocation?: boolean;
  store?: MemoryStore;
}

export interface MemoryShareState {
  id: string;
  size: number;
  shareProto: ShareRef['shareProto'];
  pool: string;
  accessRules: AccessRule[];
  accessStates: Record<string, AccessRuleState>;
}

export interface MemoryBackend extends Backend {
  inject(injection: MemoryInjection): void;
  clearInjections(): void;
  /** Every call made, in order (including ones that failed). */
  readonly calls: readonly MemoryCall[];
  writeFile(shareId: string, path: string, data: string | Uint8Array): void;
  readFile(shareId: string, path: string): Buffer | undefined;
  removeFile(shareId: string, path: string): void;
  listFiles(shareId: string): string[];
  /** Pretends the share uses this much (fields left out are computed from the contents); undefined resets. */
  setUsage(shareId: string, usage: Partial<ShareUsage> | undefined): void;
  share(id: string): MemoryShareState | undefined;
  hasSnapshot(id: string): boolean;
}

export function createMemoryBackend(options: MemoryBackendOptions = {}): MemoryBackend {
  const name = options.name ?? 'memory';
  const store = options.store ?? createMemoryStore();
  const pools = options.pools ?? [{ name: 'memory', totalCapacityGiB: 1000 }];
  const capabilities: BackendCapabilities = {
    snapshotSupport: true,
    createShareFromSnapshotSupport: true,
    revertToSnapshotSupport: true,
    // Snapshots are not exported for mounting (the API has no snapshot export locations yet).
    mountSnapshotSupport: false,
    protocols: [...SHARE_PROTOCOLS],
    accessTypes: [...ACCESS_TYPES],
    ...options.capabilities,
    driverHandlesShareServers: false,
  };
  const host = options.exportHost ?? '127.0.0.1';
  let injections: Array<MemoryInjection & { left: number }> = [];
  const calls: MemoryCall[] = [];
  const sleepers = new Set<{ timer: NodeJS.Timeout; reject: (e: Error) => void }>();
  let closed = false;

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = {
        timer: setTimeout(() => {
          sleepers.delete(s);
          resolve();
        }, ms),
        reject,
      };
      sleepers.add(s);
    });
  }

  function take(op: MemoryBackendOp, id: string | undefined): MemoryInjection | undefined {
    const inj = injections.find((i) => i.op === op && (i.id === undefined || i.id === id) && i.left > 0);
    if (!inj) return undefined;
    inj.left -= 1;
    if (inj.left <= 0) injections = injections.filter((i) => i !== inj);
    return inj;
  }

  async function run<T>(op: MemoryBackendOp, id: string | undefined, work: () => T): Promise<T> {
    calls.push(id === undefined ? { op } : { op, id });
    if (closed) throw new BackendError('Unavailable', `Backend ${name} is closed.`);
    const inj = take(op, id);
    if (inj?.delayMs) await sleep(inj.delayMs);
    if (inj?.error && inj.when !== 'after') throw inj.error;
    const result = work();
    if (inj?.error && inj.when === 'after') throw inj.error;
    return result;
  }

  function locations(id: string): ExportLocation[] {
    const out: ExportLocation[] = [{ path: `${host}:/shares/${id}`, preferred: true, isAdminOnly: false }];
    if (options.adminExportLocation)
      out.push({ path: `${host}:/admin/shares/${id}`, preferred: false, isAdminOnly: true });
    return out;
  }

  function getShare(id: string): MemoryShare {
    checkId(id, 'share');
    const s = store.shares.get(id);
    if (!s) throw new BackendError('NotFound', `Share ${id} does not exist on backend ${name}.`);
    return s;
  }

  function getSnapshot(id: string): MemorySnapshot {
    checkId(id, 'snapshot');
    const s = store.snapshots.get(id);
    if (!s) throw new BackendError('NotFound', `Snapshot ${id} does not exist on backend ${name}.`);
    return s;
  }

  function allocated(pool: string): number {
    let sum = 0;
    for (const s of store.shares.values()) if (s.pool === pool) sum += s.size;
    return sum;
  }

  function reserve(pool: string, gib: number): void {
    const p = pools.find((x) => x.name === pool);
    if (!p) throw new BackendError('InvalidRequest', `Pool ${pool} does not exist on backend ${name}.`);
    const free = p.totalCapacityGiB - allocated(pool);
    if (gib > free)
      throw new BackendError(
        'CapacityExceeded',
        `Not enough free capacity in pool ${pool}: ${gib} GiB requested, ${free} GiB free.`,
      );
  }

  function usageOf(s: MemoryShare): ShareUsage {
    let usedBytes = 0;
    for (const b of s.files.values()) usedBytes += b.length;
    return { usedBytes, files: s.files.size, ...s.usageOverride };
  }

  function checkNewShare(share: ShareRef): MemoryShare | undefined {
    checkShareRef(share);
    if (!capabilities.protocols.includes(share.shareProto))
      throw new BackendError('NotSupported', `Backend ${name} does not serve ${share.shareProto} shares.`);
    const existing = store.shares.get(share.id);
    if (existing && existing.size !== share.size)
      throw new BackendError(
        'InvalidRequest',
        `Share ${share.id} already exists with size ${existing.size} GiB, not ${share.size} GiB.`,
      );
    return existing;
  }

  function insert(share: ShareRef, files: Map<string, Buffer>): void {
    store.shares.set(share.id, {
      id: share.id,
      size: share.size,
      shareProto: share.shareProto,
      pool: share.pool,
      files,
      accessRules: [],
      accessStates: {},
    });
  }

  const backend: MemoryBackend = {
    name,
    calls,

    stats: () =>
      run(
        'stats',
        undefined,
        (): BackendStats => ({
          backendName: name,
          driver: 'memory',
          vendorName: 'abaca',
          driverVersion: '1.0',
          capabilities: structuredClone(capabilities),
          pools: pools.map((p) => {
            const alloc = allocated(p.name);
            return {
              name: p.name,
              totalCapacityGiB: p.totalCapacityGiB,
              allocatedCapacityGiB: alloc,
              freeCapacityGiB: Math.max(0, p.totalCapacityGiB - alloc),
            };
          }),
        }),
      ),

    createShare: (share) =>
      run('createShare', share.id, () => {
        if (!checkNewShare(share)) {
          reserve(share.pool, share.size);
          insert(share, new Map());
        }
        return locations(share.id);
      }),

    createShareFromSnapshot: (share, snapshot) =>
      run('createShareFromSnapshot', share.id, () => {
        if (checkNewShare(share)) return locations(share.id);
        if (!capabilities.createShareFromSnapshotSupport)
          throw new BackendError('NotSupported', `Backend ${name} cannot create shares from snapshots.`);
        const snap = getSnapshot(snapshot.id);
        if (share.size < snap.size)
          throw new BackendError(
            'InvalidRequest',
            `Share size ${share.size} GiB is below the snapshot's size ${snap.size} GiB.`,
          );
        reserve(share.pool, share.size);
        insert(share, copyFiles(snap.files));
        return locations(share.id);
      }),

    deleteShare: (share) =>
      run('deleteShare', share.id, () => {
        checkId(share.id, 'share');
        store.shares.delete(share.id);
      }),

    extendShare: (share, newSize) =>
      run('extendShare', share.id, () => {
        checkSize(newSize);
        const s = getShare(share.id);
        if (newSize === s.size) return;
        if (newSize < s.size)
          throw new BackendError(
            'InvalidRequest',
            `New size ${newSize} GiB is below the current ${s.size} GiB.`,
          );
        reserve(s.pool, newSize - s.size);
        s.size = newSize;
      }),

    shrinkShare: (share, newSize) =>
      run('shrinkShare', share.id, () => {
        checkSize(newSize);
        const s = getShare(share.id);
        if (newSize === s.size) return;
        if (newSize > s.size)
          throw new BackendError(
            'InvalidRequest',
            `New size ${newSize} GiB is above the current ${s.size} GiB.`,
          );
        const used = usageOf(s).usedBytes;
        if (used > newSize * GiB)
          throw new BackendError(
            'ShrinkPossibleDataLoss',
            `Share ${s.id} uses ${used} bytes, more than the requested ${newSize} GiB; nothing was changed.`,
          );
        s.size = newSize;
      }),

    createSnapshot: (snapshot) =>
      run('createSnapshot', snapshot.id, () => {
        checkSnapshotRef(snapshot);
        if (!capabilities.snapshotSupport)
          throw new BackendError('NotSupported', `Backend ${name} does not support snapshots.`);
        const existing = store.snapshots.get(snapshot.id);
        if (existing) {
          if (existing.shareId !== snapshot.shareId)
            throw new BackendError(
              'InvalidRequest',
              `Snapshot ${snapshot.id} already exists for share ${existing.shareId}.`,
            );
          return;
        }
        const s = getShare(snapshot.shareId);
        store.snapshots.set(snapshot.id, {
          id: snapshot.id,
          shareId: s.id,
          size: s.size,
          files: copyFiles(s.files),
        });
      }),

    deleteSnapshot: (snapshot) =>
      run('deleteSnapshot', snapshot.id, () => {
        checkId(snapshot.id, 'snapshot');
        store.snapshots.delete(snapshot.id);
      }),

    revertToSnapshot: (share, snapshot) =>
      run('revertToSnapshot', share.id, () => {
        if (!capabilities.revertToSnapshotSupport)
          throw new BackendError('NotSupported', `Backend ${name} cannot revert shares to snapshots.`);
        const s = getShare(share.id);
        const snap = getSnapshot(snapshot.id);
        if (snap.shareId !== s.id)
          throw new BackendError('InvalidRequest', `Snapshot ${snap.id} is not a snapshot of share ${s.id}.`);
        // As in Manila, the share takes the snapshot's size (its quota logic reserves the difference).
        if (snap.size > s.size) reserve(s.pool, snap.size - s.size);
        s.files = copyFiles(snap.files);
        s.size = snap.size;
        s.usageOverride = undefined;
      }),

    updateAccess: (share, rules) =>
      run('updateAccess', share.id, () => {
        const s = getShare(share.id);
        checkRuleIds(rules);
        const states: Record<string, AccessRuleState> = {};
        for (const r of rules)
          states[r.id] = capabilities.accessTypes.includes(r.accessType) && validRule(r) ? 'active' : 'error';
        s.accessRules = structuredClone(rules);
        s.accessStates = { ...states };
        return states;
      }),

    exportLocations: (share) =>
      run('exportLocations', share.id, () => {
        getShare(share.id);
        return locations(share.id);
      }),

    usage: (share) => run('usage', share.id, () => usageOf(getShare(share.id))),

    async close() {
      closed = true;
      for (const s of sleepers) {
        clearTimeout(s.timer);
        s.reject(new BackendError('Unavailable', `Backend ${name} was closed during the call.`));
      }
      sleepers.clear();
    },

    inject(injection) {
      injections.push({ ...injection, left: injection.times ?? Number.POSITIVE_INFINITY });
    },
    clearInjections() {
      injections = [];
    },
    writeFile(shareId, path, data) {
      const s = getShare(shareId);
      s.files.set(checkFilePath(path), Buffer.from(data));
    },
    readFile(shareId, path) {
      const b = getShare(shareId).files.get(checkFilePath(path));
      return b ? Buffer.from(b) : undefined;
    },
    removeFile(shareId, path) {
      getShare(shareId).files.delete(checkFilePath(path));
    },
    listFiles(shareId) {
      return [...getShare(shareId).files.keys()].sort();
    },
    setUsage(shareId, usage) {
      getShare(shareId).usageOverride = usage && { ...usage };
    },
    share(id) {
      const s = store.shares.get(id);
      if (!s) return undefined;
      return structuredClone({
        id: s.id,
        size: s.size,
        shareProto: s.shareProto,
        pool: s.pool,
        accessRules: s.accessRules,
        accessStates: s.accessStates,
      });
    },
    hasSnapshot(id) {
      return store.snapshots.has(id);
    },
  };
  return backend;
}

function copyFiles(files: Map<string, Buffer>): Map<string, Buffer> {
  return new Map([...files].map(([p, b]) => [p, Buffer.from(b)]));
}

// The same rule as the local backend, so API tests see the same refusals whichever backend they use.
const PLAIN_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

function checkId(id: unknown, what: string): asserts id is string {
  if (typeof id !== 'string' || !PLAIN_ID.test(id) || id.includes('..'))
    throw new BackendError('InvalidRequest', `Invalid ${what} id ${JSON.stringify(id)}.`);
}

function checkSize(size: unknown): void {
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1)
    throw new BackendError('InvalidRequest', `Invalid size ${String(size)}: a whole number of GiB ≥ 1.`);
}

function checkShareRef(share: ShareRef): void {
  checkId(share.id, 'share');
  checkSize(share.size);
  if (!(SHARE_PROTOCOLS as readonly string[]).includes(share.shareProto))
    throw new BackendError('InvalidRequest', `Unknown share protocol ${String(share.shareProto)}.`);
}

function checkSnapshotRef(snapshot: SnapshotRef): void {
  checkId(snapshot.id, 'snapshot');
  checkId(snapshot.shareId, 'share');
}

function checkRuleIds(rules: AccessRule[]): void {
  const seen = new Set<string>();
  for (const r of rules) {
    if (seen.has(r.id)) throw new BackendError('InvalidRequest', `Access rule ${r.id} is listed twice.`);
    seen.add(r.id);
  }
}

function validRule(r: AccessRule): boolean {
  return (
    typeof r.accessTo === 'string' && r.accessTo !== '' && (r.accessLevel === 'rw' || r.accessLevel === 'ro')
  );
}

function checkFilePath(p: string): string {
  const parts = p.split('/');
  if (p === '' || p.includes('\0') || parts.some((x) => x === '' || x === '.' || x === '..'))
    throw new BackendError('InvalidRequest', `Invalid file path ${JSON.stringify(p)} (relative, no '..').`);
  return p;
}
