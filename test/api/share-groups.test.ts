import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { faultMessage } from '../helpers/app.ts';
import { type ShareFixture, shareFixture } from '../helpers/share-fixture.ts';

/**
 * Share groups (Manila 2.31+, experimental until 2.55): create (group type, share types, zone),
 * show, list with filters and order, update, delete (409 while it holds shares or snapshots),
 * reset_status and force_delete; shares made in a group (type and zone checked, share_group_id in
 * the view and as a filter, deleted naming the group); placement through the worker (available, or
 * error when the group specs cannot be met); the share_groups quota; another project's group is a
 * 404. The plugin's test_share_groups[_negative] check the same against Manila.
 */
let f: ShareFixture;
let typeA: { id: string; name: string };
let typeB: { id: string; name: string };
let typeC: { id: string; name: string };
let groupType: string;
before(async () => {
  f = await shareFixture();
  const mk = async (name: string) => {
    const res = await http()
      .post('/v2/types')
      .set(f.as(f.admin))
      .send({
        share_type: { name, extra_specs: { driver_handles_share_servers: false, snapshot_support: true } },
      })
      .expect(200);
    return res.body.share_type as { id: string; name: string };
  };
  typeA = await mk('sg-a');
  typeB = await mk('sg-b');
  typeC = await mk('sg-c');
  const res = await http()
    .post('/v2/share-group-types')
    .set(as(f.admin))
    .send({ share_group_type: { name: 'sg-type', share_types: [typeA.id, typeB.id] } })
    .expect(200);
  groupType = res.body.share_group_type.id;
});
after(() => f.t.close());

const V = '2.55';
const http = () => f.t.http();
const as = (token: string, version = V) => f.as(token, version);

/** A response body; the assertions check it. */
// biome-ignore lint/suspicious/noExplicitAny: as said.
type Body = any;

async function create(
  body: Record<string, unknown>,
  token = f.alice.token,
  version = V,
): Promise<{ status: number; body: Body }> {
  const res = await http().post('/v2/share-groups').set(as(token, version)).send({ share_group: body });
  return { status: res.status, body: res.body };
}

/** A group of typeA and typeB, placed by the worker; returns its id. */
async function newGroup(extra: Record<string, unknown> = {}, token = f.alice.token): Promise<string> {
  const res = await create(
    { share_group_type_id: groupType, share_types: [typeA.id, typeB.id], ...extra },
    token,
  );
  assert.equal(res.status, 202, JSON.stringify(res.body));
  await f.drain();
  return res.body.share_group.id;
}

// biome-ignore lint/suspicious/noExplicitAny: as above.
async function show(id: string, token = f.alice.token, version = V): Promise<any> {
  const res = await http().get(`/v2/share-groups/${id}`).set(as(token, version)).expect(200);
  return res.body.share_group;
}

describe('share groups: microversions', () => {
  test('before 2.31, and from 2.31 to 2.54 without the experimental header, the URL is unknown (404)', async () => {
    await http().get('/v2/share-groups').set(as(f.alice.token, '2.30')).expect(404);
    await http().get('/v2/share-groups').set(as(f.alice.token, '2.31')).expect(404);
    const res = await http()
      .get('/v2/share-groups')
      .set({ ...as(f.alice.token, '2.31'), 'X-OpenStack-Manila-API-Experimental': 'True' })
      .expect(200);
    assert.equal(res.headers['x-openstack-manila-api-experimental'], 'True');
    await http().get('/v2/share-groups').set(as(f.alice.token, '2.55')).expect(200);
  });
});

describe('share groups: create and show', () => {
  test('create answers 202 creating; the worker places it: available, with host and zone; Manila keys', async () => {
    const res = await create({
      name: 'g1',
      description: 'd1',
      share_group_type_id: groupType,
      share_types: [typeA.name],
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const g = res.body.share_group;
    assert.equal(g.status, 'creating');
    assert.deepEqual(g.share_types, [typeA.id]);
    await f.drain();
    const shown = await show(g.id);
    assert.equal(shown.status, 'available');
    assert.equal(shown.availability_zone, 'nova');
    assert.match(shown.host, /@/);
    assert.equal(shown.consistent_snapshot_support, null);
    for (const key of [
      'id',
      'name',
      'description',
      'created_at',
      'status',
      'share_types',
      'project_id',
      'host',
      'links',
      'share_group_type_id',
      'source_share_group_snapshot_id',
      'share_network_id',
    ])
      assert.ok(key in shown, `missing ${key}`);
    assert.equal(shown.name, 'g1');
    assert.equal(shown.project_id, f.alice.projectId);
    assert.ok(!('share_server_id' in shown), 'share_server_id is for admins');
    assert.ok('share_server_id' in (await show(g.id, f.admin)));
    // availability_zone and consistent_snapshot_support from 2.34.
    const old = await http()
      .get(`/v2/share-groups/${g.id}`)
      .set({ ...as(f.alice.token, '2.33'), 'X-OpenStack-Manila-API-Experimental': 'True' })
      .expect(200);
    assert.ok(!('availability_zone' in old.body.share_group));
  });

  test("without share_types the group takes its group type's", async () => {
    const res = await create({ share_group_type_id: groupType });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.deepEqual([...res.body.share_group.share_types].sort(), [typeA.id, typeB.id].sort());
    await f.drain();
  });

  test('bad input: no group type (no default), unknown type, type outside the group type, share network, zone', async () => {
    let res = await create({ share_types: [typeA.id] });
    assert.match(faultMessage(res.body, 'badRequest', 400), /share group type/i);
    res = await create({ share_group_type_id: 'foobar' });
    assert.match(faultMessage(res.body, 'badRequest', 400), /foobar/);
    res = await create({ share_group_type_id: groupType, share_types: ['foobar'] });
    assert.match(faultMessage(res.body, 'badRequest', 400), /Share type foobar/);
    res = await create({ share_group_type_id: groupType, share_types: [typeC.id] });
    assert.match(faultMessage(res.body, 'badRequest', 400), /subset/);
    res = await create({ share_group_type_id: groupType, share_network_id: 'foobar' });
    assert.match(faultMessage(res.body, 'badRequest', 400), /Share network foobar/);
    res = await create({ share_group_type_id: groupType, availability_zone: 'nowhere' });
    assert.match(faultMessage(res.body, 'itemNotFound', 404), /nowhere/);
    res = await create({ share_group_type_id: groupType, share_types: 'x' });
    assert.equal(res.status, 400);
    res = await create({ source_share_group_snapshot_id: 'foobar' });
    assert.match(faultMessage(res.body, 'badRequest', 400), /foobar/);
    res = await create({ source_share_group_snapshot_id: groupType, share_types: [typeA.id] });
    assert.match(faultMessage(res.body, 'badRequest', 400), /Cannot supply both/);
  });

  test('group specs no backend offers: the group ends in error with a user message', async () => {
    const t = await http()
      .post('/v2/share-group-types')
      .set(as(f.admin))
      .send({
        share_group_type: {
          name: 'sg-consistent',
          share_types: [typeA.id],
          group_specs: { consistent_snapshot_support: 'fake' },
        },
      })
      .expect(200);
    const res = await create({ share_group_type_id: t.body.share_group_type.id });
    assert.equal(res.status, 202);
    await f.drain();
    const g = await show(res.body.share_group.id);
    assert.equal(g.status, 'error');
    const msgs = await http().get('/v2/messages').set(as(f.alice.token)).expect(200);
    const m = msgs.body.messages.find((x: { resource_id: string }) => x.resource_id === g.id);
    assert.ok(m, 'a user message for the group');
    assert.equal(m.resource_type, 'SHARE_GROUP');
    assert.match(m.user_message, /consistent_snapshot_support/);
    // A group in error may be deleted.
    await http().delete(`/v2/share-groups/${g.id}`).set(as(f.alice.token)).expect(202);
    await f.drain();
    await http().get(`/v2/share-groups/${g.id}`).set(as(f.alice.token)).expect(404);
  });

  test("a share type's availability_zones spec: a zone outside it is a 400; without a zone the group goes to the type's zones only", async () => {
    const t = await http()
      .post('/v2/types')
      .set(f.as(f.admin))
      .send({
        share_type: {
          name: 'sg-az',
          extra_specs: { driver_handles_share_servers: false, availability_zones: 'elsewhere' },
        },
      })
      .expect(200);
    const gt = await http()
      .post('/v2/share-group-types')
      .set(as(f.admin))
      .send({ share_group_type: { name: 'sg-az-type', share_types: [t.body.share_type.id] } })
      .expect(200);
    const res = await create({ share_group_type_id: gt.body.share_group_type.id, availability_zone: 'nova' });
    assert.match(
      faultMessage(res.body, 'badRequest', 400),
      /not supported within the availability zone chosen nova/,
    );
    // No backend is in 'elsewhere': the scheduler finds no place for the group.
    const placed = await create({ share_group_type_id: gt.body.share_group_type.id });
    assert.equal(placed.status, 202);
    await f.drain();
    const g = await show(placed.body.share_group.id);
    assert.equal(g.status, 'error');
    await http().delete(`/v2/share-groups/${g.id}`).set(as(f.alice.token)).expect(202);
    await f.drain();
  });

  test("another project's group is a 404 on show, update, delete and as a share's group", async () => {
    const id = await newGroup();
    await http().get(`/v2/share-groups/${id}`).set(as(f.bob.token)).expect(404);
    await http()
      .put(`/v2/share-groups/${id}`)
      .set(as(f.bob.token))
      .send({ share_group: { name: 'x' } })
      .expect(404);
    await http().delete(`/v2/share-groups/${id}`).set(as(f.bob.token)).expect(404);
    const res = await http()
      .post('/v2/shares')
      .set(as(f.bob.token))
      .send({ share: { size: 1, share_proto: 'NFS', share_type: typeA.id, share_group_id: id } });
    assert.equal(res.status, 404);
    const list = await http().get('/v2/share-groups').set(as(f.bob.token)).expect(200);
    assert.ok(!list.body.share_groups.some((g: { id: string }) => g.id === id));
    await http().get('/v2/share-groups/invalid_share_group_id').set(as(f.alice.token)).expect(404);
  });
});

describe('share groups: shares in a group', () => {
  test("a share joins the group: share_group_id shown from 2.31, filter by it, zone is the group's", async () => {
    const gid = await newGroup();
    const sid = await f.newShare({ share_type: typeA.id, share_group_id: gid });
    const share = await f.getShare(sid);
    assert.equal(share.status, 'available');
    assert.equal(share.share_group_id, gid);
    assert.equal(share.source_share_group_snapshot_member_id, null);
    assert.equal(share.availability_zone, (await show(gid)).availability_zone);
    const old = await http().get(`/v2/shares/${sid}`).set(as(f.alice.token, '2.30')).expect(200);
    assert.ok(!('share_group_id' in old.body.share));
    const other = await f.newShare({ share_type: typeA.id });
    const listed = await http()
      .get(`/v2/shares/detail?share_group_id=${gid}`)
      .set(as(f.alice.token, '2.31'))
      .expect(200);
    assert.deepEqual(
      listed.body.shares.map((s: { id: string }) => s.id),
      [sid],
    );
    const none = await http()
      .get('/v2/shares/detail?share_group_id=foobar')
      .set(as(f.alice.token, '2.31'))
      .expect(200);
    assert.equal(none.body.shares.length, 0);
    // Delete: a share of a group names the group; a share of none must not.
    let res = await http().delete(`/v2/shares/${sid}`).set(as(f.alice.token));
    assert.match(faultMessage(res.body, 'badRequest', 400), /share_group_id/);
    res = await http().delete(`/v2/shares/${other}?share_group_id=${gid}`).set(as(f.alice.token));
    assert.match(faultMessage(res.body, 'badRequest', 400), /does not belong/);
    await http().delete(`/v2/shares/${sid}?share_group_id=${gid}`).set(as(f.alice.token)).expect(202);
    await http().delete(`/v2/shares/${other}`).set(as(f.alice.token)).expect(202);
    await f.drain();
  });

  test('a share type outside the group, or another zone, is a 400', async () => {
    const gid = await newGroup();
    let res = await http()
      .post('/v2/shares')
      .set(as(f.alice.token))
      .send({ share: { size: 1, share_proto: 'NFS', share_type: typeC.id, share_group_id: gid } });
    assert.match(faultMessage(res.body, 'badRequest', 400), /not one of the share types/);
    res = await http()
      .post('/v2/shares')
      .set(as(f.alice.token))
      .send({
        share: {
          size: 1,
          share_proto: 'NFS',
          share_type: typeA.id,
          share_group_id: gid,
          availability_zone: 'elsewhere',
        },
      });
    assert.match(faultMessage(res.body, 'badRequest', 400), /availability zone/);
  });

  test('a group holding a share cannot be deleted (409) and stays available', async () => {
    const gid = await newGroup();
    const sid = await f.newShare({ share_type: typeB.id, share_group_id: gid });
    const res = await http().delete(`/v2/share-groups/${gid}`).set(as(f.alice.token));
    assert.match(faultMessage(res.body, 'conflictingRequest', 409), /holds 1 share/);
    assert.equal((await show(gid)).status, 'available');
    // Nor may its group type be deleted while the group exists.
    const del = await http().delete(`/v2/share-group-types/${groupType}`).set(as(f.admin));
    assert.match(faultMessage(del.body, 'badRequest', 400), /in use/);
    await http().delete(`/v2/shares/${sid}?share_group_id=${gid}`).set(as(f.alice.token)).expect(202);
    await f.drain();
    await http().delete(`/v2/share-groups/${gid}`).set(as(f.alice.token)).expect(202);
    assert.equal((await show(gid)).status, 'deleting');
    await f.drain();
    await http().get(`/v2/share-groups/${gid}`).set(as(f.alice.token)).expect(404);
  });

  test('a share cannot join a group that is not available', async () => {
    const gid = await newGroup();
    await http()
      .post(`/v2/share-groups/${gid}/action`)
      .set(as(f.admin))
      .send({ reset_status: { status: 'error' } })
      .expect(202);
    const res = await http()
      .post('/v2/shares')
      .set(as(f.alice.token))
      .send({ share: { size: 1, share_proto: 'NFS', share_type: typeA.id, share_group_id: gid } });
    assert.match(faultMessage(res.body, 'badRequest', 400), /'error'/);
  });
});

describe('share groups: update, list, admin actions, quota', () => {
  test('update name and description (unicode); an unknown key is a 400', async () => {
    const gid = await newGroup({ name: 'before' });
    const res = await http()
      .put(`/v2/share-groups/${gid}`)
      .set(as(f.alice.token))
      .send({ share_group: { name: 'ಠ_ರೃ', description: 'ಠ_ಠ' } })
      .expect(200);
    assert.equal(res.body.share_group.name, 'ಠ_ರೃ');
    assert.equal((await show(gid)).description, 'ಠ_ಠ');
    await http()
      .put(`/v2/share-groups/${gid}`)
      .set(as(f.alice.token))
      .send({ share_group: { status: 'x' } })
      .expect(400);
  });

  test('list: summary keys, detail, name filter, name~ from 2.36, order by name', async () => {
    const a = await newGroup({ name: 'list-b' });
    const b = await newGroup({ name: 'list-a' });
    const summary = await http().get('/v2/share-groups').set(as(f.alice.token)).expect(200);
    for (const g of summary.body.share_groups)
      assert.deepEqual(Object.keys(g).sort(), ['id', 'links', 'name']);
    const byName = await http().get('/v2/share-groups/detail?name=list-a').set(as(f.alice.token)).expect(200);
    assert.deepEqual(
      byName.body.share_groups.map((g: { id: string }) => g.id),
      [b],
    );
    const like = await http()
      .get('/v2/share-groups/detail?name~=list-&sort_key=name&sort_dir=asc')
      .set(as(f.alice.token))
      .expect(200);
    assert.deepEqual(
      like.body.share_groups.map((g: { id: string }) => g.id),
      [b, a],
    );
    const bad = await http().get('/v2/share-groups?sort_key=size').set(as(f.alice.token));
    assert.equal(bad.status, 400);
    const unknown = await http().get('/v2/share-groups?foo=1').set(as(f.alice.token));
    assert.equal(unknown.status, 400);
  });

  test('reset_status and force_delete are for admins (403 for members)', async () => {
    const gid = await newGroup();
    await http()
      .post(`/v2/share-groups/${gid}/action`)
      .set(as(f.alice.token))
      .send({ reset_status: { status: 'error' } })
      .expect(403);
    const bad = await http()
      .post(`/v2/share-groups/${gid}/action`)
      .set(as(f.admin))
      .send({ reset_status: { status: 'bogus' } });
    assert.equal(bad.status, 400);
    await http()
      .post(`/v2/share-groups/${gid}/action`)
      .set(as(f.admin))
      .send({ reset_status: { status: 'deleting' } })
      .expect(202);
    assert.equal((await show(gid)).status, 'deleting');
    await http()
      .post(`/v2/share-groups/${gid}/action`)
      .set(as(f.alice.token))
      .send({ force_delete: null })
      .expect(403);
    await http()
      .post(`/v2/share-groups/${gid}/action`)
      .set(as(f.admin))
      .send({ force_delete: null })
      .expect(202);
    await f.drain();
    await http().get(`/v2/share-groups/${gid}`).set(as(f.alice.token)).expect(404);
  });

  test('the share_groups quota counts groups exactly: used on create, freed on delete, enforced', async () => {
    const before = await f.usage(f.alice.projectId, 'share_groups');
    const gid = await newGroup();
    const during = await f.usage(f.alice.projectId, 'share_groups');
    assert.equal(during.in_use, before.in_use + 1);
    assert.equal(during.reserved, 0);
    await http().delete(`/v2/share-groups/${gid}`).set(as(f.alice.token)).expect(202);
    await f.drain();
    assert.equal((await f.usage(f.alice.projectId, 'share_groups')).in_use, before.in_use);
    await http()
      .put(`/v2/quota-sets/${f.alice.projectId}`)
      .set(as(f.admin))
      .send({ quota_set: { share_groups: before.in_use } })
      .expect(200);
    const res = await create({ share_group_type_id: groupType });
    assert.equal(res.status, 413, JSON.stringify(res.body));
    // Concurrent creates against room for two: exactly two get in.
    await http()
      .put(`/v2/quota-sets/${f.alice.projectId}`)
      .set(as(f.admin))
      .send({ quota_set: { share_groups: before.in_use + 2 } })
      .expect(200);
    const tries = await Promise.all(
      Array.from({ length: 6 }, () => create({ share_group_type_id: groupType })),
    );
    assert.deepEqual(tries.map((r) => r.status).sort(), [202, 202, 413, 413, 413, 413]);
    await f.drain();
    for (const r of tries.filter((x) => x.status === 202))
      await http().delete(`/v2/share-groups/${r.body.share_group.id}`).set(as(f.alice.token)).expect(202);
    await f.drain();
    assert.equal((await f.usage(f.alice.projectId, 'share_groups')).in_use, before.in_use);
    await http()
      .put(`/v2/quota-sets/${f.alice.projectId}`)
      .set(as(f.admin))
      .send({ quota_set: { share_groups: 50 } })
      .expect(200);
  });
});
