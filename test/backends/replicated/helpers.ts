/** Test helpers: real brick and share-server processes on loopback, checksum walks, seeded RNG. */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ReplicatedClient } from '../../../backends/replicated/client.ts';
import { type Proc, spawnDaemon } from '../../../backends/replicated/processes.ts';

export interface ClusterOptions {
  bricks?: number;
  serverArgs?: string[];
  brickLabels?: Array<{ host: string; zone: string }>;
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
    return spawnDaemon('abaca-brick.js', [
      '--dir',
      dir,
      '--port',
      String(port),
      '--host-label',
      label.host,
      '--zone',
      label.zone,
    ]);
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
      { ABACA_ADMIN_TOKEN: this.adminToken },
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

/**
 * Compares the bricks' copies of a share (tree, contents, modes, sizes) once every replica has
 * answered every operation.
 */
export async function assertReplicasEqual(cl: Cluster, share: string): Promise<void> {
  await settled(await cl.client(), share);
  const walks = cl.bricks.map((_, i) => checksumWalk(cl.shareDataDir(i, share)));
  for (let i = 1; i < walks.length; i++) {
    for (const [k, v] of walks[0]!) assert.equal(walks[i]!.get(k), v, `replica ${i + 1} differs on ${k}`);
    assert.equal(walks[i]!.size, walks[0]!.size, `replica ${i + 1} has a different number of entries`);
    assert.equal(digestOf(walks[i]!), digestOf(walks[0]!));
  }
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
