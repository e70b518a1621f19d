import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ShareFixture, shareFixture } from '../helpers/share-fixture.ts';

let f: ShareFixture;
let shareId: string;
before(async () => {
  f = await shareFixture();
  shareId = await f.newShare();
});
after(() => f.t.close());

const http = () => f.t.http();
const V = '2.73';
const as = (token: string, version = V) => f.as(token, version);

async function snapshotWith(metadata: unknown, version = V, token = f.alice.token) {
  const res = await http()
    .post('/v2/snapshots')
    .set(as(token, version))
    .send({ snapshot: { share_id: shareId, metadata } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  await f.drain();
  return res.body.snapshot;
}

const meta = (id: string, token = f.alice.token, version = V) =>
  http().get(`/v2/snapshots/${id}/metadata`).set(as(token, version));

describe('snapshot metadata (2.73)', () => {
  test('2.73 is offered, and the versions document says so', async () => {
    const res = await http().get('/').expect(300);
    const v2 = res.body.versions.find((v: { id: string }) => v.id === 'v2.0');
    assert.equal(v2.version, '2.73');
    const latest = await http()
      .get('/v2/snapshots')
      .set({ 'X-Auth-Token': f.alice.token, 'X-OpenStack-Manila-API-Version': 'latest' });
    assert.equal(latest.headers['x-openstack-manila-api-version'], '2.73');
  });

  test('create with metadata; show and lists have it from 2.73 only', async () => {
    const s = await snapshotWith({ purpose: 'backup', tier: 'gold' });
    assert.deepEqual(s.metadata, { purpose: 'backup', tier: 'gold' });
    const show = await http().get(`/v2/snapshots/${s.id}`).set(as(f.alice.token)).expect(200);
    assert.deepEqual(show.body.snapshot.metadata, { purpose: 'backup', tier: 'gold' });
    const old = await http().get(`/v2/snapshots/${s.id}`).set(as(f.alice.token, '2.72')).expect(200);
    assert.equal('metadata' in old.body.snapshot, false);
    const detail = await http().get('/v2/snapshots/detail').set(as(f.alice.token)).expect(200);
    const listed = detail.body.snapshots.find((x: { id: string }) => x.id === s.id);
    assert.deepEqual(listed.metadata, { purpose: 'backup', tier: 'gold' });
    const plain = await snapshotWith(undefined);
    assert.deepEqual(plain.metadata, {});
  });

  test('below 2.73 metadata in a create is ignored, as Manila ignores it', async () => {
    const s = await snapshotWith({ ignored: 'yes' }, '2.72');
    assert.deepEqual((await meta(s.id).expect(200)).body.metadata, {});
  });

  test('POST merges, PUT replaces, GET and DELETE an item; a missing key is 404', async () => {
    const { id } = await snapshotWith({ a: '1', b: '2' });
    const post = await http()
      .post(`/v2/snapshots/${id}/metadata`)
      .set(as(f.alice.token))
      .send({ metadata: { b: '20', c: '3' } })
      .expect(200);
    assert.deepEqual(post.body.metadata, { a: '1', b: '20', c: '3' });
    const put = await http()
      .put(`/v2/snapshots/${id}/metadata`)
      .set(as(f.alice.token))
      .send({ metadata: { z: '26' } })
      .expect(200);
    assert.deepEqual(put.body.metadata, { z: '26' });
    assert.deepEqual((await meta(id).expect(200)).body.metadata, { z: '26' });
    const item = await http().get(`/v2/snapshots/${id}/metadata/z`).set(as(f.alice.token)).expect(200);
    assert.deepEqual(item.body, { meta: { z: '26' } });
    const del = await http().delete(`/v2/snapshots/${id}/metadata/z`).set(as(f.alice.token));
    assert.equal(del.status, 200);
    assert.equal(del.text, '');
    assert.deepEqual((await meta(id).expect(200)).body.metadata, {});
    for (const req of [
      http().get(`/v2/snapshots/${id}/metadata/z`),
      http().delete(`/v2/snapshots/${id}/metadata/z`),
    ]) {
      const res = await req.set(as(f.alice.token));
      assert.equal(res.status, 404);
      assert.equal(res.body.itemNotFound.code, 404);
    }
  });

  test('Manila validation: keys 1–255 characters, values strings of at most 1023', async () => {
    const { id } = await snapshotWith({});
    const ok = await http()
      .post(`/v2/snapshots/${id}/metadata`)
      .set(as(f.alice.token))
      .send({ metadata: { ['k'.repeat(255)]: 'v'.repeat(1023) } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    for (const metadata of [
      { ['k'.repeat(256)]: 'v' },
      { k: 'v'.repeat(1024) },
      { '': 'v' },
      { k: 1 },
      'k=v',
    ]) {
      const res = await http().post(`/v2/snapshots/${id}/metadata`).set(as(f.alice.token)).send({ metadata });
      assert.equal(res.status, 400, JSON.stringify(metadata).slice(0, 40));
      assert.equal(res.body.badRequest.code, 400);
    }
    const create = await http()
      .post('/v2/snapshots')
      .set(as(f.alice.token))
      .send({ snapshot: { share_id: shareId, metadata: { k: 'v'.repeat(1024) } } });
    assert.equal(create.status, 400);
  });

  test('the routes are 2.73 only', async () => {
    const { id } = await snapshotWith({ a: '1' });
    assert.equal((await meta(id, f.alice.token, '2.72')).status, 404);
    const post = await http()
      .post(`/v2/snapshots/${id}/metadata`)
      .set(as(f.alice.token, '2.72'))
      .send({ metadata: { b: '2' } });
    assert.equal(post.status, 404);
  });

  test('policy: readers read, members change, another project sees nothing', async () => {
    const { id } = await snapshotWith({ a: '1' });
    assert.deepEqual((await meta(id, f.reader.token).expect(200)).body.metadata, { a: '1' });
    const write = await http()
      .post(`/v2/snapshots/${id}/metadata`)
      .set(as(f.reader.token))
      .send({ metadata: { b: '2' } });
    assert.equal(write.status, 403);
    assert.equal((await meta(id, f.bob.token)).status, 404);
    const other = await http().delete(`/v2/snapshots/${id}/metadata/a`).set(as(f.bob.token));
    assert.equal(other.status, 404);
    assert.deepEqual((await meta(id, f.admin).expect(200)).body.metadata, { a: '1' });
  });

  test('list filter by metadata from 2.73; ignored below', async () => {
    const tagged = await snapshotWith({ env: 'prod', team: 'x' });
    const untagged = await snapshotWith({ env: 'dev' });
    const q = encodeURIComponent("{'env': 'prod'}");
    const res = await http().get(`/v2/snapshots?metadata=${q}`).set(as(f.alice.token)).expect(200);
    assert.deepEqual(
      res.body.snapshots.map((s: { id: string }) => s.id),
      [tagged.id],
    );
    const old = await http().get(`/v2/snapshots?metadata=${q}`).set(as(f.alice.token, '2.72')).expect(200);
    const ids = old.body.snapshots.map((s: { id: string }) => s.id);
    assert.ok(ids.includes(tagged.id) && ids.includes(untagged.id));
    const bad = await http().get('/v2/snapshots?metadata=env').set(as(f.alice.token));
    assert.equal(bad.status, 400);
  });

  test('deleting a snapshot deletes its metadata', async () => {
    const { id } = await snapshotWith({ gone: 'soon' });
    await http().delete(`/v2/snapshots/${id}`).set(as(f.alice.token)).expect(202);
    await f.drain();
    const left = await f.t.db('share_snapshot_metadata').where({ snapshot_id: id });
    assert.deepEqual(left, []);
  });
});
