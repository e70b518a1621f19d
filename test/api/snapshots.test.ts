import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BackendError } from '../../backends/errors.ts';
import { faultMessage } from '../helpers/app.ts';
import { type ShareFixture, shareFixture } from '../helpers/share-fixture.ts';

let f: ShareFixture;
before(async () => {
  f = await shareFixture();
});
after(() => f.t.close());

const http = () => f.t.http();

async function createSnapshot(shareId: string, extra: Record<string, unknown> = {}, token = f.alice.token) {
  return http()
    .post('/v2/snapshots')
    .set(f.as(token))
    .send({ snapshot: { share_id: shareId, ...extra } });
}

async function newSnapshot(shareId: string, name?: string): Promise<string> {
  const res = await createSnapshot(shareId, name ? { name } : {});
  assert.equal(res.status, 202, JSON.stringify(res.body));
  await f.drain();
  return res.body.snapshot.id;
}

async function getSnapshot(id: string, token = f.alice.token) {
  return (await http().get(`/v2/snapshots/${id}`).set(f.as(token)).expect(200)).body.snapshot;
}

async function typeWith(name: string, specs: Record<string, boolean>): Promise<string> {
  const res = await http()
    .post('/v2/types')
    .set(f.as(f.admin))
    .send({ share_type: { name, extra_specs: { driver_handles_share_servers: false, ...specs } } })
    .expect(200);
  return res.body.share_type.id;
}

describe('create and show', () => {
  test('202 creating → available; Manila 2.72 fields; quotas counted', async () => {
    const id = await f.newShare({ size: 2 });
    const before = await f.usage(f.alice.projectId, 'snapshot_gigabytes');
    const res = await createSnapshot(id, { name: 'snap1', description: 'first', force: false });
    assert.equal(res.status, 202);
    const s = res.body.snapshot;
    assert.equal(s.status, 'creating');
    assert.deepEqual(
      [s.share_id, s.size, s.share_size, s.name, s.description, s.share_proto, s.project_id, s.user_id],
      [id, 2, 2, 'snap1', 'first', 'NFS', f.alice.projectId, f.alice.userId],
    );
    assert.equal(s.provider_location, undefined, 'provider_location is for admins');
    assert.equal(s.links[0].rel, 'self');
    assert.equal((await f.usage(f.alice.projectId, 'snapshot_gigabytes')).reserved, before.reserved + 2);
    await f.drain();
    assert.equal((await getSnapshot(s.id)).status, 'available');
    assert.ok(f.t.memory.hasSnapshot(s.id));
    const now = await f.usage(f.alice.projectId, 'snapshot_gigabytes');
    assert.deepEqual([now.in_use, now.reserved], [before.in_use + 2, before.reserved]);
    assert.equal((await f.usage(f.alice.projectId, 'snapshots')).in_use >= 1, true);
    const asAdmin = await getSnapshot(s.id, f.admin);
    assert.equal(asAdmin.provider_location, null);
    const old = await http().get(`/v2/snapshots/${s.id}`).set(f.as(f.alice.token, '2.0')).expect(200);
    assert.equal(old.body.snapshot.project_id, undefined, 'project_id arrived in 2.17');
  });

  test('a type without snapshot_support is 422; a busy or unknown share is refused; nothing is created', async () => {
    const plain = await f.newShare({ share_type: await typeWith('no-snapshots', {}) });
    const res = await createSnapshot(plain);
    assert.match(faultMessage(res.body, 'computeFault', 422), /snapshot_support/);

    const busy = await http()
      .post('/v2/shares')
      .set(f.as(f.alice.token))
      .send({ share: { size: 1, share_proto: 'NFS' } })
      .expect(200);
    const creating = await createSnapshot(busy.body.share.id);
    assert.match(faultMessage(creating.body, 'badRequest', 400), /'creating'.*'available'/);
    await f.drain();

    faultMessage((await createSnapshot('0d5e6a3c-0000-4000-8000-000000000000')).body, 'itemNotFound', 404);
    faultMessage((await createSnapshot('not-a-uuid')).body, 'itemNotFound', 404);
    const noShare = await http().post('/v2/snapshots').set(f.as(f.alice.token)).send({ snapshot: {} });
    assert.match(faultMessage(noShare.body, 'badRequest', 400), /share_id/);
    const meta = await http()
      .post('/v2/snapshots')
      .set(f.as(f.alice.token, '2.73'))
      .send({ snapshot: { share_id: plain, metadata: { a: 1 } } });
    assert.match(faultMessage(meta.body, 'badRequest', 400), /metadata/);
    const long = await createSnapshot(plain, { name: 'x'.repeat(256) });
    assert.match(faultMessage(long.body, 'badRequest', 400), /name/);
    const list = await http().get(`/v2/snapshots?share_id=${plain}`).set(f.as(f.alice.token)).expect(200);
    assert.deepEqual(list.body.snapshots, []);
  });

  test('over the snapshots quota is 413', async () => {
    const zed = await f.t.makeUser({ name: 'zed', project: 'one-snapshot', role: 'member' });
    await http()
      .put(`/v2/quota-sets/${zed.projectId}`)
      .set(f.as(f.admin))
      .send({ quota_set: { snapshots: 1 } })
      .expect(200);
    const id = await f.newShare({}, zed.token);
    assert.equal((await createSnapshot(id, {}, zed.token)).status, 202);
    const res = await createSnapshot(id, {}, zed.token);
    assert.match(faultMessage(res.body, 'overLimit', 413), /snapshots/);
  });

  test('a backend failure: error, a user message, and the quota still counted until deleted', async () => {
    const id = await f.newShare();
    const res = await createSnapshot(id);
    const snap = res.body.snapshot.id;
    f.t.memory.inject({
      op: 'createSnapshot',
      id: snap,
      error: new BackendError('Failed', 'no space for it'),
    });
    await f.drain();
    f.t.memory.clearInjections();
    assert.equal((await getSnapshot(snap)).status, 'error');
    const msgs = await http().get(`/v2/messages?resource_id=${snap}`).set(f.as(f.alice.token)).expect(200);
    assert.equal(msgs.body.messages[0].resource_type, 'SHARE_SNAPSHOT');
    assert.match(msgs.body.messages[0].user_message, /no space for it/);
    const before = await f.usage(f.alice.projectId, 'snapshots');
    await http().delete(`/v2/snapshots/${snap}`).set(f.as(f.alice.token)).expect(202);
    await f.drain();
    assert.equal((await f.usage(f.alice.projectId, 'snapshots')).in_use, before.in_use - 1);
  });
});

describe('list, update, delete', () => {
  test('list and detail: filters, sorting, paging, and only the caller’s project', async () => {
    const a = await f.newShare();
    const b = await f.newShare();
    const s1 = await newSnapshot(a, 'alpha');
    const s2 = await newSnapshot(a, 'beta');
    const s3 = await newSnapshot(b, 'alphabet');
    const bobShare = await f.newShare({}, f.bob.token);
    const bobSnap = (await createSnapshot(bobShare, { name: 'alpha' }, f.bob.token)).body.snapshot.id;
    await f.drain();

    const ids = async (query: string, token = f.alice.token) =>
      (await http().get(`/v2/snapshots/detail${query}`).set(f.as(token)).expect(200)).body.snapshots.map(
        (s: { id: string }) => s.id,
      );
    assert.deepEqual(await ids(`?share_id=${a}`), [s2, s1], 'newest first by default');
    assert.deepEqual(await ids(`?share_id=${a}&sort_key=name&sort_dir=asc`), [s1, s2]);
    assert.deepEqual(await ids('?name=alpha'), [s1]);
    assert.deepEqual((await ids('?name~=alpha')).sort(), [s1, s3].sort());
    assert.ok(!(await ids('?all_tenants=1')).includes(bobSnap), 'all_tenants is ignored for members');
    assert.ok((await ids('?all_tenants=1', f.admin)).includes(bobSnap));
    assert.ok(
      !(await ids('', f.admin)).includes(bobSnap),
      'admins see their own project without all_tenants',
    );
    assert.deepEqual(await ids('?status=error&name=alpha'), []);

    const page1 = await http()
      .get(`/v2/snapshots/detail?share_id=${a}&limit=1`)
      .set(f.as(f.alice.token))
      .expect(200);
    assert.deepEqual(
      page1.body.snapshots.map((s: { id: string }) => s.id),
      [s2],
    );
    const next = new URL(page1.body.snapshots_links[0].href);
    assert.equal(next.searchParams.get('marker'), s2);
    const page2 = await http().get(`/v2/snapshots/detail${next.search}`).set(f.as(f.alice.token)).expect(200);
    assert.deepEqual(
      page2.body.snapshots.map((s: { id: string }) => s.id),
      [s1],
    );
    const summary = await http().get(`/v2/snapshots?share_id=${a}`).set(f.as(f.alice.token)).expect(200);
    assert.deepEqual(Object.keys(summary.body.snapshots[0]).sort(), ['id', 'links', 'name']);
    const bad = await http().get('/v2/snapshots?sort_key=bogus').set(f.as(f.alice.token));
    assert.match(faultMessage(bad.body, 'badRequest', 400), /sort_key/);
    const unknownFilter = await http().get('/v2/snapshots?colour=red').set(f.as(f.alice.token));
    faultMessage(unknownFilter.body, 'badRequest', 400);
  });

  test('update renames (OSC sends display_name), others cannot see it', async () => {
    const id = await newSnapshot(await f.newShare(), 'before');
    const res = await http()
      .put(`/v2/snapshots/${id}`)
      .set(f.as(f.alice.token))
      .send({ snapshot: { display_name: 'after', display_description: 'described' } })
      .expect(200);
    assert.deepEqual([res.body.snapshot.name, res.body.snapshot.description], ['after', 'described']);
    await http().get(`/v2/snapshots/${id}`).set(f.as(f.bob.token)).expect(404);
    await http()
      .put(`/v2/snapshots/${id}`)
      .set(f.as(f.bob.token))
      .send({ snapshot: { name: 'x' } })
      .expect(404);
    await http()
      .put(`/v2/snapshots/${id}`)
      .set(f.as(f.reader.token))
      .send({ snapshot: { name: 'x' } })
      .expect(403);
  });

  test('delete: 202 deleting → gone; the quota is freed; the backend copy is gone', async () => {
    const id = await newSnapshot(await f.newShare({ size: 3 }));
    const before = await f.usage(f.alice.projectId, 'snapshot_gigabytes');
    await http().delete(`/v2/snapshots/${id}`).set(f.as(f.alice.token)).expect(202);
    assert.equal((await getSnapshot(id)).status, 'deleting');
    await f.drain();
    await http().get(`/v2/snapshots/${id}`).set(f.as(f.alice.token)).expect(404);
    assert.equal(f.t.memory.hasSnapshot(id), false);
    assert.equal((await f.usage(f.alice.projectId, 'snapshot_gigabytes')).in_use, before.in_use - 3);
  });

  test('delete while creating is 400; a failing backend leaves error_deleting; force_delete (admin) removes it', async () => {
    const share = await f.newShare();
    const creating = (await createSnapshot(share)).body.snapshot.id;
    const early = await http().delete(`/v2/snapshots/${creating}`).set(f.as(f.alice.token));
    assert.match(faultMessage(early.body, 'badRequest', 400), /'creating'/);
    await f.drain();
    f.t.memory.inject({ op: 'deleteSnapshot', id: creating, error: new BackendError('Failed', 'busy') });
    await http().delete(`/v2/snapshots/${creating}`).set(f.as(f.alice.token)).expect(202);
    await f.drain();
    assert.equal((await getSnapshot(creating)).status, 'error_deleting');
    const member = await http()
      .post(`/v2/snapshots/${creating}/action`)
      .set(f.as(f.alice.token))
      .send({ force_delete: null });
    faultMessage(member.body, 'forbidden', 403);
    await http()
      .post(`/v2/snapshots/${creating}/action`)
      .set(f.as(f.admin))
      .send({ 'os-force_delete': null })
      .expect(202);
    await f.drain();
    f.t.memory.clearInjections();
    await http().get(`/v2/snapshots/${creating}`).set(f.as(f.alice.token)).expect(404);
  });

  test('reset_status is for admins and takes only snapshot statuses', async () => {
    const id = await newSnapshot(await f.newShare());
    const act = (body: object, token: string) =>
      http().post(`/v2/snapshots/${id}/action`).set(f.as(token)).send(body);
    faultMessage((await act({ reset_status: { status: 'error' } }, f.alice.token)).body, 'forbidden', 403);
    const bad = await act({ reset_status: { status: 'extending' } }, f.admin);
    assert.match(faultMessage(bad.body, 'badRequest', 400), /Invalid status 'extending'/);
    await act({ reset_status: { status: 'error' } }, f.admin).expect(202);
    assert.equal((await getSnapshot(id)).status, 'error');
    const unknown = await act({ unmanage: null }, f.admin);
    assert.match(faultMessage(unknown.body, 'badRequest', 400), /unmanage/);
  });

  test('export locations: an empty list (nothing exports snapshots), 404 for one', async () => {
    const id = await newSnapshot(await f.newShare());
    const res = await http().get(`/v2/snapshots/${id}/export-locations`).set(f.as(f.alice.token)).expect(200);
    assert.deepEqual(res.body, { share_snapshot_export_locations: [] });
    await http()
      .get(`/v2/snapshots/${id}/export-locations/0d5e6a3c-0000-4000-8000-000000000000`)
      .set(f.as(f.alice.token))
      .expect(404);
    await http().get(`/v2/snapshots/${id}/export-locations`).set(f.as(f.bob.token)).expect(404);
  });

  test('a share with snapshots cannot be deleted (403 naming them, as Manila), not even forced (409)', async () => {
    const share = await f.newShare();
    const snap = await newSnapshot(share);
    const res = await http().delete(`/v2/shares/${share}`).set(f.as(f.alice.token));
    assert.match(faultMessage(res.body, 'forbidden', 403), new RegExp(snap));
    const forced = await f.action(share, { force_delete: null }, f.admin);
    faultMessage(forced.body, 'conflictingRequest', 409);
    assert.equal((await f.getShare(share)).status, 'available');
    await http().delete(`/v2/snapshots/${snap}`).set(f.as(f.alice.token)).expect(202);
    await f.drain();
    await http().delete(`/v2/shares/${share}`).set(f.as(f.alice.token)).expect(202);
    await f.drain();
    await http().get(`/v2/shares/${share}`).set(f.as(f.alice.token)).expect(404);
  });
});

describe('create a share from a snapshot', () => {
  async function fromSnapshot(snapshotId: string, body: Record<string, unknown> = {}, token = f.alice.token) {
    return http()
      .post('/v2/shares')
      .set(f.as(token))
      .send({ share: { size: 2, share_proto: 'NFS', snapshot_id: snapshotId, ...body } });
  }

  test('creating (as Manila answers a create) → available, with the data, on the source backend', async () => {
    const source = await f.newShare({ size: 1 });
    f.t.memory.writeFile(source, 'data.txt', 'snapshot-time');
    const snap = await newSnapshot(source);
    f.t.memory.writeFile(source, 'data.txt', 'later');
    const res = await fromSnapshot(snap);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const id = res.body.share.id;
    assert.equal(res.body.share.status, 'creating');
    assert.equal(res.body.share.snapshot_id, snap);
    const old = await http().get(`/v2/shares/${id}`).set(f.as(f.alice.token, '2.53')).expect(200);
    assert.equal(old.body.share.status, 'creating');
    await f.drain();
    const share = await f.getShare(id, f.admin);
    assert.equal(share.status, 'available');
    assert.equal(share.host, (await f.getShare(source, f.admin)).host);
    assert.equal(share.share_type, (await f.getShare(source)).share_type);
    assert.equal(String(f.t.memory.readFile(id, 'data.txt')), 'snapshot-time');
    const usage = async (u: string) =>
      (
        await http().get(`/v2/snapshots?share_id=${source}&usage=${u}`).set(f.as(f.alice.token)).expect(200)
      ).body.snapshots.map((x: { id: string }) => x.id);
    assert.deepEqual(await usage('used'), [snap], 'usage=used: a share was made from it');
    assert.deepEqual(await usage('unused'), []);
    assert.deepEqual(await usage('any'), [snap]);

    // Independent: writes to either side change neither the other nor the snapshot.
    f.t.memory.writeFile(id, 'data.txt', 'clone edit');
    f.t.memory.writeFile(source, 'data.txt', 'source edit');
    assert.equal(String(f.t.memory.readFile(id, 'data.txt')), 'clone edit');
    assert.equal(String(f.t.memory.readFile(source, 'data.txt')), 'source edit');
    await f.action(source, { revert: { snapshot_id: snap } });
    await f.drain();
    assert.equal(String(f.t.memory.readFile(source, 'data.txt')), 'snapshot-time');
  });

  test('refusals: too small, other protocol or zone, unavailable snapshot, no support, other project', async () => {
    const source = await f.newShare({ size: 2 });
    const snap = await newSnapshot(source);
    const small = await fromSnapshot(snap, { size: 1 });
    assert.match(faultMessage(small.body, 'badRequest', 400), /smaller than the snapshot's size of 2/);
    const proto = await fromSnapshot(snap, { share_proto: 'CIFS' });
    assert.match(faultMessage(proto.body, 'badRequest', 400), /same protocol/);
    const zone = await fromSnapshot(snap, { availability_zone: 'elsewhere' });
    faultMessage(zone.body, 'badRequest', 400);
    faultMessage((await fromSnapshot(snap, {}, f.bob.token)).body, 'itemNotFound', 404);

    const busy = (await createSnapshot(source)).body.snapshot.id;
    const notReady = await fromSnapshot(busy);
    assert.match(faultMessage(notReady.body, 'badRequest', 400), /'creating'/);
    await f.drain();

    const noClone = await f.newShare({
      share_type: await typeWith('snap-no-clone', { snapshot_support: true }),
    });
    const snap2 = await newSnapshot(noClone);
    const refused = await fromSnapshot(snap2);
    assert.match(faultMessage(refused.body, 'badRequest', 400), /create_share_from_snapshot_support/);
  });

  test('the snapshot cannot be deleted while a share is being made from it', async () => {
    const snap = await newSnapshot(await f.newShare());
    const res = await fromSnapshot(snap);
    const del = await http().delete(`/v2/snapshots/${snap}`).set(f.as(f.alice.token));
    assert.match(faultMessage(del.body, 'conflictingRequest', 409), new RegExp(res.body.share.id));
    await f.drain();
    await http().delete(`/v2/snapshots/${snap}`).set(f.as(f.alice.token)).expect(202);
    await f.drain();
    assert.equal((await f.getShare(res.body.share.id)).status, 'available', 'the clone outlives its source');
  });

  test('a backend failure puts the new share in error with a message', async () => {
    const snap = await newSnapshot(await f.newShare());
    f.t.memory.inject({
      op: 'createShareFromSnapshot',
      error: new BackendError('CapacityExceeded', 'pool full'),
      times: 1,
    });
    const res = await fromSnapshot(snap);
    await f.drain();
    assert.equal((await f.getShare(res.body.share.id)).status, 'error');
    const msgs = await http()
      .get(`/v2/messages?resource_id=${res.body.share.id}`)
      .set(f.as(f.alice.token))
      .expect(200);
    assert.match(msgs.body.messages[0].user_message, /pool full/);
  });
});
