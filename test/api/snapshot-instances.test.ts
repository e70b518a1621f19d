import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ShareFixture, shareFixture } from '../helpers/share-fixture.ts';

let f: ShareFixture;
let shareId: string;
let snapId: string;
before(async () => {
  f = await shareFixture();
  shareId = await f.newShare();
  snapId = await f.newSnapshot(shareId);
});
after(() => f.t.close());

const http = () => f.t.http();
const DETAIL_KEYS = [
  'created_at',
  'id',
  'progress',
  'provider_location',
  'share_id',
  'share_instance_id',
  'snapshot_id',
  'status',
  'updated_at',
];

describe('snapshot instances (admin, 2.19+)', () => {
  test('list by snapshot: one instance, Manila summary and detail keys', async () => {
    const sum = await http()
      .get(`/v2/snapshot-instances?snapshot_id=${snapId}`)
      .set(f.as(f.admin))
      .expect(200);
    assert.deepEqual(sum.body.snapshot_instances, [{ id: snapId, snapshot_id: snapId, status: 'available' }]);
    const det = await http()
      .get(`/v2/snapshot-instances/detail?snapshot_id=${snapId}`)
      .set(f.as(f.admin))
      .expect(200);
    assert.equal(det.body.snapshot_instances.length, 1);
    const si = det.body.snapshot_instances[0];
    assert.deepEqual(Object.keys(si).sort(), DETAIL_KEYS);
    assert.deepEqual([si.share_id, si.share_instance_id, si.progress], [shareId, shareId, '100%']);
  });

  test('the list holds every project’s instances; show has the detail keys', async () => {
    const other = await f.newShare({}, f.bob.token);
    const res = await http()
      .post('/v2/snapshots')
      .set(f.as(f.bob.token))
      .send({ snapshot: { share_id: other } })
      .expect(202);
    await f.drain();
    const all = await http().get('/v2/snapshot-instances').set(f.as(f.admin)).expect(200);
    const ids = all.body.snapshot_instances.map((s: { snapshot_id: string }) => s.snapshot_id);
    assert.ok(ids.includes(snapId) && ids.includes(res.body.snapshot.id), JSON.stringify(ids));
    const show = await http().get(`/v2/snapshot-instances/${snapId}`).set(f.as(f.admin)).expect(200);
    assert.deepEqual(Object.keys(show.body.snapshot_instance).sort(), DETAIL_KEYS);
    const snap = await http().get(`/v2/snapshots/${snapId}`).set(f.as(f.admin)).expect(200);
    assert.equal(show.body.snapshot_instance.provider_location, snap.body.snapshot.provider_location);
  });

  test('members get 403 for list, show and reset_status', async () => {
    for (const [method, path] of [
      ['get', '/v2/snapshot-instances'],
      ['get', `/v2/snapshot-instances/detail?snapshot_id=${snapId}`],
      ['get', `/v2/snapshot-instances/${snapId}`],
      ['post', `/v2/snapshot-instances/${snapId}/action`],
    ] as const) {
      const res = await http()
        [method](path)
        .set(f.as(f.alice.token))
        .send(method === 'post' ? { reset_status: { status: 'error' } } : undefined);
      assert.equal(res.status, 403, `${method} ${path}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.forbidden.code, 403);
    }
  });

  test('an unknown id, even one that is no uuid, is 404; a snapshot_id filter that is none finds none', async () => {
    for (const id of ['nonexistent_instance', '0c1b2f5e-6a8e-4d6c-9d55-6f1f4c3a2b10']) {
      const res = await http().get(`/v2/snapshot-instances/${id}`).set(f.as(f.admin));
      assert.equal(res.status, 404, JSON.stringify(res.body));
      assert.equal(res.body.itemNotFound.code, 404);
    }
    const none = await http()
      .get('/v2/snapshot-instances?snapshot_id=not-a-uuid')
      .set(f.as(f.admin))
      .expect(200);
    assert.deepEqual(none.body.snapshot_instances, []);
  });

  test('reset_status: 202 with no body, the snapshot follows; a bad status is 400', async () => {
    const id = await f.newSnapshot(await f.newShare());
    for (const status of ['error', 'available']) {
      const res = await http()
        .post(`/v2/snapshot-instances/${id}/action`)
        .set(f.as(f.admin))
        .send({ reset_status: { status } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(res.text, '');
      const si = await http().get(`/v2/snapshot-instances/${id}`).set(f.as(f.admin)).expect(200);
      assert.equal(si.body.snapshot_instance.status, status);
      const snap = await http().get(`/v2/snapshots/${id}`).set(f.as(f.admin)).expect(200);
      assert.equal(snap.body.snapshot.status, status);
    }
    const bad = await http()
      .post(`/v2/snapshot-instances/${id}/action`)
      .set(f.as(f.admin))
      .send({ reset_status: { status: 'sleeping' } });
    assert.equal(bad.status, 400);
    const unknown = await http()
      .post(`/v2/snapshot-instances/${id}/action`)
      .set(f.as(f.admin))
      .send({ force_delete: null });
    assert.equal(unknown.status, 404);
  });

  test('below 2.19 the resource does not exist', async () => {
    const res = await http().get('/v2/snapshot-instances').set(f.as(f.admin, '2.18'));
    assert.equal(res.status, 404);
  });
});
