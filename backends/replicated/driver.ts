/**
 * The `replicated` backend driver: the share API's Backend contract (backends/types.ts) over the
 * admin operations of abaca share servers. The share server does the work (placement, quota,
 * snapshots under its write barrier, access enforcement); this driver turns GiB into bytes, share
 * refs into admin calls, and the share server's errno codes into BackendErrors.
 *
 * Export locations are `abaca://HOST:PORT/SHARE_ID`, one per share server address, stable across
 * restarts because they are built from configuration, not from state.
 */
import { BackendError } from '../errors.ts';
import {
  type AccessRule,
  type AccessRuleState,
  type Backend,
  type BackendCapabilities,
  type BackendStats,
  type BrickJob,
  type BrickRecord,
  type BrickStatus,
  type BrickStore,
  type ExportLocation,
  type PoolStats,
  SHARE_PROTOCOLS,
  type ShareProtocol,
  type ShareRef,
} from '../types.ts';
import { ReplicatedClient } from './client/client.ts';
import { type ShareOwner, type ShareOwnerStore, ShareServerCluster } from './cluster.ts';
import { ReplicatedError, toReplicatedError } from './protocol/errors.ts';
import { OP } from './protocol/opcodes.ts';
import type { ClusterTls } from './protocol/tls.ts';
import type { CapacityReport, BrickJob as ServerBrickJob } from './protocol/types.ts';
import { splitAddr } from './protocol/wire-args.ts';

const GiB = 1024 ** 3;
/** Heal info lists at most this many paths per replica (its count has them all). */
const HEAL_ENTRIES_SHOWN = 200;

/** The extra spec that chooses a share's replica count, and the counts a type may ask for. */
export const REPLICA_COUNT_SPEC = 'abaca:replica_count';
export const REPLICA_COUNTS = [1, 3] as const;
export const DEFAULT_REPLICA_COUNT = 3;

/** Protocols a replicated share can be created with (see docs/backends.md for NFS). */
export const REPLICATED_PROTOCOLS: ShareProtocol[] = ['NATIVE', 'NFS'];

export interface ReplicatedBackendOptions {
  name: string;
  /** Share servers' admin addresses, `host:port`; the first that answers serves a call. */
  shareServers: string[];
  /** Addresses put in export locations (what clients can reach); default: shareServers. */
  exportAddresses?: string[];
  /** The share servers' admin token. */
  adminToken: string;
  protocols?: ShareProtocol[];
  /** Per admin call (ms). Snapshot, revert and clone of large trees take longer than one file op. */
  timeoutMs?: number;
  /** Cluster TLS (protocol/tls.ts): share servers are verified, and see this certificate. */
  tls?: ClusterTls;
  /**
   * Where share owners are kept (the API's database). With it and several share servers, the
   * driver runs the cluster monitor (cluster.ts): each share has one owner, moved when it fails.
   */
  owners?: ShareOwnerStore;
  /** Cluster monitor timing (ms): probe interval, and silence before a share server's shares move. */
  probeMs?: number;
  failoverMs?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  /** Where added and removed bricks are kept across restarts (the share servers are told again). */
  brickStore?: BrickStore;
}

/**
 * The replica count a share type asks for, or an error text when its `abaca:replica_count` spec is
 * not one of REPLICA_COUNTS. Used when a type is created and again when a share is.
 */
export function replicaCountOf(specs: Readonly<Record<string, string>> | undefined): number | string {
  const raw = specs?.[REPLICA_COUNT_SPEC];
  if (raw === undefined) return DEFAULT_REPLICA_COUNT;
  const n = Number(raw.trim());
  if (!(REPLICA_COUNTS as readonly number[]).includes(n))
    return `Extra spec ${REPLICA_COUNT_SPEC} must be one of ${REPLICA_COUNTS.join(', ')}, not ${JSON.stringify(raw)}.`;
  return n;
}

/** Share and snapshot ids become names on the bricks: plain ids only. */
function checkId(id: string, what: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$/.test(id))
    throw new BackendError('InvalidRequest', `${what} id ${JSON.stringify(id)} is not a valid id.`);
}

function checkSize(size: number, what: string): void {
  if (!Number.isSafeInteger(size) || size < 1)
    throw new BackendError(
      'InvalidRequest',
      `${what} must be a whole number of GiB, at least 1, not ${size}.`,
    );
}

export function createReplicatedBackend(options: ReplicatedBackendOptions): Backend {
  const { name } = options;
  if (options.shareServers.length === 0)
    throw new BackendError('InvalidRequest', `Backend ${name}: at least one share server is needed.`);
  const protocols = options.protocols ?? REPLICATED_PROTOCOLS;
  const exportAddresses = options.exportAddresses ?? options.shareServers;
  const capabilities: BackendCapabilities = {
    snapshotSupport: true,
    createShareFromSnapshotSupport: true,
    revertToSnapshotSupport: true,
    mountSnapshotSupport: false,
    driverHandlesShareServers: false,
    protocols,
    accessTypes: ['ip'],
  };
  let closed = false;
  const cluster =
    options.owners && options.shareServers.length > 1
      ? new ShareServerCluster({
          servers: options.shareServers,
          exportAddresses,
          adminToken: options.adminToken,
          tls: options.tls,
          store: options.owners,
          probeMs: options.probeMs,
          failoverMs: options.failoverMs,
          log: options.log,
        })
      : undefined;
  cluster?.start();

  /**
   * Runs one admin exchange on the first share server that accepts a connection — for a share of
   * a cluster, on its owner (waiting out a failover: the monitor moves the share within failoverMs).
   */
  async function admin<T>(
    what: string,
    fn: (c: ReplicatedClient, server: string) => Promise<T>,
    share?: { id: string; owner?: () => Promise<ShareOwner> },
  ): Promise<T> {
    if (closed) throw new BackendError('Unavailable', `Backend ${name} is closed.`);
    if (cluster && share) return onOwner(cluster, what, fn, share.owner ?? (() => cluster.place(share.id)));
    return onFirst(what, fn, options.shareServers);
  }

  async function onOwner<T>(
    c: ShareServerCluster,
    what: string,
    fn: (c: ReplicatedClient, server: string) => Promise<T>,
    ownerOf: () => Promise<ShareOwner>,
  ): Promise<T> {
    const deadline = Date.now() + c.failoverMs * 2 + 5000;
    for (;;) {
      const owner = await ownerOf();
      try {
        return await onFirst(what, fn, [owner.server]);
      } catch (err) {
        // Away, or not (yet) serving it: the monitor moves or re-assigns it; ask again.
        const code = err instanceof BackendError ? err.code : undefined;
        const cause = toReplicatedError((err as { cause?: unknown }).cause ?? err).code;
        const retry =
          code === 'Unavailable' &&
          ['ENOTCONN', 'ETIMEDOUT', 'EMOVED', 'EAGAIN', 'ESTALE', 'EIO'].includes(cause);
        if (!retry || Date.now() >= deadline || closed) throw err;
      }
      await new Promise((r) => setTimeout(r, c.probeMs));
    }
  }

  async function onFirst<T>(
    what: string,
    fn: (c: ReplicatedClient, server: string) => Promise<T>,
    servers: string[],
  ): Promise<T> {
    let lastError: unknown;
    for (const addr of servers) {
      const [host, port] = splitAddr(addr);
      let client: ReplicatedClient;
      try {
        client = await ReplicatedClient.connect({
          host,
          port,
          adminToken: options.adminToken,
          timeoutMs: options.timeoutMs ?? 120_000,
          tls: options.tls,
        });
      } catch (err) {
        lastError = err;
        continue;
      }
      try {
        return await fn(client, addr);
      } catch (err) {
        throw toBackendError(err, `${what} on backend ${name}`);
      } finally {
        client.close();
      }
    }
    throw new BackendError(
      'Unavailable',
      `${what} on backend ${name}: no share server answered (${servers.join(', ')}): ${(lastError as Error)?.message}`,
      { cause: lastError },
    );
  }

  /**
   * The share servers a brick change must reach: a cluster's live ones (each moves only the shares
   * it owns; one that is away learns the registry when it answers again — syncBricks), or the one
   * server that answers.
   */
  function brickServers(): string[] {
    if (!cluster) return options.shareServers;
    const live = options.shareServers.filter((s) => cluster.isUp(s));
    return live.length > 0 ? live : options.shareServers;
  }

  /** `fn` on each of `servers` at once; the answers of those that answered, or the first failure. */
  async function onEach<T>(
    what: string,
    fn: (c: ReplicatedClient) => Promise<T>,
    servers: string[],
  ): Promise<T[]> {
    if (closed) throw new BackendError('Unavailable', `Backend ${name} is closed.`);
    const res = await Promise.allSettled(servers.map((s) => onFirst(what, fn, [s])));
    const ok = res.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    if (ok.length === 0 && res[0]?.status === 'rejected') throw res[0].reason;
    return ok;
  }

  /**
   * A brick change started on one share server, started on the others of a cluster as well (each
   * moves the shares it owns). They resume it: the first already checked it and may have moved
   * shares meanwhile. One that does not answer now is told by syncBricks when it does.
   */
  async function alsoOnOthers(first: string, op: number, h: Record<string, unknown>): Promise<void> {
    if (!cluster) return;
    await onEach(
      'brick change',
      (c) => brickCall(c, op, h),
      brickServers().filter((s) => s !== first),
    ).catch((err: unknown) =>
      options.log?.(`brick change not started on every share server: ${errMessage(err)}`),
    );
  }

  /** Every brick change in the registry brought to each reachable share server; their views merged. */
  async function syncAll(): Promise<ServerBricks> {
    if (!cluster) return admin('brickList', (c) => syncBricks(c));
    return mergeViews(await onEach('brickList', (c) => syncBricks(c), brickServers()));
  }

  /** A share server's disabled state for the services list. */
  function disabledOf(addr: string): { disabled: boolean; disabledReason: string | null } {
    const d = cluster?.disabledOf(addr) ?? { disabled: false, reason: null };
    return { disabled: d.disabled, disabledReason: d.reason };
  }

  /** Every share server's address, the share's owner (when known) first and preferred. */
  function locations(id: string, owner?: ShareOwner): ExportLocation[] {
    const first = owner && cluster ? cluster.exportOf(owner.server) : exportAddresses[0];
    const ordered = [first!, ...exportAddresses.filter((a) => a !== first)];
    return ordered.map((addr, i) => ({
      path: `abaca://${addr}/${id}`,
      preferred: i === 0,
      isAdminOnly: false,
    }));
  }

  /** Tells the other share servers where a new share is served (clients asking them go there). */
  async function announce(id: string): Promise<void> {
    const owner = await ownerOf(id);
    if (owner) await cluster?.announce(owner);
  }

  /** The share's owner, when the driver runs a cluster. */
  const ownerOf = async (id: string): Promise<ShareOwner | undefined> => cluster?.owner(id);

  /** The share's size in GiB as the share server holds it; NotFound when it does not exist. */
  async function currentGiB(c: ReplicatedClient, id: string): Promise<number> {
    const usage = await c.usage(id);
    return Math.round(usage.size / GiB);
  }

  function pools(report: CapacityReport): PoolStats[] {
    return report.pools.map((p) => ({
      name: p.name,
      totalCapacityGiB: floor2(p.totalBytes / GiB),
      allocatedCapacityGiB: floor2(p.allocatedBytes / GiB),
      freeCapacityGiB: floor2(Math.max(0, Math.min(p.totalBytes - p.allocatedBytes, p.freeBytes)) / GiB),
    }));
  }

  function checkShare(share: ShareRef): void {
    checkId(share.id, 'Share');
  }

  function checkNew(share: ShareRef): number {
    checkShare(share);
    checkSize(share.size, 'A share size');
    if (!(SHARE_PROTOCOLS as readonly string[]).includes(share.shareProto))
      throw new BackendError('InvalidRequest', `Unknown share protocol ${JSON.stringify(share.shareProto)}.`);
    if (!protocols.includes(share.shareProto))
      throw new BackendError('NotSupported', `Backend ${name} does not serve ${share.shareProto} shares.`);
    const replicas = replicaCountOf(share.specs);
    if (typeof replicas === 'string') throw new BackendError('InvalidRequest', replicas);
    return replicas;
  }

  /** Same size: the share already exists (a repeated call); another size is a different share. */
  async function existing(c: ReplicatedClient, share: ShareRef): Promise<boolean> {
    try {
      const size = await currentGiB(c, share.id);
      if (size !== share.size)
        throw new BackendError(
          'InvalidRequest',
          `Share ${share.id} already exists with size ${size} GiB, not ${share.size} GiB.`,
        );
      return true;
    } catch (err) {
      if (err instanceof ReplicatedError && err.code === 'ENOENT') return false;
      throw err;
    }
  }

  /**
   * Sets the share's quota to newSize GiB. The same size again is success (a repeated call); the
   * wrong direction is InvalidRequest. The share server answers ENOSPC when the bricks cannot
   * promise the growth, or when the share holds more than the smaller size.
   */
  async function resize(c: ReplicatedClient, share: ShareRef, newSize: number, how: 'extend' | 'shrink') {
    checkShare(share);
    checkSize(newSize, 'The new size');
    const size = await currentGiB(c, share.id);
    if (how === 'extend' ? newSize < size : newSize > size)
      throw new BackendError(
        'InvalidRequest',
        `Cannot ${how} share ${share.id} from ${size} GiB to ${newSize} GiB.`,
      );
    if (newSize === size) return;
    try {
      await c.setSize(share.id, newSize * GiB);
    } catch (err) {
      if (!isCode(err, 'ENOSPC')) throw err;
      throw how === 'extend'
        ? new BackendError(
            'CapacityExceeded',
            `Not enough free capacity on backend ${name}: ${errMessage(err)}`,
          )
        : new BackendError(
            'ShrinkPossibleDataLoss',
            `Share ${share.id} holds more than ${newSize} GiB (${errMessage(err)}).`,
          );
    }
  }

  /** One brick admin call (server/bricks-admin.ts). */
  async function brickCall(
    c: ReplicatedClient,
    op: number,
    h: Record<string, unknown> = {},
  ): Promise<Record<string, unknown>> {
    try {
      return (await c.call(op, { ...h, token: options.adminToken })).header;
    } catch (err) {
      const e = toReplicatedError(err);
      const text = e.message.replace(/^[A-Z]+: /, '');
      if (e.code === 'EBUSY') throw new BackendError('Conflict', text, { cause: err });
      // A new brick that does not answer is the caller's to fix, not an outage of the backend.
      if (e.code === 'ENOTCONN' && (op === OP.brickAdd || op === OP.brickReplace))
        throw new BackendError('InvalidRequest', text, { cause: err });
      throw err;
    }
  }

  /**
   * Tells the share server what the registry holds (it knows only its `--bricks` after a restart):
   * added bricks are linked, removed and replaced ones forgotten, unfinished drains and replaces
   * resumed; finished jobs are recorded. Returns the server's view afterwards.
   */
  async function syncBricks(c: ReplicatedClient): Promise<ServerBricks> {
    let view = (await brickCall(c, OP.brickList)) as unknown as ServerBricks;
    const store = options.brickStore;
    if (!store) return view;
    const records = await store.list(name);
    let changed = false;
    for (const r of records) {
      const linked = view.bricks.find(
        (b) => b.addr === r.address || (r.brickId !== null && b.id === r.brickId),
      );
      const job = view.jobs.find(
        (j) => j.brick.addr === r.address || (r.brickId !== null && j.brick.id === r.brickId),
      );
      const quiet = (p: Promise<unknown>) =>
        p.then(
          () => {
            changed = true;
          },
          () => {},
        );
      if (r.state === 'active' && !linked) await quiet(brickCall(c, OP.brickAdd, { addr: r.address }));
      else if (r.state === 'draining') {
        if (job?.kind === 'remove' && job.state === 'done') {
          await store.save(name, { ...r, state: 'removed' });
          changed = true;
        } else if (job?.state !== 'running') {
          if (!linked) await quiet(brickCall(c, OP.brickAdd, { addr: r.address }));
          await quiet(brickCall(c, OP.brickRemove, { brick: r.address, id: r.brickId }));
        }
      } else if (r.state === 'replacing' && r.replacedBy !== null) {
        if (job?.kind === 'replace' && job.state === 'done') {
          await store.save(name, { ...r, state: 'replaced' });
          changed = true;
        } else if (job?.state !== 'running')
          await quiet(
            brickCall(c, OP.brickReplace, {
              brick: r.address,
              addr: r.replacedBy,
              id: r.brickId,
              resume: true,
            }),
          );
      } else if ((r.state === 'removed' || r.state === 'replaced') && linked && job?.state !== 'running')
        await quiet(brickCall(c, OP.brickForget, { brick: r.address }));
    }
    if (changed) view = (await brickCall(c, OP.brickList)) as unknown as ServerBricks;
    return view;
  }

  async function record(
    address: string,
    brickId: string | null,
    change: Partial<BrickRecord>,
  ): Promise<void> {
    const store = options.brickStore;
    if (!store) return;
    const old = (await store.list(name)).find((r) => r.address === address);
    await store.save(name, {
      address,
      brickId: brickId ?? old?.brickId ?? null,
      state: old?.state ?? 'active',
      replacedBy: old?.replacedBy ?? null,
      ...change,
    });
  }

  function statusOf(view: ServerBricks, records: BrickRecord[]): BrickStatus[] {
    const out: BrickStatus[] = view.bricks.map((b) => {
      const job = view.jobs.find((j) => j.brick.id === b.id) ?? null;
      const rec = records.find((r) => r.address === b.addr);
      return {
        id: b.id,
        address: b.addr,
        host: b.host,
        zone: b.zone,
        up: b.up,
        shares: b.shares,
        state:
          job?.state === 'running'
            ? job.kind === 'remove'
              ? 'draining'
              : 'replacing'
            : (rec?.state ?? 'active'),
        lastError: b.last_error,
        job: job ? jobOf(job) : null,
      };
    });
    // Bricks the server no longer links: replaced or removed, shown with their last job.
    for (const j of view.jobs)
      if (!out.some((b) => b.id === j.brick.id))
        out.push({
          id: j.brick.id,
          address: j.brick.addr,
          host: '',
          zone: '',
          up: false,
          shares: 0,
          state:
            j.state === 'done'
              ? j.kind === 'remove'
                ? 'removed'
                : 'replaced'
              : j.kind === 'remove'
                ? 'draining'
                : 'replacing',
          lastError: null,
          job: jobOf(j),
        });
    return out;
  }

  const backend: Backend = {
    name,

    stats: () =>
      admin('stats', async (c): Promise<BackendStats> => {
        // The scheduler polls stats: a restarted share server learns the registry here.
        if (options.brickStore) await (cluster ? syncAll() : syncBricks(c)).catch(() => {});
        const report = await c.capacity();
        return {
          backendName: name,
          driver: 'replicated',
          vendorName: 'abaca',
          driverVersion: '1.0',
          capabilities: structuredClone(capabilities),
          pools: pools(report),
        };
      }),

    createShare: async (share) => {
      const replicas = checkNew(share);
      const locs = await admin(
        'createShare',
        async (c) => {
          if (!(await existing(c, share)))
            // Closed until the share API grants a rule (updateAccess).
            await c.createShare(share.id, share.size * GiB, {
              replicas,
              pool: share.pool,
              access: [],
              project: share.projectId,
            });
          return locations(share.id, await ownerOf(share.id));
        },
        { id: share.id },
      );
      await announce(share.id);
      return locs;
    },

    createShareFromSnapshot: async (share, snapshot) => {
      const replicas = checkNew(share);
      checkId(snapshot.id, 'Snapshot');
      checkId(snapshot.shareId, 'Share');
      // The clone is made (and owned) where the source share is served: it reads the snapshot there.
      const place = async (c: ShareServerCluster) =>
        c.place(share.id, (await c.place(snapshot.shareId)).server);
      const locs = await admin(
        'createShareFromSnapshot',
        async (c) => {
          if (!(await existing(c, share))) {
            await c.cloneShare(share.id, share.size * GiB, {
              from: snapshot.shareId,
              snapshot: snapshot.id,
              replicas,
              pool: share.pool,
              project: share.projectId,
            });
          }
          return locations(share.id, await ownerOf(share.id));
        },
        { id: share.id, owner: cluster ? () => place(cluster) : undefined },
      );
      await announce(share.id);
      return locs;
    },

    deleteShare: async (share) => {
      checkShare(share);
      await admin('deleteShare', (c) => c.deleteShare(share.id), { id: share.id });
      await cluster?.forget(share.id);
    },

    extendShare: (share, newSize) =>
      admin('extendShare', (c) => resize(c, share, newSize, 'extend'), { id: share.id }),

    shrinkShare: (share, newSize) =>
      admin('shrinkShare', (c) => resize(c, share, newSize, 'shrink'), { id: share.id }),

    createSnapshot: (snapshot) =>
      admin(
        'createSnapshot',
        async (c) => {
          checkId(snapshot.id, 'Snapshot');
          checkId(snapshot.shareId, 'Share');
          await c.createSnapshot(snapshot.shareId, snapshot.id);
        },
        { id: snapshot.shareId },
      ),

    deleteSnapshot: (snapshot) =>
      admin(
        'deleteSnapshot',
        async (c) => {
          checkId(snapshot.id, 'Snapshot');
          checkId(snapshot.shareId, 'Share');
          await c.deleteSnapshot(snapshot.shareId, snapshot.id);
        },
        { id: snapshot.shareId },
      ),

    revertToSnapshot: (share, snapshot) =>
      admin(
        'revertToSnapshot',
        async (c) => {
          checkShare(share);
          checkId(snapshot.id, 'Snapshot');
          if (snapshot.shareId !== share.id)
            throw new BackendError(
              'InvalidRequest',
              `Snapshot ${snapshot.id} belongs to share ${snapshot.shareId}, not to share ${share.id}.`,
            );
          await c.revertToSnapshot(share.id, snapshot.id);
        },
        { id: share.id },
      ),

    updateAccess: (share, rules) =>
      admin(
        'updateAccess',
        async (c) => {
          checkShare(share);
          const states: Record<string, AccessRuleState> = {};
          const enforced: AccessRule[] = [];
          for (const r of rules) {
            if (capabilities.accessTypes.includes(r.accessType)) enforced.push(r);
            else states[r.id] = 'error';
          }
          const applied = await c.setAccess(
            share.id,
            enforced.map((r) => ({ id: r.id, to: r.accessTo, level: r.accessLevel })),
            share.projectId,
          );
          for (const r of enforced) states[r.id] = applied.includes(r.id) ? 'active' : 'error';
          return states;
        },
        { id: share.id },
      ),

    exportLocations: (share) =>
      admin(
        'exportLocations',
        async (c) => {
          checkShare(share);
          await currentGiB(c, share.id);
          return locations(share.id, await ownerOf(share.id));
        },
        { id: share.id },
      ),

    usage: (share) =>
      admin(
        'usage',
        async (c) => {
          checkShare(share);
          const u = await c.usage(share.id);
          return { usedBytes: u.used, files: u.nondirs };
        },
        { id: share.id },
      ),

    heal: {
      info: (share) =>
        admin(
          'healInfo',
          async (c) => {
            checkShare(share);
            const r = await c.healReport(share.id);
            return {
              replicas: r.bricks.map((b) => ({
                brick: b.brick,
                address: b.addr,
                connected: b.connected,
                entries: b.entries.slice(0, HEAL_ENTRIES_SHOWN),
                count: b.count,
              })),
              lastHeal: r.lastHeal,
              snapshots: r.snapshots,
            };
          },
          { id: share.id },
        ),
      start: (share, full) =>
        admin(
          'heal',
          async (c) => {
            checkShare(share);
            await c.startHeal(share.id, full);
          },
          { id: share.id },
        ),
      resolve: (share, path, policy, source) =>
        admin(
          'resolveSplitBrain',
          async (c) => {
            checkShare(share);
            return c.resolveSplitBrain(share.id, path, policy, source);
          },
          { id: share.id },
        ),
    },

    bricks: {
      list: async () => {
        const view = await syncAll();
        return statusOf(view, (await options.brickStore?.list(name)) ?? []);
      },
      add: (address) =>
        admin('brickAdd', async (c, server) => {
          checkAddress(address);
          const added = await brickCall(c, OP.brickAdd, { addr: address });
          await record(address, String(added['id']), { state: 'active', replacedBy: null });
          await alsoOnOthers(server, OP.brickAdd, { addr: address });
          const view = (await brickCall(c, OP.brickList)) as unknown as ServerBricks;
          const mine = statusOf(view, []).find((b) => b.address === address);
          if (!mine) throw new BackendError('Failed', `Brick ${address} was added but is not listed.`);
          return mine;
        }),
      replace: (brick, newAddress) =>
        admin('brickReplace', async (c, server) => {
          checkAddress(newAddress);
          const view = await syncBricks(c);
          const old = findBrick(view, brick);
          const r = await brickCall(c, OP.brickReplace, { brick: old.addr, addr: newAddress, id: old.id });
          const job = r['job'] as ServerBrickJob;
          await record(old.addr, job.brick.id, { state: 'replacing', replacedBy: newAddress });
          await record(newAddress, job.target?.id ?? null, { state: 'active', replacedBy: null });
          await alsoOnOthers(server, OP.brickReplace, {
            brick: old.addr,
            addr: newAddress,
            id: job.brick.id,
            resume: true,
          });
          return jobOf(job);
        }),
      remove: (brick) =>
        admin('brickRemove', async (c, server) => {
          const view = await syncBricks(c);
          const old = findBrick(view, brick);
          const r = await brickCall(c, OP.brickRemove, { brick: old.addr, id: old.id });
          const job = r['job'] as ServerBrickJob;
          await record(old.addr, job.brick.id, { state: job.state === 'done' ? 'removed' : 'draining' });
          if (job.state !== 'done')
            await alsoOnOthers(server, OP.brickRemove, { brick: old.addr, id: job.brick.id });
          return jobOf(job);
        }),
    },

    components: () =>
      admin('components', async (c) => {
        const bricks = await c.brickStatus();
        return [
          ...options.shareServers.map((addr) => ({
            binary: 'abaca-share-server',
            host: addr,
            zone: '',
            up: cluster ? cluster.isUp(addr) : true,
            ...disabledOf(addr),
          })),
          ...bricks.map((b) => ({
            binary: 'abaca-brick',
            host: `${String(b['addr'])} (${String(b['id'] ?? 'unknown id')})`,
            zone: String(b['zone'] ?? ''),
            up: b['up'] === true,
          })),
        ];
      }).catch(() =>
        // No share server answers: they are down, and what they would say of the bricks is unknown.
        options.shareServers.map((addr) => ({
          binary: 'abaca-share-server',
          host: addr,
          zone: '',
          up: false,
          ...disabledOf(addr),
        })),
      ),

    async setComponentDisabled(component, disabled, reason) {
      if (component.binary !== 'abaca-share-server')
        throw new BackendError(
          'NotSupported',
          `Only share servers (abaca-share-server) of backend ${name} can be disabled, not ${component.binary}; a brick is drained with abaca brick remove.`,
        );
      if (!options.shareServers.includes(component.host))
        throw new BackendError('NotFound', `Backend ${name} has no share server ${component.host}.`);
      if (!cluster)
        throw new BackendError(
          'NotSupported',
          `Backend ${name} has one share server (or no owner table): there is no other to hand its shares to.`,
        );
      if (
        disabled &&
        options.shareServers.every((s) => s === component.host || cluster.disabledOf(s).disabled)
      )
        throw new BackendError(
          'InvalidRequest',
          `Share server ${component.host} is the last one enabled on backend ${name}: its shares would have nowhere to go.`,
        );
      await cluster.setDisabled(component.host, disabled, disabled ? reason : null);
    },

    async close() {
      closed = true;
      await cluster?.close();
    },
  };
  return backend;
}

interface ServerBricks {
  bricks: Array<{
    id: string | null;
    addr: string;
    host: string;
    zone: string;
    up: boolean;
    shares: number;
    last_error: string | null;
  }>;
  jobs: ServerBrickJob[];
}

/**
 * One view of the bricks from several share servers' views: every brick any of them links, and
 * per brick one job — running while any server still works on it, done once one is done (a
 * server's job ends only when no share of any owner lists the brick), failed otherwise — with the
 * shares moved and the paths pending summed over the servers.
 */
function mergeViews(views: ServerBricks[]): ServerBricks {
  const bricks: ServerBricks['bricks'] = [];
  for (const v of views)
    for (const b of v.bricks) {
      const seen = bricks.find((x) => x.addr === b.addr);
      if (!seen) bricks.push({ ...b });
      else if (b.up && !seen.up) Object.assign(seen, { up: true, last_error: null, id: seen.id ?? b.id });
    }
  const byBrick = new Map<string, ServerBrickJob[]>();
  for (const v of views)
    for (const j of v.jobs) byBrick.set(j.brick.id, [...(byBrick.get(j.brick.id) ?? []), j]);
  const jobs = [...byBrick.values()].map((js): ServerBrickJob => {
    const state = js.some((j) => j.state === 'running')
      ? 'running'
      : js.some((j) => j.state === 'done')
        ? 'done'
        : 'failed';
    const finished = js.map((j) => j.finishedAt).filter((t): t is string => t !== null);
    return {
      ...js[0]!,
      state,
      shares: Math.max(...js.map((j) => j.shares)),
      moved: js.reduce((n, j) => n + j.moved, 0),
      pending: js.reduce((n, j) => n + j.pending, 0),
      current: js.find((j) => j.current !== null)?.current ?? null,
      error: state === 'failed' ? (js.find((j) => j.error !== null)?.error ?? null) : null,
      startedAt: js.map((j) => j.startedAt).sort()[0]!,
      finishedAt: state === 'running' ? null : (finished.sort().at(-1) ?? null),
    };
  });
  return { bricks, jobs };
}

function jobOf(j: ServerBrickJob): BrickJob {
  return {
    kind: j.kind,
    brick: { id: j.brick.id, address: j.brick.addr },
    target: j.target ? { id: j.target.id, address: j.target.addr } : null,
    state: j.state,
    shares: j.shares,
    moved: j.moved,
    pending: j.pending,
    current: j.current,
    error: j.error,
    startedAt: j.startedAt,
    finishedAt: j.finishedAt,
  };
}

/** A brick the share server links, by id or address; NotFound otherwise. */
function findBrick(view: ServerBricks, ref: string): { id: string | null; addr: string } {
  const b = view.bricks.find((x) => x.id === ref || x.addr === ref);
  if (!b) throw new BackendError('NotFound', `Brick ${ref} could not be found.`);
  return b;
}

function checkAddress(address: string): void {
  if (!/^[^\s:]+:\d{1,5}$/.test(address))
    throw new BackendError('InvalidRequest', `A brick address is host:port, not ${JSON.stringify(address)}.`);
}

const floor2 = (x: number) => Math.floor(x * 100) / 100;

function isCode(err: unknown, code: string): boolean {
  return err instanceof ReplicatedError && err.code === code;
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The share server's errno codes, as the share API's backend errors. */
function toBackendError(err: unknown, what: string): BackendError {
  if (err instanceof BackendError) return err;
  const e = toReplicatedError(err);
  const text = `${what}: ${e.message}`;
  switch (e.code) {
    case 'ENOENT':
      return new BackendError('NotFound', text, { cause: err });
    case 'EINVAL':
    case 'ENAMETOOLONG':
      return new BackendError('InvalidRequest', text, { cause: err });
    case 'ENOSPC':
      return new BackendError('CapacityExceeded', text, { cause: err });
    case 'ENOSYS':
      return new BackendError('NotSupported', text, { cause: err });
    case 'ENOTCONN':
    case 'ETIMEDOUT':
    case 'ESTALE':
    case 'EMOVED':
    case 'EAGAIN':
    case 'EBUSY':
      return new BackendError('Unavailable', text, { cause: err });
    default:
      return new BackendError('Failed', text, { cause: err });
  }
}
