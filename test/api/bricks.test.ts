/**
 * Bricks through the share API (/v2/abaca/bricks), on a real replicated backend (bricks and a
 * share server on loopback) with the registry in the test database: only admins; clear 400, 404
 * and 409 faults for bad input, an unknown brick, a brick in use, a drain that would leave a share
 * under its replica count; a replace of a killed brick followed to its end; and the registry
 * surviving a share server restart (a new share server started with the old --bricks learns the
 * new brick and forgets the replaced one).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createReplicatedBackend } from '../../backends/replicated/driver.ts';
import type { Proc } from '../../backends/replicated/processes.ts';
import type { Backend, BrickStore } from '../../backends/types.ts';
import { bricksRepo } from '../../services/repos/bricks.ts';
import { Cluster, waitFor } from '../backends/replicated/helpers.ts';
import { faultMessage } from '../helpers/app.ts';
import { type ShareFixture, shareFixture } from '../helpers/share-fixture.ts';

let cluster: Cluster;
let f: ShareFixture;
/** The registry over the fixture's database (the fixture is built after the backend). */
const store: BrickStore = {
  list: (backend) => bricksRepo.list(f.t.db, backend),
  save: (backend, r) => bricksRepo.save(f.t.db, backend, r),
};

function backendFor(server: Proc): Backend {
  return createReplicatedBackend({
    name: 'repl',
    shareServers: [server.addr],
    adminToken: cluster.adminToken,
    brickStore: store,
  });
}

before(async () => {
  cluster = await Cluster.start({ brickArgs: ['--capacity-gib', '50'] });
  f = await shareFixture({ backends: [{ backend: backendFor(cluster.server), availabilityZone: 'nova' }] });
});
after(async () => {
  await f?.t.close();
  await cluster?.close();
});

async function newBrick(name: string): Promise<Proc> {
  return (await cluster.extraBrick(name)).proc;
}

const brickIdOf = (i: number) =>
  (JSON.parse(fs.readFileSync(path.join(cluster.brickDirs[i]!, 'brick.json'), 'utf8')) as { id: string }).id;

// biome-ignore lint/suspicious/noExplicitAny: response bodies, checked by the assertions.
async function bricks(): Promise<any[]> {
  const res = await f.t.http().get('/v2/abaca/bricks').set(f.as(f.admin));
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.bricks;
}

describe('bricks through the API', { timeout: 120_000 }, () => {
  test('only admins see or change bricks', async () => {
    for (const [method, url, body] of [
      ['get', '/v2/abaca/bricks', undefined],
      ['post', '/v2/abaca/bricks', { brick: { address: '127.0.0.1:1' } }],
      ['post', `/v2/abaca/bricks/${cluster.bricks[0]!.addr}/action`, { remove: null }],
    ] as const) {
      const req = f.t.http()[method](url).set(f.as(f.alice.token));
      const res = await (body ? req.send(body) : req);
      assert.equal(res.status, 403, `${method} ${url}: ${JSON.stringify(res.body)}`);
      assert.match(faultMessage(res.body, 'forbidden', 403), /brick:/);
    }
    const list = await bricks();
    assert.equal(list.length, 3);
    assert.ok(list.every((b) => b.up && b.state === 'active' && b.backend === 'repl'));
  });

  test('bad input, unknown bricks, bricks in use and drains under the replica count are refused', async () => {
    const http = () => f.t.http();
    const as = f.as(f.admin);
    let res = await http()
      .post('/v2/abaca/bricks')
      .set(as)
      .send({ brick: { address: 'no-port' } });
    assert.match(faultMessage(res.body, 'badRequest', 400), /host:port/);
    res = await http()
      .post('/v2/abaca/bricks')
      .set(as)
      .send({ brick: { address: '127.0.0.1:1' } });
    assert.match(faultMessage(res.body, 'badRequest', 400), /did not answer/);
    res = await http().get('/v2/abaca/bricks/no-such-brick').set(as);
    assert.match(faultMessage(res.body, 'itemNotFound', 404), /Brick no-such-brick could not be found/);
    res = await http()
      .post('/v2/abaca/bricks/no-such-brick/action')
      .set(as)
      .send({ replace: { new_address: cluster.bricks[1]!.addr } });
    assert.equal(res.status, 404, JSON.stringify(res.body));
    res = await http().post(`/v2/abaca/bricks/${cluster.bricks[0]!.addr}/action`).set(as).send({ grow: {} });
    assert.match(faultMessage(res.body, 'badRequest', 400), /replace|remove/);

    // A replica-3 share on the three bricks: none of them can go, and none can be the new brick.
    const id = await f.newShare({ share_proto: 'NATIVE' });
    assert.equal((await f.getShare(id)).status, 'available');
    res = await http()
      .post(`/v2/abaca/bricks/${cluster.bricks[0]!.addr}/action`)
      .set(as)
      .send({ remove: null });
    assert.match(faultMessage(res.body, 'conflictingRequest', 409), /under its replica count/);
    res = await http()
      .post(`/v2/abaca/bricks/${brickIdOf(0)}/action`)
      .set(as)
      .send({ replace: { new_address: cluster.bricks[1]!.addr } });
    assert.match(faultMessage(res.body, 'conflictingRequest', 409), /already in use/);
    assert.ok(
      (await bricks()).every((b) => b.state === 'active'),
      'nothing changed',
    );
  });

  test('a killed brick replaced through the API; the registry outlives the share server', async () => {
    const as = f.as(f.admin);
    const fresh = await newBrick('brick-new');
    const deadAddr = cluster.bricks[2]!.addr;
    await cluster.bricks[2]!.kill9();
    const res = await f.t
      .http()
      .post(`/v2/abaca/bricks/${deadAddr}/action`)
      .set(as)
      .send({ replace: { new_address: fresh.addr } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.brick_job.kind, 'replace');
    assert.equal(res.body.brick_job.new_address, fresh.addr);
    await waitFor(
      async () => {
        const b = (
          await f.t
            .http()
            .get(`/v2/abaca/bricks/${brickIdOf(2)}`)
            .set(as)
        ).body.brick;
        return b?.job?.state === 'done' && b.state === 'replaced';
      },
      40_000,
      'the replace to finish',
    );
    const list = await bricks();
    assert.ok(list.some((b) => b.address === fresh.addr && b.up && b.state === 'active'));
    const rows = await bricksRepo.list(f.t.db, 'repl');
    assert.deepEqual(
      rows.map((r) => [r.address, r.state]).sort(),
      [
        [deadAddr, 'replaced'],
        [fresh.addr, 'active'],
      ].sort(),
    );

    // A new share server started with the old brick list (the dead one, not the new one): the
    // driver tells it the registry on its first call.
    const second = await cluster.startServer();
    const backend = backendFor(second);
    const seen = await backend.bricks!.list();
    assert.ok(
      seen.some((b) => b.address === fresh.addr && b.up),
      JSON.stringify(seen),
    );
    assert.ok(
      !seen.some((b) => b.address === deadAddr),
      `the replaced brick is forgotten: ${JSON.stringify(seen)}`,
    );
    await backend.close();
  });
});
