import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BackendError } from '../../backends/errors.ts';
import { faultMessage, makeTestApp, type TestApp, type TestUser } from '../helpers/app.ts';

let t: TestApp;
let admin: string;
let alice: TestUser;
let bob: TestUser;
before(async () => {
  t = await makeTestApp();
  admin = await t.adminToken();
  alice = await t.makeUser({ name: 'alice', project: 'demo', role: 'member' });
  bob = await t.makeUser({ name: 'bob', project: 'other', role: 'member' });
});
after(() => t.close());

const as = (token: string) => ({ 'X-Auth-Token': token, 'X-OpenStack-Manila-API-Version': '2.72' });

describe('quota sets', () => {
  test('show: the defaults until set, for the project and for a share type', async () => {
    const res = await t.http().get(`/v2/quota-sets/${alice.projectId}`).set(as(alice.token)).expect(200);
    assert.equal(res.body.quota_set.id, alice.projectId);
    assert.equal(res.body.quota_set.shares, 50);
    assert.equal(res.body.quota_set.gigabytes, 1000);
    assert.equal(res.body.quota_set.per_share_gigabytes, -1);
    const typed = await t
      .http()
      .get(`/v2/quota-sets/${alice.projectId}?share_type=default`)
      .set(as(alice.token))
      .expect(200);
    assert.equal(typed.body.quota_set.shares, 50, 'a share type without its own limit shows the project’s');
    assert.equal(typed.body.quota_set.share_networks, undefined, 'share-type quotas cover a subset');
    const defaults = await t
      .http()
      .get(`/v2/quota-sets/${alice.projectId}/defaults`)
      .set(as(alice.token))
      .expect(200);
    assert.equal(defaults.body.quota_set.snapshots, 50);
  });

  test('update (admin) then detail shows limit, in_use and reserved; delete resets', async () => {
    await t
      .http()
      .put(`/v2/quota-sets/${alice.projectId}`)
      .set(as(admin))
      .send({ quota_set: { tenant_id: alice.projectId, shares: 3, gigabytes: 20 } })
      .expect(200);
    await t
      .http()
      .post('/v2/shares')
      .set(as(alice.token))
      .send({ share: { size: 2, share_proto: 'NFS' } })
      .expect(200);
    const pending = await t
      .http()
      .get(`/v2/quota-sets/${alice.projectId}/detail`)
      .set(as(alice.token))
      .expect(200);
    assert.deepEqual(pending.body.quota_set.shares, { limit: 3, in_use: 0, reserved: 1 });
    await t.stack.worker.drain();
    const done = await t
      .http()
      .get(`/v2/quota-sets/${alice.projectId}/detail`)
      .set(as(alice.token))
      .expect(200);
    assert.deepEqual(done.body.quota_set.shares, { limit: 3, in_use: 1, reserved: 0 });
    assert.deepEqual(done.body.quota_set.gigabytes, { limit: 20, in_use: 2, reserved: 0 });
    const limits = await t.http().get('/v2/limits').set(as(alice.token)).expect(200);
    assert.equal(limits.body.limits.absolute.maxTotalShares, 3);
    assert.equal(limits.body.limits.absolute.totalSharesUsed, 1);
    assert.equal(limits.body.limits.absolute.totalShareGigabytesUsed, 2);
    assert.deepEqual(limits.body.limits.rate, []);

    const low = await t
      .http()
      .put(`/v2/quota-sets/${alice.projectId}`)
      .set(as(admin))
      .send({ quota_set: { shares: 0 } })
      .expect(400);
    assert.match(faultMessage(low.body, 'badRequest', 400), /already in use/);
    await t
      .http()
      .put(`/v2/quota-sets/${alice.projectId}`)
      .set(as(admin))
      .send({ quota_set: { shares: 0, force: true } })
      .expect(200);
    await t.http().delete(`/v2/quota-sets/${alice.projectId}`).set(as(admin)).expect(202);
    const reset = await t.http().get(`/v2/quota-sets/${alice.projectId}`).set(as(alice.token)).expect(200);
    assert.equal(reset.body.quota_set.shares, 50);
  });

  test('a share-type quota limits shares of that type only', async () => {
    await t
      .http()
      .put(`/v2/quota-sets/${bob.projectId}?share_type=default`)
      .set(as(admin))
      .send({ quota_set: { shares: 1 } })
      .expect(200);
    await t
      .http()
      .post('/v2/shares')
      .set(as(bob.token))
      .send({ share: { size: 1, share_proto: 'NFS' } })
      .expect(200);
    const res = await t
      .http()
      .post('/v2/shares')
      .set(as(bob.token))
      .send({ share: { size: 1, share_proto: 'NFS' } })
      .expect(413);
    assert.match(faultMessage(res.body, 'overLimit', 413), /share type limit 1/);
    const bad = await t
      .http()
      .put(`/v2/quota-sets/${bob.projectId}?share_type=default`)
      .set(as(admin))
      .send({ quota_set: { share_networks: 5 } })
      .expect(400);
    assert.match(faultMessage(bad.body, 'badRequest', 400), /share_networks/);
    await t.stack.worker.drain();
  });

  test('bad input and authorization', async () => {
    const cases: [unknown, RegExp][] = [
      [{ quota_set: { shares: -2 } }, /-1/],
      [{ quota_set: { shares: 'many' } }, /whole number/],
      [{ quota_set: { colours: 3 } }, /colours/],
      [{ quota_set: {} }, /at least one/],
    ];
    for (const [body, message] of cases) {
      const res = await t
        .http()
        .put(`/v2/quota-sets/${alice.projectId}`)
        .set(as(admin))
        .send(body as object);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(faultMessage(res.body, 'badRequest', 400), message);
    }
    await t
      .http()
      .put(`/v2/quota-sets/${alice.projectId}`)
      .set(as(alice.token))
      .send({ quota_set: { shares: 99 } })
      .expect(403);
    await t.http().delete(`/v2/quota-sets/${alice.projectId}`).set(as(alice.token)).expect(403);
    await t.http().get(`/v2/quota-sets/${bob.projectId}`).set(as(alice.token)).expect(403);
    await t.http().get(`/v2/quota-sets/${alice.projectId}?share_type=nope`).set(as(alice.token)).expect(404);
    await t
      .http()
      .put('/v2/quota-sets/no-such-project')
      .set(as(admin))
      .send({ quota_set: { shares: 1 } })
      .expect(404);
    const still = await t.http().get(`/v2/quota-sets/${alice.projectId}`).set(as(alice.token)).expect(200);
    assert.equal(still.body.quota_set.shares, 50);
  });
});

describe('messages and availability zones', () => {
  test('a failed share leaves a message its project can list, show and delete; others cannot see it', async () => {
    t.memory.inject({ op: 'createShare', error: new BackendError('Failed', 'pool offline'), times: 1 });
    const s = (
      await t
        .http()
        .post('/v2/shares')
        .set(as(alice.token))
        .send({ share: { size: 1, share_proto: 'NFS' } })
        .expect(200)
    ).body.share;
    await t.stack.worker.drain();
    const list = await t.http().get(`/v2/messages?resource_id=${s.id}`).set(as(alice.token)).expect(200);
    assert.equal(list.body.messages.length, 1);
    const m = list.body.messages[0];
    assert.equal(m.resource_type, 'SHARE');
    assert.equal(m.message_level, 'ERROR');
    assert.match(m.user_message, /pool offline/);
    assert.equal(
      (await t.http().get(`/v2/messages/${m.id}`).set(as(alice.token)).expect(200)).body.message.id,
      m.id,
    );
    await t.http().get(`/v2/messages/${m.id}`).set(as(bob.token)).expect(404);
    assert.deepEqual((await t.http().get('/v2/messages').set(as(bob.token)).expect(200)).body.messages, []);
    await t.http().delete(`/v2/messages/${m.id}`).set(as(bob.token)).expect(404);
    await t.http().delete(`/v2/messages/${m.id}`).set(as(alice.token)).expect(204);
    await t.http().get(`/v2/messages/${m.id}`).set(as(alice.token)).expect(404);
    await t.http().get('/v2/messages?colour=red').set(as(alice.token)).expect(400);
  });

  test('availability zones list the zones that have a backend, with stable ids', async () => {
    const a = await t.http().get('/v2/availability-zones').set(as(alice.token)).expect(200);
    assert.deepEqual(
      a.body.availability_zones.map((z: { name: string }) => z.name),
      ['nova'],
    );
    await t.restart();
    const b = await t.http().get('/v2/availability-zones').set(as(alice.token)).expect(200);
    assert.equal(b.body.availability_zones[0].id, a.body.availability_zones[0].id);
  });
});

describe('services', () => {
  test('admins list the scheduler and one share service per backend, up from the heartbeat', async () => {
    const res = await t.http().get('/v2/services').set(as(admin)).expect(200);
    const rows = res.body.services.map((s: Record<string, string>) => [
      s.binary,
      s.host,
      s.zone,
      s.status,
      s.state,
    ]);
    assert.deepEqual(rows, [
      ['manila-scheduler', 'test', 'nova', 'enabled', 'up'],
      ['manila-share', 'test@mem', 'nova', 'enabled', 'up'],
    ]);
    const shareOnly = await t
      .http()
      .get('/v2/services?binary=manila-share&state=up')
      .set(as(admin))
      .expect(200);
    assert.equal(shareOnly.body.services.length, 1);
    await t.http().get('/v2/services').set(as(alice.token)).expect(403);
    // Manila filters on values no service has (and ignores parameters it does not know).
    for (const q of ['state=sideways', 'status=fake', 'host=fake_host', 'zone=fake', 'binary=fake'])
      assert.deepEqual(
        (await t.http().get(`/v2/services?${q}`).set(as(admin)).expect(200)).body.services,
        [],
      );
    const all = await t.http().get('/v2/services?fake_param=x').set(as(admin)).expect(200);
    assert.equal(all.body.services.length, 2);
  });

  test('os-quota-sets answers up to 2.6, quota-sets from 2.7, its detail from 2.25', async () => {
    const at = (v: string) => ({ 'X-Auth-Token': admin, 'X-OpenStack-Manila-API-Version': v });
    const p = alice.projectId;
    await t.http().get(`/v2/os-quota-sets/${p}`).set(at('2.6')).expect(200);
    await t.http().get(`/v2/os-quota-sets/${p}/defaults`).set(at('2.0')).expect(200);
    await t.http().get(`/v2/quota-sets/${p}`).set(at('2.6')).expect(404);
    await t.http().get(`/v2/os-quota-sets/${p}`).set(at('2.7')).expect(404);
    await t.http().get(`/v2/quota-sets/${p}/detail`).set(at('2.24')).expect(404);
    await t.http().get(`/v2/quota-sets/${p}/detail`).set(at('2.25')).expect(200);
  });

  test('os-services and os-availability-zone answer up to 2.6, services and availability-zones from 2.7', async () => {
    const at = (v: string, token: string) => ({ 'X-Auth-Token': token, 'X-OpenStack-Manila-API-Version': v });
    for (const v of ['2.0', '2.6']) {
      await t.http().get('/v2/os-services').set(at(v, admin)).expect(200);
      await t.http().get('/v2/os-availability-zone').set(at(v, alice.token)).expect(200);
      await t.http().get('/v2/services').set(at(v, admin)).expect(404);
      await t.http().get('/v2/availability-zones').set(at(v, alice.token)).expect(404);
    }
    await t.http().get('/v2/os-services').set(at('2.7', admin)).expect(404);
    await t.http().get('/v2/os-availability-zone').set(at('2.7', alice.token)).expect(404);
    await t.http().get('/v2/services').set(at('2.7', admin)).expect(200);
    await t.http().get('/v2/availability-zones').set(at('2.7', alice.token)).expect(200);
  });

  test('a service whose heartbeat is older than the down time is down', async () => {
    await t
      .db('services')
      .where({ binary: 'manila-share' })
      .update({ updated_at: new Date(Date.now() - 120_000) });
    const res = await t.http().get('/v2/services?binary=manila-share').set(as(admin)).expect(200);
    assert.equal(res.body.services[0].state, 'down');
    await t.stack.osServices.heartbeat();
    const again = await t.http().get('/v2/services?binary=manila-share').set(as(admin)).expect(200);
    assert.equal(again.body.services[0].state, 'up');
  });
});
