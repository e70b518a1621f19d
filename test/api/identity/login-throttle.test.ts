import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { faultMessage, makeTestApp, passwordAuth, type TestApp } from '../../helpers/app.ts';

const TOKENS = '/identity/v3/auth/tokens';
// 5 failures per account, then a lock of 30 s: long enough that no test sees it run out on a
// loaded machine (a scrypt check can take most of a second there). The test that waits a lock out
// runs its own server with 1 s doubling (1, 2, 4 …). Every request comes from 127.0.0.1, so the
// per-address limit is off here and tested on its own server below.
const ENV = {
  ABACA_LOGIN_MAX_FAILURES: '5',
  ABACA_LOGIN_MAX_FAILURES_PER_ADDRESS: '0',
  ABACA_LOGIN_LOCKOUT_SECONDS: '30',
  ABACA_LOGIN_LOCKOUT_MAX_SECONDS: '600',
};

let t: TestApp;
before(async () => {
  t = await makeTestApp(ENV);
});
after(() => t.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const login = (user: string, password: string) => t.http().post(TOKENS).send(passwordAuth(user, password));

/** The statuses of `n` logins in a row. */
async function statuses(n: number, user: string, password: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await login(user, password)).status);
  return out;
}

/** Waits out the lock the last answer announced. */
async function waitOut(res: { headers: Record<string, string> }): Promise<void> {
  await sleep(Number(res.headers['retry-after']) * 1000 + 100);
}

describe('failed logins are throttled per account', () => {
  test('40 wrong passwords: 401 five times, then 429 with Retry-After — and the right one is refused too', async () => {
    const u = await t.makeUser({ name: 'guessed', project: 'p-guessed' });
    const got = await statuses(40, 'guessed', 'wrong-password');
    assert.deepEqual(got.slice(0, 5), [401, 401, 401, 401, 401]);
    assert.ok(
      got.slice(5).every((s) => s === 429),
      `after five failures only 429: ${got.join(' ')}`,
    );
    const right = await login('guessed', u.password).expect(429);
    assert.ok(Number(right.headers['retry-after']) >= 1, 'Retry-After in whole seconds');
    assert.match(
      faultMessage(right.body, 'overLimit', 429),
      /too many failed logins.*try again in \d+ seconds/i,
    );
    assert.deepEqual(right.body.error.code, 429);
    assert.equal(right.body.error.title, 'Too Many Requests');
    assert.equal(right.headers['x-subject-token'], undefined);
  });

  test('the window grows with each failure after it; a success resets the count', async () => {
    const app = await makeTestApp({ ...ENV, ABACA_LOGIN_LOCKOUT_SECONDS: '1' });
    try {
      const u = await app.makeUser({ name: 'slow', project: 'p-slow' });
      const login = (user: string, password: string) =>
        app.http().post(TOKENS).send(passwordAuth(user, password));
      for (let i = 0; i < 5; i++) await login('slow', 'nope').expect(401);
      const first = await login('slow', 'nope').expect(429);
      await waitOut(first);
      await login('slow', 'nope').expect(401); // the sixth failure: a longer window
      const second = await login('slow', 'nope').expect(429);
      assert.ok(
        Number(second.headers['retry-after']) > Number(first.headers['retry-after']),
        `window grew: ${first.headers['retry-after']} s then ${second.headers['retry-after']} s`,
      );
      await waitOut(second);
      await login('slow', u.password).expect(201);
      for (let i = 0; i < 4; i++) await login('slow', 'nope').expect(401); // counting starts again
      await login('slow', u.password).expect(201);
    } finally {
      await app.close();
    }
  });

  test('an unknown user name answers exactly as a known one (no enumeration)', async () => {
    await t.makeUser({ name: 'guessed-too', project: 'p-guessed-too' });
    const known = await statuses(7, 'guessed-too', 'x');
    const unknown = await statuses(7, 'nobody-by-this-name', 'x');
    assert.deepEqual(unknown, [401, 401, 401, 401, 401, 429, 429]);
    assert.deepEqual(known, unknown);
    const a = await login('nobody-by-this-name', 'x').expect(429);
    const b = await login('guessed-too', 'x').expect(429);
    // The same words; only the seconds left may differ (the two locks began apart).
    const words = (m: string) => m.replace(/\d+ seconds/, 'N seconds');
    assert.equal(
      words(faultMessage(a.body, 'overLimit', 429)),
      words(faultMessage(b.body, 'overLimit', 429)),
    );
  });

  test('an admin unlocks a user by updating it', async () => {
    const u = await t.makeUser({ name: 'unlocked', project: 'p-unlocked' });
    await statuses(6, 'unlocked', 'wrong');
    await login('unlocked', u.password).expect(429);
    await t
      .http()
      .patch(`/identity/v3/users/${u.userId}`)
      .set('X-Auth-Token', await t.adminToken())
      .send({ user: { enabled: true } })
      .expect(200);
    await login('unlocked', u.password).expect(201);
  });

  test('the lock survives a restart of the server (it is in the database)', async () => {
    const u = await t.makeUser({ name: 'restarted', project: 'p-restarted' });
    await statuses(5, 'restarted', 'wrong');
    await t.restart();
    await login('restarted', u.password).expect(429);
  });

  test('application credentials are throttled the same way', async () => {
    const u = await t.makeUser({ name: 'with-cred', project: 'p-with-cred' });
    const cred = await t
      .http()
      .post(`/identity/v3/users/${u.userId}/application_credentials`)
      .set('X-Auth-Token', u.token)
      .send({ application_credential: { name: 'ci' } })
      .expect(201);
    const id = cred.body.application_credential.id as string;
    const secret = cred.body.application_credential.secret as string;
    const byCred = (s: string) =>
      t
        .http()
        .post(TOKENS)
        .send({
          auth: {
            identity: { methods: ['application_credential'], application_credential: { id, secret: s } },
          },
        });
    const got: number[] = [];
    for (let i = 0; i < 6; i++) got.push((await byCred('not-the-secret')).status);
    assert.deepEqual(got, [401, 401, 401, 401, 401, 429]);
    await byCred(secret).expect(429);
  });
});

describe('failed logins are throttled per source address', () => {
  test('many users guessed from one address: the address is locked, for every user on it', async () => {
    const app = await makeTestApp({ ...ENV, ABACA_LOGIN_MAX_FAILURES_PER_ADDRESS: '12' });
    try {
      const real = await app.makeUser({ name: 'bystander', project: 'p-bystander' });
      const from = (user: string, pw: string) => app.http().post(TOKENS).send(passwordAuth(user, pw));
      // One password tried on many names (each name fails once: no account limit is reached).
      const got: number[] = [];
      for (let i = 0; i < 14; i++) got.push((await from(`sprayed-${i}`, 'Winter2026!')).status);
      assert.deepEqual(got.slice(0, 12), new Array(12).fill(401));
      assert.deepEqual(got.slice(12), [429, 429]);
      await from('bystander', real.password).expect(429);
    } finally {
      await app.close();
    }
  });
});
