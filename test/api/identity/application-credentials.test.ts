import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { faultMessage, makeTestApp, type TestApp, type TestUser } from '../../helpers/app.ts';
import { identityRequests, type Method, V3 } from '../../helpers/identity.ts';

// Creating credentials and authenticating with them are covered by auth-tokens.test.ts; this file
// covers listing, showing, deleting, filters and who may do each.

interface Cred {
  id: string;
  name: string;
  secret: string;
  [k: string]: unknown;
}

let t: TestApp;
let admin: string;
let base: string;
let readerRoleId: string;
let memberRoleId: string;
/** Member of 'ann-project'. */
let ann: TestUser;
/** Reader of 'ann-project'. */
let ray: TestUser;
/** Member of 'oli-project'. */
let oli: TestUser;

before(async () => {
  t = await makeTestApp();
  admin = await t.adminToken();
  base = `${t.config.publicUrl}${V3}`;
  ann = await t.makeUser({ name: 'ann', project: 'ann-project', role: 'member' });
  ray = await t.makeUser({ name: 'ray', project: 'ann-project', role: 'reader' });
  oli = await t.makeUser({ name: 'oli', project: 'oli-project', role: 'member' });
  const roles = (await call('get', '/roles').expect(200)).body.roles as { id: string; name: string }[];
  readerRoleId = roles.find((r) => r.name === 'reader')!.id;
  memberRoleId = roles.find((r) => r.name === 'member')!.id;
});
after(() => t.close());

const { call } = identityRequests(
  () => t,
  () => admin,
);

/**
 * A valid token for Ann: deleting a credential revokes its owner's tokens on the project (the
 * server cannot tell which ones came from it), so log in again when that happened.
 */
async function annToken(): Promise<string> {
  try {
    await t.identity.tokens.authenticate(ann.token);
  } catch {
    ann.token = await t.login('ann', ann.password, 'ann-project');
  }
  return ann.token;
}

const creds = (userId: string) => `/users/${userId}/application_credentials`;

async function createCred(body: Record<string, unknown>): Promise<Cred> {
  const res = await call('post', creds(ann.userId), await annToken())
    .send({ application_credential: body })
    .expect(201);
  return res.body.application_credential;
}

function authWith(c: { id: string; secret: string }) {
  return t
    .http()
    .post(`${V3}/auth/tokens`)
    .send({
      auth: {
        identity: {
          methods: ['application_credential'],
          application_credential: { id: c.id, secret: c.secret },
        },
      },
    });
}

async function list(userId: string, query = '', token: string = admin): Promise<Record<string, unknown>[]> {
  return (await call('get', `${creds(userId)}${query}`, token).expect(200)).body.application_credentials;
}

describe('GET /users/{u}/application_credentials/{id}', () => {
  test('shows every Keystone field and never the secret', async () => {
    const c = await createCred({
      name: 'show-me',
      description: 'for the CSI plugin',
      expires_at: '2099-01-02T03:04:05Z',
      roles: [{ name: 'reader' }],
      unrestricted: true,
    });
    const res = await call('get', `${creds(ann.userId)}/${c.id}`, await annToken()).expect(200);
    assert.deepEqual(res.body, {
      application_credential: {
        id: c.id,
        name: 'show-me',
        user_id: ann.userId,
        project_id: ann.projectId,
        description: 'for the CSI plugin',
        expires_at: '2099-01-02T03:04:05.000000Z',
        unrestricted: true,
        roles: [{ id: readerRoleId, name: 'reader' }],
        access_rules: [],
        links: { self: `${base}/users/${ann.userId}/application_credentials/${c.id}` },
      },
    });
  });

  test('defaults: no expiry, restricted, the roles of the token', async () => {
    const c = await createCred({ name: 'defaults' });
    const shown = (await call('get', `${creds(ann.userId)}/${c.id}`).expect(200)).body.application_credential;
    assert.equal(shown.expires_at, null);
    assert.equal(shown.unrestricted, false);
    assert.equal(shown.description, '');
    assert.deepEqual(
      shown.roles.map((r: { id: string }) => r.id).sort(),
      [memberRoleId, readerRoleId].sort(),
    );
    assert.equal(shown.secret, undefined);
  });

  test('an admin may show another user’s credential', async () => {
    const c = await createCred({ name: 'admin-shows' });
    const res = await call('get', `${creds(ann.userId)}/${c.id}`).expect(200);
    assert.equal(res.body.application_credential.user_id, ann.userId);
  });

  test('an unknown id, or a credential asked for under another user, is a 404', async () => {
    const c = await createCred({ name: 'elsewhere' });
    const unknown = await call('get', `${creds(ann.userId)}/no-such-credential`, await annToken()).expect(
      404,
    );
    assert.match(faultMessage(unknown.body, 'itemNotFound', 404), /no-such-credential/);
    // Oli names his own user id in the path and Ann's credential id: not his, so not found.
    const foreign = await call('get', `${creds(oli.userId)}/${c.id}`, oli.token).expect(404);
    faultMessage(foreign.body, 'itemNotFound', 404);
    await call('get', `${creds(t.adminUserId)}/${c.id}`).expect(404);
  });

  test('another user, even a reader of the same project, gets 403', async () => {
    const c = await createCred({ name: 'not-for-others' });
    for (const u of [ray, oli]) {
      const res = await call('get', `${creds(ann.userId)}/${c.id}`, u.token).expect(403);
      faultMessage(res.body, 'forbidden', 403);
    }
  });
});

describe('GET /users/{u}/application_credentials', () => {
  test('lists the credentials of the user, as shown one by one, with collection links', async () => {
    const a = await createCred({ name: 'list-a' });
    const b = await createCred({ name: 'list-b', roles: [{ id: readerRoleId }] });
    const res = await call('get', creds(ann.userId), await annToken()).expect(200);
    assert.deepEqual(res.body.links, {
      self: `${base}/users/${ann.userId}/application_credentials`,
      previous: null,
      next: null,
    });
    for (const c of [a, b]) {
      const item = res.body.application_credentials.find((x: { id: string }) => x.id === c.id);
      const shown = (await call('get', `${creds(ann.userId)}/${c.id}`).expect(200)).body
        .application_credential;
      assert.deepEqual(item, shown);
      assert.equal(item.secret, undefined);
    }
    for (const item of res.body.application_credentials) assert.equal(item.user_id, ann.userId);
  });

  test('?name= filters the list', async () => {
    const c = await createCred({ name: 'filter-me' });
    assert.deepEqual(
      (await list(ann.userId, '?name=filter-me', await annToken())).map((x) => x.id),
      [c.id],
    );
    assert.deepEqual(await list(ann.userId, '?name=no-such-credential'), []);
    assert.deepEqual(await list(oli.userId, '?name=filter-me', oli.token), []);
  });

  test("a user without credentials gets an empty list; other users' credentials are not included", async () => {
    await createCred({ name: 'only-anns' });
    assert.deepEqual(await list(oli.userId, '', oli.token), []);
    assert.deepEqual(await list(ray.userId, '', ray.token), []);
  });

  test('an admin may list another user’s credentials', async () => {
    const c = await createCred({ name: 'admin-lists' });
    assert.ok((await list(ann.userId)).some((x) => x.id === c.id));
    assert.deepEqual(
      (await list(ann.userId, '?name=admin-lists')).map((x) => x.id),
      [c.id],
    );
  });

  test('another user, even a reader of the same project, gets 403', async () => {
    for (const u of [ray, oli]) {
      const res = await call('get', creds(ann.userId), u.token).expect(403);
      faultMessage(res.body, 'forbidden', 403);
    }
  });

  test("deleting the credential's project removes it", async () => {
    const side = (
      await call('post', '/projects')
        .send({ project: { name: 'ann-side' } })
        .expect(201)
    ).body.project;
    await call('put', `/projects/${side.id}/users/${ann.userId}/roles/${memberRoleId}`).expect(204);
    const sideToken = await t.login('ann', ann.password, 'ann-side');
    const res = await call('post', creds(ann.userId), sideToken)
      .send({ application_credential: { name: 'on-side-project' } })
      .expect(201);
    const c = res.body.application_credential;
    assert.equal(c.project_id, side.id);
    await call('delete', `/projects/${side.id}`).expect(204);
    await call('get', `${creds(ann.userId)}/${c.id}`).expect(404);
    assert.deepEqual(await list(ann.userId, '?name=on-side-project'), []);
    await authWith(c).expect(401);
  });
});

describe('DELETE /users/{u}/application_credentials/{id}', () => {
  test('the owner deletes: 204; gone from show and list; it no longer authenticates; again is 404', async () => {
    const c = await createCred({ name: 'delete-me' });
    await authWith(c).expect(201);
    const res = await call('delete', `${creds(ann.userId)}/${c.id}`, await annToken()).expect(204);
    assert.equal(res.text, '');
    const gone = await call('get', `${creds(ann.userId)}/${c.id}`).expect(404);
    faultMessage(gone.body, 'itemNotFound', 404);
    assert.deepEqual(await list(ann.userId, '?name=delete-me'), []);
    await authWith(c).expect(401);
    const again = await call('delete', `${creds(ann.userId)}/${c.id}`, await annToken()).expect(404);
    faultMessage(again.body, 'itemNotFound', 404);
  });

  test('tokens issued from a deleted credential stop working', async () => {
    const c = await createCred({ name: 'token-source' });
    const acToken = (await authWith(c).expect(201)).headers['x-subject-token'] as string;
    await call('get', '/auth/projects', acToken).expect(200);
    await call('delete', `${creds(ann.userId)}/${c.id}`, await annToken()).expect(204);
    await call('get', '/auth/projects', acToken).expect(401);
  });

  test('an admin may delete another user’s credential', async () => {
    const c = await createCred({ name: 'admin-deletes' });
    await call('delete', `${creds(ann.userId)}/${c.id}`).expect(204);
    await call('get', `${creds(ann.userId)}/${c.id}`).expect(404);
  });

  test('an unknown id is a 404', async () => {
    const res = await call('delete', `${creds(ann.userId)}/no-such-credential`, await annToken()).expect(404);
    faultMessage(res.body, 'itemNotFound', 404);
  });

  test('another user gets 403, or 404 through their own path; the credential stays usable', async () => {
    const c = await createCred({ name: 'keep-me' });
    for (const u of [ray, oli]) {
      const res = await call('delete', `${creds(ann.userId)}/${c.id}`, u.token).expect(403);
      faultMessage(res.body, 'forbidden', 403);
    }
    const foreign = await call('delete', `${creds(oli.userId)}/${c.id}`, oli.token).expect(404);
    faultMessage(foreign.body, 'itemNotFound', 404);
    await call('get', `${creds(ann.userId)}/${c.id}`).expect(200);
    await authWith(c).expect(201);
  });

  test('a token from a restricted credential may list and show but not delete', async () => {
    const c = await createCred({ name: 'restricted' });
    const acToken = (await authWith(c).expect(201)).headers['x-subject-token'] as string;
    assert.ok((await list(ann.userId, '', acToken)).some((x) => x.id === c.id));
    await call('get', `${creds(ann.userId)}/${c.id}`, acToken).expect(200);
    const res = await call('delete', `${creds(ann.userId)}/${c.id}`, acToken).expect(403);
    faultMessage(res.body, 'forbidden', 403);
    await call('get', `${creds(ann.userId)}/${c.id}`).expect(200);
  });

  test('a token from an unrestricted credential may delete', async () => {
    const keeper = await createCred({ name: 'unrestricted', unrestricted: true });
    const victim = await createCred({ name: 'deleted-by-unrestricted' });
    const acToken = (await authWith(keeper).expect(201)).headers['x-subject-token'] as string;
    await call('delete', `${creds(ann.userId)}/${victim.id}`, acToken).expect(204);
    await call('get', `${creds(ann.userId)}/${victim.id}`).expect(404);
  });
});

describe('without a valid token', () => {
  test('every credential route is a 401 and changes nothing', async () => {
    const c = await createCred({ name: 'token-probe' });
    const routes: [Method, string, object?][] = [
      ['get', creds(ann.userId)],
      ['post', creds(ann.userId), { application_credential: { name: 'anonymous' } }],
      ['get', `${creds(ann.userId)}/${c.id}`],
      ['delete', `${creds(ann.userId)}/${c.id}`],
    ];
    for (const token of [null, 'garbage']) {
      for (const [method, path, body] of routes) {
        const req = call(method, path, token);
        const res = await (body ? req.send(body) : req);
        assert.equal(res.status, 401, `${method} ${path} with ${token}: ${res.status}`);
        faultMessage(res.body, 'unauthorized', 401);
      }
    }
    await call('get', `${creds(ann.userId)}/${c.id}`).expect(200);
    assert.deepEqual(await list(ann.userId, '?name=anonymous'), []);
  });
});
