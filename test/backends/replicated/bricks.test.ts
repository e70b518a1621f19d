/**
 * Bricks come and go (server/bricks-admin.ts), with real brick and share-server processes on
 * loopback: a brick added takes new shares; a killed brick replaced by an empty one under writes
 * is refilled by heal; a brick drained under writes has its replicas moved first; a drain that
 * would leave a share under its replica count is refused. After each: every replica equal on
 * disk, heal info empty, every acknowledged file there with its checksum.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ReplicatedClient } from '../../../backends/replicated/client/client.ts';
import { createReplicatedBackend } from '../../../backends/replicated/driver.ts';
import { OP } from '../../../backends/replicated/protocol/opcodes.ts';
import type { ShareInfo } from '../../../backends/replicated/protocol/types.ts';
import { placeOneMore } from '../../../backends/replicated/server/bricks-admin.ts';
import type { BrickCandidate } from '../../../backends/replicated/server/placement.ts';
import type { BrickRecord, BrickStore } from '../../../backends/types.ts';
import {
  Cluster,
  expectCode,
  type ReplicaState,
  readReplica,
  replicaDifferences,
  rng,
  waitFor,
} from './helpers.ts';

const MiB = 1024 * 1024;

/** A brick started by the test (beside the cluster's): its process and directory. */
type ExtraBrick = Awaited<ReturnType<Cluster['extraBrick']>>;

const spawnBrick = (cl: Cluster, name: string, host: string): Promise<ExtraBrick> =>
  cl.extraBrick(name, host);

function brickId(dir: string): string {
  return (JSON.parse(fs.readFileSync(path.join(dir, 'brick.json'), 'utf8')) as { id: string }).id;
}

async function admin(c: ReplicatedClient, cl: Cluster, op: number, h: Record<string, unknown> = {}) {
  return (await c.call(op, { ...h, token: cl.adminToken })).header;
}

type Job = { state: string; moved: number; shares: number; pending: number; error: string | null };

async function jobOf(c: ReplicatedClient, cl: Cluster, brick: string): Promise<Job | undefined> {
  const r = (await admin(c, cl, OP.brickList)) as {
    jobs: Array<Job & { brick: { id: string; addr: string } }>;
  };
  return r.jobs.find((j) => j.brick.id === brick || j.brick.addr === brick);
}

async function untilDone(c: ReplicatedClient, cl: Cluster, brick: string, ms = 40_000): Promise<Job> {
  let last: Job | undefined;
  await waitFor(
    async () => {
      last = await jobOf(c, cl, brick);
      if (last?.state === 'failed') throw new Error(`brick job failed: ${last.error}`);
      return last?.state === 'done';
    },
    ms,
    `brick job on ${brick} (last: ${JSON.stringify(last)})`,
  );
  return last!;
}

/**
 * Writers that create files with random contents until stopped; `acked` holds the sha256 of every
 * file whose create was acknowledged. A failed write leaves its file uncertain (not checked).
 */
function startWriters(clients: ReplicatedClient[], seed: number) {
  const acked = new Map<string, string>();
  const errors: string[] = [];
  let stop = false;
  let n = 0;
  const runs = clients.map(async (c, w) => {
    const rand = rng(seed + w);
    await c.mkdir(`w${w}`).catch(() => {});
    while (!stop) {
      const name = `w${w}/f${n++}`;
      const data = Buffer.alloc(1 + Math.floor(rand() * 16 * 1024), Math.floor(rand() * 256));
      data.writeUInt32BE(n, 0);
      try {
        await c.writeFile(name, data);
        acked.set(name, createHash('sha256').update(data).digest('hex'));
      } catch (err) {
        errors.push(`${name}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  });
  return {
    acked,
    errors,
    async stop(): Promise<void> {
      stop = true;
      await Promise.all(runs);
    },
  };
}

/** Replicas of `share` in the given brick dirs are identical on disk and heal info is empty. */
async function assertEqualOn(c: ReplicatedClient, share: string, dirs: string[]): Promise<ReplicaState[]> {
  await waitFor(
    async () => (await c.healInfo(share)).every((b) => b.connected && b.count === 0),
    30_000,
    'heal info empty',
  );
  const states = dirs.map((d, i) => ({
    index: i,
    label: path.basename(d),
    dir: path.join(d, 'shares', share),
    entries: readReplica(path.join(d, 'shares', share)),
  }));
  const diffs = replicaDifferences(states);
  assert.deepEqual(
    diffs.slice(0, 10).map((d) => d.message),
    [],
    `replicas of ${share} differ`,
  );
  return states;
}

function assertAcked(states: ReplicaState[], acked: Map<string, string>): void {
  assert.ok(acked.size > 0, 'the writers got writes acknowledged');
  for (const s of states)
    for (const [name, sha] of acked) assert.equal(s.entries.get(name)?.sha256, sha, `${name} on ${s.label}`);
}

function infoOn(dir: string, share: string): ShareInfo | undefined {
  const f = path.join(dir, 'shares', share, 'share.json');
  return fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, 'utf8')) as ShareInfo) : undefined;
}

describe('bricks come and go', { timeout: 120_000 }, () => {
  let cl: Cluster;
  const extra: ExtraBrick[] = [];
  before(async () => {
    cl = await Cluster.start({ bricks: 2 });
  });
  after(async () => {
    await Promise.all(extra.map((b) => b.proc.kill9().catch(() => {})));
    await cl.close();
  });

  test('a brick added takes new shares; bad input is refused clearly', async () => {
    const c = await cl.client();
    await expectCode(c.createShare('before', MiB), ['ENOSPC']);
    const b = await spawnBrick(cl, 'brick3', 'host3');
    extra.push(b);
    const added = await admin(c, cl, OP.brickAdd, { addr: b.proc.addr });
    assert.equal(added['id'], brickId(b.dir));
    const info = (await c.createShare('s1', 512 * MiB)).info as ShareInfo;
    assert.ok(
      info.bricks.some((x) => x.id === brickId(b.dir)),
      'the new share uses the new brick',
    );
    assert.ok(infoOn(b.dir, 's1'), 'the share is on the new brick');
    const list = (await admin(c, cl, OP.brickList)) as { bricks: Array<{ id: string; up: boolean }> };
    assert.equal(list.bricks.length, 3);
    assert.ok(list.bricks.every((x) => x.up));
    await expectCode(admin(c, cl, OP.brickAdd, { addr: 'nothing' }), ['EINVAL']);
    await expectCode(admin(c, cl, OP.brickReplace, { brick: 'no-such-brick', addr: b.proc.addr }), [
      'ENOENT',
    ]);
    // Replacing by a brick that already holds replicas, and draining when no brick could take them.
    await expectCode(admin(c, cl, OP.brickReplace, { brick: cl.bricks[0]!.addr, addr: b.proc.addr }), [
      'EBUSY',
    ]);
    const refused = await c.call(OP.brickRemove, { brick: cl.bricks[0]!.addr, token: cl.adminToken }).then(
      () => '',
      (err: Error) => err.message,
    );
    assert.match(refused, /under its replica count/);
    assert.ok(infoOn(cl.brickDirs[0]!, 's1'), 'nothing moved');
  });

  test('a killed brick replaced by an empty one under writes: refilled, replicas equal', async () => {
    const c = await cl.client();
    const writers = startWriters([await cl.client('s1'), await cl.client('s1')], 19);
    await new Promise((r) => setTimeout(r, 1500));
    const dead = cl.bricks[0]!;
    const deadId = brickId(cl.brickDirs[0]!);
    await dead.kill9();
    await new Promise((r) => setTimeout(r, 500));
    const y = await spawnBrick(cl, 'brick4', 'host4');
    extra.push(y);
    const started = (await admin(c, cl, OP.brickReplace, { brick: dead.addr, addr: y.proc.addr }))[
      'job'
    ] as Job;
    assert.equal(started.state, 'running');
    const job = await untilDone(c, cl, deadId);
    assert.equal(job.moved, 1);
    await new Promise((r) => setTimeout(r, 500));
    await writers.stop();
    assert.deepEqual(writers.errors, [], 'no client write failed during the replace');
    const info = (await c.healReport('s1')).bricks.map((b) => b.brick);
    assert.ok(info.includes(brickId(y.dir)) && !info.includes(deadId), `replica set now ${info}`);
    const states = await assertEqualOn(c, 's1', [cl.brickDirs[1]!, extra[0]!.dir, y.dir]);
    assertAcked(states, writers.acked);
    const list = (await admin(c, cl, OP.brickList)) as { bricks: Array<{ addr: string }> };
    assert.ok(!list.bricks.some((x) => x.addr === dead.addr), 'the replaced brick left the registry');
  });

  test('a brick drained under writes: its replicas move first; then it is gone', async () => {
    const c = await cl.client();
    // Bricks now: brick2, brick3, brick4 (all in s1's set). One more to drain onto.
    const z = await spawnBrick(cl, 'brick5', 'host5');
    extra.push(z);
    await admin(c, cl, OP.brickAdd, { addr: z.proc.addr });
    const victim = cl.bricks[1]!;
    const victimDir = cl.brickDirs[1]!;
    const writers = startWriters([await cl.client('s1'), await cl.client('s1')], 29);
    await new Promise((r) => setTimeout(r, 1000));
    await admin(c, cl, OP.brickRemove, { brick: victim.addr });
    const job = await untilDone(c, cl, brickId(victimDir));
    assert.equal(job.moved, 1);
    await new Promise((r) => setTimeout(r, 500));
    await writers.stop();
    assert.deepEqual(writers.errors, [], 'no client write failed during the drain');
    const set = (await c.healReport('s1')).bricks.map((b) => b.brick).sort();
    assert.deepEqual(set, [brickId(extra[0]!.dir), brickId(extra[1]!.dir), brickId(z.dir)].sort());
    const states = await assertEqualOn(c, 's1', [extra[0]!.dir, extra[1]!.dir, z.dir]);
    assertAcked(states, writers.acked);
    assert.equal(infoOn(victimDir, 's1'), undefined, "the drained brick's copy is deleted");
    const list = (await admin(c, cl, OP.brickList)) as { bricks: Array<{ addr: string }> };
    assert.ok(!list.bricks.some((x) => x.addr === victim.addr), 'the drained brick left the registry');
    // Three bricks left, all holding the replica-3 share: draining one more is refused.
    await expectCode(admin(c, cl, OP.brickRemove, { brick: z.proc.addr }), ['EBUSY']);
  });
});

describe('a drain outlives a restart of its share server', { timeout: 120_000 }, () => {
  let cl: Cluster;
  before(async () => {
    cl = await Cluster.start({ bricks: 4 });
  });
  after(() => cl.close());

  test('the registry says draining: the new share server continues towards the same brick', async () => {
    const c = await cl.client();
    const [b1, b2, b3] = cl.brickAddrs;
    await c.createShare('s2', 1024 * MiB, { bricks: [b1!, b2!, b3!] });
    const data = await cl.client('s2');
    const block = Buffer.alloc(8 * MiB, 7);
    for (let i = 0; i < 24; i++) await data.writeFile(`big${i}`, block);
    // An in-memory registry (services/repos/bricks.ts in the API).
    const rows = new Map<string, BrickRecord>();
    const store: BrickStore = {
      list: async () => [...rows.values()],
      save: async (_backend, r) => {
        rows.set(r.address, r);
      },
    };
    const driver = (addr: string) =>
      createReplicatedBackend({
        name: 'repl',
        shareServers: [addr],
        adminToken: cl.adminToken,
        brickStore: store,
      });
    const first = driver(cl.server.addr);
    const job = await first.bricks!.remove(b1!);
    assert.equal(job.state, 'running');
    assert.equal(rows.get(b1!)?.state, 'draining');
    // Killed while the new replica fills: the record names it, with four bricks in the set.
    await waitFor(() => infoOn(cl.brickDirs[1]!, 's2')?.drain !== undefined, 20_000, 'the drain to start');
    await cl.server.kill9();
    const mid = infoOn(cl.brickDirs[1]!, 's2')!;
    const target = mid.drain?.to;
    assert.equal(mid.bricks.length, 4, 'killed in the middle of the drain');
    const second = await cl.startServer();
    const again = driver(second.addr);
    await waitFor(
      async () => (await again.bricks!.list()) && rows.get(b1!)?.state === 'removed',
      60_000,
      `the drain to be resumed and finished (registry: ${JSON.stringify([...rows.values()])})`,
    );
    const ids = cl.brickDirs.map(brickId);
    // The new set is acknowledged by a majority; a replica that was not ready yet after the
    // restart gets it when it is claimed again.
    await waitFor(
      () => infoOn(cl.brickDirs[1]!, 's2')?.bricks.length === 3,
      20_000,
      'the new replica set on the second brick',
    );
    const info = infoOn(cl.brickDirs[1]!, 's2')!;
    assert.deepEqual(info.bricks.map((b) => b.id).sort(), [ids[1], ids[2], ids[3]].sort());
    assert.equal(info.drain, undefined);
    assert.equal(target, ids[3], 'the drain went on towards the brick it had started with');
    const c2 = await ReplicatedClient.connect({
      host: '127.0.0.1',
      port: second.port,
      adminToken: cl.adminToken,
    });
    try {
      await assertEqualOn(c2, 's2', cl.brickDirs.slice(1));
    } finally {
      c2.close();
    }
    assert.equal(infoOn(cl.brickDirs[0]!, 's2'), undefined);
    await first.close();
    await again.close();
  });
});

test('placeOneMore: outside the set, with room, a new host before a new zone', () => {
  const b = (id: string, host: string, zone: string, up = true): BrickCandidate => ({
    id,
    addr: id,
    host,
    zone,
    up,
  });
  const set = [b('a', 'h1', 'z1'), b('b', 'h2', 'z2')];
  const all = [...set, b('c', 'h1', 'z3'), b('d', 'h3', 'z1'), b('e', 'h4', 'z4', false)];
  const room = () => true;
  assert.equal(placeOneMore(all, set, room)?.id, 'd', 'a new host first (h3), though its zone is used');
  assert.equal(placeOneMore(all, set, (x) => x.id !== 'd')?.id, 'c', 'then a used host in a new zone');
  assert.equal(
    placeOneMore(all, set, (x) => x.id === 'e'),
    null,
    'down bricks never',
  );
  assert.equal(placeOneMore(set, set, room), null, 'every brick already in the set');
});
