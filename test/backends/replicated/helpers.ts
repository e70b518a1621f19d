/** Test helpers: real brick and share-server processes on loopback, checksum walks, seeded RNG. */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ReplicatedClient } from '../../../backends/replicated/client/client.ts';
import { type Proc, spawnDaemon } from '../../../backends/replicated/processes.ts';
import { OP } from '../../../backends/replicated/protocol/opcodes.ts';
import type { ClusterTls } from '../../../backends/replicated/protocol/tls.ts';
import type { ShareRef } from '../../../backends/types.ts';
import type { ShareConnection } from '../../../client/mount/share-connection.ts';

export interface ClusterOptions {
  bricks?: number;
  serverArgs?: string[];
  brickLabels?: Array<{ host: string; zone: string }>;
  /** Extra arguments for every brick (e.g. --capacity-gib). */
  brickArgs?: string[];
  /** Environment of every brick and share server (e.g. the ABACA_CLUSTER_* TLS settings). */
  env?: Record<string, string>;
  /** Cluster TLS of the clients `client()` opens. */
  clientTls?: ClusterTls;
}

/** N bricks + one share server, all real processes; `close()` kills them and removes the dirs. */
export class Cluster {
  readonly dir: string;
  readonly bricks: Proc[] = [];
  readonly brickDirs: string[] = [];
  servers: Proc[] = [];
  private clients: ReplicatedClient[] = [];
  /** Admin token of the share servers this cluster starts. */
  readonly adminToken = randomUUID();
  private extra: Proc[] = [];

  private constructor(private readonly opts: ClusterOptions) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'abaca-repl-'));
  }

  static async start(opts: ClusterOptions = {}): Promise<Cluster> {
    const c = new Cluster(opts);
    try {
      const n = opts.bricks ?? 3;
      for (let i = 0; i < n; i++) c.brickDirs.push(path.join(c.dir, `brick${i + 1}`));
      const procs = await Promise.all(c.brickDirs.map((d, i) => c.spawnBrick(i, d, 0)));
      c.bricks.push(...procs);
      c.servers.push(await c.startServer());
    } catch (err) {
      await c.close();
      throw err;
    }
    return c;
  }

  private spawnBrick(i: number, dir: string, port: number): Promise<Proc> {
    const label = this.opts.brickLabels?.[i] ?? { host: `host${i + 1}`, zone: `zone${i + 1}` };
    return spawnDaemon(
      'abaca-brick.js',
      [
        '--dir',
        dir,
        '--port',
        String(port),
        '--host-label',
        label.host,
        '--zone',
        label.zone,
        ...(this.opts.brickArgs ?? []),
      ],
      undefined,
      this.opts.env,
    );
  }

  /**
   * A brick beyond the cluster's own (to add, or to replace one by), in `dir/name`, its host label
   * and zone `host` (default: the name), with the cluster's brick arguments; killed by close().
   */
  async extraBrick(name: string, host = name): Promise<{ proc: Proc; dir: string }> {
    const dir = path.join(this.dir, name);
    const proc = await spawnDaemon(
      'abaca-brick.js',
      ['--dir', dir, '--port', '0', '--host-label', host, '--zone', host, ...(this.opts.brickArgs ?? [])],
      undefined,
      this.opts.env,
    );
    this.extra.push(proc);
    return { proc, dir };
  }

  get brickAddrs(): string[] {
    return this.bricks.map((b) => b.addr);
  }

  async startServer(args: string[] = []): Promise<Proc> {
    const p = await spawnDaemon(
      'abaca-share-server.js',
      [
        '--bricks',
        this.brickAddrs.join(','),
        '--brick-timeout-ms',
        '3000',
        ...(this.opts.serverArgs ?? []),
        ...args,
      ],
      undefined,
      { ...this.opts.env, ABACA_ADMIN_TOKEN: this.adminToken },
    );
    this.extra.push(p);
    return p;
  }

  get server(): Proc {
    return this.servers[this.servers.length - 1]!;
  }

  async client(share?: string, server: Proc = this.server): Promise<ReplicatedClient> {
    const c = await ReplicatedClient.connect({
      host: '127.0.0.1',
      port: server.port,
      share,
      timeoutMs: 30_000,
      adminToken: this.adminToken,
      tls: this.opts.clientTls,
    });
    this.clients.push(c);
    return c;
  }

  async restartBrick(i: number): Promise<void> {
    const old = this.bricks[i]!;
    await old.kill9();
    this.bricks[i] = await this.spawnBrick(i, this.brickDirs[i]!, old.port);
  }

  shareDataDir(i: number, share: string): string {
    return path.join(this.brickDirs[i]!, 'shares', share, 'data');
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.close();
    await Promise.all([...this.bricks, ...this.extra].map((p) => p.kill9().catch(() => {})));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A 1 GiB NATIVE share of project p1 in `pool`, as the API would hand it to the driver. */
export const shareRef = (id: string, pool: string): ShareRef => ({
  id,
  size: 1,
  shareProto: 'NATIVE',
  projectId: 'p1',
  pool,
  specs: {},
});

/** Deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Walks a replica's data directory: path -> "type mode size sha256" (contents or link target). */
export function checksumWalk(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    const full = path.join(dir, rel);
    for (const name of fs.readdirSync(full).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(dir, r));
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out.set(r, `dir ${mode}`);
        walk(r);
      } else if (st.isSymbolicLink()) {
        out.set(r, `symlink ${fs.readlinkSync(path.join(dir, r))}`);
      } else {
        const sha = createHash('sha256')
          .update(fs.readFileSync(path.join(dir, r)))
          .digest('hex');
        out.set(r, `file ${mode} ${st.size} ${sha}`);
      }
    }
  };
  walk('');
  return out;
}

export function digestOf(m: Map<string, string>): string {
  const h = createHash('sha256');
  for (const [k, v] of [...m.entries()].sort()) h.update(`${k}\0${v}\n`);
  return h.digest('hex');
}

/** Polls `fn` until it returns true (or throws after `ms`). */
export async function waitFor(
  fn: () => Promise<boolean> | boolean,
  ms = 20_000,
  what = 'condition',
): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    if (await fn()) return;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Every replica has answered every operation: acknowledgements come after a majority, and the
 * dirty markers are cleaned only once all replicas answered. Use before looking at brick dirs.
 */
export async function settled(admin: ReplicatedClient, share: string): Promise<void> {
  await waitFor(
    async () => (await admin.healInfo(share)).every((b) => b.count === 0),
    20_000,
    'markers clean',
  );
}

/** What one name in a replica's data directory is, read straight from the brick's disk. */
export interface ReplicaEntry {
  type: 'file' | 'dir' | 'symlink' | 'other';
  /** Permission bits (st_mode & 0o7777). */
  mode: number;
  /** Bytes for files, target length for symlinks, 0 for directories (their st_size is the FS's). */
  size: number;
  /** sha256 of the contents (files), '' otherwise. */
  sha256: string;
  /** Symlink target, '' otherwise. */
  target: string;
  /** File id and version from meta/records.bin (id '' and v 0: no record in the slot). */
  id: string;
  v: number;
  ino: number;
  /**
   * st_nlink, shown in messages but not compared: a brick may hold internal names of an inode
   * outside data/ (a link index under meta/); `links` is the structure clients see.
   */
  nlink: number;
  /** Every name of this inode in the replica, sorted (just this one unless it is hard-linked). */
  links: string[];
}

/** One replica's copy of a share: path ('' is the root) -> entry. */
export interface ReplicaState {
  /** 0-based brick index in the cluster. */
  index: number;
  /** "replica N (brick dir name)", for messages. */
  label: string;
  /** `<brick>/shares/<share>` of this replica. */
  dir: string;
  entries: Map<string, ReplicaEntry>;
}

const RECORD_SIZE = 64;
const RECORD_MAGIC = 0x41425231; // 'ABR1'

/**
 * Reads the record of inode `ino` from an open records.bin (the layout in docs/replicated.md: a
 * 64-byte slot at ino * 64 — u32 magic 'ABR1', u64 BE version at 8, u8 id length at 16, id at 17).
 * A hole, a short read or a foreign pattern is "no record": id '', version 0.
 */
export function readBrickRecord(fd: number, ino: number): { id: string; v: number } {
  const buf = Buffer.alloc(RECORD_SIZE);
  const n = fs.readSync(fd, buf, 0, RECORD_SIZE, ino * RECORD_SIZE);
  if (n < RECORD_SIZE || buf.readUInt32BE(0) !== RECORD_MAGIC) return { id: '', v: 0 };
  const len = Math.min(buf.readUInt8(16), RECORD_SIZE - 17);
  return { id: buf.toString('utf8', 17, 17 + len), v: Number(buf.readBigUInt64BE(8)) };
}

/**
 * Walks `<brick>/shares/<share>` (or a snapshot `snaps/<id>`, with its own records file) on disk: every name under data/ (and the root, as ''), with its
 * type, mode, size, contents hash or link target, its records.bin id and version, and its hard links.
 */
export function readReplica(
  shareDir: string,
  recordsFile = path.join(shareDir, 'meta', 'records.bin'),
): Map<string, ReplicaEntry> {
  const data = path.join(shareDir, 'data');
  const out = new Map<string, ReplicaEntry>();
  const byIno = new Map<number, string[]>();
  const fd = fs.openSync(recordsFile, 'r');
  try {
    const visit = (rel: string): void => {
      const full = rel === '' ? data : path.join(data, rel);
      const st = fs.lstatSync(full);
      const rec = readBrickRecord(fd, st.ino);
      const e: ReplicaEntry = {
        type: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other',
        mode: st.mode & 0o7777,
        size: st.isDirectory() ? 0 : st.size,
        sha256: st.isFile() ? createHash('sha256').update(fs.readFileSync(full)).digest('hex') : '',
        target: st.isSymbolicLink() ? fs.readlinkSync(full) : '',
        id: rec.id,
        v: rec.v,
        ino: st.ino,
        nlink: st.nlink,
        links: [],
      };
      out.set(rel, e);
      if (!st.isDirectory()) {
        const names = byIno.get(st.ino) ?? [];
        names.push(rel);
        byIno.set(st.ino, names);
      }
      if (st.isDirectory())
        for (const name of fs.readdirSync(full).sort()) visit(rel ? `${rel}/${name}` : name);
    };
    visit('');
  } finally {
    fs.closeSync(fd);
  }
  for (const names of byIno.values()) {
    names.sort();
    for (const n of names) out.get(n)!.links = names;
  }
  return out;
}

/** The on-disk state of every replica of `share` (no waiting: call after `settled`). */
export function replicaStates(cl: Cluster, share: string): ReplicaState[] {
  return cl.brickDirs.map((d, i) => ({
    index: i,
    label: `replica ${i + 1} (${path.basename(d)})`,
    dir: path.join(d, 'shares', share),
    entries: readReplica(path.join(d, 'shares', share)),
  }));
}

function describeEntry(e: ReplicaEntry | undefined): string {
  if (!e) return '(missing)';
  const what =
    e.type === 'file'
      ? `file ${e.size}B sha256 ${e.sha256.slice(0, 16)}`
      : e.type === 'symlink'
        ? `symlink -> ${e.target}`
        : e.type;
  const links = e.links.length > 1 ? ` links [${e.links.join(', ')}]` : '';
  return `${what} mode ${e.mode.toString(8)} id ${e.id || '(none)'} v ${e.v} nlink ${e.nlink}${links}`;
}

const ENTRY_FIELDS: Array<keyof ReplicaEntry> = [
  'type',
  'mode',
  'size',
  'sha256',
  'target',
  'id',
  'v',
  'links',
];

/**
 * Every difference between the replicas (empty when identical): the same names; for each, the same
 * type, mode, size, contents or target, records.bin id and version, and the same hard-link groups
 * (the names under data/ that share an inode). Also an entry with no record at all is reported.
 */
export function replicaDifferences(states: ReplicaState[]): Array<{ path: string; message: string }> {
  const out: Array<{ path: string; message: string }> = [];
  const names = new Set<string>();
  for (const s of states) for (const k of s.entries.keys()) names.add(k);
  const show = (p: string): string => (p === '' ? '<root>' : p);
  for (const p of [...names].sort()) {
    const es = states.map((s) => s.entries.get(p));
    if (es.some((e) => !e)) {
      out.push({
        path: p,
        message: `${show(p)}: not on every replica — ${states.map((s, i) => `${s.label}: ${describeEntry(es[i])}`).join('; ')}`,
      });
      continue;
    }
    const fields = ENTRY_FIELDS.filter((f) => new Set(es.map((e) => JSON.stringify(e![f]))).size > 1);
    if (fields.length > 0)
      out.push({
        path: p,
        message: `${show(p)}: ${fields.join(', ')} differ — ${states.map((s, i) => `${s.label}: ${describeEntry(es[i])}`).join('; ')}`,
      });
    for (const [i, e] of es.entries())
      if (e!.id === '')
        out.push({
          path: p,
          message: `${show(p)}: no record in records.bin on ${states[i]!.label} (ino ${e!.ino})`,
        });
  }
  return out;
}

/**
 * Once every replica is connected and has answered every operation (heal info clean), the bricks'
 * copies of a share are identical on disk: names, types, modes, sizes, contents, symlink targets,
 * records.bin ids and versions, and hard-link structure. Returns the per-replica states (to compare
 * against a model).
 */
export async function assertReplicasEqual(
  cl: Cluster,
  share: string,
  server?: Proc,
): Promise<ReplicaState[]> {
  // The share's own server (under the cluster monitor, only its owner answers for it).
  const admin = await cl.client(undefined, server);
  await waitFor(
    async () => (await admin.healInfo(share)).every((b) => b.connected),
    20_000,
    'bricks connected',
  );
  await settled(admin, share);
  const states = replicaStates(cl, share);
  const diffs = replicaDifferences(states);
  if (diffs.length > 0) {
    const shown = diffs
      .slice(0, 30)
      .map((d) => d.message)
      .join('\n  ');
    const more = diffs.length > 30 ? `\n  … and ${diffs.length - 30} more` : '';
    assert.fail(`replicas of ${share} differ on disk (${diffs.length} differences):\n  ${shown}${more}`);
  }
  return states;
}

export async function expectCode(p: Promise<unknown>, codes: string[]): Promise<string> {
  try {
    await p;
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (codes.includes(code)) return code;
    throw new Error(`expected ${codes.join('|')}, got ${code}: ${(err as Error).message}`);
  }
  throw new Error(`expected ${codes.join('|')}, but the call succeeded`);
}

/**
 * Runs `during` 100 ms into a writer that rewrites (and now and then chmods) the files w0…w{names-1}
 * of the share, and stops the writer 100 ms after; gives `during`'s result and the writes made.
 */
export async function whileWriting<T>(
  c: ReplicatedClient,
  opts: { seed: number; names: number; chmodRate: number },
  during: () => Promise<T>,
): Promise<{ result: T; writes: number }> {
  const rand = rng(opts.seed);
  let stop = false;
  let n = 0;
  const writer = (async () => {
    while (!stop) {
      const name = `w${Math.floor(rand() * opts.names)}`;
      await c.writeFile(name, Buffer.alloc(Math.floor(rand() * 8192), n++ & 0xff));
      if (rand() < opts.chmodRate) await c.chmod(name, 0o600);
    }
  })();
  let result: T;
  try {
    await new Promise((r) => setTimeout(r, 100));
    result = await during();
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    stop = true;
    await writer;
  }
  return { result, writes: n };
}

/**
 * Appends numbered, checksummed records to `log` through a reconnecting connection until stopped;
 * returns the records acknowledged and the gaps (time between two acknowledgements).
 */
export function appender(conn: ShareConnection, file = 'log') {
  const acked: string[] = [];
  const errors: string[] = [];
  let stop = false;
  let last = Date.now();
  let longest = 0;
  const run = (async () => {
    for (let n = 0; !stop; n++) {
      const body = `rec-${n}`;
      const line = `${body} ${createHash('sha256').update(body).digest('hex').slice(0, 16)}\n`;
      try {
        await conn.call(OP.write, { path: file, off: 0, append: true }, Buffer.from(line));
        acked.push(line);
        const now = Date.now();
        longest = Math.max(longest, now - last);
        last = now;
      } catch (err) {
        errors.push((err as Error).message);
        // A connection that fails at once (closed, or a test that failed) must not spin the loop.
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  })();
  return {
    acked,
    errors,
    longestGapMs: () => longest,
    stop: async () => {
      stop = true;
      await run;
    },
  };
}

export function checkLog(content: string, acked: string[]): void {
  const lines = content
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => `${l}\n`);
  const seen = new Set<string>();
  for (const l of lines) {
    assert.ok(!seen.has(l), `record appears twice: ${l.trim()}`);
    seen.add(l);
    const [body, sum] = l.trim().split(' ');
    assert.equal(
      sum,
      createHash('sha256').update(body!).digest('hex').slice(0, 16),
      `torn record: ${l.trim()}`,
    );
  }
  for (const a of acked) assert.ok(seen.has(a), `acknowledged record lost: ${a.trim()}`);
}
