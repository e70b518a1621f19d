import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import jwt from 'jsonwebtoken';
import {
  ADMIN_PASSWORD,
  faultMessage,
  makeTestApp,
  passwordAuth,
  type TestApp,
  type TestUser,
} from '../../helpers/app.ts';

let t: TestApp;
let alice: TestUser;
before(async () => {
  t = await makeTestApp();
  alice = await t.makeUser({ name: 'alice', project: 'demo', role: 'member' });
});
after(() => t.close());

const TOKENS = '/identity/v3/auth/tokens';

function issue(body: unknown) {
  return t
    .http()
    .post(TOKENS)
    .send(body as object);
}

describe('issuing tokens', () => {
  test('password by user name + domain name, scoped by project name: 201 with a full token body', async () => {
    const res = await issue(passwordAuth('admin', ADMIN_PASSWORD, 'admin')).expect(201);
    const token = res.headers['x-subject-token'] as string;
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const b = res.body.token;
    assert.deepEqual(b.methods, ['password']);
    assert.match(b.expires_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.match(b.issued_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    const lifetime = Date.parse(b.expires_at) - Date.parse(b.issued_at);
    assert.ok(Math.abs(lifetime - 3600_000) < 1000, `default lifetime is 1 h, got ${lifetime} ms`);
    assert.equal(b.audit_ids.length, 1);
    assert.equal(b.user.name, 'admin');
    assert.deepEqual(b.user.domain, { id: 'default', name: 'Default' });
    assert.equal(b.project.id, t.adminProjectId);
    assert.deepEqual(b.project.domain, { id: 'default', name: 'Default' });
    assert.deepEqual(b.roles.map((r: { name: string }) => r.name).sort(), ['admin', 'member', 'reader']);
    const types = b.catalog.map((s: { type: string }) => s.type).sort();
    assert.deepEqual(types, ['identity', 'shared-file-system', 'sharev2']);
    for (const s of b.catalog) {
      const [ep] = s.endpoints;
      assert.equal(ep.interface, 'public');
      assert.equal(ep.region, 'RegionOne');
      assert.equal(ep.region_id, 'RegionOne');
    }
    const share = b.catalog.find((s: { type: string }) => s.type === 'sharev2');
    assert.equal(share.endpoints[0].url, 'http://127.0.0.1:8786/v2');
    const sfs = b.catalog.find((s: { type: string }) => s.type === 'shared-file-system');
    assert.equal(sfs.endpoints[0].url, share.endpoints[0].url);
  });

  test('a member gets member and the implied reader role, not admin', async () => {
    const res = await issue(passwordAuth('alice', alice.password, 'demo')).expect(201);
    assert.deepEqual(res.body.token.roles.map((r: { name: string }) => r.name).sort(), ['member', 'reader']);
  });

  test('user by id, project by id, domain by id', async () => {
    const res = await issue({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { id: alice.userId, password: alice.password } },
        },
        scope: { project: { id: alice.projectId } },
      },
    }).expect(201);
    assert.equal(res.body.token.project.id, alice.projectId);
    const byDomainId = await issue({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'alice', domain: { id: 'default' }, password: alice.password } },
        },
        scope: { project: { name: 'demo', domain: { id: 'default' } } },
      },
    }).expect(201);
    assert.equal(byDomainId.body.token.user.id, alice.userId);
  });

  test('explicitly unscoped: no project, roles or catalog', async () => {
    const body = passwordAuth('alice', alice.password) as { auth: Record<string, unknown> };
    body.auth.scope = 'unscoped';
    const res = await issue(body).expect(201);
    assert.equal(res.body.token.project, undefined);
    assert.equal(res.body.token.roles, undefined);
    assert.equal(res.body.token.catalog, undefined);
  });

  test("without a scope the token is scoped to the user's default project, as Keystone does", async () => {
    const res = await issue(passwordAuth('alice', alice.password)).expect(201);
    assert.equal(res.body.token.project.id, alice.projectId);
  });

  test('?nocatalog leaves the catalog out', async () => {
    const res = await t
      .http()
      .post(`${TOKENS}?nocatalog`)
      .send(passwordAuth('alice', alice.password, 'demo'))
      .expect(201);
    assert.equal(res.body.token.catalog, undefined);
  });

  test('wrong password and unknown user get the same 401 message', async () => {
    const wrong = await issue(passwordAuth('alice', 'not-her-password', 'demo')).expect(401);
    const unknown = await issue(passwordAuth('nobody', 'whatever', 'demo')).expect(401);
    const badDomain = await issue({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'alice', domain: { name: 'Nope' }, password: alice.password } },
        },
      },
    }).expect(401);
    const m1 = faultMessage(wrong.body, 'unauthorized', 401);
    assert.equal(faultMessage(unknown.body, 'unauthorized', 401), m1);
    assert.equal(faultMessage(badDomain.body, 'unauthorized', 401), m1);
    assert.equal(wrong.body.error.message, m1, 'Keystone-style error body for keystoneauth');
    assert.equal(wrong.headers['x-subject-token'], undefined);
  });

  test('no role on the project, unknown project: 401', async () => {
    await t.identity.projects.create(await adminAuth(), { name: 'other' });
    const res = await issue(passwordAuth('alice', alice.password, 'other')).expect(401);
    assert.match(faultMessage(res.body, 'unauthorized', 401), /has no access to project/);
    const missing = await issue(passwordAuth('alice', alice.password, 'no-such-project')).expect(401);
    assert.match(faultMessage(missing.body, 'unauthorized', 401), /has no access to project/);
  });

  test('disabled user and disabled project: 401', async () => {
    const bob = await t.makeUser({ name: 'bob', project: 'bobs' });
    const admin = await adminAuth();
    await t.identity.users.update(admin, bob.userId, { enabled: false });
    const res = await issue(passwordAuth('bob', bob.password, 'bobs')).expect(401);
    assert.match(faultMessage(res.body, 'unauthorized', 401), /disabled/);
    // A wrong password does not reveal that the account exists and is disabled.
    const guess = await issue(passwordAuth('bob', 'guess', 'bobs')).expect(401);
    assert.doesNotMatch(faultMessage(guess.body, 'unauthorized', 401), /disabled/);
    await t.identity.users.update(admin, bob.userId, { enabled: true });
    await t.identity.projects.update(admin, bob.projectId, { enabled: false });
    const p = await issue(passwordAuth('bob', bob.password, 'bobs')).expect(401);
    assert.match(faultMessage(p.body, 'unauthorized', 401), /disabled/);
  });

  test('bad requests are 400 or 401 faults and issue nothing', async () => {
    const cases: [unknown, number, RegExp][] = [
      [{}, 400, /auth/],
      [{ auth: {} }, 400, /identity/],
      [{ auth: { identity: { methods: [] } } }, 400, /methods/],
      [{ auth: { identity: { methods: 'password' } } }, 400, /methods/],
      [{ auth: { identity: { methods: ['password'] } } }, 400, /password/],
      [
        { auth: { identity: { methods: ['password'], password: { user: { name: 'alice' } } } } },
        400,
        /password/,
      ],
      [
        {
          auth: { identity: { methods: ['password'], password: { user: { name: 'alice', password: 'x' } } } },
        },
        400,
        /domain/,
      ],
      [
        {
          auth: {
            identity: { methods: ['password'], password: { user: { name: 'a'.repeat(256), password: 'x' } } },
          },
        },
        400,
        /255/,
      ],
      [
        { auth: { identity: { methods: ['totp'], totp: {} } } },
        401,
        /Unsupported authentication method: totp/,
      ],
      [{ auth: { identity: { methods: ['token'], token: { id: 'x' } } } }, 401, /Unsupported/],
      [
        {
          auth: {
            identity: {
              methods: ['password'],
              password: { user: { id: alice.userId, password: alice.password } },
            },
            scope: { domain: { id: 'default' } },
          },
        },
        400,
        /project-scoped/,
      ],
      [
        {
          auth: {
            identity: {
              methods: ['password'],
              password: { user: { id: alice.userId, password: alice.password } },
            },
            scope: { project: { name: 'demo' } },
          },
        },
        400,
        /domain/,
      ],
    ];
    for (const [body, status, message] of cases) {
      const res = await issue(body);
      assert.equal(res.status, status, `${JSON.stringify(body)} → ${res.status} ${JSON.stringify(res.body)}`);
      const name = status === 400 ? 'badRequest' : 'unauthorized';
      assert.match(faultMessage(res.body, name, status), message, JSON.stringify(body));
      assert.equal(res.headers['x-subject-token'], undefined);
    }
  });
});

describe('validating and revoking', () => {
  test('GET validates a token for its owner and for an admin; HEAD checks it', async () => {
    const token = await t.login('alice', alice.password, 'demo');
    const own = await t
      .http()
      .get(TOKENS)
      .set('X-Auth-Token', token)
      .set('X-Subject-Token', token)
      .expect(200);
    assert.equal(own.body.token.user.id, alice.userId);
    assert.equal(own.headers['x-subject-token'], token);
    const admin = await t.adminToken();
    const byAdmin = await t
      .http()
      .get(TOKENS)
      .set('X-Auth-Token', admin)
      .set('X-Subject-Token', token)
      .expect(200);
    assert.equal(byAdmin.body.token.project.id, alice.projectId);
    await t.http().head(TOKENS).set('X-Auth-Token', admin).set('X-Subject-Token', token).expect(200);
  });

  test("a user cannot validate someone else's token", async () => {
    const admin = await t.adminToken();
    const res = await t
      .http()
      .get(TOKENS)
      .set('X-Auth-Token', alice.token)
      .set('X-Subject-Token', admin)
      .expect(403);
    faultMessage(res.body, 'forbidden', 403);
  });

  test('missing or invalid subject token: 400 / 404', async () => {
    const admin = await t.adminToken();
    await t.http().get(TOKENS).set('X-Auth-Token', admin).expect(400);
    const res = await t
      .http()
      .get(TOKENS)
      .set('X-Auth-Token', admin)
      .set('X-Subject-Token', 'garbage')
      .expect(404);
    faultMessage(res.body, 'itemNotFound', 404);
  });

  test('DELETE revokes; the revocation survives a restart', async () => {
    const token = await t.login('alice', alice.password, 'demo');
    const admin = await t.adminToken();
    await t.http().delete(TOKENS).set('X-Auth-Token', admin).set('X-Subject-Token', token).expect(204);
    await t.http().get(TOKENS).set('X-Auth-Token', admin).set('X-Subject-Token', token).expect(404);
    await t.http().get('/identity/v3/auth/projects').set('X-Auth-Token', token).expect(401);
    await t.restart();
    const admin2 = await t.adminToken();
    await t.http().get(TOKENS).set('X-Auth-Token', admin2).set('X-Subject-Token', token).expect(404);
    await t.http().get('/identity/v3/auth/projects').set('X-Auth-Token', token).expect(401);
  });

  test("changing a user's password revokes the user's tokens", async () => {
    const carol = await t.makeUser({ name: 'carol', project: 'demo' });
    await t.http().get('/identity/v3/auth/projects').set('X-Auth-Token', carol.token).expect(200);
    await t.identity.users.update(await adminAuth(), carol.userId, { password: 'new-password-1' });
    await t.http().get('/identity/v3/auth/projects').set('X-Auth-Token', carol.token).expect(401);
    const fresh = await t.login('carol', 'new-password-1', 'demo');
    await t.http().get('/identity/v3/auth/projects').set('X-Auth-Token', fresh).expect(200);
  });

  test('removing a role assignment revokes tokens on that project', async () => {
    const dave = await t.makeUser({ name: 'dave', project: 'demo' });
    const admin = await t.adminToken();
    const member = (await t.identity.roles.list(await adminAuth(), { name: 'member' }))[0]!;
    await t
      .http()
      .delete(`/identity/v3/projects/${dave.projectId}/users/${dave.userId}/roles/${member.id}`)
      .set('X-Auth-Token', admin)
      .expect(204);
    await t.http().get('/identity/v3/auth/projects').set('X-Auth-Token', dave.token).expect(401);
  });
});

describe('forged, expired and foreign tokens', () => {
  const probe = (token: string) => t.http().get('/identity/v3/auth/projects').set('X-Auth-Token', token);

  test('no token, garbage, and a changed signature or payload are 401', async () => {
    const good = await t.login('alice', alice.password, 'demo');
    await probe(good).expect(200);
    const [h, p, s] = good.split('.') as [string, string, string];
    const flipped = `${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`;
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    claims.rol = [{ id: 'x', name: 'admin' }];
    const forgedPayload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    for (const bad of ['', 'garbage', 'a.b.c', `${h}.${p}.${flipped}`, `${h}.${forgedPayload}.${s}`]) {
      const res = bad === '' ? await t.http().get('/identity/v3/auth/projects') : await probe(bad);
      assert.equal(res.status, 401, `token ${bad.slice(0, 20)}… → ${res.status}`);
      faultMessage(res.body, 'unauthorized', 401);
    }
  });

  test("alg 'none' and HS256 signed with the public key are refused", async () => {
    const good = await t.login('alice', alice.password, 'demo');
    const [h, p] = good.split('.') as [string, string, string];
    const header = JSON.parse(Buffer.from(h, 'base64url').toString());
    const none = `${Buffer.from(JSON.stringify({ ...header, alg: 'none' })).toString('base64url')}.${p}.`;
    await probe(none).expect(401);
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    const hs = jwt.sign(claims, 'guessable-secret', { algorithm: 'HS256', keyid: header.kid });
    await probe(hs).expect(401);
  });

  test('a token signed by a key the server does not hold is refused', async () => {
    const good = await t.login('alice', alice.password, 'demo');
    const [h, p] = good.split('.') as [string, string, string];
    const header = JSON.parse(Buffer.from(h, 'base64url').toString());
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await probe(jwt.sign(claims, privateKey, { algorithm: 'ES256', keyid: header.kid })).expect(401);
    await probe(jwt.sign(claims, privateKey, { algorithm: 'ES256', keyid: 'unknown-key' })).expect(401);
  });

  test('an expired token is refused', async () => {
    const short = await makeTestApp({ ABACA_TOKEN_LIFETIME: '60' });
    try {
      const token = await short.adminToken();
      await short.http().get('/identity/v3/auth/projects').set('X-Auth-Token', token).expect(200);
      const info = await short.identity.keys.verify(token);
      // Verify as if 61 s had passed: the same check the middleware runs.
      await assert.rejects(short.identity.keys.verify(token, Date.now() + 61_000), /expired/);
      assert.ok(Number(info.exp) - Number(info.iat) <= 60.01);
      const forged = { ...(await short.identity.keys.verify(token)) };
      forged.exp = Date.now() / 1000 - 1;
      await short
        .http()
        .get('/identity/v3/auth/projects')
        .set('X-Auth-Token', short.identity.keys.sign(forged))
        .expect(401);
    } finally {
      await short.close();
    }
  });
});

describe('signing key rotation', () => {
  test('after rotation new tokens use the new key and old tokens keep working until purged', async () => {
    const before = await t.login('alice', alice.password, 'demo');
    const oldKid = t.identity.keys.currentKeyId;
    const { newKeyId } = await t.identity.keys.rotate();
    assert.notEqual(newKeyId, oldKid);
    const after = await t.login('alice', alice.password, 'demo');
    const kid = (tok: string) => JSON.parse(Buffer.from(tok.split('.')[0]!, 'base64url').toString()).kid;
    assert.equal(kid(after), newKeyId);
    assert.equal(kid(before), oldKid);
    await t.http().get('/identity/v3/auth/projects').set('X-Auth-Token', before).expect(200);
    await t.http().get('/identity/v3/auth/projects').set('X-Auth-Token', after).expect(200);
    // A rotation a lifetime later purges the old key: its tokens (expired by then anyway) are refused.
    const { purged } = await t.identity.keys.rotate(new Date(Date.now() + 2 * 3600_000));
    assert.ok(purged >= 1);
    await t.http().get('/identity/v3/auth/projects').set('X-Auth-Token', before).expect(401);
  });

  test('a token signed by a retired key is refused once the key is past its grace period', async () => {
    const token = await t.login('alice', alice.password, 'demo');
    await t.identity.keys.rotate();
    await t.http().get('/identity/v3/auth/projects').set('X-Auth-Token', token).expect(200);
    await assert.rejects(t.identity.keys.verify(token, Date.now() + 3601_000), /retired|expired/);
  });
});

describe('application credentials', () => {
  test('create returns the secret once; the application_credential method issues a token', async () => {
    const token = await t.login('alice', alice.password, 'demo');
    const res = await t
      .http()
      .post(`/identity/v3/users/${alice.userId}/application_credentials`)
      .set('X-Auth-Token', token)
      .send({ application_credential: { name: 'csi', description: 'for the CSI plugin' } })
      .expect(201);
    const cred = res.body.application_credential;
    assert.ok(cred.secret.length >= 32);
    assert.deepEqual(cred.roles.map((r: { name: string }) => r.name).sort(), ['member', 'reader']);
    assert.equal(cred.project_id, alice.projectId);
    const shown = await t
      .http()
      .get(`/identity/v3/users/${alice.userId}/application_credentials/${cred.id}`)
      .set('X-Auth-Token', token)
      .expect(200);
    assert.equal(shown.body.application_credential.secret, undefined, 'the secret is shown only at creation');

    const auth = await issue({
      auth: {
        identity: {
          methods: ['application_credential'],
          application_credential: { id: cred.id, secret: cred.secret },
        },
      },
    }).expect(201);
    const b = auth.body.token;
    assert.deepEqual(b.methods, ['application_credential']);
    assert.equal(b.project.id, alice.projectId);
    assert.equal(b.application_credential.id, cred.id);
    assert.equal(b.application_credential.restricted, true);

    const byName = await issue({
      auth: {
        identity: {
          methods: ['application_credential'],
          application_credential: {
            name: 'csi',
            secret: cred.secret,
            user: { name: 'alice', domain: { name: 'Default' } },
          },
        },
      },
    }).expect(201);
    assert.equal(byName.body.token.user.id, alice.userId);

    const wrong = await issue({
      auth: {
        identity: {
          methods: ['application_credential'],
          application_credential: { id: cred.id, secret: 'nope' },
        },
      },
    }).expect(401);
    faultMessage(wrong.body, 'unauthorized', 401);
  });

  test('a restricted credential cannot make another; roles the user lacks are refused', async () => {
    const token = await t.login('alice', alice.password, 'demo');
    const res = await t
      .http()
      .post(`/identity/v3/users/${alice.userId}/application_credentials`)
      .set('X-Auth-Token', token)
      .send({ application_credential: { name: 'restricted', roles: [{ name: 'reader' }] } })
      .expect(201);
    const { id, secret } = res.body.application_credential;
    const acToken = (
      await issue({
        auth: { identity: { methods: ['application_credential'], application_credential: { id, secret } } },
      }).expect(201)
    ).headers['x-subject-token'] as string;
    const nested = await t
      .http()
      .post(`/identity/v3/users/${alice.userId}/application_credentials`)
      .set('X-Auth-Token', acToken)
      .send({ application_credential: { name: 'nested' } })
      .expect(403);
    faultMessage(nested.body, 'forbidden', 403);
    const tooMuch = await t
      .http()
      .post(`/identity/v3/users/${alice.userId}/application_credentials`)
      .set('X-Auth-Token', token)
      .send({ application_credential: { name: 'admin-please', roles: [{ name: 'admin' }] } })
      .expect(403);
    assert.match(faultMessage(tooMuch.body, 'forbidden', 403), /admin/);
    const list = await t
      .http()
      .get(`/identity/v3/users/${alice.userId}/application_credentials?name=admin-please`)
      .set('X-Auth-Token', token)
      .expect(200);
    assert.deepEqual(list.body.application_credentials, [], 'nothing was created');
  });

  test('an expired application credential cannot authenticate; deleting one revokes its use', async () => {
    const token = await t.login('alice', alice.password, 'demo');
    const past = await t
      .http()
      .post(`/identity/v3/users/${alice.userId}/application_credentials`)
      .set('X-Auth-Token', token)
      .send({ application_credential: { name: 'old', expires_at: '2020-01-01T00:00:00Z' } })
      .expect(400);
    assert.match(faultMessage(past.body, 'badRequest', 400), /future/);
    const res = await t
      .http()
      .post(`/identity/v3/users/${alice.userId}/application_credentials`)
      .set('X-Auth-Token', token)
      .send({ application_credential: { name: 'temp' } })
      .expect(201);
    const { id, secret } = res.body.application_credential;
    await t
      .http()
      .delete(`/identity/v3/users/${alice.userId}/application_credentials/${id}`)
      .set('X-Auth-Token', token)
      .expect(204);
    await issue({
      auth: { identity: { methods: ['application_credential'], application_credential: { id, secret } } },
    }).expect(401);
  });
});

async function adminAuth() {
  const { staticAdminAuth } = await import('../../../api/server.ts');
  return staticAdminAuth(t.adminUserId, t.adminProjectId);
}

describe('the static admin token (Keystone admin_token)', () => {
  test('acts as admin on the admin project', async () => {
    const { STATIC_ADMIN_TOKEN } = await import('../../helpers/app.ts');
    const res = await t.http().get('/identity/v3/users').set('X-Auth-Token', STATIC_ADMIN_TOKEN).expect(200);
    assert.ok(res.body.users.some((u: { name: string }) => u.name === 'admin'));
    const token = await t.login('alice', alice.password, 'demo');
    const v = await t
      .http()
      .get(TOKENS)
      .set('X-Auth-Token', STATIC_ADMIN_TOKEN)
      .set('X-Subject-Token', token)
      .expect(200);
    assert.equal(v.body.token.user.id, alice.userId);
  });

  test('a near miss of the static token is a 401', async () => {
    const { STATIC_ADMIN_TOKEN } = await import('../../helpers/app.ts');
    await t.http().get('/identity/v3/users').set('X-Auth-Token', `${STATIC_ADMIN_TOKEN}x`).expect(401);
    await t.http().get('/identity/v3/users').set('X-Auth-Token', STATIC_ADMIN_TOKEN.slice(0, -1)).expect(401);
  });
});
