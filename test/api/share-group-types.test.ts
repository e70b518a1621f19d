import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { faultMessage } from '../helpers/app.ts';
import { type ShareFixture, shareFixture } from '../helpers/share-fixture.ts';

/**
 * Share group types (Manila 2.31+, experimental until 2.55): create with share types by id or
 * name, show, list (public, private with access, is_public and group_specs filters), group specs,
 * project access, delete; and a share type a group type names cannot be deleted. The plugin's
 * admin test_share_group_types[_negative] check the same against Manila; its quota classes create
 * a group type in their set-up.
 */
let f: ShareFixture;
let typeA: { id: string; name: string };
let typeB: { id: string; name: string };
before(async () => {
  f = await shareFixture();
  const mk = async (name: string) => {
    const res = await http()
      .post('/v2/types')
      .set(f.as(f.admin))
      .send({ share_type: { name, extra_specs: { driver_handles_share_servers: false } } })
      .expect(200);
    return res.body.share_type as { id: string; name: string };
  };
  typeA = await mk('sgt-member-a');
  typeB = await mk('sgt-member-b');
});
after(() => f.t.close());

const V = '2.55';
const http = () => f.t.http();
const as = (token: string, version = V) => f.as(token, version);

async function create(body: Record<string, unknown>, token = f.admin, version = V) {
  return http().post('/v2/share-group-types').set(as(token, version)).send({ share_group_type: body });
}

describe('share group types', () => {
  test('create with share types by id and by name; show has Manila keys; delete is 204 and it is gone', async () => {
    const res = await create({
      name: 'sgt-one',
      share_types: [typeA.id, typeB.name],
      group_specs: { consistent_snapshot_support: 'pool' },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const t = res.body.share_group_type;
    assert.deepEqual(Object.keys(t).sort(), [
      'group_specs',
      'id',
      'is_default',
      'is_public',
      'name',
      'share_types',
    ]);
    assert.deepEqual(t.share_types.sort(), [typeA.id, typeB.id].sort());
    assert.deepEqual(t.group_specs, { consistent_snapshot_support: 'pool' });
    assert.equal(t.is_public, true);
    assert.equal(t.is_default, false);

    const show = await http().get(`/v2/share-group-types/${t.id}`).set(as(f.alice.token)).expect(200);
    assert.deepEqual(show.body.share_group_type, t);
    // is_default only from 2.46.
    const old = await http()
      .get(`/v2/share-group-types/${t.id}`)
      .set({ ...as(f.admin, '2.45'), 'X-OpenStack-Manila-API-Experimental': 'True' })
      .expect(200);
    assert.equal('is_default' in old.body.share_group_type, false);

    const del = await http().delete(`/v2/share-group-types/${t.id}`).set(as(f.admin));
    assert.equal(del.status, 204);
    assert.equal(del.text, '');
    faultMessage(
      (await http().get(`/v2/share-group-types/${t.id}`).set(as(f.admin))).body,
      'itemNotFound',
      404,
    );
  });

  test('from 2.31 with the experimental header, from 2.55 without; otherwise the URL is unknown', async () => {
    const plain = await http().get('/v2/share-group-types').set(as(f.admin, '2.54'));
    faultMessage(plain.body, 'itemNotFound', 404);
    const old = await http()
      .get('/v2/share-group-types')
      .set({ ...as(f.admin, '2.30'), 'X-OpenStack-Manila-API-Experimental': 'True' });
    faultMessage(old.body, 'itemNotFound', 404);
    const experimental = await http()
      .get('/v2/share-group-types')
      .set({ ...as(f.admin, '2.31'), 'X-OpenStack-Manila-API-Experimental': 'True' })
      .expect(200);
    assert.ok(Array.isArray(experimental.body.share_group_types));
    await http().get('/v2/share-group-types').set(as(f.admin, '2.55')).expect(200);
  });

  test('bad input is a 400, unknown share types a 404, a duplicate name a 409, members a 403', async () => {
    faultMessage((await create({ share_types: [typeA.id] })).body, 'badRequest', 400);
    faultMessage((await create({ name: '', share_types: [typeA.id] })).body, 'badRequest', 400);
    faultMessage((await create({ name: 'x'.repeat(256), share_types: [typeA.id] })).body, 'badRequest', 400);
    faultMessage((await create({ name: 'sgt-no-types' })).body, 'badRequest', 400);
    faultMessage((await create({ name: 'sgt-no-types', share_types: [] })).body, 'badRequest', 400);
    faultMessage(
      (
        await create({
          name: 'sgt-bad-specs',
          share_types: [typeA.id],
          group_specs: 'expecting_error_code_400',
        })
      ).body,
      'badRequest',
      400,
    );
    faultMessage(
      (await create({ name: 'sgt-bad-specs', share_types: [typeA.id], group_specs: { k: 1 } })).body,
      'badRequest',
      400,
    );
    faultMessage(
      (await create({ name: 'sgt-ghost', share_types: ['no-such-type'] })).body,
      'itemNotFound',
      404,
    );
    assert.equal((await create({ name: 'sgt-dup', share_types: [typeA.id] })).status, 200);
    faultMessage(
      (await create({ name: 'sgt-dup', share_types: [typeA.id] })).body,
      'conflictingRequest',
      409,
    );
    faultMessage(
      (await create({ name: 'sgt-member', share_types: [typeA.id] }, f.alice.token)).body,
      'forbidden',
      403,
    );
    faultMessage(
      (await http().get('/v2/share-group-types/not-an-id').set(as(f.admin))).body,
      'itemNotFound',
      404,
    );
    faultMessage(
      (await http().delete('/v2/share-group-types/not-an-id').set(as(f.admin))).body,
      'itemNotFound',
      404,
    );
    const gone = '0b9a6cde-2b0e-4f6f-9a53-000000000000';
    faultMessage(
      (await http().get(`/v2/share-group-types/${gone}`).set(as(f.admin))).body,
      'itemNotFound',
      404,
    );
    // No default share group type is configured: 404, as on a Manila without one.
    faultMessage(
      (await http().get('/v2/share-group-types/default').set(as(f.admin))).body,
      'itemNotFound',
      404,
    );
  });

  test('group specs: list, show one, set several, update one, delete one (admins only)', async () => {
    const t = (
      await create({
        name: 'sgt-specs',
        share_types: [typeA.id],
        group_specs: { key1: 'value1', key2: 'value2' },
      })
    ).body.share_group_type;
    const base = `/v2/share-group-types/${t.id}/group-specs`;
    assert.deepEqual((await http().get(base).set(as(f.admin)).expect(200)).body, {
      group_specs: { key1: 'value1', key2: 'value2' },
    });
    assert.deepEqual((await http().get(`${base}/key1`).set(as(f.admin)).expect(200)).body, {
      key1: 'value1',
    });
    faultMessage((await http().get(`${base}/nope`).set(as(f.admin))).body, 'itemNotFound', 404);

    const put = await http().put(`${base}/key1`).set(as(f.admin)).send({ key1: 'value3' }).expect(200);
    assert.deepEqual(put.body, { key1: 'value3' });
    faultMessage(
      (await http().put(`${base}/key1`).set(as(f.admin)).send({ other: 'v' })).body,
      'badRequest',
      400,
    );
    const post = await http()
      .post(base)
      .set(as(f.admin))
      .send({ group_specs: { key2: 'value4', key3: 'value5' } })
      .expect(200);
    assert.deepEqual(post.body, { group_specs: { key2: 'value4', key3: 'value5' } });

    const del = await http().delete(`${base}/key3`).set(as(f.admin));
    assert.equal(del.status, 204);
    faultMessage((await http().delete(`${base}/key3`).set(as(f.admin))).body, 'itemNotFound', 404);
    const shown = await http().get(`/v2/share-group-types/${t.id}`).set(as(f.admin)).expect(200);
    assert.deepEqual(shown.body.share_group_type.group_specs, { key1: 'value3', key2: 'value4' });
    faultMessage((await http().get(base).set(as(f.alice.token))).body, 'forbidden', 403);
  });

  test('private types: hidden until a project is given access; access list and changes', async () => {
    const t = (await create({ name: 'sgt-private', share_types: [typeA.id], is_public: false })).body
      .share_group_type;
    assert.equal(t.is_public, false);
    const listed = async (token: string, query = '') =>
      (
        await http().get(`/v2/share-group-types${query}`).set(as(token)).expect(200)
      ).body.share_group_types.map((x: { id: string }) => x.id);
    assert.ok(!(await listed(f.alice.token)).includes(t.id));
    assert.ok(!(await listed(f.admin)).includes(t.id), 'an admin lists public and shared types by default');
    assert.ok((await listed(f.admin, '?is_public=all')).includes(t.id));
    assert.ok((await listed(f.admin, '?is_public=false')).includes(t.id));
    faultMessage(
      (await http().get(`/v2/share-group-types/${t.id}`).set(as(f.alice.token))).body,
      'itemNotFound',
      404,
    );

    const access = () => http().get(`/v2/share-group-types/${t.id}/access`).set(as(f.admin));
    assert.deepEqual((await access().expect(200)).body, { share_group_type_access: [] });
    const action = (body: Record<string, unknown>) =>
      http().post(`/v2/share-group-types/${t.id}/action`).set(as(f.admin)).send(body);
    const add = await action({ addProjectAccess: { project: f.alice.projectId } });
    assert.equal(add.status, 202);
    assert.equal(add.text, '');
    faultMessage(
      (await action({ addProjectAccess: { project: f.alice.projectId } })).body,
      'conflictingRequest',
      409,
    );
    faultMessage((await action({ addProjectAccess: { project: 'not-a-uuid' } })).body, 'badRequest', 400);
    assert.deepEqual((await access().expect(200)).body.share_group_type_access, [
      { share_group_type_id: t.id, project_id: f.alice.projectId },
    ]);
    assert.ok((await listed(f.alice.token)).includes(t.id));
    await http().get(`/v2/share-group-types/${t.id}`).set(as(f.alice.token)).expect(200);
    assert.ok(!(await listed(f.bob.token)).includes(t.id));

    assert.equal((await action({ removeProjectAccess: { project: f.alice.projectId } })).status, 202);
    faultMessage(
      (await action({ removeProjectAccess: { project: f.alice.projectId } })).body,
      'itemNotFound',
      404,
    );
    assert.ok(!(await listed(f.alice.token)).includes(t.id));

    // A public type has no access list, and access to it cannot change.
    const pub = (await create({ name: 'sgt-public', share_types: [typeA.id] })).body.share_group_type;
    faultMessage(
      (await http().get(`/v2/share-group-types/${pub.id}/access`).set(as(f.admin))).body,
      'itemNotFound',
      404,
    );
    faultMessage(
      (
        await http()
          .post(`/v2/share-group-types/${pub.id}/action`)
          .set(as(f.admin))
          .send({ addProjectAccess: { project: f.alice.projectId } })
      ).body,
      'conflictingRequest',
      409,
    );
    const ghost = '0b9a6cde-2b0e-4f6f-9a53-000000000001';
    faultMessage(
      (
        await http()
          .post(`/v2/share-group-types/${ghost}/action`)
          .set(as(f.admin))
          .send({ removeProjectAccess: { project: f.alice.projectId } })
      ).body,
      'itemNotFound',
      404,
    );
  });

  test('group_specs filter from 2.66 (a 400 before it)', async () => {
    const t = (await create({ name: 'sgt-filter', share_types: [typeA.id], group_specs: { tier: 'gold' } }))
      .body.share_group_type;
    const q = `?group_specs=${encodeURIComponent("{'tier': 'gold'}")}`;
    const hits = await http().get(`/v2/share-group-types${q}`).set(as(f.admin, '2.66')).expect(200);
    assert.deepEqual(
      hits.body.share_group_types.map((x: { id: string }) => x.id),
      [t.id],
    );
    faultMessage(
      (await http().get(`/v2/share-group-types${q}`).set(as(f.admin, '2.65'))).body,
      'badRequest',
      400,
    );
  });

  test('a share type a group type names cannot be deleted until the group type is', async () => {
    const st = (
      await http()
        .post('/v2/types')
        .set(as(f.admin))
        .send({ share_type: { name: 'sgt-held', extra_specs: { driver_handles_share_servers: false } } })
        .expect(200)
    ).body.share_type;
    const g = (await create({ name: 'sgt-holder', share_types: [st.id] })).body.share_group_type;
    const refused = await http().delete(`/v2/types/${st.id}`).set(as(f.admin));
    assert.match(faultMessage(refused.body, 'badRequest', 400), /share group types/);
    await http().delete(`/v2/share-group-types/${g.id}`).set(as(f.admin)).expect(204);
    await http().delete(`/v2/types/${st.id}`).set(as(f.admin)).expect(202);
  });
});
