import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BackendError } from '../../backends/errors.ts';
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

const as = (token: string) => ({ 'X-Auth-Token': token, 'X-OpenStack-Manila-API-Version': '2.72' });

async function newShare(metadata: Record<string, string> = {}) {
  const res = await t
    .http()
    .post('/v2/shares')
    .set(as(alice.token))
    .send({ share: { size: 1, share_proto: 'NFS', name: 'orig', metadata } })
    .expect(200);
  await t.stack.worker.drain();
  return res.body.share.id as string;
}

describe('update', () => {
  test('OSC sends display_name / display_description / is_public as a string; manila sends name and a boolean', async () => {
    const id = await newShare();
    const a = await t
      .http()
      .put(`/v2/shares/${id}`)
      .set(as(alice.token))
      .send({ share: { display_name: 'renamed', display_description: 'described' } })
      .expect(200);
    assert.equal(a.body.share.name, 'renamed');
    assert.equal(a.body.share.description, 'described');
    const b = await t
      .http()
      .put(`/v2/shares/${id}`)
      .set(as(admin))
      .send({ share: { is_public: 'true' } })
      .expect(200);
    assert.equal(b.body.share.is_public, true);
    const c = await t
      .http()
      .put(`/v2/shares/${id}`)
      .set(as(alice.token))
      .send({ share: { is_public: false } })
      .expect(200);
    assert.equal(c.body.share.is_public, false);
  });

  test('making a share public needs admin; others cannot update it at all; bad values are 400', async () => {
    const id = await newShare();
    await t
      .http()
      .put(`/v2/shares/${id}`)
      .set(as(alice.token))
      .send({ share: { is_public: true } })
      .expect(403);
    await t
      .http()
      .put(`/v2/shares/${id}`)
      .set(as(bob.token))
      .send({ share: { name: 'x' } })
      .expect(404);
    await t
      .http()
      .put(`/v2/shares/${id}`)
      .set(as(reader.token))
      .send({ share: { name: 'x' } })
      .expect(403);
    const bad = await t
      .http()
      .put(`/v2/shares/${id}`)
      .set(as(alice.token))
      .send({ share: { name: 'n'.repeat(256) } })
      .expect(400);
    faultMessage(bad.body, 'badRequest', 400);
    const s = (await t.http().get(`/v2/shares/${id}`).set(as(alice.token)).expect(200)).body.share;
    assert.equal(s.name, 'orig');
    assert.equal(s.is_public, false);
  });
});

describe('metadata', () => {
  test('get, set (merge), replace, show one, update one, delete one', async () => {
    const id = await newShare({ k1: 'v1' });
    const base = `/v2/shares/${id}/metadata`;
    assert.deepEqual((await t.http().get(base).set(as(reader.token)).expect(200)).body, {
      metadata: { k1: 'v1' },
    });
    const merged = await t
      .http()
      .post(base)
      .set(as(alice.token))
      .send({ metadata: { k2: 'v2' } })
      .expect(200);
    assert.deepEqual(merged.body.metadata, { k1: 'v1', k2: 'v2' });
    const replaced = await t
      .http()
      .put(base)
      .set(as(alice.token))
      .send({ metadata: { k3: 'v3' } })
      .expect(200);
    assert.deepEqual(replaced.body.metadata, { k3: 'v3' });
    assert.deepEqual((await t.http().get(`${base}/k3`).set(as(alice.token)).expect(200)).body, {
      meta: { k3: 'v3' },
    });
    await t
      .http()
      .put(`${base}/k3`)
      .set(as(alice.token))
      .send({ meta: { k3: 'new' } })
      .expect(200);
    await t
      .http()
      .put(`${base}/k3`)
      .set(as(alice.token))
      .send({ meta: { other: 'x' } })
      .expect(400);
    await t.http().delete(`${base}/k3`).set(as(alice.token)).expect(200);
    await t.http().get(`${base}/k3`).set(as(alice.token)).expect(404);
    await t.http().delete(`${base}/k3`).set(as(alice.token)).expect(404);
  });

  test('limits and reserved keys; readers and other projects cannot change it', async () => {
    const id = await newShare({ keep: 'me' });
    const base = `/v2/shares/${id}/metadata`;
    const cases: [Record<string, unknown>, number][] = [
      [{ metadata: { ['k'.repeat(256)]: 'v' } }, 400],
      [{ metadata: { k: 'v'.repeat(1024) } }, 400],
      [{ metadata: { k: 5 } }, 400],
      [{ metadata: 'k=v' }, 400],
      [{ metadata: { __affinity_same_host: 'x' } }, 403],
    ];
    for (const [body, status] of cases) {
      const res = await t.http().post(base).set(as(alice.token)).send(body);
      assert.equal(res.status, status, JSON.stringify(body));
    }
    await t
      .http()
      .post(base)
      .set(as(reader.token))
      .send({ metadata: { a: 'b' } })
      .expect(403);
    await t
      .http()
      .post(base)
      .set(as(bob.token))
      .send({ metadata: { a: 'b' } })
      .expect(404);
    await t.http().get(base).set(as(bob.token)).expect(404);
    assert.deepEqual(
      (await t.http().get(base).set(as(alice.token))).body.metadata,
      { keep: 'me' },
      'nothing changed',
    );
    await t
      .http()
      .post(base)
      .set(as(admin))
      .send({ metadata: { __affinity_same_host: 'x' } })
      .expect(200);
  });
});

describe('admin actions', () => {
  test('reset_status sets a valid status; others and non-admins are refused', async () => {
    const id = await newShare();
    const act = (token: string, body: unknown) =>
      t
        .http()
        .post(`/v2/shares/${id}/action`)
        .set(as(token))
        .send(body as object);
    await act(admin, { reset_status: { status: 'error' } }).expect(202);
    assert.equal((await t.http().get(`/v2/shares/${id}`).set(as(alice.token))).body.share.status, 'error');
    await act(admin, { 'os-reset_status': { status: 'available' } }).expect(202);
    const bad = await act(admin, { reset_status: { status: 'sparkling' } }).expect(400);
    assert.match(faultMessage(bad.body, 'badRequest', 400), /sparkling/);
    await act(alice.token, { reset_status: { status: 'error' } }).expect(403);
    await act(bob.token, { reset_status: { status: 'error' } }).expect(403);
    assert.equal(
      (await t.http().get(`/v2/shares/${id}`).set(as(alice.token))).body.share.status,
      'available',
    );
  });

  test('force_delete removes a share in any status, even when the backend fails', async () => {
    const id = await newShare();
    await t
      .http()
      .post(`/v2/shares/${id}/action`)
      .set(as(admin))
      .send({ reset_status: { status: 'extending' } })
      .expect(202);
    await t.http().delete(`/v2/shares/${id}`).set(as(alice.token)).expect(403);
    await t
      .http()
      .post(`/v2/shares/${id}/action`)
      .set(as(alice.token))
      .send({ force_delete: null })
      .expect(403);
    t.memory.inject({ op: 'deleteShare', error: new BackendError('Failed', 'stuck'), times: 1 });
    await t.http().post(`/v2/shares/${id}/action`).set(as(admin)).send({ force_delete: null }).expect(202);
    await t.stack.worker.drain();
    await t.http().get(`/v2/shares/${id}`).set(as(alice.token)).expect(404);
  });

  test('a normal delete that the backend refuses ends in error_deleting with a message', async () => {
    const id = await newShare();
    t.memory.inject({ op: 'deleteShare', error: new BackendError('Failed', 'busy'), times: 1 });
    await t.http().delete(`/v2/shares/${id}`).set(as(alice.token)).expect(202);
    await t.stack.worker.drain();
    assert.equal(
      (await t.http().get(`/v2/shares/${id}`).set(as(alice.token))).body.share.status,
      'error_deleting',
    );
    const [msg] = await t.db('messages').where({ resource_id: id });
    assert.match(msg.user_message, /busy/);
    await t.http().delete(`/v2/shares/${id}`).set(as(alice.token)).expect(202);
    await t.stack.worker.drain();
    await t.http().get(`/v2/shares/${id}`).set(as(alice.token)).expect(404);
  });

  test('unknown actions are 404 (as Manila); bodies with two actions are 400', async () => {
    const id = await newShare();
    const unknown = await t
      .http()
      .post(`/v2/shares/${id}/action`)
      .set(as(alice.token))
      .send({ frobnicate: {} })
      .expect(404);
    assert.match(faultMessage(unknown.body, 'itemNotFound', 404), /frobnicate/);
    const two = await t
      .http()
      .post(`/v2/shares/${id}/action`)
      .set(as(alice.token))
      .send({ force_delete: null, reset_status: {} })
      .expect(400);
    faultMessage(two.body, 'badRequest', 400);
  });
});
