/**
 * Client library for the native protocol, shaped like `fs/promises` (paths are share-relative:
 * 'dir/file', '' is the root). Large reads and writes are split into chunks kept in flight together.
 */
import { ReplicatedError } from '../protocol/errors.ts';
import { OP } from '../protocol/opcodes.ts';
import { type Reply, RpcClient } from '../protocol/rpc-client.ts';
import type { ClusterTls } from '../protocol/tls.ts';
import type {
  Attr,
  CapacityReport,
  DirEntry,
  HealInfoBrick,
  LastHeal,
  ShareInfo,
  SnapshotHealEntry,
  StatFs,
} from '../protocol/types.ts';

export type { CapacityReport };

type AccessList = NonNullable<ShareInfo['access']>;

import { OPEN_FLAGS, type OpenFlags, ReplicatedFileHandle } from './client-file-handle.ts';

export interface ClientOptions {
  host: string;
  port: number;
  /** Share to mount; admin-only clients may omit it. */
  share?: string;
  /** Per-request timeout (ms); 0 = none. */
  timeoutMs?: number;
  chunkBytes?: number;
  window?: number;
  /** Sent with admin operations (the share server's ABACA_ADMIN_TOKEN). */
  adminToken?: string;
  /**
   * An identity token (Keystone or application credential) of the share's project, sent with the
   * mount when no admin token is given; share servers with an identity service require it.
   */
  token?: string;
  /**
   * Cluster TLS: the share server is verified against the cluster CA; a certificate, when given,
   * is presented (admin operations need one).
   */
  tls?: ClusterTls;
}

export interface WriteOptions {
  mode?: number;
  /** fsync before resolving. */
  fsync?: boolean;
}

/** What `serverState` answers. */
export interface ServerState {
  /** Changes at every start of the share server. */
  id: string;
  managed: boolean;
  shares: string[];
  bricksUp: number;
  bricks: number;
}

export class ReplicatedClient {
  private constructor(
    readonly rpc: RpcClient,
    private readonly opts: ClientOptions,
  ) {}

  static async connect(opts: ClientOptions): Promise<ReplicatedClient> {
    const rpc = await RpcClient.connect(opts.host, opts.port, 5000, { tls: opts.tls });
    const c = new ReplicatedClient(rpc, opts);
    // With the admin token the mount is the operator's: not held to the share's access rules.
    if (opts.share !== undefined) {
      const token = opts.adminToken ?? opts.token;
      const header = token ? { share: opts.share, token } : { share: opts.share };
      await c.call(OP.mount, header).catch((err: unknown) => {
        rpc.close();
        throw err;
      });
    }
    return c;
  }

  get chunk(): number {
    return this.opts.chunkBytes ?? 1 << 20;
  }

  /** One request; the reply's payload as one buffer, or as the socket chunks it arrived in (`parts`). */
  async call(op: number, header: object, payload?: Buffer): Promise<Reply> {
    return this.rpc.request(op, header, payload, this.opts.timeoutMs ?? 60_000);
  }

  close(): void {
    this.rpc.close();
  }

  // ---- fs/promises-like ----------------------------------------------------------------------
  async stat(path: string): Promise<Attr> {
    return (await this.call(OP.getattr, { path })).header['attr'] as Attr;
  }

  lstat(path: string): Promise<Attr> {
    return this.stat(path);
  }

  /** Opens a file like `fs/promises.open` (flags r, r+, w, w+, wx, wx+, a, a+). */
  async open(path: string, flags: OpenFlags = 'r', mode = 0o644): Promise<ReplicatedFileHandle> {
    if (!(OPEN_FLAGS as readonly string[]).includes(flags))
      throw new ReplicatedError('EINVAL', `bad flags ${flags}`);
    if (flags.startsWith('w')) {
      await this.call(OP.create, { path, mode, excl: flags.startsWith('wx'), trunc: true }, Buffer.alloc(0));
    } else if (flags.startsWith('a')) {
      await this.create(path, mode);
    }
    const st = await this.stat(path);
    if (st.type === 'dir' && flags !== 'r') throw new ReplicatedError('EISDIR', path);
    return new ReplicatedFileHandle(this, path, flags, 0, st.size);
  }

  async lookup(dir: string, name: string): Promise<Attr> {
    return (await this.call(OP.lookup, { dir, name })).header['attr'] as Attr;
  }

  async exists(path: string): Promise<boolean> {
    try {
      await this.stat(path);
      return true;
    } catch (err) {
      if (err instanceof ReplicatedError && err.code === 'ENOENT') return false;
      throw err;
    }
  }

  async create(path: string, mode = 0o644, excl = false): Promise<void> {
    await this.call(OP.create, { path, mode, excl });
  }

  /**
   * Creates (or truncates) `path` and writes `data` at offset 0 in one replicated operation;
   * `sync` flushes it on every replica before the answer. For files up to one chunk.
   */
  async createWith(
    path: string,
    data: Buffer,
    opts: { mode?: number; excl?: boolean; sync?: boolean } = {},
  ): Promise<void> {
    if (data.length > this.chunk)
      throw new ReplicatedError('EINVAL', 'createWith is for files up to one chunk');
    await this.call(
      OP.create,
      { path, mode: opts.mode ?? 0o644, excl: opts.excl === true, trunc: true, sync: opts.sync === true },
      data,
    );
  }

  async mkdir(path: string, opts: { mode?: number; recursive?: boolean } = {}): Promise<void> {
    if (opts.recursive) {
      const parts = path.split('/');
      for (let i = 1; i <= parts.length; i++) {
        try {
          await this.call(OP.mkdir, { path: parts.slice(0, i).join('/'), mode: opts.mode ?? 0o755 });
        } catch (err) {
          if (!(err instanceof ReplicatedError && err.code === 'EEXIST')) throw err;
        }
      }
      return;
    }
    await this.call(OP.mkdir, { path, mode: opts.mode ?? 0o755 });
  }

  async write(path: string, offset: number, data: Buffer): Promise<number> {
    await this.call(OP.write, { path, off: offset }, data);
    return data.length;
  }

  async read(path: string, offset: number, length: number): Promise<Buffer> {
    return (await this.call(OP.read, { path, off: offset, len: length })).payload;
  }

  /** Writes `data` at `offset` in chunks, `window` of them in flight. */
  async writeAt(path: string, offset: number, data: Buffer): Promise<void> {
    const chunk = this.chunk;
    const window = this.opts.window ?? 16;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < data.length) {
        const at = next;
        next += chunk;
        await this.write(path, offset + at, data.subarray(at, Math.min(data.length, at + chunk)));
      }
    };
    await Promise.all(
      Array.from({ length: Math.max(1, Math.min(window, Math.ceil(data.length / chunk))) }, worker),
    );
  }

  async writeFile(path: string, data: Buffer | string, opts: WriteOptions = {}): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    if (buf.length <= this.chunk) {
      await this.createWith(path, buf, { mode: opts.mode, sync: opts.fsync });
      return;
    }
    await this.create(path, opts.mode ?? 0o644);
    await this.truncate(path, 0);
    if (buf.length > 0) await this.writeAt(path, 0, buf);
    if (opts.fsync) await this.fsync(path);
  }

  async appendFile(path: string, data: Buffer | string): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    await this.create(path);
    const st = await this.stat(path);
    await this.writeAt(path, st.size, buf);
  }

  async readFile(path: string): Promise<Buffer> {
    const st = await this.stat(path);
    if (st.type === 'dir') throw new ReplicatedError('EISDIR', path);
    const chunk = this.chunk;
    const n = Math.ceil(st.size / chunk);
    const parts: Buffer[] = new Array(n);
    const window = this.opts.window ?? 16;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < n) {
        const i = next++;
        parts[i] = await this.read(path, i * chunk, chunk);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(window, n)) }, worker));
    return Buffer.concat(parts);
  }

  async truncate(path: string, size = 0): Promise<void> {
    await this.call(OP.setattr, { path, size });
  }

  async chmod(path: string, mode: number): Promise<void> {
    await this.call(OP.setattr, { path, mode });
  }

  async utimes(path: string, atimeMs: number, mtimeMs: number): Promise<void> {
    await this.call(OP.setattr, { path, atimeMs, mtimeMs });
  }

  async unlink(path: string): Promise<void> {
    await this.call(OP.unlink, { path });
  }

  async rmdir(path: string): Promise<void> {
    await this.call(OP.rmdir, { path });
  }

  async rename(from: string, to: string): Promise<void> {
    await this.call(OP.rename, { path: from, newPath: to });
  }

  async link(existing: string, newPath: string): Promise<void> {
    await this.call(OP.link, { path: existing, newPath });
  }

  async symlink(target: string, path: string): Promise<void> {
    await this.call(OP.symlink, { path, target });
  }

  async readlink(path: string): Promise<string> {
    return String((await this.call(OP.readlink, { path })).header['target']);
  }

  /** One page of a directory listing, names after `after` in byte order. */
  async readdirPage(path: string, after = '', count = 1000): Promise<{ entries: DirEntry[]; done: boolean }> {
    const h = (await this.call(OP.readdir, { path, after, count })).header;
    return { entries: h['entries'] as DirEntry[], done: h['done'] === true };
  }

  async readdirEntries(path: string): Promise<DirEntry[]> {
    const out: DirEntry[] = [];
    let after = '';
    for (;;) {
      const page = await this.readdirPage(path, after);
      out.push(...page.entries);
      if (page.done || page.entries.length === 0) return out;
      after = page.entries[page.entries.length - 1]!.name;
    }
  }

  async readdir(path: string): Promise<string[]> {
    return (await this.readdirEntries(path)).map((e) => e.name);
  }

  async statfs(): Promise<StatFs> {
    return (await this.call(OP.statfs, {})).header as unknown as StatFs;
  }

  async fsync(path = ''): Promise<void> {
    await this.call(OP.fsync, { path });
  }

  // ---- admin -------------------------------------------------------------------------------
  private admin(op: number, header: object): Promise<{ header: Record<string, unknown>; payload: Buffer }> {
    return this.call(op, this.opts.adminToken ? { ...header, token: this.opts.adminToken } : header);
  }

  async createShare(
    id: string,
    size: number,
    opts: { replicas?: number; bricks?: string[]; pool?: string; access?: AccessList; project?: string } = {},
  ): Promise<Record<string, unknown>> {
    return (await this.admin(OP.createShare, { id, size, ...opts })).header;
  }

  /**
   * Replaces the share's access rules (`to`: an address or CIDR); returns the ids now enforced.
   * Connections already open are held to the new rules from their next operation.
   */
  async setAccess(id: string, access: AccessList, project?: string): Promise<string[]> {
    const header = project === undefined ? { id, access } : { id, access, project };
    return (await this.admin(OP.setAccess, header)).header['applied'] as string[];
  }

  /** The bricks' space and the pools (one per zone) the backend driver reports. */
  async capacity(): Promise<CapacityReport> {
    return (await this.admin(OP.capacity, {})).header as unknown as CapacityReport;
  }

  async deleteShare(id: string): Promise<void> {
    await this.admin(OP.deleteShare, { id });
  }

  async attachShare(id: string): Promise<Record<string, unknown>> {
    return (await this.admin(OP.attachShare, { id })).header;
  }

  async setSize(id: string, size: number): Promise<void> {
    await this.admin(OP.setSize, { id, size });
  }

  /** statfs of a share, plus `nondirs`: its files and symlinks (hard links counted once). */
  async usage(id: string): Promise<StatFs & { nondirs: number; epoch: number }> {
    return (await this.admin(OP.usage, { id })).header as unknown as StatFs & {
      nondirs: number;
      epoch: number;
    };
  }

  async healInfo(id: string): Promise<HealInfoBrick[]> {
    return (await this.healReport(id)).bricks;
  }

  /**
   * heal info per brick, the share's last heal run (null before the first), and the snapshots
   * bricks still miss (or still hold after a deletion elsewhere).
   */
  async healReport(
    id: string,
  ): Promise<{ bricks: HealInfoBrick[]; lastHeal: LastHeal | null; snapshots: SnapshotHealEntry[] }> {
    const h = (await this.admin(OP.healInfo, { id })).header;
    return {
      bricks: h['bricks'] as HealInfoBrick[],
      lastHeal: (h['lastHeal'] ?? null) as LastHeal | null,
      snapshots: (h['snapshots'] ?? []) as SnapshotHealEntry[],
    };
  }

  async healNow(id: string, full = false): Promise<Record<string, number>> {
    return (await this.admin(OP.healNow, { id, full })).header as Record<string, number>;
  }

  /** Starts a heal and returns at once; heal info reports it as lastHeal. */
  async startHeal(id: string, full = false): Promise<void> {
    await this.admin(OP.healNow, { id, full, background: true });
  }

  async resolveSplitBrain(id: string, path: string, policy: string, source?: string): Promise<string> {
    return String((await this.admin(OP.resolveSplitBrain, { id, path, policy, source })).header['source']);
  }

  /** A share server's identity, the shares it serves and its bricks (the cluster monitor's probe). */
  async serverState(): Promise<ServerState> {
    return (await this.admin(OP.serverState, {})).header as unknown as ServerState;
  }

  /** Tells a share server which shares to serve and where the others are (cluster.ts). */
  async assignShares(shares: Record<string, { at: string; gen: number }>): Promise<Record<string, unknown>> {
    return (await this.admin(OP.assignShares, { shares })).header;
  }

  async brickStatus(): Promise<Array<Record<string, unknown>>> {
    return (await this.admin(OP.brickStatus, {})).header['bricks'] as Array<Record<string, unknown>>;
  }

  async registerBrick(addr: string): Promise<Record<string, unknown>> {
    return (await this.admin(OP.registerBrick, { addr })).header;
  }

  /** Snapshots a share on its replicas; answers the snapshot's record (method, files, bytes, ms). */
  async createSnapshot(
    shareId: string,
    snapId: string,
    opts: { method?: string } = {},
  ): Promise<Record<string, unknown>> {
    return (await this.admin(OP.createSnapshot, { id: shareId, snapshot: snapId, ...opts })).header;
  }

  /** Idempotent: deleting a snapshot that does not exist succeeds. */
  async deleteSnapshot(shareId: string, snapId: string): Promise<void> {
    await this.admin(OP.deleteSnapshot, { id: shareId, snapshot: snapId });
  }

  /** The share's snapshots as its replicas agree on them (oldest first). */
  async listSnapshots(shareId: string): Promise<Array<Record<string, unknown>>> {
    return (await this.admin(OP.createSnapshot, { id: shareId, list: true })).header['snapshots'] as Array<
      Record<string, unknown>
    >;
  }

  async revertToSnapshot(shareId: string, snapId: string): Promise<Record<string, unknown>> {
    return (await this.admin(OP.revertToSnapshot, { id: shareId, snapshot: snapId })).header;
  }

  /** A new share `id` of `size` bytes from a snapshot of share `opts.from`, on the same bricks. */
  async cloneShare(
    id: string,
    size: number,
    opts: { from: string; snapshot: string; replicas?: number; pool?: string; project?: string },
  ): Promise<Record<string, unknown>> {
    return (await this.admin(OP.cloneShare, { id, size, ...opts })).header;
  }
}
