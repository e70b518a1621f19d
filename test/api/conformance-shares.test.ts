/**
 * Share, share type and scheduling behaviours manila-tempest-plugin's API tests found abaca lacking
 * (issue 20), each kept here as a regression test of our own: the capabilities filter and its user
 * message, size limits from the type, zones, empty ids, refusals for other projects' public shares,
 * export location views, share type updates and access, task states, extensions, manage/unmanage.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
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

const as = (token: string, v = '2.72') => ({ 'X-Auth-Token': token, 'X-OpenStack-Manila-API-Version': v });

async function newType(name: string, specs: Record<string, unknown>, isPublic = true): Promise<string> {
  const res = await t
    .http()
    .post('/v2/types')
    .set(as(admin))
    .send({
      share_type: {
        name,
        extra_specs: { driver_handles_share_servers: false, ...specs },
        'share_type_access:is_public': isPublic,
      },
    });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.share_type.id;
}

async function newShare(token: string, share: Record<string, unknown> = {}): Promise<string> {
  const res = await t
    .http()
    .post('/v2/shares')
    .set(as(token))
    .send({ share: { size: 1, share_proto: 'NFS', ...share } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  await t.stack.worker.drain();
  return res.body.share.id;
}

const getShare = async (id: string, token = admin, v = '2.72') =>
  (await t.http().get(`/v2/shares/${id}`).set(as(token, v)).expect(200)).body.share;

describe('scheduling: the capabilities filter', () => {
  test("a type asking for a capability no backend has (vendor_name=foobar): error and Manila's user message", async () => {
    const typeId = await newType('bogus', { vendor_name: 'foobar' });
    const id = await newShare(alice.token, { share_type: typeId });
    assert.equal((await getShare(id)).status, 'error');
    const res = await t.http().get(`/v2/messages?resource_id=${id}`).set(as(alice.token)).expect(200);
    assert.equal(res.body.messages.length, 1);
    const [m] = res.body.messages;
    assert.equal(m.action_id, '001');
    assert.equal(m.detail_id, '002');
    assert.equal(m.resource_type, 'SHARE');
    assert.match(m.user_message, /No storage could be allocated for this share request/);
    assert.match(m.user_message, /vendor_name is abaca, not foobar/);
    assert.deepEqual(
      m.links.map((l: { rel: string }) => l.rel),
      ['self', 'bookmark'],
    );
  });

  test('a share that was never placed is gone as its DELETE answers, its type deletable at once (quota back)', async () => {
    // tempest's UserMessageTest deletes such a share and then its type without waiting: Manila
    // drops a share instance without a host from the database in the DELETE itself.
    const typeId = await newType('never-placed', { vendor_name: 'foobar' });
    const usage = async () =>
      (await t.http().get(`/v2/quota-sets/${alice.projectId}/detail`).set(as(admin)).expect(200)).body
        .quota_set.shares.in_use;
    const before = await usage();
    const id = await newShare(alice.token, { share_type: typeId });
    assert.equal((await getShare(id)).status, 'error');
    assert.equal(await usage(), before + 1, 'a share in error holds its quota, as in Manila');
    await t.http().delete(`/v2/shares/${id}`).set(as(alice.token)).expect(202);
    await t.http().get(`/v2/shares/${id}`).set(as(alice.token)).expect(404);
    assert.equal(await usage(), before);
    await t.http().delete(`/v2/types/${typeId}`).set(as(admin)).expect(202);
  });

  test('messages sort (sort_key, sort_dir) and, from 2.52, filter by created_since/created_before', async () => {
    const typeId = await newType('bogus2', { vendor_name: 'foobar' });
    await newShare(alice.token, { share_type: typeId });
    await newShare(alice.token, { share_type: typeId });
    const list = async (q: string, v = '2.72') =>
      (await t.http().get(`/v2/messages?${q}`).set(as(admin, v)).expect(200)).body.messages;
    const sorted = await list('sort_key=resource_id&sort_dir=asc&limit=2');
    assert.equal(sorted.length, 2);
    assert.ok(sorted[0].resource_id < sorted[1].resource_id);
    const all = await list('');
    const newest = all[0];
    // The form Python's str(datetime) gives: a space, microseconds, no zone (UTC).
    const py = new Date(`${newest.created_at}Z`).toISOString().replace('T', ' ').replace('Z', '000');
    const since = await list(`created_since=${encodeURIComponent(py)}`);
    assert.ok(since.some((x: { id: string }) => x.id === newest.id));
    assert.ok(since.every((x: { created_at: string }) => x.created_at >= newest.created_at));
    assert.equal((await list('created_before=2000-01-01T00:00:00')).length, 0);
    assert.equal((await list('created_before=2000-01-01T00:00:00', '2.51')).length, all.length);
    await t.http().get('/v2/messages?created_since=yesterday').set(as(admin)).expect(400);
    await t.http().get('/v2/messages?sort_key=user_message').set(as(admin)).expect(400);
  });

  test('a storage_protocol spec with <in> matches the protocols the backend reports', async () => {
    const typeId = await newType('proto', { storage_protocol: '<in> NFS' });
    assert.equal((await getShare(await newShare(alice.token, { share_type: typeId }))).status, 'available');
  });

  test('a capability spec the backend satisfies, and scoped specs of other scopes, still schedule', async () => {
    const typeId = await newType('fits', {
      vendor_name: 'abaca',
      'capabilities:free_capacity_gb': '>= 1',
      'acme:tier': 'gold',
    });
    const id = await newShare(alice.token, { share_type: typeId });
    assert.equal((await getShare(id)).status, 'available');
  });
});

describe('share create: zone and size limits', () => {
  test('an unknown availability zone is a 404', async () => {
    const res = await t
      .http()
      .post('/v2/shares')
      .set(as(alice.token))
      .send({ share: { size: 1, share_proto: 'NFS', availability_zone: 'fake_az' } })
      .expect(404);
    assert.match(faultMessage(res.body, 'itemNotFound', 404), /Availability zone fake_az could not be found/);
  });

  test("the type's provisioning:min/max_share_size bound create, extend and shrink (400)", async () => {
    const typeId = await newType('sized', {
      'provisioning:min_share_size': 2,
      'provisioning:max_share_size': '5',
    });
    const create = (size: number) =>
      t
        .http()
        .post('/v2/shares')
        .set(as(alice.token))
        .send({ share: { size, share_proto: 'NFS', share_type: typeId } });
    assert.match(
      faultMessage((await create(1)).body, 'badRequest', 400),
      /less than the minimum required size of '2'/,
    );
    assert.match(
      faultMessage((await create(6)).body, 'badRequest', 400),
      /greater than the maximum allowable size of '5'/,
    );
    const id = await newShare(alice.token, { size: 3, share_type: typeId });
    const action = (body: Record<string, unknown>) =>
      t.http().post(`/v2/shares/${id}/action`).set(as(alice.token)).send(body);
    assert.equal((await action({ extend: { new_size: 6 } })).status, 400);
    assert.equal((await action({ shrink: { new_size: 1 } })).status, 400);
    assert.equal((await action({ extend: { new_size: 5 } })).status, 202);
    await t.stack.worker.drain();
    assert.equal((await getShare(id)).size, 5);
  });

  test('size specs must be whole numbers, min not above max', async () => {
    for (const specs of [
      { 'provisioning:max_share_size': 'lots' },
      { 'provisioning:min_share_size': '0' },
      { 'provisioning:min_share_size': '6', 'provisioning:max_share_size': '5' },
    ]) {
      const res = await t
        .http()
        .post('/v2/types')
        .set(as(admin))
        .send({
          share_type: { name: 'bad-size', extra_specs: { driver_handles_share_servers: false, ...specs } },
        });
      assert.equal(res.status, 400, JSON.stringify(specs));
    }
  });
});

describe('empty ids in URLs', () => {
  test('GET and DELETE /v2/shares/ and /v2/types//extra_specs are 404, the collections still answer', async () => {
    await t.http().get('/v2/shares/').set(as(alice.token)).expect(404);
    await t.http().delete('/v2/shares/').set(as(alice.token)).expect(404);
    const typeId = await newType('keyed', { key: 'value' });
    await t
      .http()
      .post('/v2/types//extra_specs')
      .set(as(admin))
      .send({ extra_specs: { a: 'b' } })
      .expect(404);
    // What a client that collapses the empty id sends.
    await t
      .http()
      .post('/v2/types/extra_specs')
      .set(as(admin))
      .send({ extra_specs: { a: 'b' } })
      .expect(404);
    await t.http().get(`/v2/types/${typeId}/extra_specs/`).set(as(admin)).expect(404);
    await t.http().put(`/v2/types/${typeId}/extra_specs/`).set(as(admin)).send({ '': 'x' }).expect(404);
    await t.http().get('/v2/shares').set(as(alice.token)).expect(200);
    await t.http().get(`/v2/${alice.projectId}/shares`).set(as(alice.token)).expect(200);
  });
});

describe('share deletion and snapshots', () => {
  test('deleting a share that has snapshots is a 403 (Manila’s InvalidShare on delete)', async () => {
    const id = await newShare(alice.token);
    const snap = await t
      .http()
      .post('/v2/snapshots')
      .set(as(alice.token))
      .send({ snapshot: { share_id: id } })
      .expect(202);
    await t.stack.worker.drain();
    const res = await t.http().delete(`/v2/shares/${id}`).set(as(alice.token)).expect(403);
    assert.match(faultMessage(res.body, 'forbidden', 403), new RegExp(snap.body.snapshot.id));
  });

  test('a share from a snapshot is `creating` when accepted, creating_from_snapshot (2.54+) while copied', async () => {
    const source = await newShare(alice.token);
    const snap = await t
      .http()
      .post('/v2/snapshots')
      .set(as(alice.token))
      .send({ snapshot: { share_id: source } })
      .expect(202);
    await t.stack.worker.drain();
    t.memory.inject({ op: 'createShareFromSnapshot', delayMs: 400, times: 1 });
    const res = await t
      .http()
      .post('/v2/shares')
      .set(as(alice.token))
      .send({ share: { size: 1, share_proto: 'NFS', snapshot_id: snap.body.snapshot.id } })
      .expect(200);
    assert.equal(res.body.share.status, 'creating');
    const id = res.body.share.id;
    const drained = t.stack.worker.drain();
    let seen = '';
    for (let i = 0; i < 50 && seen !== 'creating_from_snapshot'; i++) {
      await new Promise((r) => setTimeout(r, 10));
      seen = (await getShare(id, alice.token)).status;
    }
    assert.equal(seen, 'creating_from_snapshot');
    assert.equal((await getShare(id, alice.token, '2.53')).status, 'creating');
    // The snapshot cannot go while the share is copied from it.
    await t.http().delete(`/v2/snapshots/${snap.body.snapshot.id}`).set(as(alice.token)).expect(409);
    await drained;
    assert.equal((await getShare(id)).status, 'available');
  });
});

describe('access rules of a deleted share', () => {
  test('GET /v2/share-access-rules?share_id= of a share that is gone is a 400 (Manila), the action a 404', async () => {
    const id = await newShare(alice.token);
    await t.http().delete(`/v2/shares/${id}`).set(as(alice.token)).expect(202);
    await t.stack.worker.drain();
    const res = await t.http().get(`/v2/share-access-rules?share_id=${id}`).set(as(alice.token)).expect(400);
    assert.match(faultMessage(res.body, 'badRequest', 400), /not found/);
    await t
      .http()
      .post(`/v2/shares/${id}/action`)
      .set(as(alice.token))
      .send({ access_list: null })
      .expect(404);
  });
});

describe('list filters for admins only', () => {
  test('host and share_server_id from a member are 403; an admin filters with them', async () => {
    await t.http().get('/v2/shares?host=fake_host').set(as(alice.token)).expect(403);
    await t.http().get('/v2/shares/detail?share_server_id=12345').set(as(alice.token)).expect(403);
    await t.http().get('/v2/shares?host=fake_host').set(as(admin)).expect(200);
    await t.http().get('/v2/shares/detail?share_server_id=12345').set(as(admin)).expect(200);
  });
});

describe("another project's shares", () => {
  let publicId: string;
  let privateId: string;
  before(async () => {
    publicId = await newShare(admin, { is_public: true, metadata: { key: 'value' } });
    privateId = await newShare(admin);
  });

  test('a public share: update, delete, metadata and actions are 403; reading works', async () => {
    const bobs = as(bob.token);
    await t.http().get(`/v2/shares/${publicId}`).set(bobs).expect(200);
    await t.http().get(`/v2/shares/${publicId}/metadata`).set(bobs).expect(200);
    const refusals = [
      t
        .http()
        .put(`/v2/shares/${publicId}`)
        .set(bobs)
        .send({ share: { name: 'new_name' } }),
      t.http().delete(`/v2/shares/${publicId}`).set(bobs),
      t
        .http()
        .post(`/v2/shares/${publicId}/metadata`)
        .set(bobs)
        .send({ metadata: { key: 'v' } }),
      t
        .http()
        .put(`/v2/shares/${publicId}/metadata`)
        .set(bobs)
        .send({ metadata: { key: 'v' } }),
      t.http().delete(`/v2/shares/${publicId}/metadata/key`).set(bobs),
      t
        .http()
        .post(`/v2/shares/${publicId}/action`)
        .set(bobs)
        .send({ extend: { new_size: 2 } }),
    ];
    for (const [i, res] of (await Promise.all(refusals)).entries()) {
      assert.equal(res.status, 403, `request ${i}: ${JSON.stringify(res.body)}`);
      assert.match(faultMessage(res.body, 'forbidden', 403), /another project's public share/);
    }
    assert.equal((await getShare(publicId)).status, 'available');
  });

  test('a private share stays a 404 for changes, but its export locations are a 403 (as Manila)', async () => {
    await t
      .http()
      .put(`/v2/shares/${privateId}`)
      .set(as(bob.token))
      .send({ share: { name: 'x' } })
      .expect(404);
    await t.http().get(`/v2/shares/${privateId}`).set(as(bob.token)).expect(404);
    await t.http().get(`/v2/shares/${privateId}/export_locations`).set(as(bob.token)).expect(403);
    await t
      .http()
      .get('/v2/shares/6d0b9d1b-fc87-4b7f-add5-919b0ddcda90/export_locations')
      .set(as(bob.token))
      .expect(404);
  });
});

describe('export location views', () => {
  test('summary in lists, detail with timestamps for one; admin keys; preferred from 2.14', async () => {
    const id = await newShare(alice.token);
    const list = async (token: string, v: string) =>
      (await t.http().get(`/v2/shares/${id}/export_locations`).set(as(token, v)).expect(200)).body
        .export_locations;
    const [adminEl] = await list(admin, '2.72');
    assert.deepEqual(Object.keys(adminEl).sort(), [
      'id',
      'is_admin_only',
      'path',
      'preferred',
      'share_instance_id',
    ]);
    assert.deepEqual(Object.keys((await list(admin, '2.13'))[0]).sort(), [
      'id',
      'is_admin_only',
      'path',
      'share_instance_id',
    ]);
    assert.deepEqual(Object.keys((await list(alice.token, '2.72'))[0]).sort(), ['id', 'path', 'preferred']);
    const one = async (token: string) =>
      (await t.http().get(`/v2/shares/${id}/export_locations/${adminEl.id}`).set(as(token)).expect(200)).body
        .export_location;
    const detail = await one(admin);
    assert.deepEqual(Object.keys(detail).sort(), [
      'created_at',
      'id',
      'is_admin_only',
      'path',
      'preferred',
      'share_instance_id',
      'updated_at',
    ]);
    assert.match(detail.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+$/);
    assert.deepEqual(Object.keys(await one(alice.token)).sort(), [
      'created_at',
      'id',
      'path',
      'preferred',
      'updated_at',
    ]);
  });
});

describe('share types', () => {
  test('an empty description unsets it (null); over 255 characters is a 400', async () => {
    const created = await t
      .http()
      .post('/v2/types')
      .set(as(admin))
      .send({
        share_type: {
          name: 'described',
          description: 'd',
          extra_specs: { driver_handles_share_servers: false },
        },
      })
      .expect(200);
    const id = created.body.share_type.id;
    const upd = await t
      .http()
      .put(`/v2/types/${id}`)
      .set(as(admin))
      .send({ share_type: { description: '' } })
      .expect(200);
    assert.equal(upd.body.share_type.description, null);
    await t
      .http()
      .put(`/v2/types/${id}`)
      .set(as(admin))
      .send({ share_type: { description: 'x'.repeat(256) } })
      .expect(400);
    await t
      .http()
      .put(`/v2/types/${id}`)
      .set(as(admin))
      .send({ share_type: { description: 'x'.repeat(255) } })
      .expect(200);
  });

  test("an admin's default list holds the private types shared with the admin's project, until removed", async () => {
    const id = await newType('private-for-admin', {}, false);
    const listed = async () =>
      (await t.http().get('/v2/types').set(as(admin)).expect(200)).body.share_types.some(
        (x: { id: string }) => x.id === id,
      );
    assert.equal(await listed(), false);
    const act = (body: Record<string, unknown>) =>
      t.http().post(`/v2/types/${id}/action`).set(as(admin)).send(body).expect(202);
    await act({ addProjectAccess: { project: t.adminProjectId } });
    assert.equal(await listed(), true);
    await act({ removeProjectAccess: { project: t.adminProjectId } });
    assert.equal(await listed(), false);
    const access = await t.http().get(`/v2/types/${id}/share_type_access`).set(as(admin)).expect(200);
    assert.deepEqual(access.body.share_type_access, []);
  });

  test('a member sees the four capability flags, inferred False where the type is silent', async () => {
    const id = await newType('silent', { key: 'value' });
    const res = await t.http().get(`/v2/types/${id}`).set(as(alice.token)).expect(200);
    assert.deepEqual(res.body.share_type.extra_specs, {
      driver_handles_share_servers: 'False',
      snapshot_support: 'False',
      create_share_from_snapshot_support: 'False',
      revert_to_snapshot_support: 'False',
      mount_snapshot_support: 'False',
    });
  });
});

describe('admin actions and other routes', () => {
  test('reset_task_state (2.22, admin): set, shown as task_state, cleared with null; refused otherwise', async () => {
    const id = await newShare(alice.token);
    const reset = (task_state: unknown, token = admin, v = '2.72') =>
      t.http().post(`/v2/shares/${id}/action`).set(as(token, v)).send({ reset_task_state: { task_state } });
    assert.equal((await reset('migration_error')).status, 202);
    assert.equal((await getShare(id, alice.token)).task_state, 'migration_error');
    assert.equal((await reset(null)).status, 202);
    assert.equal((await getShare(id, alice.token)).task_state, null);
    assert.equal((await reset('bogus')).status, 400);
    assert.equal((await reset('migration_error', alice.token)).status, 403);
    assert.equal((await reset('migration_error', admin, '2.21')).status, 404);
  });

  test('GET /v2/extensions lists extension descriptors', async () => {
    const res = await t.http().get('/v2/extensions').set(as(alice.token)).expect(200);
    assert.ok(res.body.extensions.length > 0);
    for (const e of res.body.extensions)
      assert.deepEqual(Object.keys(e).sort(), ['alias', 'description', 'links', 'name', 'updated']);
    assert.ok(res.body.extensions.some((e: { alias: string }) => e.alias === 'os-quota-sets'));
  });

  test('manage and unmanage: 403 for members on either URL, 501 for admins (no backend adopts shares)', async () => {
    const id = await newShare(alice.token);
    const v20 = (token: string) => as(token, '2.0');
    await t.http().post('/v2/os-share-manage').set(v20(alice.token)).send({ share: {} }).expect(403);
    await t.http().post('/v2/os-share-unmanage/fake-id/unmanage').set(v20(alice.token)).expect(403);
    await t.http().post('/v2/shares/manage').set(as(alice.token)).send({ share: {} }).expect(403);
    await t.http().post(`/v2/shares/${id}/action`).set(as(alice.token)).send({ unmanage: null }).expect(403);
    await t.http().post('/v2/shares/manage').set(as(admin)).send({ share: {} }).expect(501);
    await t.http().post(`/v2/shares/${id}/action`).set(as(admin)).send({ unmanage: null }).expect(501);
    await t.http().post('/v2/os-share-manage').set(as(admin)).send({ share: {} }).expect(404);
    assert.equal((await getShare(id)).status, 'available');
  });
});
