/**
 * The local backend: a directory per share on this machine, for development and single-host tests.
 *
 *   <rootDir>/shares/<id>/data          the share's files (the export location)
 *   <rootDir>/shares/<id>/share.json    size, protocol, pool, access rules (written atomically)
 *   <rootDir>/snapshots/<id>/data       a copy of the share's data (reflinked where the fs can)
 *   <rootDir>/snapshots/<id>/snapshot.json
 *   <rootDir>/tmp/                      staging and trash, emptied when a backend instance starts
 *
 * Every multi-step change has one commit point (a rename, or the metadata write) so a call that dies
 * half-way leaves either the old or the new state, and re-running it finishes the job. One process
 * per rootDir: the per-share locks are in-process.
 */
import { mkdir, readdir, rename, statfs } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { BackendError } from './errors.ts';
import { exists, keyedLock, readJson, removeTree, writeJsonAtomic } from './local-files.ts';
import { type CloneMethod, copyTree, probeReflink, treeUsage } from './local-tree.ts';
import {
  type AccessRule,
  type AccessRuleState,
  type Backend,
  type BackendCapabilities,
  type ExportLocation,
  SHARE_PROTOCOLS,
  type ShareProtocol,
  type ShareRef,
} from './types.ts';

const GiB = 1024 ** 3;
export const LOCAL_POOL = 'local';

/** Points inside multi-step calls where a test hook may "crash" the call (by throwing). */
export const LOCAL_STEPS = [
  'create-from-snapshot:copied',
  'snapshot:copied',
  'revert:copied',
  'revert:committed',
  'revert:old-moved',
  'revert:swapped',
  'delete-share:moved',
  'delete-snapshot:moved',
] as const;
export type LocalStep = (typeof LOCAL_STEPS)[number];

export interface LocalBackendOptions {
  name: string;
  rootDir: string;
  /** The pool's total; shares' sizes are accounted against it. */
  capacityGiB: number;
  /** 'auto' (default) reflinks when the filesystem supports it; 'always' refuses snapshots otherwise. */
  reflink?: 'auto' | 'always' | 'never';
  /** Protocols accepted (a local directory serves none itself). Default: all. */
  protocols?: ShareProtocol[];
  /** Test hook, awaited at each step; throwing from it simulates a crash there. */
  onStep?: (step: LocalStep, id: string) => void | Promise<void>;
}

export interface LocalBackend extends Backend {
  readonly rootDir: string;
  /** How snapshots and clones copy files here (detected once per backend instance). */
  cloneMethod(): Promise<CloneMethod>;
}

interface ShareMeta {
  version: 1;
  id: string;
  size: number;
  /** The share's shareProto; `proto` is the field's name in meta files already written. */
  proto: ShareProtocol;
  pool: string;
  createdAt: string;
  sourceSnapshotId?: string;
  accessRules: AccessRule[];
  accessStates: Record<string, AccessRuleState>;
}

interface SnapshotMeta {
  version: 1;
  id: string;
  shareId: string;
  size: number;
  createdAt: string;
  method: CloneMethod;
}

export function createLocalBackend(options: LocalBackendOptions): LocalBackend {
  const { name } = options;
  const root = resolve(options.rootDir);
  const reflinkMode = options.reflink ?? 'auto';
  const protocols = options.protocols ?? [...SHARE_PROTOCOLS];
  const capabilities: BackendCapabilities = {
    snapshotSupport: true,
    createShareFromSnapshotSupport: true,
    revertToSnapshotSupport: true,
    // Snapshots are not exported for mounting.
    mountSnapshotSupport: false,
    driverHandlesShareServers: false,
    protocols,
    // A directory has no network access control: ip rules are recorded (see updateAccess).
    accessTypes: ['ip'],
  };
  const withLock = keyedLock();
  const tmp = join(root, 'tmp');
  const shareDir = (id: string) => join(root, 'shares', id);
  const dataDir = (id: string) => join(shareDir(id), 'data');
  const shareMetaFile = (id: string) => join(shareDir(id), 'share.json');
  const snapDir = (id: string) => join(root, 'snapshots', id);
  let closed = false;
  let ready: Promise<void> | undefined;
  let method: Promise<CloneMethod> | undefined;

  async function step(s: LocalStep, id: string): Promise<void> {
    await options.onStep?.(s, id);
  }

  async function init(): Promise<void> {
    await mkdir(join(root, 'shares'), { recursive: true });
    await mkdir(join(root, 'snapshots'), { recursive: true });
    // Leftovers of calls that died; their re-runs start over (or were never going to come).
    await removeTree(tmp);
    await mkdir(tmp);
    for (const id of await readdir(join(root, 'shares'))) await recoverShare(id);
  }

  function cloneMethod(): Promise<CloneMethod> {
    if (reflinkMode === 'never') return Promise.resolve('copy');
    method ??= (async () => {
      await mkdir(tmp, { recursive: true });
      const found = await probeReflink(tmp);
      if (found !== 'reflink' && reflinkMode === 'always')
        throw new BackendError('NotSupported', `The filesystem under ${root} does not support reflinks.`);
      return found;
    })();
    method.catch(() => {
      method = undefined;
    });
    return method;
  }

  async function op<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (closed) throw new BackendError('Unavailable', `Backend ${name} is closed.`);
    try {
      ready ??= init();
      await ready.catch((err) => {
        ready = undefined;
        throw err;
      });
      return await fn();
    } catch (err) {
      throw toBackendError(err, `${what} on backend ${name}`);
    }
  }

  async function readShareMeta(id: string): Promise<ShareMeta | undefined> {
    return (await readJson(shareMetaFile(id))) as ShareMeta | undefined;
  }

  async function getShareMeta(id: string): Promise<ShareMeta> {
    const meta = await readShareMeta(id);
    if (!meta) throw new BackendError('NotFound', `Share ${id} does not exist on backend ${name}.`);
    return meta;
  }

  async function getSnapshotMeta(id: string): Promise<SnapshotMeta> {
    const meta = (await readJson(join(snapDir(id), 'snapshot.json'))) as SnapshotMeta | undefined;
    if (!meta) throw new BackendError('NotFound', `Snapshot ${id} does not exist on backend ${name}.`);
    return meta;
  }

  function locations(id: string): ExportLocation[] {
    return [{ path: dataDir(id), preferred: true, isAdminOnly: false }];
  }

  /**
   * Finishes a committed revert (data.revert exists) and removes what an interrupted one left. Runs
   * under the share's lock, so a data.revert.partial here is never one being written.
   */
  async function recoverShare(id: string): Promise<void> {
    const dir = shareDir(id);
    if (await exists(join(dir, 'data.revert'))) await swapInRevert(id);
    await removeTree(join(dir, 'data.revert.partial'));
    await removeTree(join(dir, 'revert.json'));
    await removeTree(join(dir, 'data.old'));
  }

  async function swapInRevert(id: string): Promise<void> {
    const dir = shareDir(id);
    // The size first: once data.revert is gone a recovery would no longer know to apply it.
    const target = (await readJson(join(dir, 'revert.json'))) as { size: number } | undefined;
    const meta = await readShareMeta(id);
    if (target && meta && meta.size !== target.size)
      await writeJsonAtomic(shareMetaFile(id), { ...meta, size: target.size });
    await removeTree(join(dir, 'data.old'));
    // No atomic directory exchange in Node: move the old tree aside, then the new one in. A crash
    // between the two renames leaves data.revert, which recoverShare() swaps in.
    if (await exists(join(dir, 'data'))) await rename(join(dir, 'data'), join(dir, 'data.old'));
    await step('revert:old-moved', id);
    await rename(join(dir, 'data.revert'), join(dir, 'data'));
    await step('revert:swapped', id);
    await removeTree(join(dir, 'revert.json'));
    await removeTree(join(dir, 'data.old'));
  }

  /** Shares' sizes, per the metadata files. */
  async function allocatedGiB(): Promise<number> {
    let sum = 0;
    for (const id of await readdir(join(root, 'shares'))) {
      const meta = await readShareMeta(id).catch(() => undefined);
      if (meta) sum += meta.size;
    }
    return sum;
  }

  // Capacity checks and the metadata writes they guard run under one lock so two creates cannot both
  // take the last GiB.
  async function reserve(pool: string, gib: number, commit?: () => Promise<void>): Promise<void> {
    if (pool !== LOCAL_POOL)
      throw new BackendError('InvalidRequest', `Pool ${pool} does not exist on backend ${name}.`);
    await withLock('capacity', async () => {
      const free = options.capacityGiB - (await allocatedGiB());
      if (gib > free)
        throw new BackendError(
          'CapacityExceeded',
          `Not enough free capacity on backend ${name}: ${gib} GiB requested, ${free} GiB free.`,
        );
      await commit?.();
    });
  }

  /** Creates a share: fill() makes its data directory, the metadata write commits it. */
  async function buildShare(share: ShareRef, meta: ShareMeta, fill: () => Promise<void>): Promise<void> {
    await reserve(share.pool, share.size); // early refusal, before any copying
    try {
      await fill();
      await reserve(share.pool, share.size, () => writeJsonAtomic(shareMetaFile(share.id), meta));
    } catch (err) {
      // Without metadata nothing here was ever handed out.
      if (!(await exists(shareMetaFile(share.id)))) await removeTree(shareDir(share.id));
      throw err;
    }
  }

  function newShareMeta(share: ShareRef, sourceSnapshotId?: string): ShareMeta {
    return {
      version: 1,
      id: share.id,
      size: share.size,
      proto: share.shareProto,
      pool: share.pool,
      createdAt: new Date().toISOString(),
      ...(sourceSnapshotId === undefined ? {} : { sourceSnapshotId }),
      accessRules: [],
      accessStates: {},
    };
  }

  /** The existing share when this create already happened; throws when it cannot happen. */
  async function checkNewShare(share: ShareRef): Promise<ShareMeta | undefined> {
    checkShareRef(share);
    if (!protocols.includes(share.shareProto))
      throw new BackendError('NotSupported', `Backend ${name} does not serve ${share.shareProto} shares.`);
    await recoverShare(share.id);
    const existing = await readShareMeta(share.id);
    if (existing && existing.size !== share.size)
      throw new BackendError(
        'InvalidRequest',
        `Share ${share.id} already exists with size ${existing.size} GiB, not ${share.size} GiB.`,
      );
    return existing;
  }

  const backend: LocalBackend = {
    name,
    rootDir: root,
    cloneMethod: () => op('cloneMethod', cloneMethod),

    stats: () =>
      op('stats', async () => {
        const allocated = await allocatedGiB();
        const fsStats = await statfs(root);
        const diskFreeGiB = Math.floor(((fsStats.bavail * fsStats.bsize) / GiB) * 100) / 100;
        return {
          backendName: name,
          driver: 'local',
          vendorName: 'abaca',
          driverVersion: '1.0',
          capabilities: structuredClone(capabilities),
          pools: [
            {
              name: LOCAL_POOL,
              totalCapacityGiB: options.capacityGiB,
              allocatedCapacityGiB: allocated,
              freeCapacityGiB: Math.max(0, Math.min(options.capacityGiB - allocated, diskFreeGiB)),
            },
          ],
        };
      }),

    createShare: (share) =>
      op('createShare', () =>
        withLock(share.id, async () => {
          if (await checkNewShare(share)) return locations(share.id);
          // A directory left by an earlier attempt (created, metadata not yet written) is reused.
          await buildShare(share, newShareMeta(share), async () => {
            await mkdir(dataDir(share.id), { recursive: true });
          });
          return locations(share.id);
        }),
      ),

    createShareFromSnapshot: (share, snapshot) =>
      op('createShareFromSnapshot', () =>
        withLock(share.id, async () => {
          checkId(snapshot.id, 'snapshot');
          if (await checkNewShare(share)) return locations(share.id);
          const snap = await getSnapshotMeta(snapshot.id);
          if (share.size < snap.size)
            throw new BackendError(
              'InvalidRequest',
              `Share size ${share.size} GiB is below the snapshot's size ${snap.size} GiB.`,
            );
          const dir = shareDir(share.id);
          await buildShare(share, newShareMeta(share, snap.id), async () => {
            // Without metadata nothing here was ever handed out: start over.
            await removeTree(dir);
            await mkdir(dir, { recursive: true });
            await copyTree(join(snapDir(snap.id), 'data'), join(dir, 'data.partial'), await cloneMethod());
            await step('create-from-snapshot:copied', share.id);
            await rename(join(dir, 'data.partial'), dataDir(share.id));
          });
          return locations(share.id);
        }),
      ),

    deleteShare: (share) =>
      op('deleteShare', () =>
        withLock(share.id, async () => {
          checkId(share.id, 'share');
          const trash = join(tmp, `deleted-share-${share.id}`);
          await removeTree(trash);
          // One rename makes the share disappear at once; the slow removal happens in the trash.
          if (await exists(shareDir(share.id))) {
            await rename(shareDir(share.id), trash);
            await step('delete-share:moved', share.id);
          }
          await removeTree(trash);
        }),
      ),

    extendShare: (share, newSize) =>
      op('extendShare', () =>
        withLock(share.id, async () => {
          checkId(share.id, 'share');
          checkSize(newSize);
          // A revert that failed after its commit point sets the size when it is finished: finish it
          // first, or it would later undo this extend.
          await recoverShare(share.id);
          const meta = await getShareMeta(share.id);
          if (newSize === meta.size) return;
          if (newSize < meta.size)
            throw new BackendError(
              'InvalidRequest',
              `New size ${newSize} GiB is below the current ${meta.size} GiB.`,
            );
          await reserve(meta.pool, newSize - meta.size, () =>
            writeJsonAtomic(shareMetaFile(share.id), { ...meta, size: newSize }),
          );
        }),
      ),

    shrinkShare: (share, newSize) =>
      op('shrinkShare', () =>
        withLock(share.id, async () => {
          checkId(share.id, 'share');
          checkSize(newSize);
          await recoverShare(share.id);
          const meta = await getShareMeta(share.id);
          if (newSize === meta.size) return;
          if (newSize > meta.size)
            throw new BackendError(
              'InvalidRequest',
              `New size ${newSize} GiB is above the current ${meta.size} GiB.`,
            );
          // Nothing stops a client writing between this walk and the metadata write: a directory has no
          // quota to set. The check is as good as the walk.
          const used = (await treeUsage(dataDir(share.id))).usedBytes;
          if (used > newSize * GiB)
            throw new BackendError(
              'ShrinkPossibleDataLoss',
              `Share ${share.id} uses ${used} bytes, more than the requested ${newSize} GiB; nothing was changed.`,
            );
          await writeJsonAtomic(shareMetaFile(share.id), { ...meta, size: newSize });
        }),
      ),

    createSnapshot: (snapshot) =>
      op('createSnapshot', () =>
        withLock(snapshot.shareId, async () => {
          checkId(snapshot.id, 'snapshot');
          checkId(snapshot.shareId, 'share');
          const existing = (await readJson(join(snapDir(snapshot.id), 'snapshot.json'))) as
            | SnapshotMeta
            | undefined;
          if (existing) {
            if (existing.shareId !== snapshot.shareId)
              throw new BackendError(
                'InvalidRequest',
                `Snapshot ${snapshot.id} already exists for share ${existing.shareId}.`,
              );
            return;
          }
          await recoverShare(snapshot.shareId);
          const share = await getShareMeta(snapshot.shareId);
          const how = await cloneMethod();
          const staging = join(tmp, `snapshot-${snapshot.id}`);
          await removeTree(staging);
          await mkdir(staging);
          await copyTree(dataDir(share.id), join(staging, 'data'), how);
          const meta: SnapshotMeta = {
            version: 1,
            id: snapshot.id,
            shareId: share.id,
            size: share.size,
            createdAt: new Date().toISOString(),
            method: how,
          };
          await writeJsonAtomic(join(staging, 'snapshot.json'), meta);
          await step('snapshot:copied', snapshot.id);
          // A directory without snapshot.json can only be a leftover; the rename below is the commit.
          await removeTree(snapDir(snapshot.id));
          await rename(staging, snapDir(snapshot.id));
        }),
      ),

    deleteSnapshot: (snapshot) =>
      op('deleteSnapshot', () =>
        withLock(snapshot.shareId, async () => {
          checkId(snapshot.id, 'snapshot');
          const trash = join(tmp, `deleted-snapshot-${snapshot.id}`);
          await removeTree(trash);
          await removeTree(join(tmp, `snapshot-${snapshot.id}`));
          if (await exists(snapDir(snapshot.id))) {
            await rename(snapDir(snapshot.id), trash);
            await step('delete-snapshot:moved', snapshot.id);
          }
          await removeTree(trash);
        }),
      ),

    revertToSnapshot: (share, snapshot) =>
      op('revertToSnapshot', () =>
        withLock(share.id, async () => {
          checkId(share.id, 'share');
          checkId(snapshot.id, 'snapshot');
          await recoverShare(share.id);
          const meta = await getShareMeta(share.id);
          const snap = await getSnapshotMeta(snapshot.id);
          if (snap.shareId !== share.id)
            throw new BackendError(
              'InvalidRequest',
              `Snapshot ${snap.id} is not a snapshot of share ${share.id}.`,
            );
          // As in Manila, the share takes the snapshot's size (its quota logic reserves the difference).
          if (snap.size > meta.size) await reserve(meta.pool, snap.size - meta.size);
          const dir = shareDir(share.id);
          await writeJsonAtomic(join(dir, 'revert.json'), { snapshotId: snap.id, size: snap.size });
          // Build the snapshot's tree beside the data, commit by renaming it to data.revert, then swap.
          try {
            await copyTree(
              join(snapDir(snap.id), 'data'),
              join(dir, 'data.revert.partial'),
              await cloneMethod(),
            );
          } catch (err) {
            await removeTree(join(dir, 'data.revert.partial'));
            throw err;
          }
          await step('revert:copied', share.id);
          await rename(join(dir, 'data.revert.partial'), join(dir, 'data.revert'));
          await step('revert:committed', share.id);
          await swapInRevert(share.id);
        }),
      ),

    updateAccess: (share, rules) =>
      op('updateAccess', () =>
        withLock(share.id, async () => {
          checkId(share.id, 'share');
          const meta = await getShareMeta(share.id);
          const states: Record<string, AccessRuleState> = {};
          for (const r of rules) {
            if (r.id in states)
              throw new BackendError('InvalidRequest', `Access rule ${r.id} is listed twice.`);
            // Per-rule 'error' rather than refusing the call, so one unsupported rule does not
            // take the share's valid ip rules down with it.
            states[r.id] = r.accessType === 'ip' && validIpRule(r) ? 'active' : 'error';
          }
          await writeJsonAtomic(shareMetaFile(share.id), {
            ...meta,
            accessRules: structuredClone(rules),
            accessStates: states,
          });
          return { ...states };
        }),
      ),

    exportLocations: (share) =>
      op('exportLocations', async () => {
        checkId(share.id, 'share');
        await getShareMeta(share.id);
        return locations(share.id);
      }),

    usage: (share) =>
      op('usage', () =>
        withLock(share.id, async () => {
          checkId(share.id, 'share');
          await recoverShare(share.id);
          await getShareMeta(share.id);
          return treeUsage(dataDir(share.id));
        }),
      ),

    async close() {
      closed = true;
    },
  };
  return backend;
}

function toBackendError(err: unknown, what: string): BackendError {
  if (err instanceof BackendError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return new BackendError('CapacityExceeded', `${what}: out of disk space (${message}).`, { cause: err });
  return new BackendError('Failed', `${what} failed: ${message}`, { cause: err });
}

// Ids become path components: letters, digits, '_', '-', '.', not starting with '.', no '..'.
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

function validIpRule(r: AccessRule): boolean {
  const [addr, prefix, ...rest] = r.accessTo.split('/');
  const family = isIP(addr ?? '');
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  const n = Number(prefix);
  return /^\d{1,3}$/.test(prefix) && n <= (family === 4 ? 32 : 128);
}
