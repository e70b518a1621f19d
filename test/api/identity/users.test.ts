import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { faultMessage, makeTestApp, passwordAuth, type TestApp, type TestUser } from '../../helpers/app.ts';
import { identityRequests, type Method, V3 } from '../../helpers/identity.ts';

let t: TestApp;
let admin: string;
let base: string;
let memberRoleId: string;
/** Member of 'uma-project'. */
let uma: TestUser;
/** Member of 'vic-project'. */
let vic: TestUser;
let otherDomainId: string;

before(async () => {
  t = await makeTestApp();
  admin = await t.adminToken();
  base = `${t.config.publicUrl}${V3}`;
  uma = await t.makeUser({ name: 'uma', project: 'uma-project', role: 'member' });
  vic = await t.makeUser({ name: 'vic', project: 'vic-project', role: 'member' });
  memberRoleId = (await call('get', '/roles?name=member').expect(200)).body.roles[0].id;
  otherDomainId = (
    await call('post', '/domains')
      .send({ domain: { name: 'elsewhere' } })
      .expect(201)
  ).body.domain.id;
});
after(() => t.close());

const { call, send } = identityRequests(
  () => t,
  () => admin,
);

async function users(query = ''): Promise<Record<string, unknown>[]> {
  return (await call('get', `/users${query}`).expect(200)).body.users;
}

async function createUser(body: Record<string, unknown>): Promise<Record<string, unknown>> {
  return (await call('post', '/users').send({ user: body }).expect(201)).body.user;
}

/** POST /auth/tokens for a user of the default domain; returns the response. */
function issue(name: string, password: string, project?: string) {
  return t
    .http()
    .post(`${V3}/auth/tokens`)
    .send(passwordAuth(name, password, project));
}

describe('GET /users', () => {
  test('lists users with Keystone fields and collection links', async () => {
    const res = await call('get', '/users').expect(200);
    assert.deepEqual(res.body.links, { self: `${base}/users`, previous: null, next: null });
    const a = res.body.users.find((u: { id: string }) => u.id === t.adminUserId);
    assert.deepEqual(a, {
      id: t.adminUserId,
      name: 'admin',
      domain_id: 'default',
      enabled: true,
      default_project_id: t.adminProjectId,
      password_expires_at: null,
      options: {},
      links: { self: `${base}/users/${t.adminUserId}` },
    });
    for (const u of res.body.users) {
      assert.equal(u.password, undefined);
      assert.equal(u.password_hash, undefined);
    }
  });

  test('?name=, ?domain_id= and ?enabled= filter, alone and together', async () => {
    const a = await createUser({ name: 'filter-u' });
    const b = await createUser({ name: 'filter-u', domain_id: otherDomainId });
    const c = await createUser({ name: 'filter-off', enabled: false });
    const ids = (list: Record<string, unknown>[]) => list.map((u) => u.id).sort();
    assert.deepEqual(ids(await users('?name=filter-u')), [a.id, b.id].sort());
    assert.deepEqual(ids(await users(`?name=filter-u&domain_id=${otherDomainId}`)), [b.id]);
    assert.deepEqual(ids(await users(`?domain_id=${otherDomainId}`)), [b.id]);
    const disabled = ids(await users('?enabled=false'));
    assert.ok(disabled.includes(c.id) && !disabled.includes(a.id));
    assert.deepEqual(ids(await users('?name=filter-off&enabled=true')), []);
    assert.deepEqual(await users('?name=nobody-by-that-name'), []);
  });

  test('a malformed ?enabled= is a 400', async () => {
    const res = await call('get', '/users?enabled=kinda').expect(400);
    assert.match(faultMessage(res.body, 'badRequest', 400), /enabled/);
  });

  test('non-admins get 403', async () => {
    const res = await call('get', '/users', uma.token).expect(403);
    faultMessage(res.body, 'forbidden', 403);
    await call('get', `/users?name=uma`, uma.token).expect(403);
  });
});

describe('POST /users', () => {
  test('201 with the full user and its extra attributes; never the password', async () => {
    const res = await call('post', '/users')
      .send({
        user: {
          name: 'full',
          password: 'full-password-1',
          enabled: true,
          default_project_id: uma.projectId,
          email: 'full@example.com',
          description: 'A complete user',
          department: 'storage',
          options: {},
        },
      })
      .expect(201);
    const u = res.body.user;
    assert.match(u.id, /^[0-9a-f]{32}$/);
    assert.deepEqual(u, {
      id: u.id,
      name: 'full',
      domain_id: 'default',
      enabled: true,
      default_project_id: uma.projectId,
      password_expires_at: null,
      options: {},
      email: 'full@example.com',
      description: 'A complete user',
      department: 'storage',
      links: { self: `${base}/users/${u.id}` },
    });
    assert.deepEqual((await call('get', `/users/${u.id}`).expect(200)).body, { user: u });
    assert.deepEqual(await users('?name=full'), [u]);
    // The password works (no role on its default project: the token comes back unscoped).
    const tok = await issue('full', 'full-password-1').expect(201);
    assert.equal(tok.body.token.user.id, u.id);
    assert.equal(tok.body.token.project, undefined);
  });

  test('defaults: enabled, no default_project_id; without a password nobody can log in', async () => {
    const u = await createUser({ name: 'no-password' });
    assert.equal(u.enabled, true);
    assert.equal('default_project_id' in u, false);
    assert.equal(u.domain_id, 'default');
    const res = await issue('no-password', '').expect(401);
    faultMessage(res.body, 'unauthorized', 401);
    await issue('no-password', 'anything').expect(401);
  });

  test('created disabled: the password does not log in', async () => {
    const u = await createUser({ name: 'born-disabled', password: 'pw-born-disabled', enabled: false });
    assert.equal(u.enabled, false);
    await issue('born-disabled', 'pw-born-disabled').expect(401);
  });

  test('in another domain by domain_id', async () => {
    const u = await createUser({ name: 'abroad', domain_id: otherDomainId });
    assert.equal(u.domain_id, otherDomainId);
  });

  test('id, links and password_expires_at in the body are ignored', async () => {
    const u = await createUser({
      name: 'sneaky',
      id: 'chosen-by-client',
      links: { self: 'http://evil.example/' },
      password_expires_at: '2000-01-01T00:00:00Z',
    });
    assert.notEqual(u.id, 'chosen-by-client');
    assert.deepEqual(u.links, { self: `${base}/users/${u.id}` });
    assert.equal(u.password_expires_at, null);
    await call('get', '/users/chosen-by-client').expect(404);
  });

  test('a name of 255 characters is accepted', async () => {
    assert.equal((await createUser({ name: 'u'.repeat(255) })).name, 'u'.repeat(255));
  });

  test('invalid bodies are 400 and create nothing', async () => {
    const beforeList = await users();
    const cases: [string, string | object, RegExp][] = [
      ['malformed JSON', '{"user": {"name": "x",', /Malformed JSON/],
      ['empty object', {}, /user/],
      ['user not an object', { user: ['x'] }, /user/],
      ['missing name', { user: { email: 'x@example.com' } }, /name/],
      ['empty name', { user: { name: '' } }, /name/],
      ['blank name', { user: { name: '  ' } }, /name/],
      ['name of 256 characters', { user: { name: 'v'.repeat(256) } }, /255/],
      ['enabled as a string', { user: { name: 'bad-1', enabled: 'yes' } }, /enabled/],
      ['password not a string', { user: { name: 'bad-2', password: 12345 } }, /password/],
      [
        'default_project_id not a string',
        { user: { name: 'bad-3', default_project_id: 5 } },
        /default_project_id/,
      ],
      ['options not an object', { user: { name: 'bad-4', options: [] } }, /options/],
      ['unknown domain_id', { user: { name: 'bad-5', domain_id: 'no-such-domain' } }, /no-such-domain/],
    ];
    for (const [label, body, message] of cases) {
      const res = await send('post', '/users', body);
      assert.equal(res.status, 400, `${label}: ${res.status} ${JSON.stringify(res.body)}`);
      assert.match(faultMessage(res.body, 'badRequest', 400), message, label);
    }
    assert.deepEqual(await users(), beforeList, 'no user was created');
  });

  test('unknown user options are refused (400) as Keystone does', {}, async () => {
    const res = await send('post', '/users', {
      user: { name: 'bad-options', options: { no_such_option: true } },
    });
    assert.equal(res.status, 400, `${res.status} ${JSON.stringify(res.body)}`);
    faultMessage(res.body, 'badRequest', 400);
    assert.deepEqual(await users('?name=bad-options'), []);
  });

  test('a duplicate name in the same domain is a 409; the same name in another domain is fine', async () => {
    await createUser({ name: 'twin', email: 'first@example.com' });
    const res = await call('post', '/users').send({ user: { name: 'twin', email: 'second@example.com' } });
    assert.equal(res.status, 409);
    faultMessage(res.body, 'conflictingRequest', 409);
    const same = await users('?name=twin&domain_id=default');
    assert.equal(same.length, 1);
    assert.equal(same[0]!.email, 'first@example.com');
    const adminAgain = await call('post', '/users').send({ user: { name: 'admin', password: 'x' } });
    assert.equal(adminAgain.status, 409);
    await t.adminToken(); // the real admin is untouched
    assert.equal((await createUser({ name: 'twin', domain_id: otherDomainId })).domain_id, otherDomainId);
  });

  test('non-admins get 403 and nothing is created', async () => {
    const res = await call('post', '/users', uma.token)
      .send({ user: { name: 'by-uma' } })
      .expect(403);
    faultMessage(res.body, 'forbidden', 403);
    assert.deepEqual(await users('?name=by-uma'), []);
  });
});

describe('GET /users/{id}', () => {
  test('an unknown id is a 404 itemNotFound', async () => {
    const res = await call('get', '/users/no-such-user').expect(404);
    assert.match(faultMessage(res.body, 'itemNotFound', 404), /no-such-user/);
  });

  test('a non-admin may read themselves', async () => {
    const res = await call('get', `/users/${uma.userId}`, uma.token).expect(200);
    assert.deepEqual(res.body.user, {
      id: uma.userId,
      name: 'uma',
      domain_id: 'default',
      enabled: true,
      default_project_id: uma.projectId,
      password_expires_at: null,
      options: {},
      links: { self: `${base}/users/${uma.userId}` },
    });
  });

  test('another user is 404 to a non-admin, exactly like an unknown id', async () => {
    const other = await call('get', `/users/${vic.userId}`, uma.token).expect(404);
    const unknown = await call('get', '/users/no-such-user', uma.token).expect(404);
    faultMessage(other.body, 'itemNotFound', 404);
    faultMessage(unknown.body, 'itemNotFound', 404);
    await call('get', `/users/${t.adminUserId}`, uma.token).expect(404);
  });
});

describe('PATCH /users/{id}', () => {
  test('updates name, enabled, default project and extra attributes; 200 with the full user', async () => {
    const u = await createUser({ name: 'patch-me', email: 'old@example.com', team: 'a' });
    const res = await call('patch', `/users/${u.id}`)
      .send({ user: { name: 'patched', email: 'new@example.com', default_project_id: vic.projectId } })
      .expect(200);
    assert.deepEqual(res.body.user, {
      id: u.id,
      name: 'patched',
      domain_id: 'default',
      enabled: true,
      default_project_id: vic.projectId,
      password_expires_at: null,
      options: {},
      email: 'new@example.com',
      team: 'a',
      links: { self: `${base}/users/${u.id}` },
    });
    assert.deepEqual((await call('get', `/users/${u.id}`).expect(200)).body.user, res.body.user);
    const cleared = await call('patch', `/users/${u.id}`)
      .send({ user: { default_project_id: null } })
      .expect(200);
    assert.equal('default_project_id' in cleared.body.user, false);
  });

  test('id and links in the body are ignored', async () => {
    const u = await createUser({ name: 'keep-id' });
    const res = await call('patch', `/users/${u.id}`)
      .send({ user: { id: 'other-id', links: { self: 'x' }, nickname: 'k' } })
      .expect(200);
    assert.equal(res.body.user.id, u.id);
    assert.deepEqual(res.body.user.links, { self: `${base}/users/${u.id}` });
    assert.equal(res.body.user.nickname, 'k');
    await call('get', '/users/other-id').expect(404);
  });

  test('invalid updates are 400, an unknown id 404, a taken name 409; nothing changes', async () => {
    const u = await createUser({ name: 'patch-target', email: 'keep@example.com' });
    await createUser({ name: 'patch-taken' });
    const path = `/users/${u.id}`;
    const cases: [string, string | object, number, string, RegExp][] = [
      ['malformed JSON', '{"user": ', 400, 'badRequest', /Malformed JSON/],
      ['no user key', { name: 'x' }, 400, 'badRequest', /user/],
      ['name of 256 characters', { user: { name: 'w'.repeat(256) } }, 400, 'badRequest', /255/],
      ['enabled as a string', { user: { enabled: 'yes' } }, 400, 'badRequest', /enabled/],
      ['password not a string', { user: { password: true } }, 400, 'badRequest', /password/],
      ['move to another domain', { user: { domain_id: otherDomainId } }, 400, 'badRequest', /domain/],
      ['taken name', { user: { name: 'patch-taken' } }, 409, 'conflictingRequest', /exists/],
    ];
    for (const [label, body, status, fault, message] of cases) {
      const res = await send('patch', path, body);
      assert.equal(res.status, status, `${label}: ${res.status} ${JSON.stringify(res.body)}`);
      assert.match(faultMessage(res.body, fault, status), message, label);
    }
    assert.deepEqual((await call('get', path).expect(200)).body.user, u);
    const missing = await call('patch', '/users/no-such-user')
      .send({ user: { email: 'x' } })
      .expect(404);
    faultMessage(missing.body, 'itemNotFound', 404);
  });

  test('an admin setting a password revokes the old tokens; only the new password works', async () => {
    const u = await t.makeUser({ name: 'reset', project: 'reset-project' });
    await call('patch', `/users/${u.userId}`)
      .send({ user: { password: 'reset-new-pw' } })
      .expect(200);
    await call('get', '/auth/projects', u.token).expect(401);
    await issue('reset', u.password, 'reset-project').expect(401);
    const fresh = await issue('reset', 'reset-new-pw', 'reset-project').expect(201);
    await call('get', '/auth/projects', fresh.headers['x-subject-token'] as string).expect(200);
  });

  test('disabling a user revokes their tokens and refuses new ones until re-enabled', async () => {
    const u = await t.makeUser({ name: 'dis', project: 'dis-project' });
    const res = await call('patch', `/users/${u.userId}`)
      .send({ user: { enabled: false } })
      .expect(200);
    assert.equal(res.body.user.enabled, false);
    const revoked = await call('get', '/auth/projects', u.token).expect(401);
    faultMessage(revoked.body, 'unauthorized', 401);
    await issue('dis', u.password, 'dis-project').expect(401);
    await call('patch', `/users/${u.userId}`)
      .send({ user: { enabled: true } })
      .expect(200);
    const fresh = await issue('dis', u.password, 'dis-project').expect(201);
    await call('get', '/auth/projects', fresh.headers['x-subject-token'] as string).expect(200);
    await call('get', '/auth/projects', u.token).expect(401);
  });

  test('non-admins get 403, even on themselves, and nothing changes', async () => {
    for (const target of [uma.userId, vic.userId]) {
      const res = await call('patch', `/users/${target}`, uma.token)
        .send({ user: { email: 'uma-was-here@example.com', enabled: false } })
        .expect(403);
      faultMessage(res.body, 'forbidden', 403);
    }
    for (const target of [uma.userId, vic.userId]) {
      const u = (await call('get', `/users/${target}`).expect(200)).body.user;
      assert.equal(u.email, undefined);
      assert.equal(u.enabled, true);
    }
    await call('get', '/auth/projects', uma.token).expect(200);
  });
});

describe('DELETE /users/{id}', () => {
  test('204; the user, their tokens and their role assignments are gone', async () => {
    const u = await t.makeUser({ name: 'doomed', project: 'doomed-project' });
    const res = await call('delete', `/users/${u.userId}`).expect(204);
    assert.equal(res.text, '');
    const gone = await call('get', `/users/${u.userId}`).expect(404);
    faultMessage(gone.body, 'itemNotFound', 404);
    assert.deepEqual(await users('?name=doomed'), []);
    await call('get', '/auth/projects', u.token).expect(401);
    await issue('doomed', u.password, 'doomed-project').expect(401);
    const left = await call('get', `/role_assignments?user.id=${u.userId}`).expect(200);
    assert.deepEqual(left.body.role_assignments, []);
    const onProject = await call('get', `/role_assignments?scope.project.id=${u.projectId}`).expect(200);
    assert.deepEqual(onProject.body.role_assignments, []);
    const again = await call('delete', `/users/${u.userId}`).expect(404);
    faultMessage(again.body, 'itemNotFound', 404);
  });

  test('the name of a deleted user can be used again, as a new user', async () => {
    const u = await createUser({ name: 'phoenix' });
    await call('delete', `/users/${u.id}`).expect(204);
    assert.notEqual((await createUser({ name: 'phoenix' })).id, u.id);
  });

  test('a user cannot delete themself (400) and is still there', async () => {
    const res = await call('delete', `/users/${t.adminUserId}`).expect(400);
    assert.match(faultMessage(res.body, 'badRequest', 400), /authenticated as/);
    await call('get', `/users/${t.adminUserId}`).expect(200);
    await call('get', '/auth/projects').expect(200);
  });

  test('an unknown id is a 404', async () => {
    const res = await call('delete', '/users/no-such-user').expect(404);
    faultMessage(res.body, 'itemNotFound', 404);
  });

  test('non-admins get 403, on themselves too, and nobody is deleted', async () => {
    for (const target of [uma.userId, vic.userId]) {
      const res = await call('delete', `/users/${target}`, uma.token).expect(403);
      faultMessage(res.body, 'forbidden', 403);
      await call('get', `/users/${target}`).expect(200);
    }
    await call('get', '/auth/projects', uma.token).expect(200);
  });
});

describe('POST /users/{id}/password', () => {
  let pat: TestUser;
  before(async () => {
    pat = await t.makeUser({ name: 'pat', project: 'pat-project' });
  });

  test('invalid bodies are 400 and the password stays', async () => {
    const path = `/users/${pat.userId}/password`;
    const cases: [string, string | object, RegExp][] = [
      ['malformed JSON', '{"user": {', /Malformed JSON/],
      ['no user key', { original_password: pat.password, password: 'x' }, /user/],
      ['missing original_password', { user: { password: 'pat-new' } }, /original_password/],
      ['missing password', { user: { original_password: pat.password } }, /password/],
      ['empty password', { user: { original_password: pat.password, password: '' } }, /password/],
      ['password not a string', { user: { original_password: pat.password, password: 42 } }, /password/],
    ];
    for (const [label, body, message] of cases) {
      const res = await send('post', path, body, pat.token);
      assert.equal(res.status, 400, `${label}: ${res.status} ${JSON.stringify(res.body)}`);
      assert.match(faultMessage(res.body, 'badRequest', 400), message, label);
    }
    await call('get', '/auth/projects', pat.token).expect(200);
  });

  test('a wrong original password is a 401 and changes nothing', async () => {
    const res = await call('post', `/users/${pat.userId}/password`, pat.token)
      .send({ user: { original_password: 'not-the-password', password: 'pat-hijacked' } })
      .expect(401);
    faultMessage(res.body, 'unauthorized', 401);
    await call('get', '/auth/projects', pat.token).expect(200);
    await issue('pat', 'pat-hijacked', 'pat-project').expect(401);
  });

  test("another user's password is 403 to a non-admin and to an admin; nothing changes", async () => {
    const byUma = await call('post', `/users/${pat.userId}/password`, uma.token)
      .send({ user: { original_password: pat.password, password: 'by-uma' } })
      .expect(403);
    faultMessage(byUma.body, 'forbidden', 403);
    const byAdmin = await call('post', `/users/${pat.userId}/password`)
      .send({ user: { original_password: pat.password, password: 'by-admin' } })
      .expect(403);
    faultMessage(byAdmin.body, 'forbidden', 403);
    await call('post', '/users/no-such-user/password', uma.token)
      .send({ user: { original_password: 'x', password: 'y' } })
      .expect(403);
    await call('get', '/auth/projects', pat.token).expect(200);
    await call('get', '/auth/projects', uma.token).expect(200);
  });

  test('the owner changes it with the original: 204, old password and old tokens stop working', async () => {
    const res = await call('post', `/users/${pat.userId}/password`, pat.token)
      .send({ user: { original_password: pat.password, password: 'pat-new-password' } })
      .expect(204);
    assert.equal(res.text, '');
    await call('get', '/auth/projects', pat.token).expect(401);
    await issue('pat', pat.password, 'pat-project').expect(401);
    const fresh = await issue('pat', 'pat-new-password', 'pat-project').expect(201);
    await call('get', '/auth/projects', fresh.headers['x-subject-token'] as string).expect(200);
  });
});

describe('GET /users/{id}/projects', () => {
  let multi: TestUser;
  let secondId: string;
  before(async () => {
    multi = await t.makeUser({ name: 'multi', project: 'm-first' });
    secondId = (
      await call('post', '/projects')
        .send({ project: { name: 'm-second', enabled: false } })
        .expect(201)
    ).body.project.id;
    await call('put', `/projects/${secondId}/users/${multi.userId}/roles/${memberRoleId}`).expect(204);
  });

  test('an admin sees the projects the user holds a role on, with collection links', async () => {
    const res = await call('get', `/users/${multi.userId}/projects`).expect(200);
    assert.deepEqual(
      res.body.projects.map((p: { name: string }) => p.name),
      ['m-first', 'm-second'],
    );
    const first = res.body.projects[0];
    assert.deepEqual(first, (await call('get', `/projects/${multi.projectId}`).expect(200)).body.project);
    assert.deepEqual(res.body.links, {
      self: `${base}/users/${multi.userId}/projects`,
      previous: null,
      next: null,
    });
  });

  test('a user sees their own projects', async () => {
    const res = await call('get', `/users/${multi.userId}/projects`, multi.token).expect(200);
    assert.deepEqual(
      res.body.projects.map((p: { id: string }) => p.id),
      [multi.projectId, secondId],
    );
  });

  test('?name= and ?enabled= filter the list, as Keystone does', {}, async () => {
    const byName = await call('get', `/users/${multi.userId}/projects?name=m-second`).expect(200);
    assert.deepEqual(
      byName.body.projects.map((p: { id: string }) => p.id),
      [secondId],
    );
    const enabled = await call('get', `/users/${multi.userId}/projects?enabled=true`).expect(200);
    assert.deepEqual(
      enabled.body.projects.map((p: { id: string }) => p.id),
      [multi.projectId],
    );
  });

  test('an unknown user is a 404', {}, async () => {
    const res = await call('get', '/users/no-such-user/projects');
    assert.equal(res.status, 404, `${res.status} ${JSON.stringify(res.body)}`);
    faultMessage(res.body, 'itemNotFound', 404);
  });

  test("another user's projects are 403 to a non-admin", async () => {
    const res = await call('get', `/users/${multi.userId}/projects`, uma.token).expect(403);
    faultMessage(res.body, 'forbidden', 403);
  });
});

describe('without a valid token', () => {
  test('every user route is a 401 and changes nothing', async () => {
    const u = await createUser({ name: 'token-probe' });
    const routes: [Method, string, object?][] = [
      ['get', '/users'],
      ['post', '/users', { user: { name: 'anonymous' } }],
      ['get', `/users/${u.id}`],
      ['patch', `/users/${u.id}`, { user: { email: 'anonymous@example.com' } }],
      ['delete', `/users/${u.id}`],
      ['post', `/users/${uma.userId}/password`, { user: { original_password: uma.password, password: 'x' } }],
      ['get', `/users/${uma.userId}/projects`],
    ];
    for (const token of [null, 'garbage']) {
      for (const [method, path, body] of routes) {
        const req = call(method, path, token);
        const res = await (body ? req.send(body) : req);
        assert.equal(res.status, 401, `${method} ${path} with ${token}: ${res.status}`);
        faultMessage(res.body, 'unauthorized', 401);
      }
    }
    assert.deepEqual((await call('get', `/users/${u.id}`).expect(200)).body.user, u);
    assert.deepEqual(await users('?name=anonymous'), []);
    await call('get', '/auth/projects', uma.token).expect(200);
  });
});
