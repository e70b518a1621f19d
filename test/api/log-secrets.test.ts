// Logs without secrets (issue 21): every error path this file can reach with a password, a token,
// an application-credential secret or a hash, at the most verbose level, and then a grep of every
// line written for each secret used.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { staticAdminAuth } from '../../api/server.ts';
import { createLogger } from '../../services/logger.ts';
import { makeTestApp, passwordAuth, type TestApp } from '../helpers/app.ts';

const SECRETS = {
  password: 'Log-Test-Password-7f3a91',
  wrongPassword: 'Log-Test-Wrong-Password-c0ffee',
  newPassword: 'Log-Test-New-Password-5e5e5e',
  nulPassword: 'Log-Test-Nul-User-Password-abc123',
  directPassword: 'Log-Test-Direct-Password-d1d1d1',
  appSecret: 'Log-Test-App-Credential-Secret-9b9b9b',
  wrongAppSecret: 'Log-Test-Wrong-App-Secret-4c4c4c',
  bogusToken: 'Log-Test-Bogus-Token-0123456789abcdef',
};

let t: TestApp;
const extraLines: string[] = [];
before(async () => {
  t = await makeTestApp({ ABACA_LOG_LEVEL: 'trace', ABACA_LOGIN_MAX_FAILURES: '3' });
});
after(() => t.close());

test('no password, token, secret or hash reaches a log line on any error path', async () => {
  const admin = await t.adminToken();
  const h = () => t.http();
  const asAdmin = { 'X-Auth-Token': admin };
  const tokens: string[] = [admin];

  const user = await h()
    .post('/identity/v3/users')
    .set(asAdmin)
    .send({ user: { name: 'logger', password: SECRETS.password } })
    .expect(201);
  const userId = user.body.user.id as string;
  const project = await h()
    .post('/identity/v3/projects')
    .set(asAdmin)
    .send({ project: { name: 'logs' } })
    .expect(201);
  const roles = await h().get('/identity/v3/roles?name=member').set(asAdmin).expect(200);
  await h()
    .put(`/identity/v3/projects/${project.body.project.id}/users/${userId}/roles/${roles.body.roles[0].id}`)
    .set(asAdmin)
    .expect(204);

  // Creates that fail: U+0000 in the name (the 500 that logged the scrypt hash), a duplicate name.
  const nul = await h()
    .post('/identity/v3/users')
    .set(asAdmin)
    .send({ user: { name: 'a\u0000b', password: SECRETS.nulPassword } });
  assert.equal(nul.status, 400);
  const dup = await h()
    .post('/identity/v3/users')
    .set(asAdmin)
    .send({ user: { name: 'logger', password: SECRETS.nulPassword } });
  assert.equal(dup.status, 409);

  // Logins: right, wrong, unknown user, U+0000, then wrong until the account is throttled.
  const ok = await h()
    .post('/identity/v3/auth/tokens')
    .send(passwordAuth('logger', SECRETS.password, 'logs'));
  assert.equal(ok.status, 201);
  const userToken = ok.headers['x-subject-token'] as string;
  tokens.push(userToken);
  const statuses: number[] = [];
  for (const body of [
    passwordAuth('nobody', SECRETS.wrongPassword, 'logs'),
    passwordAuth('logger\u0000', SECRETS.wrongPassword, 'logs'),
    passwordAuth('logger', SECRETS.wrongPassword, 'logs'),
    passwordAuth('logger', SECRETS.wrongPassword, 'logs'),
    passwordAuth('logger', SECRETS.wrongPassword, 'logs'),
    passwordAuth('logger', SECRETS.password, 'logs'),
  ])
    statuses.push((await h().post('/identity/v3/auth/tokens').send(body)).status);
  assert.deepEqual(statuses, [401, 400, 401, 401, 401, 429], 'each login path was taken');

  // Tokens: validate a bogus one, use one as the auth token, revoke one and use it again.
  assert.equal(
    (await h().get('/identity/v3/auth/tokens').set(asAdmin).set('X-Subject-Token', SECRETS.bogusToken))
      .status,
    404,
  );
  assert.equal((await h().get('/v2/shares').set('X-Auth-Token', SECRETS.bogusToken)).status, 401);
  await h().delete('/identity/v3/auth/tokens').set(asAdmin).set('X-Subject-Token', userToken).expect(204);
  assert.equal((await h().get('/v2/shares').set('X-Auth-Token', userToken)).status, 401);

  // Password change with the wrong original, then the right one.
  const userAgain = await t.login('logger', SECRETS.password, 'logs').catch(() => undefined);
  const wrongChange = await h()
    .post(`/identity/v3/users/${userId}/password`)
    .set(asAdmin)
    .send({ user: { original_password: SECRETS.wrongPassword, password: SECRETS.newPassword } });
  assert.ok(wrongChange.status >= 400 && wrongChange.status < 500, String(wrongChange.status));
  if (userAgain) tokens.push(userAgain);

  // Application credentials: create with a secret, a duplicate, a U+0000 name, logins right and wrong.
  const cred = await h()
    .post(`/identity/v3/users/${t.adminUserId}/application_credentials`)
    .set(asAdmin)
    .send({ application_credential: { name: 'csi', secret: SECRETS.appSecret } })
    .expect(201);
  for (const name of ['csi', 'c\u0000si']) {
    const res = await h()
      .post(`/identity/v3/users/${t.adminUserId}/application_credentials`)
      .set(asAdmin)
      .send({ application_credential: { name, secret: SECRETS.appSecret } });
    assert.ok([400, 409].includes(res.status), String(res.status));
  }
  const appAuth = (secret: string) => ({
    auth: {
      identity: {
        methods: ['application_credential'],
        application_credential: { id: cred.body.application_credential.id, secret },
      },
    },
  });
  const appOk = await h().post('/identity/v3/auth/tokens').send(appAuth(SECRETS.appSecret));
  assert.equal(appOk.status, 201);
  tokens.push(appOk.headers['x-subject-token'] as string);
  assert.equal(
    (await h().post('/identity/v3/auth/tokens').send(appAuth(SECRETS.wrongAppSecret))).status,
    401,
  );

  // A database error that carries a scrypt hash in its parameters, as a repository raises it when
  // a service is called without the edge's input rule, logged through the shared logger.
  const sink = new Writable({
    write(chunk, _enc, cb) {
      extraLines.push(String(chunk));
      cb();
    },
  });
  const log = createLogger('trace', sink);
  const err = await t.identity.users
    .create(staticAdminAuth(t.adminUserId, t.adminProjectId), {
      name: 'x\u0000y',
      password: SECRETS.directPassword,
    })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  assert.ok(err, 'the direct insert failed in the database');
  // PGlite's driver attaches the statement's parameters (the scrypt hash among them) to the error;
  // node-postgres does not, but the line must be clean either way.
  if (t.dbKind === 'pglite')
    assert.ok(
      JSON.stringify((err as { params?: unknown }).params ?? '').includes('scrypt$'),
      'the driver error holds the hash',
    );
  log.error({ err }, 'unhandled error');
  log.info({ user: { name: 'z', password: SECRETS.directPassword }, token: admin }, 'an object with secrets');
  assert.match(extraLines.join(''), /22021/, 'the error line kept its code');

  const written = [...t.logs.map((l) => JSON.stringify(l)), ...extraLines].join('\n');
  assert.ok(t.logs.length > 20, 'the requests were logged');
  for (const [name, secret] of Object.entries(SECRETS))
    assert.ok(!written.includes(secret), `the ${name} appears in the log`);
  for (const token of tokens) assert.ok(!written.includes(token), 'a token appears in the log');
  assert.ok(!/scrypt\$/.test(written), 'a scrypt hash appears in the log');
  assert.ok(!written.includes('"params"'), 'SQL parameters appear in the log');
});
