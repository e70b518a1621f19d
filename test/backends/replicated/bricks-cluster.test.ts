/**
 * Bricks come and go with several share servers under the cluster monitor (`--cluster`): only a
 * share's owner may change its replica set, so the driver starts a brick job on every share server
 * and each moves the shares it owns. Real processes on loopback: two share servers, four bricks,
 * shares owned by both, clients appending through reconnecting connections the whole time.
 * - a killed brick replaced by an empty one: every share of both owners moves to the new brick,
 *   and the registry says "replaced" only when none lists the old brick any more;
 * - a brick added through the driver reaches both servers; then a brick drained while the owner of
 *   half its shares is killed -9: those shares fail over and the survivor drains them too.
 * After each: no record on disk names the old brick, the replicas of every share are equal, every
 * acknowledged record is there once.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { memoryOwnerStore } from '../../../backends/replicated/cluster.ts';
import { createReplicatedBackend } from '../../../backends/replicated/driver.ts';
import type { Proc } from '../../../backends/replicated/processes.ts';
import { OP } from '../../../backends/replicated/protocol/opcodes.ts';
import type { ShareInfo } from '../../../backends/replicated/protocol/types.ts';
import type { Backend, BrickRecord, BrickStatus, BrickStore, ShareRef } from '../../../backends/types.ts';
import { ShareConnection, shareAddressOf } from '../../../client/mount/share-connection.ts';
import {
  appender,
  Cluster,
  checkLog,
  readReplica,
  replicaDifferences,
  settled,
  shareRef,
  waitFor,
} from './helpers.ts';

const PROBE_MS = 200;
const FAILOVER_MS = 1500;
const SHARES = ['bc1', 'bc2', 'bc3', 'bc4'];

let cl: Cluster;
let owners: ReturnType<typeof memoryOwnerStore>;
let backend: Backend;
let pool: string;
/** Brick address -> its directory, for every brick the test started (the cluster's and later ones). */
const dirOf = new Map<string, string>();
const rows = new Map<string, BrickRecord>();
const conns = new Map<string, ShareConnection>();
const running: Array<() => Promise<void>> = [];

const store: BrickStore = {
  list: async () => [...rows.values()],
  save: async (_backend, r) => {
    rows.set(r.address, r);
  },
};

const ref = (id: string): ShareRef => shareRef(id, pool);

async function spawnBrick(name: string): Promise<Proc> {
  const { proc, dir } = await cl.extraBrick(name);
  dirOf.set(proc.addr, dir);
  return proc;
}

const brickIdOf = (addr: string): string =>
  (JSON.parse(fs.readFileSync(path.join(dirOf.get(addr)!, 'brick.json'), 'utf8')) as { id: string }).id;

/** A share's record as one brick holds it on disk. */
function recordOn(addr: string, share: string): ShareInfo | undefined {
  const f = path.join(dirOf.get(addr)!, 'shares', share, 'share.json');
  return fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, 'utf8')) as ShareInfo) : undefined;
}

/** The newest record of a share among the bricks' directories. */
function recordOf(share: string): ShareInfo {
  const infos = [...dirOf.keys()].flatMap((a) => recordOn(a, share) ?? []);
  assert.ok(infos.length > 0, `no record of ${share} on any brick`);
  return infos.reduce((a, b) => ((b.gen ?? 0) > (a.gen ?? 0) ? b : a));
}

const ownerOf = (share: string): Proc => cl.servers.find((s) => s.addr === owners.rows.get(share)!.server)!;

/** The owner's admin connection: heal settled, then every replica of the share equal on disk. */
async function assertShareEqual(share: string): Promise<void> {
  await settled(await cl.client(undefined, ownerOf(share)), share);
  const info = recordOf(share);
  const states = info.bricks.map((b, i) => {
    const addr = [...dirOf.keys()].find((a) => brickIdOf(a) === b.id)!;
    const dir = path.join(dirOf.get(addr)!, 'shares', share);
    return { index: i, label: `${share} on ${addr}`, dir, entries: readReplica(dir) };
  });
  assert.deepEqual(
    replicaDifferences(states)
      .slice(0, 10)
      .map((d) => d.message),
    [],
  );
}

/** Appenders to `file` on every share through connections that follow the owner. */
async function startAppenders(file: string) {
  for (const id of SHARES) await conns.get(id)!.call(OP.create, { path: file, mode: 0o644, excl: true });
  const runs = SHARES.map((id) => ({ id, w: appender(conns.get(id)!, file) }));
  const stop = async () => {
    for (const r of runs) await r.w.stop();
  };
  // A test that fails midway leaves them to after(), which stops them before closing anything.
  running.push(stop);
  return {
    runs,
    async stopAndCheck(): Promise<void> {
      await stop();
      for (const r of runs) {
        assert.deepEqual(r.w.errors, [], `errors on ${r.id}`);
        assert.ok(r.w.acked.length > 10, `${r.id}: ${r.w.acked.length} records acknowledged`);
        const reader = await cl.client(r.id, ownerOf(r.id));
        checkLog((await reader.readFile(file)).toString(), r.w.acked);
      }
    },
  };
}

/** Polls the driver's brick list until the brick's job is finished; returns its last status. */
async function untilFinished(address: string, state: BrickRecord['state']): Promise<BrickStatus> {
  let last: BrickStatus | undefined;
  await waitFor(
    async () => {
      last = (await backend.bricks!.list()).find((b) => b.address === address);
      if (last?.job?.state === 'failed') throw new Error(`brick job failed: ${last.job.error}`);
      return rows.get(address)?.state === state && last?.job?.state === 'done';
    },
    60_000,
    `the job on ${address} to finish (last: ${JSON.stringify(last)})`,
  );
  return last!;
}

/** The original brick whose shares are owned by the most share servers (then by the most shares). */
function brickOfBothOwners(addrs: string[]): string {
  const score = (a: string) => {
    const held = SHARES.filter((s) => recordOf(s).bricks.some((b) => b.id === brickIdOf(a)));
    return new Set(held.map((s) => owners.rows.get(s)!.server)).size * 10 + held.length;
  };
  return [...addrs].sort((a, b) => score(b) - score(a))[0]!;
}

before(async () => {
  cl = await Cluster.start({ bricks: 4, serverArgs: ['--cluster'] });
  cl.servers.push(await cl.startServer());
  for (const [i, b] of cl.bricks.entries()) dirOf.set(b.addr, cl.brickDirs[i]!);
  owners = memoryOwnerStore();
  backend = createReplicatedBackend({
    name: 'bricks-cluster',
    shareServers: cl.servers.map((s) => s.addr),
    adminToken: cl.adminToken,
    owners,
    brickStore: store,
    probeMs: PROBE_MS,
    failoverMs: FAILOVER_MS,
  });
  await new Promise((r) => setTimeout(r, PROBE_MS * 3));
  pool = (await backend.stats()).pools[0]!.name;
  for (const id of SHARES) {
    const locs = await backend.createShare(ref(id));
    const conn = await ShareConnection.open({
      ...shareAddressOf(locs)!,
      adminToken: cl.adminToken,
      retryMs: 20_000,
    });
    conns.set(id, conn);
  }
  const used = new Set(SHARES.map((s) => owners.rows.get(s)!.server));
  assert.equal(used.size, 2, 'the shares are spread over both share servers');
});
after(async () => {
  for (const stop of running) await stop();
  for (const c of conns.values()) c.close();
  await backend?.close();
  await cl?.close();
});

test('a killed brick replaced under writes: the shares of both owners move to the new brick', {
  timeout: 120_000,
}, async () => {
  const writers = await startAppenders('replace.log');
  await waitFor(() => writers.runs.every((r) => r.w.acked.length >= 20), 10_000, 'appends flowing');
  const dead = brickOfBothOwners(cl.brickAddrs);
  const deadId = brickIdOf(dead);
  const held = SHARES.filter((s) => recordOf(s).bricks.some((b) => b.id === deadId));
  await cl.bricks.find((b) => b.addr === dead)!.kill9();
  const fresh = await spawnBrick('brick-new');
  const job = await backend.bricks!.replace(dead, fresh.addr);
  assert.equal(job.state, 'running');
  const done = await untilFinished(dead, 'replaced');
  assert.equal(done.job!.moved, held.length, 'each held share moved once, by its owner');
  await writers.stopAndCheck();
  const freshId = brickIdOf(fresh.addr);
  for (const s of SHARES) {
    const set = recordOf(s).bricks.map((b) => b.id);
    assert.ok(!set.includes(deadId), `${s} still lists the replaced brick: ${set}`);
    assert.equal(set.length, 3);
    if (held.includes(s)) assert.ok(set.includes(freshId), `${s} got the new brick`);
    await assertShareEqual(s);
  }
  dirOf.delete(dead);
});

test('a drain while the owner of some of its shares is killed -9: the survivor drains them too', {
  timeout: 150_000,
}, async () => {
  // A brick added through the driver is linked by both share servers.
  const spare = await spawnBrick('brick-spare');
  await backend.bricks!.add(spare.addr);
  for (const s of cl.servers) {
    const c = await cl.client(undefined, s);
    const view = (await c.call(OP.brickList, { token: cl.adminToken })).header as {
      bricks: Array<{ addr: string; up: boolean }>;
    };
    assert.ok(
      view.bricks.some((b) => b.addr === spare.addr && b.up),
      `share server ${s.addr} links the added brick`,
    );
  }
  const writers = await startAppenders('drain.log');
  await waitFor(() => writers.runs.every((r) => r.w.acked.length >= 20), 10_000, 'appends flowing');
  const up = [...dirOf.keys()].filter((a) => a !== spare.addr);
  const victim = brickOfBothOwners(up);
  const victimId = brickIdOf(victim);
  const held = SHARES.filter((s) => recordOf(s).bricks.some((b) => b.id === victimId));
  const doomed = owners.rows.get(held[0]!)!.server;
  assert.ok(
    held.some((s) => owners.rows.get(s)!.server !== doomed),
    'the drained brick holds shares of both owners',
  );
  const job = await backend.bricks!.remove(victim);
  assert.equal(job.state, 'running');
  // The drain has started on both servers; one of them dies.
  await cl.servers.find((s) => s.addr === doomed)!.kill9();
  await untilFinished(victim, 'removed');
  const survivor = cl.servers.find((s) => s.addr !== doomed)!.addr;
  for (const s of SHARES) assert.equal(owners.rows.get(s)!.server, survivor, `${s} failed over`);
  await writers.stopAndCheck();
  for (const s of SHARES) {
    const info = recordOf(s);
    assert.ok(!info.bricks.some((b) => b.id === victimId), `${s} still lists the drained brick`);
    assert.equal(info.bricks.length, 3);
    assert.equal(info.drain, undefined);
    assert.equal(recordOn(victim, s), undefined, `the drained brick's copy of ${s} is deleted`);
    await assertShareEqual(s);
  }
});
