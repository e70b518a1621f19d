import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { faultMessage } from '../helpers/app.ts';
import { type ShareFixture, shareFixture } from '../helpers/share-fixture.ts';

/**
 * Share group snapshots (Manila 2.31+): a snapshot of every share of a group through the backend's
 * createSnapshot, shown with its members (not as share snapshots), update, delete through
 * deleteSnapshot, reset_status and force_delete, the share_group_snapshots quota; a share or group
 * it holds cannot be deleted; a group made from it gets a share from each member. The plugin's
 * test_share_group_actions and test_share_groups[_negative] check the same against Manila.
 */
let f: ShareFixture;
let typeA: { id: string; name: string };
let groupType: string;
before(async () => {
  f = await shareFixture();
  const res = await http()
    .post('/v2/types')
    .set(f.as(f.admin))
    .send({
      share_type: {
        name: 'sgs-a',
        extra_specs: {
          driver_handles_share_servers: false,
          snapshot_support: true,
          create_share_from_snapshot_support: true,
        },
      },
    })
    .expect(200);
  typeA = res.body.share_type;
  const t = await http()
    .post('/v2/share-group-types')
    .set(as(f.admin))
    .send({ share_group_type: { name: 'sgs-type', share_types: [typeA.id] } })
    .expect(200);
  groupType = t.body.share_group_type.id;
});
after(() => f.t.close());

const V = '2.55';
const http = () => f.t.http();
const as = (token: string, version = V) => f.as(token, version);

/** A placed group with shares of these sizes; returns the group's and the shares' ids. */
async function groupWithShares(sizes: number[], token = f.alice.token) {
  const res = await http()
    .post('/v2/share-groups')
    .set(as(token))
    .send({ share_group: { share_group_type_id: groupType } })
    .expect(202);
  await f.drain();
  const gid: string = res.body.share_group.id;
  const shares: string[] = [];
  for (const size of sizes)
    shares.push(await f.newShare({ size, share_type: typeA.id, share_group_id: gid }, token));
  return { gid, shares };
}

// biome-ignore lint/suspicious/noExplicitAny: a response body; the assertions check it.
async function snapshotOf(gid: string, extra: Record<string, unknown> = {}): Promise<any> {
  const res = await http()
    .post('/v2/share-group-snapshots')
    .set(as(f.alice.token))
    .send({ share_group_snapshot: { share_group_id: gid, ...extra } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  await f.drain();
  return res.body.share_group_snapshot;
}

// biome-ignore lint/suspicious/noExplicitAny: as above.
async function show(id: string, token = f.alice.token): Promise<any> {
  const res = await http().get(`/v2/share-group-snapshots/${id}`).set(as(token)).expect(200);
  return res.body.share_group_snapshot;
}

describe('share group snapshots', () => {
  test('a snapshot of each share, taken on the backend; members with size; not share snapshots', async () => {
    const { gid, shares } = await groupWithShares([1, 3]);
    const created = await snapshotOf(gid, { name: 'gs', description: 'gd' });
    assert.equal(created.status, 'creating');
    const s = await show(created.id);
    assert.equal(s.status, 'available');
    assert.equal(s.name, 'gs');
    assert.equal(s.share_group_id, gid);
    for (const key of [
      'id',
      'name',
      'description',
      'created_at',
      'status',
      'project_id',
      'links',
      'share_group_id',
      'members',
    ])
      assert.ok(key in s, `missing ${key}`);
    assert.equal(s.members.length, 2);
    const bySize = Object.fromEntries(
      s.members.map((m: { share_id: string; size: number }) => [m.share_id, m.size]),
    );
    assert.deepEqual(bySize, { [shares[0] as string]: 1, [shares[1] as string]: 3 });
    for (const m of s.members) {
      assert.ok(f.t.memory.hasSnapshot(m.id), `backend holds member ${m.id}`);
      assert.equal(m.share_proto, 'NFS');
      await http().get(`/v2/snapshots/${m.id}`).set(as(f.alice.token)).expect(404);
    }
    const snaps = await http().get('/v2/snapshots').set(as(f.alice.token)).expect(200);
    assert.equal(snaps.body.snapshots.length, 0);
  });

  test('a share in a group snapshot cannot be deleted (403), nor its group (409); deleting the snapshot frees both', async () => {
    const { gid, shares } = await groupWithShares([1]);
    const snap = await snapshotOf(gid);
    const sid = shares[0] as string;
    let res = await http().delete(`/v2/shares/${sid}?share_group_id=${gid}`).set(as(f.alice.token));
    assert.equal(res.status, 403, JSON.stringify(res.body));
    res = await http().delete(`/v2/share-groups/${gid}`).set(as(f.alice.token));
    assert.equal(res.status, 409);
    const members = (await show(snap.id)).members.map((m: { id: string }) => m.id);
    await http().delete(`/v2/share-group-snapshots/${snap.id}`).set(as(f.alice.token)).expect(202);
    assert.equal((await show(snap.id)).status, 'deleting');
    await f.drain();
    await http().get(`/v2/share-group-snapshots/${snap.id}`).set(as(f.alice.token)).expect(404);
    for (const m of members) assert.equal(f.t.memory.hasSnapshot(m), false);
    await http().delete(`/v2/shares/${sid}?share_group_id=${gid}`).set(as(f.alice.token)).expect(202);
    await f.drain();
    await http().delete(`/v2/share-groups/${gid}`).set(as(f.alice.token)).expect(202);
    await f.drain();
  });

  test('a group made from a group snapshot: a share from each member, available before the group is', async () => {
    const { gid, shares } = await groupWithShares([2, 1]);
    const snap = await show((await snapshotOf(gid)).id);
    const res = await http()
      .post('/v2/share-groups')
      .set(as(f.alice.token))
      .send({ share_group: { source_share_group_snapshot_id: snap.id } })
      .expect(202);
    const ng = res.body.share_group;
    assert.equal(ng.source_share_group_snapshot_id, snap.id);
    assert.equal(ng.share_group_type_id, groupType);
    assert.deepEqual(ng.share_types, [typeA.id]);
    // The new shares exist at once, being made.
    const during = await http()
      .get(`/v2/shares/detail?share_group_id=${ng.id}`)
      .set(as(f.alice.token))
      .expect(200);
    assert.equal(during.body.shares.length, 2);
    await f.drain();
    const group = (await http().get(`/v2/share-groups/${ng.id}`).set(as(f.alice.token)).expect(200)).body
      .share_group;
    assert.equal(group.status, 'available');
    const made = await http()
      .get(`/v2/shares/detail?share_group_id=${ng.id}`)
      .set(as(f.alice.token))
      .expect(200);
    const bySource = new Map(
      made.body.shares.map((s: { source_share_group_snapshot_member_id: string }) => [
        s.source_share_group_snapshot_member_id,
        s,
      ]),
    );
    for (const m of snap.members) {
      // biome-ignore lint/suspicious/noExplicitAny: a response item.
      const s = bySource.get(m.id) as any;
      assert.ok(s, `a share from member ${m.id}`);
      assert.equal(s.status, 'available');
      assert.equal(s.size, m.size);
      assert.equal(s.share_group_id, ng.id);
      assert.equal(s.snapshot_id, null);
    }
    assert.ok(!shares.some((id) => bySource.has(id)));
    // Each share was copied from its member's snapshot on the backend.
    const createFromCalls = f.t.memory.calls.filter((c) => c.op === 'createShareFromSnapshot').length;
    assert.ok(createFromCalls >= 2);
  });

  test('the group it was made from must be available; a snapshot of another project is a 400; bad ids 400', async () => {
    const { gid } = await groupWithShares([]);
    let res = await http()
      .post('/v2/share-group-snapshots')
      .set(as(f.bob.token))
      .send({ share_group_snapshot: { share_group_id: gid } });
    assert.match(faultMessage(res.body, 'badRequest', 400), /could not be found/);
    res = await http()
      .post('/v2/share-group-snapshots')
      .set(as(f.alice.token))
      .send({ share_group_snapshot: { share_group_id: 'foobar' } });
    assert.match(faultMessage(res.body, 'badRequest', 400), /foobar/);
    res = await http()
      .post('/v2/share-group-snapshots')
      .set(as(f.alice.token))
      .send({ share_group_snapshot: {} });
    assert.equal(res.status, 400);
    await http()
      .post(`/v2/share-groups/${gid}/action`)
      .set(as(f.admin))
      .send({ reset_status: { status: 'error' } })
      .expect(202);
    res = await http()
      .post('/v2/share-group-snapshots')
      .set(as(f.alice.token))
      .send({ share_group_snapshot: { share_group_id: gid } });
    assert.match(faultMessage(res.body, 'conflictingRequest', 409), /available/);
  });

  test('a group made from a group snapshot whose member share fails to be made ends in error', async () => {
    const { gid } = await groupWithShares([1]);
    const snap = await snapshotOf(gid);
    f.t.memory.inject({ op: 'createShareFromSnapshot', error: new Error('copy failed'), times: 1 });
    const res = await http()
      .post('/v2/share-groups')
      .set(as(f.alice.token))
      .send({ share_group: { source_share_group_snapshot_id: snap.id } })
      .expect(202);
    await f.drain();
    const g = (
      await http().get(`/v2/share-groups/${res.body.share_group.id}`).set(as(f.alice.token)).expect(200)
    ).body.share_group;
    assert.equal(g.status, 'error');
    const made = await http()
      .get(`/v2/shares/detail?share_group_id=${g.id}`)
      .set(as(f.alice.token))
      .expect(200);
    assert.deepEqual(
      made.body.shares.map((s: { status: string }) => s.status),
      ['error'],
    );
  });

  test('an empty group has an empty snapshot, and a group made from it has no shares', async () => {
    const { gid } = await groupWithShares([]);
    const snap = await show((await snapshotOf(gid)).id);
    assert.deepEqual(snap.members, []);
    const res = await http()
      .post('/v2/share-groups')
      .set(as(f.alice.token))
      .send({ share_group: { source_share_group_snapshot_id: snap.id } })
      .expect(202);
    await f.drain();
    const g = (
      await http().get(`/v2/share-groups/${res.body.share_group.id}`).set(as(f.alice.token)).expect(200)
    ).body.share_group;
    assert.equal(g.status, 'available');
  });

  test('a failed backend snapshot: the group snapshot and its members end in error, with a message', async () => {
    const { gid } = await groupWithShares([1]);
    f.t.memory.inject({ op: 'createSnapshot', error: new Error('disk on fire'), times: 1 });
    const snap = await snapshotOf(gid);
    assert.equal((await show(snap.id)).status, 'error');
    const msgs = await http().get('/v2/messages').set(as(f.alice.token)).expect(200);
    assert.ok(
      msgs.body.messages.some(
        (m: { resource_id: string; resource_type: string }) =>
          m.resource_id === snap.id && m.resource_type === 'SHARE_GROUP_SNAPSHOT',
      ),
    );
    await http().delete(`/v2/share-group-snapshots/${snap.id}`).set(as(f.alice.token)).expect(202);
    await f.drain();
    await http().get(`/v2/share-group-snapshots/${snap.id}`).set(as(f.alice.token)).expect(404);
  });

  test('a group snapshot and a delete of one of its shares at once: never both (the shares are locked)', async () => {
    for (let i = 0; i < 5; i++) {
      const { gid, shares } = await groupWithShares([1]);
      const [snap, del] = await Promise.all([
        http()
          .post('/v2/share-group-snapshots')
          .set(as(f.alice.token))
          .send({ share_group_snapshot: { share_group_id: gid } }),
        http().delete(`/v2/shares/${shares[0]}?share_group_id=${gid}`).set(as(f.alice.token)),
      ]);
      assert.ok(
        (snap.status === 202) !== (del.status === 202),
        `exactly one wins: snapshot ${snap.status}, delete ${del.status}`,
      );
      await f.drain();
      if (snap.status === 202) {
        await http()
          .delete(`/v2/share-group-snapshots/${snap.body.share_group_snapshot.id}`)
          .set(as(f.alice.token))
          .expect(202);
        await f.drain();
        await http()
          .delete(`/v2/shares/${shares[0]}?share_group_id=${gid}`)
          .set(as(f.alice.token))
          .expect(202);
        await f.drain();
      }
    }
  });

  test('update, list with filters, another project 404, admin actions, quota exact', async () => {
    const { gid } = await groupWithShares([]);
    const before = await f.usage(f.alice.projectId, 'share_group_snapshots');
    const snap = await snapshotOf(gid, { name: 'one' });
    assert.equal((await f.usage(f.alice.projectId, 'share_group_snapshots')).in_use, before.in_use + 1);
    const upd = await http()
      .put(`/v2/share-group-snapshots/${snap.id}`)
      .set(as(f.alice.token))
      .send({ share_group_snapshot: { name: 'renamed', description: 'dd' } })
      .expect(200);
    assert.equal(upd.body.share_group_snapshot.name, 'renamed');
    const list = await http()
      .get(`/v2/share-group-snapshots?share_group_id=${gid}`)
      .set(as(f.alice.token))
      .expect(200);
    assert.deepEqual(
      list.body.share_group_snapshots.map((s: { id: string }) => s.id),
      [snap.id],
    );
    assert.deepEqual(Object.keys(list.body.share_group_snapshots[0]).sort(), ['id', 'links', 'name']);
    const detail = await http()
      .get('/v2/share-group-snapshots/detail?name=renamed')
      .set(as(f.alice.token))
      .expect(200);
    assert.equal(detail.body.share_group_snapshots[0].members.length, 0);
    await http().get(`/v2/share-group-snapshots/${snap.id}`).set(as(f.bob.token)).expect(404);
    await http().delete(`/v2/share-group-snapshots/${snap.id}`).set(as(f.bob.token)).expect(404);
    await http()
      .post(`/v2/share-group-snapshots/${snap.id}/action`)
      .set(as(f.alice.token))
      .send({ reset_status: { status: 'error' } })
      .expect(403);
    await http()
      .post(`/v2/share-group-snapshots/${snap.id}/action`)
      .set(as(f.admin))
      .send({ reset_status: { status: 'creating' } })
      .expect(202);
    const res = await http().delete(`/v2/share-group-snapshots/${snap.id}`).set(as(f.alice.token));
    assert.match(faultMessage(res.body, 'conflictingRequest', 409), /creating/);
    await http()
      .post(`/v2/share-group-snapshots/${snap.id}/action`)
      .set(as(f.admin))
      .send({ force_delete: null })
      .expect(202);
    await f.drain();
    await http().get(`/v2/share-group-snapshots/${snap.id}`).set(as(f.alice.token)).expect(404);
    assert.equal((await f.usage(f.alice.projectId, 'share_group_snapshots')).in_use, before.in_use);
  });
});
