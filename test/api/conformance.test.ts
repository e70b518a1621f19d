/**
 * Behaviours manila-tempest-plugin's API tests found abaca lacking (issue 20), each kept here as a
 * regression test of our own: microversion-aware views, legacy and versioned URLs, list filters,
 * share instances, share replicas' lists, status codes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { faultMessage, makeTestApp, type TestApp, type TestUser } from '../helpers/app.ts';

let t: TestApp;
let admin: string;
let alice: TestUser;
let shareId: string;
before(async () => {
  t = await makeTestApp();
  admin = await t.adminToken();
  alice = await t.makeUser({ name: 'alice', project: 'demo', role: 'member' });
  const res = await t
    .http()
    .post('/v2/shares')
    .set(as(alice.token))
    .send({ share: { size: 1, share_proto: 'NFS', name: 's1', description: 'first share' } })
    .expect(200);
  shareId = res.body.share.id;
  await t.stack.worker.drain();
});
after(() => t.close());

const as = (token: string, v = '2.72') => ({ 'X-Auth-Token': token, 'X-OpenStack-Manila-API-Version': v });

describe('share views by microversion', () => {
  test('until 2.8 a share lists its export paths (export_location, export_locations); from 2.9 not', async () => {
    const old = (await t.http().get(`/v2/shares/${shareId}`).set(as(alice.token, '2.8')).expect(200)).body
      .share;
    assert.ok(Array.isArray(old.export_locations) && old.export_locations.length === 1);
    assert.equal(old.export_location, old.export_locations[0]);
    const list = await t.http().get('/v2/shares/detail').set(as(alice.token, '2.1')).expect(200);
    assert.equal(list.body.shares[0].export_location, old.export_location);
    const now = (await t.http().get(`/v2/shares/${shareId}`).set(as(alice.token, '2.9')).expect(200)).body
      .share;
    assert.equal(now.export_location, undefined);
    assert.equal(now.export_locations, undefined);
  });

  test('share_type is the type name until 2.5, its id with share_type_name from 2.6', async () => {
    const v25 = (await t.http().get(`/v2/shares/${shareId}`).set(as(alice.token, '2.5')).expect(200)).body
      .share;
    assert.equal(v25.share_type, 'default');
    assert.equal(v25.share_type_name, undefined);
    const v26 = (await t.http().get(`/v2/shares/${shareId}`).set(as(alice.token, '2.6')).expect(200)).body
      .share;
    assert.match(v26.share_type, /^[0-9a-f-]{36}$/);
    assert.equal(v26.share_type_name, 'default');
  });
});

describe('share type views by microversion', () => {
  test('is_public key, description (2.41) and is_default (2.46) by version', async () => {
    const get = async (v: string) =>
      (await t.http().get('/v2/types/default').set(as(admin, v)).expect(200)).body.share_type;
    const v26 = await get('2.6');
    assert.equal(v26['os-share-type-access:is_public'], true);
    assert.equal(v26['share_type_access:is_public'], undefined);
    assert.equal(v26.description, undefined);
    assert.equal(v26.is_default, undefined);
    const v41 = await get('2.41');
    assert.equal(v41['share_type_access:is_public'], true);
    assert.equal(v41['os-share-type-access:is_public'], undefined);
    assert.equal(typeof v41.description, 'string');
    assert.equal(v41.is_default, undefined);
    assert.equal((await get('2.46')).is_default, true);
  });

  test('a description before 2.41 is a 400; before 2.24 snapshot_support is implied and required', async () => {
    await t
      .http()
      .post('/v2/types')
      .set(as(admin, '2.40'))
      .send({
        share_type: { name: 'd', description: 'x', extra_specs: { driver_handles_share_servers: false } },
      })
      .expect(400);
    const res = await t
      .http()
      .post('/v2/types')
      .set(as(admin, '2.23'))
      .send({ share_type: { name: 'old', extra_specs: { driver_handles_share_servers: false } } })
      .expect(200);
    const id = res.body.share_type.id;
    assert.equal(res.body.share_type.extra_specs.snapshot_support, 'True');
    await t.http().delete(`/v2/types/${id}/extra_specs/snapshot_support`).set(as(admin, '2.23')).expect(403);
    await t.http().delete(`/v2/types/${id}/extra_specs/snapshot_support`).set(as(admin, '2.24')).expect(202);
  });

  test('deleting a type that shares still use is a 400 naming the cause', async () => {
    const res = await t
      .http()
      .post('/v2/types')
      .set(as(admin))
      .send({ share_type: { name: 'used', extra_specs: { driver_handles_share_servers: false } } })
      .expect(200);
    const typeId = res.body.share_type.id;
    await t
      .http()
      .post('/v2/shares')
      .set(as(admin))
      .send({ share: { size: 1, share_proto: 'NFS', share_type: typeId } })
      .expect(200);
    const del = await t.http().delete(`/v2/types/${typeId}`).set(as(admin)).expect(400);
    assert.match(faultMessage(del.body, 'badRequest', 400), /shares present with the type/);
  });
});

describe('share list filters', () => {
  test('description, host (admin), snapshot_id and share_server_id filter', async () => {
    const ids = async (q: string, token = alice.token) =>
      (await t.http().get(`/v2/shares?${q}`).set(as(token)).expect(200)).body.shares.map(
        (s: { id: string }) => s.id,
      );
    assert.deepEqual(await ids('description=first%20share'), [shareId]);
    assert.deepEqual(await ids('description=other'), []);
    assert.deepEqual(await ids('snapshot_id=5e0c2a63-0b5d-4a5e-9d0a-2f1e1b1c1d1e'), []);
    assert.deepEqual(await ids('snapshot_id=not-a-uuid'), []);
    const host = (await t.http().get(`/v2/shares/${shareId}`).set(as(admin)).expect(200)).body.share.host;
    assert.deepEqual(await ids(`all_tenants=1&host=${encodeURIComponent(host)}`, admin), [shareId]);
    assert.deepEqual(await ids('all_tenants=1&host=nowhere', admin), []);
    assert.deepEqual(await ids('all_tenants=1&share_server_id=abc', admin), []);
  });

  test('export_location_id that is no UUID matches nothing (no 500); *_location and name~ wait for 2.35/2.36', async () => {
    const list = (q: string, v: string) =>
      t.http().get(`/v2/shares?${q}`).set(as(alice.token, v)).expect(200);
    assert.equal((await list('export_location_id=fake', '2.35')).body.shares.length, 0);
    assert.equal((await list('export_location_path=fake', '2.35')).body.shares.length, 0);
    assert.equal((await list('export_location_id=fake', '2.34')).body.shares.length, 1);
    assert.equal((await list('name~=zzz', '2.35')).body.shares.length, 1);
    assert.equal((await list('name~=zzz', '2.36')).body.shares.length, 0);
  });
});

describe('scheduler-stats pools', () => {
  test('pool (Manila’s name for the filter) and share_type (2.23, by id or name) filter the pools', async () => {
    const pools = async (q: string, v = '2.72') =>
      (await t.http().get(`/v2/scheduler-stats/pools?${q}`).set(as(admin, v)).expect(200)).body.pools;
    const all = await pools('');
    assert.ok(all.length >= 1);
    assert.deepEqual(await pools(`pool=${encodeURIComponent(`^${all[0].pool}$`)}`), [all[0]]);
    assert.deepEqual(await pools('pool=nothing-like-it'), []);
    const other = await t
      .http()
      .post('/v2/types')
      .set(as(admin))
      .send({
        share_type: {
          name: 'elsewhere',
          extra_specs: { driver_handles_share_servers: false, share_backend_name: 'elsewhere' },
        },
      })
      .expect(200);
    assert.deepEqual(await pools('share_type=elsewhere'), []);
    assert.deepEqual(await pools(`share_type=${other.body.share_type.id}`), []);
    assert.deepEqual(await pools('share_type=default'), all);
    assert.deepEqual(await pools('share_type=elsewhere', '2.22'), all, 'no share_type filter before 2.23');
    await t.http().get('/v2/scheduler-stats/pools?share_type=nope').set(as(admin)).expect(404);
  });
});

describe('share instances and replicas', () => {
  test('an admin sees a share as its one instance; members get 403', async () => {
    const list = await t.http().get(`/v2/shares/${shareId}/instances`).set(as(admin, '2.54')).expect(200);
    assert.equal(list.body.share_instances.length, 1);
    const [si] = list.body.share_instances;
    assert.equal(si.share_id, shareId);
    assert.equal(si.progress, '100%');
    const shown = await t.http().get(`/v2/share_instances/${si.id}`).set(as(admin, '2.3')).expect(200);
    assert.deepEqual(Object.keys(shown.body.share_instance).sort(), [
      'availability_zone',
      'created_at',
      'export_location',
      'export_locations',
      'host',
      'id',
      'share_id',
      'share_network_id',
      'share_server_id',
      'status',
    ]);
    const all = await t.http().get('/v2/share_instances').set(as(admin)).expect(200);
    assert.ok(all.body.share_instances.some((x: { share_id: string }) => x.share_id === shareId));
    await t.http().get('/v2/share_instances').set(as(alice.token)).expect(403);
    await t.http().get(`/v2/shares/${shareId}/instances`).set(as(alice.token)).expect(403);
    await t
      .http()
      .post(`/v2/share_instances/${si.id}/action`)
      .set(as(admin))
      .send({ reset_status: { status: 'error' } })
      .expect(202);
    assert.equal(
      (await t.http().get(`/v2/share_instances/${si.id}`).set(as(admin)).expect(200)).body.share_instance
        .status,
      'error',
    );
    await t
      .http()
      .post(`/v2/share_instances/${si.id}/action`)
      .set(as(admin))
      .send({ reset_status: { status: 'available' } })
      .expect(202);
  });

  test('share replica lists are empty (no API-level replication), any replica is 404', async () => {
    const res = await t.http().get(`/v2/share-replicas/detail?share_id=${shareId}`).set(as(alice.token));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.share_replicas, []);
    await t.http().get('/v2/share-replicas/abc').set(as(alice.token)).expect(404);
  });

  test('an action abaca does not have is a 404', async () => {
    const res = await t
      .http()
      .post(`/v2/shares/${shareId}/action`)
      .set(as(admin))
      .send({ migration_start: { host: 'x' } })
      .expect(404);
    faultMessage(res.body, 'itemNotFound', 404);
  });
});
