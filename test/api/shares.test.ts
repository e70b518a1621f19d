import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BackendError } from '../../backends/errors.ts';
import { quotasRepo } from '../../services/repos/quotas.ts';
import { tasksRepo } from '../../services/repos/tasks.ts';
import { faultMessage, makeTestApp, type TestApp, type TestUser } from '../helpers/app.ts';

let t: TestApp;
let admin: string;
let alice: TestUser;
let reader: TestUser;
let bob: TestUser;
before(async () => {
  t = await makeTestApp();
  admin = await t.adminToken();
  alice = await t.makeUser({ name: 'alice', project: 'demo', role: 'member' });
  reader = await t.makeUser({ name: 'rita', project: 'demo', role: 'reader' });
  bob = await t.makeUser({ name: 'bob', project: 'other', role: 'member' });
});
after(() => t.close());

const as = (token: string, version = '2.72') => ({
  'X-Auth-Token': token,
  'X-OpenStack-Manila-API-Version': version,
});

async function create(token: string, share: Record<string, unknown>, expect = 200) {
  const res = await t
    .http()
    .post('/v2/shares')
    .set(as(token))
    .send({ share: { size: 1, share_proto: 'NFS', ...share } });
  assert.equal(res.status, expect, JSON.stringify(res.body));
  return res.body.share;
}

async function show(token: string, id: string) {
  return (await t.http().get(`/v2/shares/${id}`).set(as(token)).expect(200)).body.share;
}

async function countShares(token: string, query = '') {
  const res = await t.http().get(`/v2/shares/detail?with_count=True${query}`).set(as(token)).expect(200);
  return res.body.count as number;
}

async function usage(projectId: string, resource: string) {
  const rows = await quotasRepo.usages(t.db, projectId, '');
  const row = rows.find((r) => r.resource === resource);
  return { in_use: row?.in_use ?? 0, reserved: row?.reserved ?? 0 };
}

describe('create → available → delete', () => {
  test('a member creates a share: 200 creating, the worker makes it available with an export location', async () => {
    const s = await create(alice.token, { name: 'data', description: 'd1', metadata: { k1: 'v1' } });
    assert.equal(s.status, 'creating');
    assert.equal(s.size, 1);
    assert.equal(s.share_proto, 'NFS');
    assert.equal(s.name, 'data');
    assert.equal(s.project_id, alice.projectId);
    assert.equal(s.share_type_name, 'default');
    assert.deepEqual(s.metadata, { k1: 'v1' });
    assert.equal(s.host, undefined, 'host is admin-only');
    assert.deepEqual(await usage(alice.projectId, 'shares'), { in_use: 0, reserved: 1 });

    assert.equal(await t.stack.worker.drain(), 1);
    const ready = await show(alice.token, s.id);
    assert.equal(ready.status, 'available');
    assert.equal(ready.snapshot_support, true);
    assert.equal(ready.progress, '100%');
    assert.deepEqual(await usage(alice.projectId, 'shares'), { in_use: 1, reserved: 0 });
    assert.deepEqual(await usage(alice.projectId, 'gigabytes'), { in_use: 1, reserved: 0 });
    const byAdmin = await show(admin, s.id);
    assert.equal(byAdmin.host, 'test@mem#memory');

    const els = await t.http().get(`/v2/shares/${s.id}/export_locations`).set(as(alice.token)).expect(200);
    assert.equal(els.body.export_locations.length, 1);
    const [el] = els.body.export_locations;
    assert.equal(el.preferred, true);
    assert.equal(el.is_admin_only, undefined, 'admin-only fields hidden');
    const one = await t
      .http()
      .get(`/v2/shares/${s.id}/export_locations/${el.id}`)
      .set(as(alice.token))
      .expect(200);
    assert.equal(one.body.export_location.path, el.path);

    await t.http().delete(`/v2/shares/${s.id}`).set(as(alice.token)).expect(202);
    assert.equal((await show(alice.token, s.id)).status, 'deleting');
    await t.stack.worker.drain();
    await t.http().get(`/v2/shares/${s.id}`).set(as(alice.token)).expect(404);
    assert.deepEqual(await usage(alice.projectId, 'shares'), { in_use: 0, reserved: 0 });
    assert.equal(t.memory.calls.filter((c) => c.op === 'deleteShare' && c.id === s.id).length, 1);
  });

  test('share_type by name, by id, or null (the default); unknown type 404', async () => {
    const types = (await t.http().get('/v2/types').set(as(admin)).expect(200)).body.share_types;
    const dflt = types.find((x: { name: string }) => x.name === 'default');
    const byName = await create(alice.token, { share_type: 'default' });
    const byId = await create(alice.token, { share_type: dflt.id });
    const byNull = await create(alice.token, { share_type: null });
    for (const s of [byName, byId, byNull]) assert.equal(s.share_type, dflt.id);
    const res = await t
      .http()
      .post('/v2/shares')
      .set(as(alice.token))
      .send({ share: { size: 1, share_proto: 'NFS', share_type: 'nope' } });
    assert.equal(res.status, 404);
    faultMessage(res.body, 'itemNotFound', 404);
    await t.stack.worker.drain();
  });

  test('a share in a transitional status cannot be deleted (403)', async () => {
    const s = await create(alice.token, {});
    const res = await t.http().delete(`/v2/shares/${s.id}`).set(as(alice.token)).expect(403);
    assert.match(faultMessage(res.body, 'forbidden', 403), /status is 'creating'/);
    await t.stack.worker.drain();
  });
});

describe('failures end in an error status with a user message, never stuck', () => {
  test('a backend failure: error, a message saying why, quota still counted until deleted', async () => {
    t.memory.inject({
      op: 'createShare',
      error: new BackendError('Failed', 'the disk is on fire'),
      times: 1,
    });
    const s = await create(alice.token, { name: 'doomed' });
    await t.stack.worker.drain();
    const failed = await show(alice.token, s.id);
    assert.equal(failed.status, 'error');
    const [msg] = await t.db('messages').where({ resource_id: s.id });
    assert.match(msg.user_message, /the disk is on fire/);
    assert.equal(msg.project_id, alice.projectId);
    await t.http().delete(`/v2/shares/${s.id}`).set(as(alice.token)).expect(202);
    await t.stack.worker.drain();
    await t.http().get(`/v2/shares/${s.id}`).set(as(alice.token)).expect(404);
  });

  test('no backend fits: error with "No valid host was found"', async () => {
    const type = await t
      .http()
      .post('/v2/types')
      .set(as(admin))
      .send({ share_type: { name: 'dhss', extra_specs: { driver_handles_share_servers: 'True' } } })
      .expect(200);
    const s = await create(alice.token, { share_type: type.body.share_type.id });
    await t.stack.worker.drain();
    assert.equal((await show(alice.token, s.id)).status, 'error');
    const [msg] = await t.db('messages').where({ resource_id: s.id });
    assert.match(msg.user_message, /No valid host was found/);
  });

  test('a worker that dies mid-task: the task is reclaimed after its lease and completes', async () => {
    const s = await create(alice.token, { name: 'orphan' });
    const claimed = await tasksRepo.claim(t.db, 'worker-that-died', 1);
    assert.equal(claimed?.resource_id, s.id);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(await t.stack.worker.drain(), 1);
    assert.equal((await show(alice.token, s.id)).status, 'available');
  });

  test('a backend call that acted and then failed is re-run safely (idempotent), ending available', async () => {
    t.memory.inject({
      op: 'createShare',
      error: new BackendError('Unavailable', 'connection lost'),
      times: 1,
      when: 'after',
    });
    const s = await create(alice.token, { name: 'flaky' });
    await t.stack.worker.drain();
    assert.equal((await show(alice.token, s.id)).status, 'error', 'the failure is reported');
    await t.http().delete(`/v2/shares/${s.id}`).set(as(alice.token)).expect(202);
    await t.stack.worker.drain();
    await t.http().get(`/v2/shares/${s.id}`).set(as(alice.token)).expect(404);
  });
});

describe('bad input: a 4xx fault and nothing created', () => {
  const cases: [string, Record<string, unknown>, number, RegExp][] = [
    ['size 0', { size: 0 }, 400, /at least 1/],
    ['negative size', { size: -5 }, 400, /at least 1/],
    ['fractional size', { size: 1.5 }, 400, /whole number/],
    ['size as words', { size: 'big' }, 400, /whole number/],
    ['huge size', { size: 10 ** 12 }, 400, /at most/],
    ['unknown protocol', { share_proto: 'SMB3' }, 400, /share_proto/],
    ['256-char name', { name: 'n'.repeat(256) }, 400, /255/],
    ['metadata value over 1023', { metadata: { k: 'v'.repeat(1024) } }, 400, /1023/],
    ['metadata value not a string', { metadata: { k: 1 } }, 400, /strings/],
    ['share network', { share_network_id: 'abc' }, 400, /share networks/],
    [
      'from a snapshot that does not exist',
      { snapshot_id: '0b4b7d0e-8c7e-4a6b-9f51-3d2a5c1e9f00' },
      404,
      /snapshot/i,
    ],
    ['unknown availability zone (404, as Manila)', { availability_zone: 'mars' }, 404, /mars/],
    ['public by a member', { is_public: true }, 403, /public/],
  ];
  for (const [label, share, status, message] of cases) {
    test(label, async () => {
      const before = await countShares(admin, '&all_tenants=1');
      const res = await t
        .http()
        .post('/v2/shares')
        .set(as(alice.token))
        .send({ share: { size: 1, share_proto: 'NFS', ...share } });
      assert.equal(res.status, status, JSON.stringify(res.body));
      const name = ({ 400: 'badRequest', 403: 'forbidden', 404: 'itemNotFound' } as Record<number, string>)[
        status
      ] as string;
      assert.match(faultMessage(res.body, name, status), message);
      assert.equal(await countShares(admin, '&all_tenants=1'), before);
    });
  }

  test('a non-UUID id is a 404, not a 500', async () => {
    await t.http().get('/v2/shares/not-a-uuid').set(as(alice.token)).expect(404);
    await t.http().delete('/v2/shares/1%27%20OR%201=1').set(as(alice.token)).expect(404);
  });

  test('unknown list filters and bad sort keys are 400', async () => {
    await t.http().get('/v2/shares/detail?colour=blue').set(as(alice.token)).expect(400);
    await t.http().get('/v2/shares/detail?sort_key=password').set(as(alice.token)).expect(400);
    await t.http().get('/v2/shares/detail?limit=-1').set(as(alice.token)).expect(400);
  });
});

describe('quotas', () => {
  test('50 concurrent creates against a quota of 10 shares: exactly 10 succeed, the rest 413', async () => {
    const carol = await t.makeUser({ name: 'carol', project: 'quota-project' });
    await quotasRepo.setLimit(
      t.db,
      { project_id: carol.projectId, share_type_id: '', resource: 'shares' },
      10,
    );
    const results = await Promise.all(
      Array.from({ length: 50 }, () =>
        t
          .http()
          .post('/v2/shares')
          .set(as(carol.token))
          .send({ share: { size: 1, share_proto: 'NFS' } }),
      ),
    );
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, 10, JSON.stringify(statuses));
    assert.equal(statuses.filter((s) => s === 413).length, 40);
    const refused = results.find((r) => r.status === 413)!;
    assert.match(faultMessage(refused.body, 'overLimit', 413), /Quota exceeded for shares/);
    assert.equal(await countShares(carol.token), 10);
    assert.deepEqual(await usage(carol.projectId, 'shares'), { in_use: 0, reserved: 10 });
    await t.stack.worker.drain();
    assert.deepEqual(await usage(carol.projectId, 'shares'), { in_use: 10, reserved: 0 });
  });

  test('creates racing the worker that commits their quota: no deadlock, every share ends available', async () => {
    const gus = await t.makeUser({ name: 'gus', project: 'race-project' });
    t.stack.worker.start();
    try {
      const results = await Promise.all(
        Array.from({ length: 40 }, () =>
          t
            .http()
            .post('/v2/shares')
            .set(as(gus.token))
            .send({ share: { size: 1, share_proto: 'NFS' } }),
        ),
      );
      assert.deepEqual(
        [...new Set(results.map((r) => r.status))],
        [200],
        JSON.stringify(results.find((r) => r.status !== 200)?.body),
      );
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && (await countShares(gus.token, '&status=creating')) > 0)
        await new Promise((r) => setTimeout(r, 100));
      assert.equal(await countShares(gus.token, '&status=available'), 40);
      assert.deepEqual(await usage(gus.projectId, 'shares'), { in_use: 40, reserved: 0 });
    } finally {
      await t.stack.worker.stop();
    }
  });

  test('gigabytes and per-share limits', async () => {
    const dan = await t.makeUser({ name: 'dan', project: 'gb-project' });
    await quotasRepo.setLimit(
      t.db,
      { project_id: dan.projectId, share_type_id: '', resource: 'gigabytes' },
      5,
    );
    await create(dan.token, { size: 3 });
    const res = await t
      .http()
      .post('/v2/shares')
      .set(as(dan.token))
      .send({ share: { size: 3, share_proto: 'NFS' } })
      .expect(413);
    assert.match(faultMessage(res.body, 'overLimit', 413), /gigabytes/);
    await quotasRepo.setLimit(
      t.db,
      { project_id: dan.projectId, share_type_id: '', resource: 'per_share_gigabytes' },
      1,
    );
    const per = await t
      .http()
      .post('/v2/shares')
      .set(as(dan.token))
      .send({ share: { size: 2, share_proto: 'NFS' } })
      .expect(400);
    assert.match(faultMessage(per.body, 'badRequest', 400), /per-share limit/);
    await t.stack.worker.drain();
  });
});

describe('tenant isolation and listing', () => {
  test("another project's private share is 404 to show and delete (403 for export locations, as Manila); absent from lists", async () => {
    const s = await create(alice.token, { name: 'alice-private' });
    await t.stack.worker.drain();
    await t.http().get(`/v2/shares/${s.id}`).set(as(bob.token)).expect(404);
    await t.http().delete(`/v2/shares/${s.id}`).set(as(bob.token)).expect(404);
    await t.http().get(`/v2/shares/${s.id}/export_locations`).set(as(bob.token)).expect(403);
    for (const q of ['', '?all_tenants=1', '?all_tenants=1&is_public=True', `?name=alice-private`]) {
      const res = await t.http().get(`/v2/shares/detail${q}`).set(as(bob.token)).expect(200);
      assert.ok(!res.body.shares.some((x: { id: string }) => x.id === s.id), `leak through ${q}`);
    }
    const all = await t.http().get('/v2/shares/detail?all_tenants=1').set(as(admin)).expect(200);
    assert.ok(all.body.shares.some((x: { id: string }) => x.id === s.id));
    const own = await t.http().get('/v2/shares/detail').set(as(admin)).expect(200);
    assert.ok(
      !own.body.shares.some((x: { id: string }) => x.id === s.id),
      'without all_tenants an admin sees their own project',
    );
  });

  test('a reader may read but not create or delete', async () => {
    await t.http().get('/v2/shares/detail').set(as(reader.token)).expect(200);
    await t
      .http()
      .post('/v2/shares')
      .set(as(reader.token))
      .send({ share: { size: 1, share_proto: 'NFS' } })
      .expect(403);
  });

  test('public shares (admin-created) are listed for others with is_public=True', async () => {
    const pub = await create(admin, { name: 'everyone', is_public: true });
    await t.stack.worker.drain();
    const res = await t.http().get('/v2/shares/detail?is_public=True').set(as(bob.token)).expect(200);
    assert.ok(res.body.shares.some((x: { id: string }) => x.id === pub.id));
    await show(bob.token, pub.id);
    // Seen, so not a 404: Manila's policy refuses the change.
    await t.http().delete(`/v2/shares/${pub.id}`).set(as(bob.token)).expect(403);
  });

  test('filters the clients send: name, name~, status, metadata dict, is_soft_deleted', async () => {
    const erin = await t.makeUser({ name: 'erin', project: 'filters' });
    await create(erin.token, { name: 'alpha', metadata: { tier: 'gold' } });
    await create(erin.token, { name: 'alphabet', description: 'letters' });
    await create(erin.token, { name: 'beta' });
    await t.stack.worker.drain();
    const names = async (q: string) =>
      (await t.http().get(`/v2/shares/detail?${q}`).set(as(erin.token)).expect(200)).body.shares
        .map((x: { name: string }) => x.name)
        .sort();
    assert.deepEqual(await names('name=alpha'), ['alpha']);
    assert.deepEqual(await names('name~=alp'), ['alpha', 'alphabet']);
    assert.deepEqual(await names('description~=lett'), ['alphabet']);
    assert.deepEqual(await names(`metadata=${encodeURIComponent("{'tier': 'gold'}")}`), ['alpha']);
    assert.deepEqual(await names('status=available'), ['alpha', 'alphabet', 'beta']);
    assert.deepEqual(await names(`extra_specs=${encodeURIComponent("{'snapshot_support': 'true'}")}`), [
      'alpha',
      'alphabet',
      'beta',
    ]);
    assert.deepEqual(await names(`extra_specs=${encodeURIComponent("{'snapshot_support': 'False'}")}`), []);
    assert.deepEqual(await names('is_soft_deleted=True'), []);
    assert.deepEqual(await names('all_tenants=1&is_public=True&is_soft_deleted=True'), []);
    const summary = await t.http().get('/v2/shares?name=beta').set(as(erin.token)).expect(200);
    assert.deepEqual(Object.keys(summary.body.shares[0]).sort(), ['id', 'links', 'name']);
  });

  test('paging: limit with shares_links, marker, offset (and a UUID offset as OSC sends), with_count', async () => {
    const fay = await t.makeUser({ name: 'fay', project: 'paging' });
    for (let i = 0; i < 5; i++) await create(fay.token, { name: `p${i}` });
    const page = async (q: string) =>
      (await t.http().get(`/v2/shares/detail?${q}`).set(as(fay.token)).expect(200)).body;
    const first = await page('limit=2&sort_key=name&sort_dir=asc&with_count=True');
    assert.deepEqual(
      first.shares.map((x: { name: string }) => x.name),
      ['p0', 'p1'],
    );
    assert.equal(first.count, 5);
    const next = new URL(first.shares_links[0].href);
    assert.equal(next.searchParams.get('marker'), first.shares[1].id);
    const second = await page(next.search.slice(1));
    assert.deepEqual(
      second.shares.map((x: { name: string }) => x.name),
      ['p2', 'p3'],
    );
    const third = await page(`limit=2&sort_key=name&sort_dir=asc&offset=4`);
    assert.deepEqual(
      third.shares.map((x: { name: string }) => x.name),
      ['p4'],
    );
    assert.equal(third.shares_links, undefined);
    const osc = await page(`limit=2&sort_key=name&sort_dir=asc&offset=${first.shares[1].id}`);
    assert.deepEqual(
      osc.shares.map((x: { name: string }) => x.name),
      ['p2', 'p3'],
    );
    await t.stack.worker.drain();
  });
});

describe('microversions in the share view', () => {
  test('2.0 leaves out later fields; 2.72 has them', async () => {
    const s = await create(alice.token, {});
    const old = (await t.http().get(`/v2/shares/${s.id}`).set(as(alice.token, '2.0')).expect(200)).body.share;
    assert.equal(old.snapshot_support, undefined);
    assert.equal(old.access_rules_status, undefined);
    assert.equal(old.is_soft_deleted, undefined);
    const now = await show(alice.token, s.id);
    assert.equal(now.access_rules_status, 'active');
    assert.equal(now.is_soft_deleted, false);
    await t.stack.worker.drain();
  });
});
