/** The abaca-brick daemon: owns one directory, applies operations sent by share servers. */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { ReplicatedError } from '../protocol/errors.ts';
import { type Frame, MAX_READ_BYTES } from '../protocol/frame.ts';
import type { ByteRange } from '../protocol/heal-paths.ts';
import { MUTATIONS, type MutationKind, OP } from '../protocol/opcodes.ts';
import { checkName } from '../protocol/paths.ts';
import { ReusedBuffers } from '../protocol/reused-buffers.ts';
import { type HandlerResult, serveSocket } from '../protocol/rpc-server.ts';
import { type ClusterTls, createProtocolServer } from '../protocol/tls.ts';
import type { ShareInfo } from '../protocol/types.ts';
import { num } from '../protocol/wire-args.ts';
import { ShareStore, writeFileDurable } from './brick-store.ts';
import { RecentRequests } from './recent-requests.ts';
import { handleSnapshotHealOp, SNAPSHOT_HEAL_OPS } from './snapshot-heal.ts';
import { discard } from './snapshots.ts';
import { handleSnapshotOp, SNAPSHOT_OPS } from './snapshots-ops.ts';

export interface BrickOptions {
  dir: string;
  host?: string;
  port?: number;
  /** Placement labels: the machine and the failure zone this brick lives on. */
  hostLabel?: string;
  zone?: string;
  /** The most this brick promises to shares (bytes); default: its file system's size. */
  capacityBytes?: number;
  handshakeMs?: number;
  /** Cluster TLS: serve TLS only, to peers with a certificate of the cluster CA (mutual TLS). */
  tls?: ClusterTls;
}

const MUT = new Set<string>(MUTATIONS);

/** A replica set from the wire: brick ids and addresses, each a non-empty string. */
function brickRefs(v: unknown[]): ShareInfo['bricks'] {
  return v.map((b) => {
    const r = b as Record<string, unknown>;
    if (typeof r?.['id'] !== 'string' || r['id'] === '' || typeof r['addr'] !== 'string' || r['addr'] === '')
      throw new ReplicatedError('EINVAL', 'bricks must be a list of {id, addr}');
    return { id: r['id'], addr: r['addr'] };
  });
}

/** A drain in progress from the wire ({from, to} brick ids), or null: none any more. */
function drainOf(v: unknown): ShareInfo['drain'] {
  if (v === null) return undefined;
  const r = v as Record<string, unknown>;
  if (typeof r?.['from'] !== 'string' || typeof r['to'] !== 'string')
    throw new ReplicatedError('EINVAL', 'drain must be {from, to} or null');
  return { from: r['from'], to: r['to'] };
}

function toRange(v: unknown): ByteRange | undefined {
  if (!Array.isArray(v) || v.length !== 2) return undefined;
  return [num(v[0], 0), num(v[1], 0)];
}

export class BrickServer {
  readonly id: string;
  private readonly shares = new Map<string, ShareStore>();
  /** Outcomes of re-sendable mutations, by request id (recent-requests.ts). */
  private readonly recent = new RecentRequests();
  private server: net.Server | undefined;
  private readonly sharesDir: string;
  private readonly tombstonesDir: string;
  /** Size and first-replica flag of every share held here, built on first use (see space()). */
  private spaceIndex: Map<string, { size: number; first: boolean }> | undefined;

  constructor(private readonly opts: BrickOptions) {
    fs.mkdirSync(opts.dir, { recursive: true });
    this.sharesDir = path.join(opts.dir, 'shares');
    fs.mkdirSync(this.sharesDir, { recursive: true });
    fs.mkdirSync(path.join(opts.dir, 'trash'), { recursive: true });
    this.tombstonesDir = path.join(opts.dir, 'tombstones');
    fs.mkdirSync(this.tombstonesDir, { recursive: true });
    const idFile = path.join(opts.dir, 'brick.json');
    if (!fs.existsSync(idFile)) writeFileDurable(idFile, JSON.stringify({ id: randomUUID() }));
    this.id = (JSON.parse(fs.readFileSync(idFile, 'utf8')) as { id: string }).id;
    // Leftovers of a share creation or deletion, a snapshot or a revert interrupted by a crash.
    for (const n of fs.readdirSync(this.sharesDir)) {
      if (n.includes('.tmp-')) {
        fs.rmSync(path.join(this.sharesDir, n), { recursive: true, force: true });
        continue;
      }
      sweepShare(path.join(this.sharesDir, n));
    }
    fs.rmSync(path.join(opts.dir, 'trash'), { recursive: true, force: true });
    fs.mkdirSync(path.join(opts.dir, 'trash'), { recursive: true });
  }

  listen(): Promise<string> {
    const srv = createProtocolServer(this.opts.tls, 'required', (sock, paused) =>
      serveSocket(sock, (f) => this.handle(f), {
        readInPlace: paused,
        handshakeMs: this.opts.handshakeMs ?? 10_000,
        // A large copy-on-write answers late: the share server hears it is still going.
        interimMs: 500,
        onError: (err) => console.error('abaca-brick: internal error', err),
      }),
    );
    this.server = srv;
    return new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => {
        const a = srv.address() as net.AddressInfo;
        resolve(`${a.address}:${a.port}`);
      });
    });
  }

  close(): void {
    this.server?.close();
  }

  /** What snapshot operations need of this brick (brick/snapshots-ops.ts). */
  private readonly snapshotHost = {
    share: (id: unknown) => this.share(id),
    sharesDir: () => this.sharesDir,
    trashDir: () => path.join(this.opts.dir, 'trash'),
    tombstoned: (id: string) => this.tombstoned(id),
    reopen: (id: string, fn: () => void) => {
      const old = this.share(id);
      const session = old.session;
      old.close();
      this.shares.delete(id);
      try {
        fn();
      } finally {
        this.share(id).session = session;
      }
    },
    noteShare: (info: ShareInfo) => this.noteShare(info),
  };

  private share(id: unknown): ShareStore {
    const sid = checkName(id);
    const s = this.shares.get(sid);
    if (s) return s;
    const dir = path.join(this.sharesDir, sid);
    if (!fs.existsSync(path.join(dir, 'share.json')))
      throw new ReplicatedError('ENXIO', `unknown share ${sid}`);
    const st = new ShareStore(dir);
    this.shares.set(sid, st);
    return st;
  }

  private readonly readBuffers = new ReusedBuffers();

  /** A read answered from a pooled buffer, given back once the socket took the data. */
  private pooledRead(
    s: ShareStore,
    h: Record<string, unknown>,
    fid: string | undefined,
    v: number | undefined,
    header?: (r: { id: string; v: number }) => object,
  ): HandlerResult {
    const len = num(h['len'], 0);
    if (len > MAX_READ_BYTES) throw new ReplicatedError('EINVAL', 'bad read length');
    const buf = this.readBuffers.take(len);
    const give = () => this.readBuffers.give(buf);
    try {
      const r = s.read(h['path'], num(h['off'], 0), len, fid, v, (n) => buf.subarray(0, n));
      return { ...(header ? { header: header(r) } : {}), payload: r.data, sent: give };
    } catch (err) {
      give();
      throw err;
    }
  }

  /** A share for a read; requests that carry an epoch (all of a share server's) are fenced too. */
  private readShare(h: Record<string, unknown>): ShareStore {
    const s = this.share(h['share']);
    if (h['epoch'] !== undefined) s.checkEpoch(h['epoch'], h['session']);
    return s;
  }

  private listShares(): string[] {
    return fs.readdirSync(this.sharesDir).filter((n) => !n.includes('.tmp-'));
  }

  private tombstoned(id: string): boolean {
    return fs.existsSync(path.join(this.tombstonesDir, id));
  }

  /**
   * What this brick can still promise: its file system's size and free space, its configured
   * capacity, and the size of every share it holds (read from share.json once, then kept current).
   */
  private space(): Record<string, unknown> {
    if (!this.spaceIndex) {
      this.spaceIndex = new Map();
      for (const id of this.listShares()) {
        try {
          this.noteShare(this.share(id).info);
        } catch {
          // A share directory without a readable share.json is not a share (yet).
        }
      }
    }
    const st = fs.statfsSync(this.opts.dir);
    return {
      id: this.id,
      host: this.opts.hostLabel ?? 'localhost',
      zone: this.opts.zone ?? 'default',
      dev: fs.statSync(this.opts.dir).dev,
      fsTotalBytes: st.blocks * st.bsize,
      fsFreeBytes: st.bavail * st.bsize,
      capacityBytes: this.opts.capacityBytes ?? null,
      shares: Object.fromEntries(this.spaceIndex),
    };
  }

  private noteShare(info: ShareInfo): void {
    this.spaceIndex?.set(info.id, { size: info.size, first: info.bricks[0]?.id === this.id });
  }

  /**
   * Per share, the last of its requests that wait behind a large copy-on-write (see bMutate): while
   * one runs, every request of the share queues here in arrival order — reads too, so a read sent
   * after a write still sees it (the share server may have acknowledged that write already, on the
   * other replicas' answers). Requests without a share (ping, hello) never wait.
   */
  private readonly queues = new Map<string, Promise<unknown>>();

  handle(f: Frame): HandlerResult | Promise<HandlerResult> {
    const sid = f.header['share'];
    if (typeof sid !== 'string') return this.handleNow(f);
    const tail = this.queues.get(sid);
    if (tail)
      return this.queue(
        sid,
        tail.then(() => this.handleNow(f)),
      );
    const r = this.handleNow(f);
    // A mutation that started a large copy-on-write: the share's next changes wait for it.
    return r instanceof Promise && f.op === OP.bMutate ? this.queue(sid, r) : r;
  }

  private queue<T>(sid: string, p: Promise<T>): Promise<T> {
    const tail = p.catch(() => undefined);
    this.queues.set(sid, tail);
    void tail.then(() => {
      if (this.queues.get(sid) === tail) this.queues.delete(sid);
    });
    return p;
  }

  private handleNow(f: Frame): HandlerResult | Promise<HandlerResult> {
    const h = f.header;
    switch (f.op) {
      case OP.bPing:
        return {};
      case OP.bHello:
        return {
          header: {
            id: this.id,
            host: this.opts.hostLabel ?? 'localhost',
            zone: this.opts.zone ?? 'default',
            shares: this.listShares(),
          },
        };
      case OP.bShareCreate: {
        const sid = checkName(h['share']);
        if (this.tombstoned(sid)) throw new ReplicatedError('EINVAL', `share ${sid} was deleted`);
        const dir = path.join(this.sharesDir, sid);
        if (!fs.existsSync(path.join(dir, 'share.json'))) {
          const info = h['info'] as ShareInfo;
          ShareStore.create(dir, { ...info, id: sid }, String(h['rootId']));
        }
        const info = this.share(sid).info;
        this.noteShare(info);
        return { header: { info } };
      }
      case OP.bShareDelete: {
        const sid = checkName(h['share']);
        // The tombstone first: once it is on disk the share can never come back from this brick.
        if (h['tombstone'] === true && !this.tombstoned(sid))
          writeFileDurable(path.join(this.tombstonesDir, sid), new Date().toISOString());
        this.spaceIndex?.delete(sid);
        this.shares.get(sid)?.close();
        this.shares.delete(sid);
        this.recent.forget(sid);
        const dir = path.join(this.sharesDir, sid);
        if (fs.existsSync(dir)) {
          const trash = path.join(this.opts.dir, 'trash', `${sid}-${randomUUID().slice(0, 8)}`);
          fs.renameSync(dir, trash);
          discard(trash);
        }
        return {};
      }
      case OP.bShareInfo: {
        const s = this.share(h['share']);
        return { header: { info: s.info } };
      }
      case OP.bTombstoned: {
        const ids = Array.isArray(h['shares']) ? h['shares'].map((x) => checkName(x)) : [];
        return { header: { deleted: ids.filter((id) => this.tombstoned(id)) } };
      }
      case OP.bStat:
        return { header: this.space() };
      case OP.bClaim: {
        const s = this.share(h['share']);
        const epoch = num(h['epoch'], 0);
        const owner = String(h['owner']);
        if (epoch < s.info.epoch || (epoch === s.info.epoch && owner !== s.info.owner))
          throw new ReplicatedError('ESTALE', `epoch ${epoch} not above ${s.info.epoch}`);
        if (epoch !== s.info.epoch || owner !== s.info.owner) {
          s.info = { ...s.info, epoch, owner };
          s.saveInfo();
        }
        s.session = typeof h['session'] === 'string' ? h['session'] : undefined;
        return { header: { info: s.info } };
      }
      case OP.bSetShareSize: {
        const s = this.share(h['share']);
        s.checkEpoch(h['epoch'], h['session']);
        // The share's record: size, access rules and their generation (each optional).
        const change: Partial<ShareInfo> = {};
        if (h['size'] !== undefined) change.size = num(h['size'], 0);
        if (h['gen'] !== undefined) change.gen = num(h['gen'], 0);
        if (Array.isArray(h['access'])) change.access = h['access'] as ShareInfo['access'];
        if (typeof h['project'] === 'string') change.project = h['project'];
        // A new replica set (a brick replaced, added or drained: server/bricks-admin.ts).
        if (Array.isArray(h['bricks'])) change.bricks = brickRefs(h['bricks']);
        if (h['drain'] !== undefined) change.drain = drainOf(h['drain']);
        s.info = { ...s.info, ...change };
        s.saveInfo();
        this.noteShare(s.info);
        return {};
      }
      case OP.bMutate: {
        const s = this.share(h['share']);
        s.checkEpoch(h['epoch'], h['session']);
        const kind = String(h['k']);
        if (!MUT.has(kind)) throw new ReplicatedError('ENOSYS', `unknown mutation ${kind}`);
        const rid = typeof h['rid'] === 'string' ? h['rid'] : undefined;
        const r = this.recent.run(s.info.id, rid, () => {
          const large = s.largeCowOf(kind as MutationKind, h);
          if (large === undefined) return s.mutate(kind as MutationKind, h, f.parts);
          return s.cowAsync(large).then(() => s.mutate(kind as MutationKind, h, f.parts));
        });
        return r instanceof Promise
          ? r.then((header) => ({ header: header as Record<string, unknown> }))
          : { header: r as Record<string, unknown> };
      }
      case OP.bRecent: {
        const s = this.readShare(h);
        return { header: { outcome: this.recent.get(s.info.id, String(h['rid'])) ?? null } };
      }
      case OP.bGetattr: {
        const s = this.readShare(h);
        if (h['probe'] !== true) return { header: { attr: s.getattr(h['path']) } };
        // Heal probe: attributes if present, and this brick's blame for the path.
        let attr: unknown;
        try {
          attr = s.getattr(h['path']);
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
        }
        const p = String(h['path']);
        return { header: { attr, blame: s.pendingFor(p), ranges: s.rangesFor(p) } };
      }
      case OP.bRead: {
        const fid = typeof h['fid'] === 'string' ? h['fid'] : undefined;
        // The file's id and version: the share server hands them on in a grant for direct reads.
        return this.pooledRead(this.readShare(h), h, fid, undefined, (r) => ({ id: r.id, v: r.v }));
      }
      case OP.bReadDirect: {
        // From a mount, with a grant of the share server (protocol/read-grants.ts).
        const s = this.share(h['share']);
        const key = s.readGrantKey();
        if (key === undefined || h['key'] !== key)
          throw new ReplicatedError('EACCES', 'the read grant is not valid here (any more)');
        if (typeof h['fid'] !== 'string') throw new ReplicatedError('EINVAL', 'fid must be a file id');
        return this.pooledRead(s, h, h['fid'], num(h['v'], 0));
      }
      case OP.bReadlink:
        return { header: { target: this.readShare(h).readlink(h['path']) } };
      case OP.bReaddir: {
        const r = this.readShare(h).readdir(h['path'], String(h['after'] ?? ''), num(h['count'], 1000));
        return { header: r };
      }
      case OP.bUsage:
        return { header: this.readShare(h).usage() };
      case OP.bIndex:
        return { header: this.readShare(h).index() };
      case OP.bMark: {
        const s = this.share(h['share']);
        s.checkEpoch(h['epoch'], h['session']);
        s.addBlame(h['paths'] as string[], h['bricks'] as string[], toRange(h['range']));
        return {};
      }
      case OP.bClean: {
        const s = this.share(h['share']);
        s.checkEpoch(h['epoch'], h['session']);
        s.clean(h['paths'] as string[]);
        return {};
      }
      case OP.bClearPending: {
        const s = this.share(h['share']);
        s.checkEpoch(h['epoch'], h['session']);
        s.clearPending(String(h['path']), h['bricks'] as string[]);
        return {};
      }
      case OP.bBlockSums: {
        const s = this.readShare(h);
        const sums = s.blockSums(h['path'], num(h['blockSize'], 1 << 20), num(h['from'], 0), num(h['to'], 0));
        return { header: { sums } };
      }
      case OP.bHealPut: {
        const s = this.share(h['share']);
        s.checkEpoch(h['epoch'], h['session']);
        return { header: { attr: s.healPut(h, f.parts) } };
      }
      case OP.bRemoveTree: {
        const s = this.share(h['share']);
        s.checkEpoch(h['epoch'], h['session']);
        s.removeTree(h['path']);
        return {};
      }
      default:
        if (SNAPSHOT_OPS.has(f.op)) return handleSnapshotOp(this.snapshotHost, f.op, h);
        if (SNAPSHOT_HEAL_OPS.has(f.op)) return handleSnapshotHealOp(this.snapshotHost, f.op, h, f.parts);
        throw new ReplicatedError('ENOSYS', `unknown opcode ${f.op}`);
    }
  }
}

/**
 * Unfinished work a crash left in one share: snapshot trees without snap.json and snapshot-heal
 * staging (`snaps/*.tmp-*`), a revert's staging tree and half-written metadata files
 * (`meta/*.tmp-*`), and copy-on-write copies that never took their name (`meta/tmp/*`).
 */
function sweepShare(shareDir: string): void {
  const remove = (p: string): void => fs.rmSync(p, { recursive: true, force: true });
  const list = (d: string): string[] => {
    try {
      return fs.readdirSync(d);
    } catch {
      return [];
    }
  };
  for (const sub of ['snaps', 'meta'])
    for (const n of list(path.join(shareDir, sub)))
      if (n.includes('.tmp-')) remove(path.join(shareDir, sub, n));
  for (const n of list(path.join(shareDir, 'meta', 'tmp'))) remove(path.join(shareDir, 'meta', 'tmp', n));
}
