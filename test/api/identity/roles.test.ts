import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { faultMessage, makeTestApp, type TestApp, type TestUser } from '../../helpers/app.ts';
import { identityRequests, type Method, V3 } from '../../helpers/identity.ts';

const BUILT_IN = ['admin', 'member', 'reader'] as const;

let t: TestApp;
let admin: string;
let base: string;
let builtIn: Record<(typeof BUILT_IN)[number], Record<string, unknown>>;
/** Member of 'rob-project'. */
let rob: TestUser;

before(async () => {
  t = await makeTestApp();
  admin = await t.adminToken();
  base = `${t.config.publicUrl}${V3}`;
  rob = await t.makeUser({ name: 'rob', project: 'rob-project', role: 'member' });
  const all = await roles();
  const byName = (n: string) => all.find((r) => r.name === n)!;
  builtIn = { admin: byName('admin'), member: byName('member'), reader: byName('reader') };
});
after(() => t.close());

const { call, send } = identityRequests(
  () => t,
  () => admin,
);

async function roles(query = ''): Promise<Record<string, unknown>[]> {
  return (await call('get', `/roles${query}`).expect(200)).body.roles;
}

async function createRole(body: Record<string, unknown>): Promise<Record<string, unknown>> {
  return (await call('post', '/roles').send({ role: body }).expect(201)).body.role;
}

describe('GET /roles', () => {
  test('lists the built-in roles with Keystone fields and collection links', async () => {
    const res = await call('get', '/roles').expect(200);
    assert.deepEqual(res.body.links, { self: `${base}/roles`, previous: null, next: null });
    for (const name of BUILT_IN) {
      const r = res.body.roles.find((x: { name: string }) => x.name === name);
      assert.ok(r, `role ${name} is listed`);
      assert.deepEqual(r, {
        id: r.id,
        name,
        domain_id: null,
        description: '',
        options: {},
        links: { self: `${base}/roles/${r.id}` },
      });
    }
  });

  test('?name= filters the list', async () => {
    assert.deepEqual(await roles('?name=member'), [builtIn.member]);
    assert.deepEqual(await roles('?name=no-such-role'), []);
  });

  test('non-admins get 403', async () => {
    const res = await call('get', '/roles', rob.token).expect(403);
    faultMessage(res.body, 'forbidden', 403);
    await call('get', '/roles?name=member', rob.token).expect(403);
  });
});

describe('POST /roles', () => {
  test('201 with the full role; GET and the list return the same', async () => {
    const res = await call('post', '/roles')
      .send({ role: { name: 'operator', description: 'Runs things', options: {}, domain_id: null } })
      .expect(201);
    const r = res.body.role;
    assert.match(r.id, /^[0-9a-f]{32}$/);
    assert.deepEqual(r, {
      id: r.id,
      name: 'operator',
      domain_id: null,
      description: 'Runs things',
      options: {},
      links: { self: `${base}/roles/${r.id}` },
    });
    assert.deepEqual((await call('get', `/roles/${r.id}`).expect(200)).body, { role: r });
    assert.deepEqual(await roles('?name=operator'), [r]);
  });

  test('unknown attributes are stored and returned; id and links in the body are ignored', async () => {
    const r = await createRole({
      name: 'with-extras',
      id: 'chosen-by-client',
      links: { self: 'http://evil.example/' },
      category: 'storage',
    });
    assert.notEqual(r.id, 'chosen-by-client');
    assert.deepEqual(r.links, { self: `${base}/roles/${r.id}` });
    assert.equal(r.category, 'storage');
    assert.equal((await call('get', `/roles/${r.id}`).expect(200)).body.role.category, 'storage');
    await call('get', '/roles/chosen-by-client').expect(404);
  });

  test('a name of 255 characters is accepted', async () => {
    assert.equal((await createRole({ name: 'r'.repeat(255) })).name, 'r'.repeat(255));
  });

  test('invalid bodies are 400 and create nothing', async () => {
    const beforeList = await roles();
    const cases: [string, string | object, RegExp][] = [
      ['malformed JSON', '{"role": {"name": "x"}', /Malformed JSON/],
      ['empty object', {}, /role/],
      ['missing name', { role: { description: 'x' } }, /name/],
      ['empty name', { role: { name: '' } }, /name/],
      ['blank name', { role: { name: '   ' } }, /name/],
      ['name of 256 characters', { role: { name: 's'.repeat(256) } }, /255/],
      ['name not a string', { role: { name: ['a'] } }, /name/],
      ['description not a string', { role: { name: 'bad-1', description: 1 } }, /description/],
      ['options not an object', { role: { name: 'bad-2', options: 'x' } }, /options/],
      ['a domain-specific role', { role: { name: 'bad-3', domain_id: 'default' } }, /domain_id/],
    ];
    for (const [label, body, message] of cases) {
      const res = await send('post', '/roles', body);
      assert.equal(res.status, 400, `${label}: ${res.status} ${JSON.stringify(res.body)}`);
      assert.match(faultMessage(res.body, 'badRequest', 400), message, label);
    }
    assert.deepEqual(await roles(), beforeList, 'no role was created');
  });

  test('unknown role options are refused (400) as Keystone does', {}, async () => {
    const res = await send('post', '/roles', {
      role: { name: 'bad-options', options: { no_such_option: 1 } },
    });
    assert.equal(res.status, 400, `${res.status} ${JSON.stringify(res.body)}`);
    faultMessage(res.body, 'badRequest', 400);
    assert.deepEqual(await roles('?name=bad-options'), []);
  });

  test('a duplicate name is a 409 conflictingRequest and creates nothing', async () => {
    await createRole({ name: 'dup-role', description: 'first' });
    for (const name of ['dup-role', 'admin', 'member', 'reader']) {
      const res = await call('post', '/roles').send({ role: { name, description: 'second' } });
      assert.equal(res.status, 409, `${name}: ${res.status}`);
      faultMessage(res.body, 'conflictingRequest', 409);
      const same = await roles(`?name=${name}`);
      assert.equal(same.length, 1);
      assert.notEqual(same[0]!.description, 'second');
    }
  });

  test('non-admins get 403 and nothing is created', async () => {
    const res = await call('post', '/roles', rob.token)
      .send({ role: { name: 'by-rob' } })
      .expect(403);
    faultMessage(res.body, 'forbidden', 403);
    assert.deepEqual(await roles('?name=by-rob'), []);
  });
});

describe('GET /roles/{id}', () => {
  test('a built-in role by id', async () => {
    const res = await call('get', `/roles/${builtIn.reader.id}`).expect(200);
    assert.deepEqual(res.body, { role: builtIn.reader });
  });

  test('an unknown id is a 404 itemNotFound', async () => {
    const res = await call('get', '/roles/no-such-role').expect(404);
    assert.match(faultMessage(res.body, 'itemNotFound', 404), /no-such-role/);
  });

  test('non-admins get 403, even for a role they hold', async () => {
    const res = await call('get', `/roles/${builtIn.member.id}`, rob.token).expect(403);
    faultMessage(res.body, 'forbidden', 403);
  });
});

describe('PATCH /roles/{id}', () => {
  test('renames a custom role and updates its description; extra attributes merge', async () => {
    const r = await createRole({ name: 'patch-me', description: 'old', category: 'a' });
    const res = await call('patch', `/roles/${r.id}`)
      .send({ role: { name: 'patched', description: 'new', tier: 2, id: 'other-id' } })
      .expect(200);
    assert.deepEqual(res.body.role, {
      id: r.id,
      name: 'patched',
      domain_id: null,
      description: 'new',
      options: {},
      category: 'a',
      tier: 2,
      links: { self: `${base}/roles/${r.id}` },
    });
    assert.deepEqual((await call('get', `/roles/${r.id}`).expect(200)).body.role, res.body.role);
    assert.deepEqual(await roles('?name=patch-me'), []);
    const cleared = await call('patch', `/roles/${r.id}`)
      .send({ role: { description: null } })
      .expect(200);
    assert.equal(cleared.body.role.description, '');
  });

  test('built-in roles cannot be renamed (403) and keep their names', async () => {
    for (const name of BUILT_IN) {
      const res = await call('patch', `/roles/${builtIn[name].id}`)
        .send({ role: { name: `${name}-renamed` } })
        .expect(403);
      assert.match(faultMessage(res.body, 'forbidden', 403), /built-in/);
    }
    for (const name of BUILT_IN) assert.deepEqual(await roles(`?name=${name}`), [builtIn[name]]);
    // Tokens still carry the built-in names.
    await call('get', '/auth/projects', rob.token).expect(200);
    const tok = await t.login('rob', rob.password, 'rob-project');
    const body = (await call('get', '/auth/tokens', tok).set('X-Subject-Token', tok).expect(200)).body;
    assert.deepEqual(body.token.roles.map((r: { name: string }) => r.name).sort(), ['member', 'reader']);
  });

  test("a built-in role's description can change; sending its own name is not a rename", async () => {
    const id = builtIn.reader.id;
    const res = await call('patch', `/roles/${id}`)
      .send({ role: { name: 'reader', description: 'Read-only access' } })
      .expect(200);
    assert.equal(res.body.role.name, 'reader');
    assert.equal(res.body.role.description, 'Read-only access');
    await call('patch', `/roles/${id}`)
      .send({ role: { description: '' } })
      .expect(200);
  });

  test('invalid updates are 400, an unknown id 404, a taken name 409; nothing changes', async () => {
    const r = await createRole({ name: 'patch-target', description: 'original' });
    await createRole({ name: 'patch-taken' });
    const path = `/roles/${r.id}`;
    const cases: [string, string | object, number, string, RegExp][] = [
      ['malformed JSON', '{"role": {', 400, 'badRequest', /Malformed JSON/],
      ['no role key', { name: 'x' }, 400, 'badRequest', /role/],
      ['name of 256 characters', { role: { name: 't'.repeat(256) } }, 400, 'badRequest', /255/],
      ['empty name', { role: { name: '' } }, 400, 'badRequest', /name/],
      ['description not a string', { role: { description: false } }, 400, 'badRequest', /description/],
      ['a domain-specific role', { role: { domain_id: 'default' } }, 400, 'badRequest', /domain_id/],
      ['taken name', { role: { name: 'patch-taken' } }, 409, 'conflictingRequest', /exists/],
      ['a built-in name', { role: { name: 'admin' } }, 409, 'conflictingRequest', /exists/],
    ];
    for (const [label, body, status, fault, message] of cases) {
      const res = await send('patch', path, body);
      assert.equal(res.status, status, `${label}: ${res.status} ${JSON.stringify(res.body)}`);
      assert.match(faultMessage(res.body, fault, status), message, label);
    }
    assert.deepEqual((await call('get', path).expect(200)).body.role, r);
    const missing = await call('patch', '/roles/no-such-role')
      .send({ role: { description: 'x' } })
      .expect(404);
    faultMessage(missing.body, 'itemNotFound', 404);
  });

  test('non-admins get 403 and nothing changes', async () => {
    const r = await createRole({ name: 'rob-cannot-patch' });
    const res = await call('patch', `/roles/${r.id}`, rob.token)
      .send({ role: { description: 'by rob' } })
      .expect(403);
    faultMessage(res.body, 'forbidden', 403);
    assert.deepEqual((await call('get', `/roles/${r.id}`).expect(200)).body.role, r);
  });
});

describe('DELETE /roles/{id}', () => {
  test('204; the role is gone; deleting again is a 404', async () => {
    const r = await createRole({ name: 'doomed' });
    const res = await call('delete', `/roles/${r.id}`).expect(204);
    assert.equal(res.text, '');
    const gone = await call('get', `/roles/${r.id}`).expect(404);
    faultMessage(gone.body, 'itemNotFound', 404);
    assert.deepEqual(await roles('?name=doomed'), []);
    await call('delete', `/roles/${r.id}`).expect(404);
  });

  test('an unknown id is a 404', async () => {
    const res = await call('delete', '/roles/no-such-role').expect(404);
    faultMessage(res.body, 'itemNotFound', 404);
  });

  test('built-in roles cannot be deleted (403) and are still there', async () => {
    for (const name of BUILT_IN) {
      const res = await call('delete', `/roles/${builtIn[name].id}`).expect(403);
      assert.match(faultMessage(res.body, 'forbidden', 403), /built-in/);
    }
    for (const name of BUILT_IN) await call('get', `/roles/${builtIn[name].id}`).expect(200);
    await call('get', '/auth/projects', rob.token).expect(200);
  });

  test("deleting a held role removes its assignments and revokes the holders' tokens on that project", async () => {
    const r = await createRole({ name: 'held' });
    const holder = await t.makeUser({ name: 'holder', project: 'holder-project', role: 'member' });
    await call('put', `/projects/${holder.projectId}/users/${holder.userId}/roles/${r.id}`).expect(204);
    const held = await call('get', `/role_assignments?role.id=${r.id}`).expect(200);
    assert.equal(held.body.role_assignments.length, 1);
    await call('get', '/auth/projects', holder.token).expect(200);

    await call('delete', `/roles/${r.id}`).expect(204);
    const left = await call('get', `/role_assignments?user.id=${holder.userId}`).expect(200);
    assert.deepEqual(
      left.body.role_assignments.map((a: { role: { id: string } }) => a.role.id),
      [builtIn.member.id],
    );
    await call('get', '/auth/projects', holder.token).expect(401);
    // The member role is still held, so a new token works.
    await t.login('holder', holder.password, 'holder-project');
  });

  test('non-admins get 403 and the role stays', async () => {
    const r = await createRole({ name: 'rob-cannot-delete' });
    const res = await call('delete', `/roles/${r.id}`, rob.token).expect(403);
    faultMessage(res.body, 'forbidden', 403);
    await call('get', `/roles/${r.id}`).expect(200);
  });
});

describe('without a valid token', () => {
  test('every role route is a 401 and changes nothing', async () => {
    const r = await createRole({ name: 'token-probe' });
    const routes: [Method, string, object?][] = [
      ['get', '/roles'],
      ['post', '/roles', { role: { name: 'anonymous' } }],
      ['get', `/roles/${r.id}`],
      ['patch', `/roles/${r.id}`, { role: { description: 'anonymous' } }],
      ['delete', `/roles/${r.id}`],
    ];
    for (const token of [null, 'garbage']) {
      for (const [method, path, body] of routes) {
        const req = call(method, path, token);
        const res = await (body ? req.send(body) : req);
        assert.equal(res.status, 401, `${method} ${path} with ${token}: ${res.status}`);
        faultMessage(res.body, 'unauthorized', 401);
      }
    }
    assert.deepEqual((await call('get', `/roles/${r.id}`).expect(200)).body.role, r);
    assert.deepEqual(await roles('?name=anonymous'), []);
  });
});
