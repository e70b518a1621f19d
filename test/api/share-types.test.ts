import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
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

const V = { 'X-OpenStack-Manila-API-Version': '2.72' };
const as = (token: string) => ({ ...V, 'X-Auth-Token': token });

async function createType(body: Record<string, unknown>) {
  const res = await t.http().post('/v2/types').set(as(admin)).send({ share_type: body });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.share_type;
}

async function typeNames(token: string, query = '') {
  const res = await t.http().get(`/v2/types${query}`).set(as(token)).expect(200);
  return res.body.share_types.map((x: { name: string }) => x.name).sort();
}

describe('the default type', () => {
  test('exists from bootstrap, is_default, and GET /v2/types/default returns it', async () => {
    const res = await t.http().get('/v2/types/default').set(as(alice.token)).expect(200);
    const d = res.body.share_type;
    assert.equal(d.name, 'default');
    assert.equal(d.is_default, true);
    assert.deepEqual(d.required_extra_specs, { driver_handles_share_servers: 'False' });
    assert.deepEqual(res.body.volume_type, d);
  });

  test('cannot be deleted or renamed', async () => {
    const d = (await t.http().get('/v2/types/default').set(as(admin)).expect(200)).body.share_type;
    await t.http().delete(`/v2/types/${d.id}`).set(as(admin)).expect(403);
    await t
      .http()
      .put(`/v2/types/${d.id}`)
      .set(as(admin))
      .send({ share_type: { name: 'other' } })
      .expect(403);
    assert.ok((await typeNames(admin)).includes('default'));
  });
});

describe('create, show, list, update, delete', () => {
  test('OSC-style create (string specs) and manila-style create (boolean specs) both store strings', async () => {
    const gold = await createType({
      name: 'gold',
      'share_type_access:is_public': true,
      description: 'Gold tier',
      extra_specs: {
        foo: 'bar',
        snapshot_support: 'True',
        create_share_from_snapshot_support: 'True',
        revert_to_snapshot_support: 'True',
        driver_handles_share_servers: false,
      },
    });
    assert.equal(gold.name, 'gold');
    assert.equal(gold.description, 'Gold tier');
    assert.equal(gold.is_default, false);
    assert.equal(gold['share_type_access:is_public'], true);
    assert.deepEqual(gold.required_extra_specs, { driver_handles_share_servers: 'False' });
    assert.deepEqual(gold.extra_specs, {
      driver_handles_share_servers: 'False',
      foo: 'bar',
      snapshot_support: 'True',
      create_share_from_snapshot_support: 'True',
      revert_to_snapshot_support: 'True',
    });
    const silver = await createType({
      name: 'silver',
      'share_type_access:is_public': true,
      extra_specs: { driver_handles_share_servers: 'false', snapshot_support: true },
    });
    assert.equal(silver.extra_specs.snapshot_support, 'True');
    assert.equal(silver.extra_specs.driver_handles_share_servers, 'False');
    const shown = await t.http().get(`/v2/types/${gold.id}`).set(as(admin)).expect(200);
    assert.deepEqual(shown.body.share_type, gold);
  });

  test('non-admins see tenant-visible specs only, with inferred capability flags', async () => {
    const list = await t.http().get('/v2/types').set(as(alice.token)).expect(200);
    const gold = list.body.share_types.find((x: { name: string }) => x.name === 'gold');
    assert.equal(gold.extra_specs.foo, undefined, 'foo is not tenant-visible');
    assert.equal(gold.extra_specs.snapshot_support, 'True');
    assert.equal(gold.extra_specs.mount_snapshot_support, 'False');
    const silver = list.body.share_types.find((x: { name: string }) => x.name === 'silver');
    assert.equal(
      silver.extra_specs.create_share_from_snapshot_support,
      'True',
      'inferred from snapshot_support',
    );
    assert.equal(silver.extra_specs.revert_to_snapshot_support, 'False');
    assert.deepEqual(list.body.volume_types, list.body.share_types);
  });

  test('list filters by extra_specs given as a Python dict literal', async () => {
    assert.deepEqual(await typeNames(admin, `?extra_specs=${encodeURIComponent("{'foo': 'bar'}")}`), [
      'gold',
    ]);
    const bad = await t
      .http()
      .get(`/v2/types?extra_specs=${encodeURIComponent('{foo')}`)
      .set(as(admin))
      .expect(400);
    assert.match(faultMessage(bad.body, 'badRequest', 400), /extra_specs/);
  });

  test('update at 2.50+ renames and describes; below 2.50 the route does not exist', async () => {
    const t1 = await createType({
      name: 'renamable',
      extra_specs: { driver_handles_share_servers: 'False' },
    });
    const res = await t
      .http()
      .put(`/v2/types/${t1.id}`)
      .set(as(admin))
      .send({ share_type: { name: 'renamed', description: 'now described' } })
      .expect(200);
    assert.equal(res.body.share_type.name, 'renamed');
    assert.equal(res.body.share_type.description, 'now described');
    await t
      .http()
      .put(`/v2/types/${t1.id}`)
      .set({ 'X-Auth-Token': admin, 'X-OpenStack-Manila-API-Version': '2.49' })
      .send({ share_type: { name: 'x' } })
      .expect(404);
    await t.http().put(`/v2/types/${t1.id}`).set(as(admin)).send({ share_type: {} }).expect(400);
  });

  test('delete is 202 and the type is gone', async () => {
    const t1 = await createType({
      name: 'short-lived',
      extra_specs: { driver_handles_share_servers: 'False' },
    });
    await t.http().delete(`/v2/types/${t1.id}`).set(as(admin)).expect(202);
    await t.http().get(`/v2/types/${t1.id}`).set(as(admin)).expect(404);
    await t.http().delete(`/v2/types/${t1.id}`).set(as(admin)).expect(404);
  });
});

describe('bad input: a 4xx fault and nothing created', () => {
  const cases: [string, unknown, number, RegExp][] = [
    ['no body', {}, 400, /share_type/],
    ['no name', { share_type: { extra_specs: { driver_handles_share_servers: 'False' } } }, 400, /name/],
    [
      '256-char name',
      { share_type: { name: 'n'.repeat(256), extra_specs: { driver_handles_share_servers: 'False' } } },
      400,
      /255/,
    ],
    [
      'missing dhss',
      { share_type: { name: 'no-dhss', extra_specs: {} } },
      400,
      /driver_handles_share_servers is missing/,
    ],
    [
      'dhss not a bool',
      { share_type: { name: 'dhss-maybe', extra_specs: { driver_handles_share_servers: 'maybe' } } },
      400,
      /boolean/,
    ],
    [
      'spec value an object',
      { share_type: { name: 'obj', extra_specs: { driver_handles_share_servers: 'False', x: { a: 1 } } } },
      400,
      /string/,
    ],
    [
      'a replica count the replicated backend cannot make',
      {
        share_type: {
          name: 'r2',
          extra_specs: { driver_handles_share_servers: 'False', 'abaca:replica_count': '2' },
        },
      },
      400,
      /abaca:replica_count must be one of 1, 3/,
    ],
    [
      'is_public garbage',
      {
        share_type: {
          name: 'pub',
          'share_type_access:is_public': 'perhaps',
          extra_specs: { driver_handles_share_servers: 'False' },
        },
      },
      400,
      /true or false/,
    ],
  ];
  for (const [label, body, status, message] of cases) {
    test(label, async () => {
      const before = await typeNames(admin, '?is_public=all');
      const res = await t
        .http()
        .post('/v2/types')
        .set(as(admin))
        .send(body as object);
      assert.equal(res.status, status, JSON.stringify(res.body));
      assert.match(faultMessage(res.body, 'badRequest', 400), message);
      assert.deepEqual(await typeNames(admin, '?is_public=all'), before);
    });
  }

  test('a duplicate name is a 409', async () => {
    const res = await t
      .http()
      .post('/v2/types')
      .set(as(admin))
      .send({ share_type: { name: 'gold', extra_specs: { driver_handles_share_servers: 'False' } } })
      .expect(409);
    faultMessage(res.body, 'conflictingRequest', 409);
  });

  test('a non-UUID or unknown id is a 404, never a 500', async () => {
    for (const id of ['gold', 'not-a-uuid', '00000000-0000-0000-0000-000000000000', "x' OR 1=1"]) {
      const res = await t
        .http()
        .get(`/v2/types/${encodeURIComponent(id)}`)
        .set(as(admin))
        .expect(404);
      faultMessage(res.body, 'itemNotFound', 404);
    }
  });
});

describe('extra specs', () => {
  test('set (merge), show one, unset; dhss cannot be unset; booleans become strings', async () => {
    const x = await createType({ name: 'specs', extra_specs: { driver_handles_share_servers: 'False' } });
    const set = await t
      .http()
      .post(`/v2/types/${x.id}/extra_specs`)
      .set(as(admin))
      .send({ extra_specs: { baz: 'qux', snapshot_support: true } })
      .expect(200);
    assert.deepEqual(set.body.extra_specs, { baz: 'qux', snapshot_support: 'True' });
    const all = await t.http().get(`/v2/types/${x.id}/extra_specs`).set(as(admin)).expect(200);
    assert.deepEqual(all.body.extra_specs, {
      driver_handles_share_servers: 'False',
      baz: 'qux',
      snapshot_support: 'True',
    });
    const one = await t.http().get(`/v2/types/${x.id}/extra_specs/baz`).set(as(admin)).expect(200);
    assert.deepEqual(one.body, { baz: 'qux' });
    await t.http().put(`/v2/types/${x.id}/extra_specs/baz`).set(as(admin)).send({ baz: 'zap' }).expect(200);
    await t.http().put(`/v2/types/${x.id}/extra_specs/baz`).set(as(admin)).send({ other: 'zap' }).expect(400);
    // A driver's own spec is checked when it is set, not when a share of the type fails.
    for (const bad of ['0', '2', 'three', ''])
      await t
        .http()
        .post(`/v2/types/${x.id}/extra_specs`)
        .set(as(admin))
        .send({ extra_specs: { 'abaca:replica_count': bad } })
        .expect(400);
    await t
      .http()
      .post(`/v2/types/${x.id}/extra_specs`)
      .set(as(admin))
      .send({ extra_specs: { 'abaca:replica_count': '1' } })
      .expect(200);
    await t.http().delete(`/v2/types/${x.id}/extra_specs/abaca:replica_count`).set(as(admin)).expect(202);
    await t.http().delete(`/v2/types/${x.id}/extra_specs/baz`).set(as(admin)).expect(202);
    await t.http().get(`/v2/types/${x.id}/extra_specs/baz`).set(as(admin)).expect(404);
    await t.http().delete(`/v2/types/${x.id}/extra_specs/baz`).set(as(admin)).expect(404);
    await t
      .http()
      .delete(`/v2/types/${x.id}/extra_specs/driver_handles_share_servers`)
      .set(as(admin))
      .expect(403);
  });

  test('extra spec routes are admin-only', async () => {
    const d = (await t.http().get('/v2/types/default').set(as(admin))).body.share_type;
    await t.http().get(`/v2/types/${d.id}/extra_specs`).set(as(alice.token)).expect(403);
    await t
      .http()
      .post(`/v2/types/${d.id}/extra_specs`)
      .set(as(alice.token))
      .send({ extra_specs: { a: 'b' } })
      .expect(403);
  });
});

describe('private types and access', () => {
  test('a private type is visible to admins and to projects granted access, 404 to others', async () => {
    const p = await createType({
      name: 'private-gold',
      'share_type_access:is_public': false,
      extra_specs: { driver_handles_share_servers: 'False' },
    });
    assert.equal(p['share_type_access:is_public'], false);
    assert.ok(!(await typeNames(alice.token)).includes('private-gold'));
    await t.http().get(`/v2/types/${p.id}`).set(as(alice.token)).expect(404);
    assert.ok(!(await typeNames(admin)).includes('private-gold'), 'admins list public types by default');
    assert.ok((await typeNames(admin, '?is_public=all')).includes('private-gold'));
    assert.deepEqual(await typeNames(admin, '?is_public=false'), ['private-gold']);

    await t
      .http()
      .post(`/v2/types/${p.id}/action`)
      .set(as(admin))
      .send({ addProjectAccess: { project: alice.projectId } })
      .expect(202);
    const access = await t.http().get(`/v2/types/${p.id}/share_type_access`).set(as(admin)).expect(200);
    assert.deepEqual(access.body.share_type_access, [{ share_type_id: p.id, project_id: alice.projectId }]);
    assert.ok((await typeNames(alice.token)).includes('private-gold'));
    assert.ok((await typeNames(reader.token)).includes('private-gold'), 'same project, reader role');
    assert.ok(!(await typeNames(bob.token)).includes('private-gold'));
    await t.http().get(`/v2/types/${p.id}`).set(as(bob.token)).expect(404);

    const dup = await t
      .http()
      .post(`/v2/types/${p.id}/action`)
      .set(as(admin))
      .send({ addProjectAccess: { project: alice.projectId } })
      .expect(409);
    faultMessage(dup.body, 'conflictingRequest', 409);
    await t
      .http()
      .post(`/v2/types/${p.id}/action`)
      .set(as(admin))
      .send({ addProjectAccess: { project: 'no-such-project' } })
      .expect(400);
    await t
      .http()
      .post(`/v2/types/${p.id}/action`)
      .set(as(admin))
      .send({ removeProjectAccess: { project: alice.projectId } })
      .expect(202);
    assert.ok(!(await typeNames(alice.token)).includes('private-gold'));
    await t
      .http()
      .post(`/v2/types/${p.id}/action`)
      .set(as(admin))
      .send({ removeProjectAccess: { project: alice.projectId } })
      .expect(404);
  });

  test('access to a public type: list 404, add/remove 409; unknown action 400', async () => {
    const d = (await t.http().get('/v2/types/default').set(as(admin))).body.share_type;
    await t.http().get(`/v2/types/${d.id}/share_type_access`).set(as(admin)).expect(404);
    await t
      .http()
      .post(`/v2/types/${d.id}/action`)
      .set(as(admin))
      .send({ addProjectAccess: { project: alice.projectId } })
      .expect(409);
    await t.http().post(`/v2/types/${d.id}/action`).set(as(admin)).send({ frobnicate: {} }).expect(400);
  });
});

describe('authorization', () => {
  test('members and readers may read types; only admins change them', async () => {
    for (const token of [alice.token, reader.token, bob.token]) {
      await t.http().get('/v2/types').set(as(token)).expect(200);
      const res = await t
        .http()
        .post('/v2/types')
        .set(as(token))
        .send({ share_type: { name: 'sneaky', extra_specs: { driver_handles_share_servers: 'False' } } })
        .expect(403);
      faultMessage(res.body, 'forbidden', 403);
    }
    const d = (await t.http().get('/v2/types/default').set(as(admin))).body.share_type;
    await t.http().delete(`/v2/types/${d.id}`).set(as(alice.token)).expect(403);
    assert.ok(!(await typeNames(admin, '?is_public=all')).includes('sneaky'));
  });

  test('an unscoped token cannot read types', async () => {
    const res = await t
      .http()
      .post('/identity/v3/auth/tokens')
      .send({
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { id: alice.userId, password: alice.password } },
          },
          scope: 'unscoped',
        },
      })
      .expect(201);
    await t
      .http()
      .get('/v2/types')
      .set(as(res.headers['x-subject-token'] as string))
      .expect(403);
  });
});
