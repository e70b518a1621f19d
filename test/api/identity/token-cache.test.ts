import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../../services/config.ts';
import { createIdentity } from '../../../services/identity/index.ts';
import { KeyRing } from '../../../services/identity/key-ring.ts';
import { makeTestApp, type TestApp } from '../../helpers/app.ts';

/**
 * The verified-token cache (services/identity/key-ring.ts) skips only the signature check of a
 * token string seen before. Every case here uses the token first, so it is remembered, and then
 * shows the change still refuses it as promptly as for a token never seen.
 */
let t: TestApp;
let admin: string;
before(async () => {
  t = await makeTestApp();
  admin = await t.adminToken();
});
after(() => t.close());

const probe = (token: string) => t.http().get('/identity/v3/auth/projects').set('X-Auth-Token', token);
const asAdmin = (req: ReturnType<ReturnType<TestApp['http']>['get']>) => req.set('X-Auth-Token', admin);

async function used(name: string) {
  const user = await t.makeUser({ name, project: `${name}-project` });
  await probe(user.token).expect(200);
  await probe(user.token).expect(200);
  return user;
}

describe('a remembered token is refused at once when', () => {
  test('it is revoked (DELETE /auth/tokens)', async () => {
    const u = await used('cache-revoked');
    await t
      .http()
      .delete('/identity/v3/auth/tokens')
      .set('X-Auth-Token', admin)
      .set('X-Subject-Token', u.token)
      .expect(204);
    await probe(u.token).expect(401);
  });

  test('its role assignment is removed', async () => {
    const u = await used('cache-role');
    const roles = await asAdmin(t.http().get('/identity/v3/roles?name=member')).expect(200);
    await asAdmin(
      t
        .http()
        .delete(`/identity/v3/projects/${u.projectId}/users/${u.userId}/roles/${roles.body.roles[0].id}`),
    ).expect(204);
    await probe(u.token).expect(401);
  });

  test('its user is disabled, or deleted', async () => {
    const disabled = await used('cache-disabled');
    await asAdmin(t.http().patch(`/identity/v3/users/${disabled.userId}`))
      .send({ user: { enabled: false } })
      .expect(200);
    await probe(disabled.token).expect(401);
    const deleted = await used('cache-deleted');
    await asAdmin(t.http().delete(`/identity/v3/users/${deleted.userId}`)).expect(204);
    await probe(deleted.token).expect(401);
  });

  test('its project is disabled, or deleted', async () => {
    const disabled = await used('cache-project-disabled');
    await asAdmin(t.http().patch(`/identity/v3/projects/${disabled.projectId}`))
      .send({ project: { enabled: false } })
      .expect(200);
    await probe(disabled.token).expect(401);
    const deleted = await used('cache-project-deleted');
    // A project holding role assignments can be deleted; its tokens die with it.
    await asAdmin(t.http().delete(`/identity/v3/projects/${deleted.projectId}`)).expect(204);
    await probe(deleted.token).expect(401);
  });

  test('it expires', async () => {
    const u = await used('cache-expiry');
    const claims = await t.identity.keys.verify(u.token);
    const expiresAt = Number(claims.exp) * 1000;
    await assert.rejects(t.identity.keys.verify(u.token, expiresAt), /expired/);
    // Forgotten once seen expired; a later check still refuses it.
    await assert.rejects(t.identity.keys.verify(u.token, expiresAt + 1), /expired/);
    await assert.doesNotReject(t.identity.keys.verify(u.token, expiresAt - 1000));
  });

  test('a changed signature or payload of it is presented (a different string: verified in full)', async () => {
    const u = await used('cache-forged');
    const [h, p, s] = u.token.split('.') as [string, string, string];
    const flipped = `${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`;
    await probe(`${h}.${p}.${flipped}`).expect(401);
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    claims.rol = [{ id: 'x', name: 'admin' }];
    await probe(`${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`).expect(401);
    await probe(u.token).expect(200);
  });
});

test('another server sharing the database refuses a revoked token it remembers within the revocation interval', async () => {
  const other = createIdentity(t.db, loadConfig({ ABACA_REVOCATION_CACHE_SECONDS: '1' }));
  await other.init();
  const u = await used('cache-other-server');
  await other.tokens.authenticate(u.token);
  await other.tokens.authenticate(u.token);
  const revokedAt = Date.now();
  await t
    .http()
    .delete('/identity/v3/auth/tokens')
    .set('X-Auth-Token', admin)
    .set('X-Subject-Token', u.token)
    .expect(204);
  for (;;) {
    const refused = await other.tokens.authenticate(u.token).then(
      () => false,
      () => true,
    );
    if (refused) break;
    assert.ok(Date.now() - revokedAt < 1500, 'still accepted after the 1 s revocation interval');
    await new Promise((r) => setTimeout(r, 50));
  }
});

test('the cache is bounded: the least recently used token goes first', async () => {
  const ring = new KeyRing(t.db, 3600, 2);
  await ring.init();
  const now = Date.now() / 1000;
  const tokens = ['a', 'b', 'c'].map((sub) => ring.sign({ sub, iat: now, exp: now + 60 }));
  for (const token of tokens) await ring.verify(token);
  assert.equal(ring.verifiedTokens, 2);
  // Every token still verifies (a forgotten one is verified again in full).
  for (const token of tokens) assert.equal(typeof (await ring.verify(token)).sub, 'string');
  assert.equal(ring.verifiedTokens, 2);
});

test('the remembered claims are shared and frozen: no caller can change them for the next', async () => {
  const u = await used('cache-frozen');
  const first = await t.identity.keys.verify(u.token);
  const again = await t.identity.keys.verify(u.token);
  assert.equal(again, first);
  assert.ok(Object.isFrozen(again));
  assert.throws(() => {
    (again as Record<string, unknown>).exp = 0;
  }, TypeError);
  assert.throws(() => {
    ((again.usr as Record<string, unknown>) ?? {}).n = 'someone-else';
  }, TypeError);
  await probe(u.token).expect(200);
});
