/**
 * Heal through the share API, on a real replicated backend (three bricks and a share server on
 * loopback): heal info while a brick is down and after it returns, a heal started by an admin,
 * split-brain resolution's input checks, the pools of scheduler-stats, and the bricks as rows of
 * os-services. Only admins may see or start any of it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ReplicatedClient } from '../../backends/replicated/client/client.ts';
import { createReplicatedBackend } from '../../backends/replicated/driver.ts';
import { assertReplicasEqual, Cluster } from '../backends/replicated/helpers.ts';
import { faultMessage } from '../helpers/app.ts';
import { type ShareFixture, shareFixture } from '../helpers/share-fixture.ts';

let cluster: Cluster;
let f: ShareFixture;

before(async () => {
  cluster = await Cluster.start({ brickArgs: ['--capacity-gib', '50'] });
  const backend = createReplicatedBackend({
    name: 'repl',
    shareServers: [cluster.server.addr],
    adminToken: cluster.adminToken,
  });
  f = await shareFixture({ backends: [{ backend, availabilityZone: 'nova' }] });
});
after(async () => {
  await f?.t.close();
  await cluster?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// biome-ignore lint/suspicious/noExplicitAny: response bodies, checked by the assertions.
async function healOf(id: string, token = f.admin): Promise<any> {
  const res = await f.t.http().get(`/v2/shares/${id}/heal`).set(f.as(token));
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.share_heal;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

describe('heal through the API', () => {
  test('a brick down: degraded, its missed writes pending; back: healed, healthy, replicas equal', async () => {
    const id = await f.newShare({ share_proto: 'NATIVE' });
    const share = await f.getShare(id);
    assert.equal(share.status, 'available');
    assert.match(share.export_locations?.[0] ?? (await exportPath(id)), /^abaca:\/\/127\.0\.0\.1:\d+\//);
    const healthy = await healOf(id);
    assert.equal(healthy.status, 'healthy');
    assert.equal(healthy.replicas.length, 3);
    assert.equal(healthy.pending_entries, 0);

    const c = await ReplicatedClient.connect({
      host: '127.0.0.1',
      port: cluster.server.port,
      share: id,
      adminToken: cluster.adminToken,
    });
    try {
      await cluster.bricks[1]!.kill9();
      await c.mkdir('d');
      for (let i = 0; i < 5; i++) await c.writeFile(`d/f${i}`, `data ${i}`);
      const down = await until('the share to be degraded', async () => {
        const h = await healOf(id);
        return h.status === 'degraded' ? h : undefined;
      });
      assert.equal(down.replicas.filter((r: { connected: boolean }) => !r.connected).length, 1);
      assert.ok(down.pending_entries >= 1, JSON.stringify(down));

      await cluster.restartBrick(1);
      const ok = await until('the heal to finish', async () => {
        const h = await healOf(id);
        return h.status === 'healthy' ? h : undefined;
      });
      assert.ok(ok.last_heal, 'the last heal is reported');
      assert.equal(ok.last_heal.error, null);
      for (let i = 0; i < 5; i++) assert.equal((await c.readFile(`d/f${i}`)).toString(), `data ${i}`);
      const replicas = await assertReplicasEqual(cluster, id);
      assert.equal(replicas.length, 3);
    } finally {
      c.close();
    }

    // A heal an operator starts: accepted at once, reported when done.
    const started = await f.action(id, { heal: { full: true } }, f.admin);
    assert.equal(started.status, 202, JSON.stringify(started.body));
    await until('the full heal to be reported', async () => {
      const h = await healOf(id);
      return h.last_heal?.kind === 'full' && h.last_heal.finished_at ? h : undefined;
    });
  });

  test('bad input and wrong callers get clear 4xx answers', async () => {
    const id = await f.newShare({ share_proto: 'NATIVE' });
    const alice = await f.t.http().get(`/v2/shares/${id}/heal`).set(f.as(f.alice.token));
    assert.equal(alice.status, 403, 'a member may not see heal state');
    const missing = await f.t
      .http()
      .get('/v2/shares/00000000-0000-0000-0000-000000000000/heal')
      .set(f.as(f.admin));
    assert.equal(missing.status, 404);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ heal: { full: 'yes' } }, /heal/],
      [{ heal_resolve: { path: 'x', policy: 'newest' } }, /policy/],
      [{ heal_resolve: { path: 'x', policy: 'source-brick' } }, /source_brick/],
      [{ heal_resolve: { policy: 'bigger-file' } }, /path/],
    ];
    for (const [body, message] of cases) {
      const res = await f.action(id, body, f.admin);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.match(faultMessage(res.body, 'badRequest', 400), message);
    }
    const member = await f.action(id, { heal: {} }, f.alice.token);
    assert.equal(member.status, 403);
  });
});

describe('pools and services', () => {
  test('scheduler-stats/pools lists the bricks’ zones as pools with real capacity (admin only)', async () => {
    const res = await f.t.http().get('/v2/scheduler-stats/pools/detail').set(f.as(f.admin)).expect(200);
    assert.deepEqual(
      res.body.pools.map((p: { pool: string }) => p.pool),
      ['zone1', 'zone2', 'zone3'],
    );
    const p = res.body.pools[0];
    assert.equal(p.name, `test@repl#${p.pool}`);
    assert.ok(p.capabilities.total_capacity_gb >= p.capabilities.free_capacity_gb);
    assert.ok(p.capabilities.free_capacity_gb > 0 && p.capabilities.free_capacity_gb <= 50);
    assert.equal(p.capabilities.snapshot_support, true);
    const one = await f.t
      .http()
      .get('/v2/scheduler-stats/pools?pool_name=zone[2]')
      .set(f.as(f.admin))
      .expect(200);
    assert.deepEqual(one.body.pools, [
      { name: 'test@repl#zone2', host: 'test', backend: 'repl', pool: 'zone2' },
    ]);
    await f.t.http().get('/v2/scheduler-stats/pools?pool_name=(').set(f.as(f.admin)).expect(400);
    // Parameters Manila does not know are ignored, as Manila ignores them.
    const all = await f.t.http().get('/v2/scheduler-stats/pools?size=1').set(f.as(f.admin)).expect(200);
    assert.equal(all.body.pools.length, 3);
    await f.t.http().get('/v2/scheduler-stats/pools').set(f.as(f.alice.token)).expect(403);
  });

  test('os-services shows the share server and each brick, down while it is stopped', async () => {
    const rows = async () =>
      (await f.t.http().get('/v2/services?binary=abaca-brick').set(f.as(f.admin)).expect(200)).body.services;
    assert.equal((await rows()).length, 3);
    assert.ok((await rows()).every((s: { state: string }) => s.state === 'up'));
    await cluster.bricks[2]!.kill9();
    await until('a brick row to be down', async () =>
      (await rows()).some((s: { state: string }) => s.state === 'down') ? true : undefined,
    );
    await cluster.restartBrick(2);
    await until('all brick rows up', async () =>
      (await rows()).every((s: { state: string }) => s.state === 'up') ? true : undefined,
    );
    const servers = (
      await f.t.http().get('/v2/services?binary=abaca-share-server').set(f.as(f.admin)).expect(200)
    ).body.services;
    assert.equal(servers.length, 1);
    assert.equal(servers[0].state, 'up');
  });
});

async function exportPath(id: string): Promise<string> {
  const res = await f.t.http().get(`/v2/shares/${id}/export_locations`).set(f.as(f.admin)).expect(200);
  return res.body.export_locations[0].path;
}
