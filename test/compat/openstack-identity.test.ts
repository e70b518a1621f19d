import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  type CompatServer,
  OPENSTACK,
  openstackClientSkip,
  runClient,
  runOk,
  startCompatServer,
} from '../helpers/openstack.ts';
import type { ServerProcess } from '../helpers/process.ts';

// The real `openstack` client (Debian python3-openstackclient 6.0) against a real server process:
// the onboarding an operator does, and the application credential CSI will use.
const skip = openstackClientSkip();
const STATIC_TOKEN = 'compat-static-admin-token-0123456789';
let compat: CompatServer;
let server: ServerProcess;
let admin: Record<string, string>;

before(async () => {
  if (skip) return;
  compat = await startCompatServer('abaca-compat-identity', { ABACA_ADMIN_TOKEN: STATIC_TOKEN });
  server = compat.server;
  admin = compat.adminEnv;
});
after(() => compat?.stop());

const osc = (env: Record<string, string>, ...args: string[]) => runOk(OPENSTACK, args, env);

test('onboard a tenant and authenticate as it, with an application credential too', {
  skip,
  timeout: 240_000,
}, async () => {
  const adminToken = await osc(admin, 'token', 'issue', '-f', 'json');
  assert.match(adminToken.id, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  assert.match(adminToken.project_id, /^[0-9a-f]{32}$/);

  const demo = await osc(admin, 'project', 'create', 'demo', '--description', 'Demo tenant', '-f', 'json');
  assert.equal(demo.name, 'demo');
  assert.equal(demo.description, 'Demo tenant');
  const alice = await osc(
    admin,
    'user',
    'create',
    '--project',
    'demo',
    '--password',
    'alice-password',
    '--email',
    'alice@example.test',
    'alice',
    '-f',
    'json',
  );
  assert.equal(alice.default_project_id, demo.id);
  assert.equal(alice.email, 'alice@example.test');
  await osc(admin, 'role', 'add', '--project', 'demo', '--user', 'alice', 'member');
  const assignments = await osc(
    admin,
    'role',
    'assignment',
    'list',
    '--user',
    'alice',
    '--project',
    'demo',
    '--names',
    '-f',
    'json',
  );
  assert.deepEqual(
    assignments.map((a: Record<string, string>) => [a.Role, a.User, a.Project]),
    [['member', 'alice@Default', 'demo@Default']],
  );
  const users = await osc(admin, 'user', 'list', '-f', 'json');
  assert.deepEqual(users.map((u: { Name: string }) => u.Name).sort(), ['admin', 'alice']);

  const aliceEnv = { ...admin, OS_USERNAME: 'alice', OS_PASSWORD: 'alice-password', OS_PROJECT_NAME: 'demo' };
  const aliceToken = await osc(aliceEnv, 'token', 'issue', '-f', 'json');
  assert.equal(aliceToken.project_id, demo.id);
  assert.equal(aliceToken.user_id, alice.id);

  const cred = await osc(aliceEnv, 'application', 'credential', 'create', 'csi', '-f', 'json');
  assert.ok(cred.secret);
  assert.equal(cred.project_id, demo.id);
  const credEnv = {
    OS_AUTH_URL: admin.OS_AUTH_URL as string,
    OS_IDENTITY_API_VERSION: '3',
    OS_AUTH_TYPE: 'v3applicationcredential',
    OS_APPLICATION_CREDENTIAL_ID: cred.id,
    OS_APPLICATION_CREDENTIAL_SECRET: cred.secret,
  };
  const credToken = await osc(credEnv, 'token', 'issue', '-f', 'json');
  assert.equal(credToken.project_id, demo.id);
  assert.equal(credToken.user_id, alice.id);
});

test('a wrong password is a clear 401 with the request id', { skip, timeout: 60_000 }, async () => {
  const res = await runClient(OPENSTACK, ['token', 'issue'], { ...admin, OS_PASSWORD: 'wrong' });
  assert.notEqual(res.code, 0);
  assert.match(
    res.stderr,
    /invalid user name, domain or password\. \(HTTP 401\) \(Request-ID: req-[0-9a-f-]{36}\)/,
  );
});

test('a non-admin is refused admin commands with 403 and sees only their own projects', {
  skip,
  timeout: 60_000,
}, async () => {
  const aliceEnv = { ...admin, OS_USERNAME: 'alice', OS_PASSWORD: 'alice-password', OS_PROJECT_NAME: 'demo' };
  const create = await runClient(OPENSTACK, ['project', 'create', 'sneaky'], aliceEnv);
  assert.notEqual(create.code, 0);
  assert.match(create.stderr, /HTTP 403/);
  const projects = await osc(aliceEnv, 'project', 'list', '-f', 'json');
  assert.deepEqual(
    projects.map((p: { Name: string }) => p.Name),
    ['demo'],
  );
});

test('openstack --os-token with --os-endpoint (admin_token) needs no password', {
  skip,
  timeout: 60_000,
}, async () => {
  const env = {
    OS_TOKEN: STATIC_TOKEN,
    OS_ENDPOINT: `${server.url}/identity/v3`,
    OS_IDENTITY_API_VERSION: '3',
  };
  const projects = await osc(env, 'project', 'list', '-f', 'json');
  assert.deepEqual(projects.map((p: { Name: string }) => p.Name).sort(), ['admin', 'demo']);
});
