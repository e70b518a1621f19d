/**
 * Identity on the native protocol: a share server given the identity API (--auth-url) admits a
 * mount only with a token of the share's project (or an admin's), asks again as the answer ages
 * (a revoked token is refused within the recheck time), and its admin operations need the admin
 * token always. The identity service is the real API, in this process, on loopback.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { ReplicatedClient } from '../../../backends/replicated/client/client.ts';
import { spawnDaemon } from '../../../backends/replicated/processes.ts';
import { makeTestApp, type TestApp, type TestUser } from '../../helpers/app.ts';
import { Cluster } from './helpers.ts';

const GiB = 1 << 30;
const RECHECK_MS = 300;
let t: TestApp;
let api: http.Server;
let cluster: Cluster;
let alice: TestUser;
let bob: TestUser;
const opened: ReplicatedClient[] = [];

before(async () => {
  t = await makeTestApp();
  api = http.createServer((req, res) => t.app.callback()(req, res));
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  const authUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}/identity/v3`;
  alice = await t.makeUser({ name: 'alice', project: 'alpha' });
  bob = await t.makeUser({ name: 'bob', project: 'beta' });
  cluster = await Cluster.start({
    serverArgs: ['--auth-url', authUrl, '--token-recheck-ms', String(RECHECK_MS)],
  });
  const admin = await cluster.client();
  await admin.createShare('s1', GiB, {
    access: [{ id: 'r1', to: '127.0.0.1', level: 'rw' }],
    project: alice.projectId,
  });
});

after(async () => {
  for (const c of opened) c.close();
  await cluster?.close();
  await new Promise((r) => api?.close(r));
  await t?.close();
});

/** A client mount with an identity token (not the admin token). */
async function mount(token: string | undefined, share = 's1'): Promise<ReplicatedClient> {
  const c = await ReplicatedClient.connect({
    host: '127.0.0.1',
    port: cluster.server.port,
    share,
    timeoutMs: 10_000,
    ...(token === undefined ? {} : { token }),
  });
  opened.push(c);
  return c;
}

const refused = (code: string, re?: RegExp) => (err: unknown) => {
  assert.equal((err as { code?: string }).code, code, String(err));
  if (re) assert.match((err as Error).message, re);
  return true;
};

test("a token of the share's project mounts and writes; an admin's token mounts too", async () => {
  const c = await mount(alice.token);
  await c.writeFile('a.txt', Buffer.from('alpha'));
  assert.equal((await c.readFile('a.txt')).toString(), 'alpha');
  const admin = await mount(await t.adminToken());
  assert.equal((await admin.readFile('a.txt')).toString(), 'alpha');
});

test("no token, a malformed token, and another project's token are refused", async () => {
  await assert.rejects(mount(undefined), refused('EACCES', /needs an identity token/));
  await assert.rejects(mount('not-a-token'), refused('EACCES', /invalid, expired or revoked/));
  await assert.rejects(mount(bob.token), refused('EACCES', /not scoped to the project/));
});

test('a revoked token is refused on the next operation after the recheck time', async () => {
  const token = await t.login('alice', alice.password, 'alpha');
  const c = await mount(token);
  await c.writeFile('before-revoke', Buffer.from('x'));
  const res = await t
    .http()
    .delete('/identity/v3/auth/tokens')
    .set('X-Auth-Token', token)
    .set('X-Subject-Token', token);
  assert.equal(res.status, 204);
  await new Promise((r) => setTimeout(r, RECHECK_MS + 50));
  await assert.rejects(c.writeFile('after-revoke', Buffer.from('x')), refused('EACCES', /revoked/));
  await assert.rejects(c.stat('before-revoke'), refused('EACCES'));
  await assert.rejects(mount(token), refused('EACCES'));
  // The data written before the revocation is intact (seen through an admin mount).
  const admin = await cluster.client('s1');
  assert.equal((await admin.readFile('before-revoke')).toString(), 'x');
  await assert.rejects(admin.stat('after-revoke'), refused('ENOENT'));
});

test('the address rules still apply to a valid token; a rule change reaches open mounts', async () => {
  const admin = await cluster.client();
  await admin.createShare('s2', GiB, { access: [], project: alice.projectId });
  await assert.rejects(mount(alice.token, 's2'), refused('EACCES', /no access rule/));
  await admin.setAccess('s2', [{ id: 'r2', to: '127.0.0.1', level: 'ro' }]);
  const c = await mount(alice.token, 's2');
  await assert.rejects(c.writeFile('x', Buffer.from('x')), refused('EROFS'));
  // An admin-token mount is the operator's: rule changes do not take it away.
  const operator = await cluster.client('s2');
  await admin.setAccess('s2', []);
  await assert.rejects(c.readdir(''), refused('EACCES', /revoked/));
  await operator.writeFile('by-operator', Buffer.from('ok'));
  assert.equal((await operator.readFile('by-operator')).toString(), 'ok');
});

test('admin operations need the admin token: none, a wrong one, or a project token are refused', async () => {
  for (const adminToken of [undefined, 'wrong-token-0123456789', alice.token]) {
    const c = await ReplicatedClient.connect({
      host: '127.0.0.1',
      port: cluster.server.port,
      timeoutMs: 10_000,
      ...(adminToken ? { adminToken } : {}),
    });
    opened.push(c);
    await assert.rejects(c.createShare('s3', GiB), refused('EACCES', /admin token/));
    await assert.rejects(c.setAccess('s1', []), refused('EACCES', /admin token/));
    await assert.rejects(c.deleteShare('s1'), refused('EACCES', /admin token/));
  }
  // s1 is untouched.
  const c = await mount(alice.token);
  assert.equal((await c.readFile('a.txt')).toString(), 'alpha');
});

test('a share server does not start without an admin token', async () => {
  for (const token of ['', 'short']) {
    await assert.rejects(
      spawnDaemon('abaca-share-server.js', ['--bricks', cluster.brickAddrs.join(',')], undefined, {
        ABACA_ADMIN_TOKEN: token,
      }),
      /ABACA_ADMIN_TOKEN/,
    );
  }
});
