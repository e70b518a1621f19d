import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  ADMIN_PASSWORD,
  abacaFails,
  abacaOk,
  type CliServer,
  REQUEST_ID,
  runAbaca,
  startCliServer,
} from './helpers.ts';

// Authentication (openrc variables, flags, clouds.yaml, application credentials, a static token),
// the token cache, the identity commands, error hints, --help and shell completion.
const STATIC_TOKEN = 'cli-static-admin-token-0123456789';
let srv: CliServer;
let admin: Record<string, string>;

before(async () => {
  srv = await startCliServer('abaca-cli-identity', {
    ABACA_ADMIN_TOKEN: STATIC_TOKEN,
    ABACA_BACKENDS: JSON.stringify([{ name: 'mem', driver: 'memory' }]),
  });
  admin = srv.adminEnv;
});
after(() => srv?.stop());

const ok = (env: Record<string, string>, ...args: string[]) => abacaOk(srv, args, env);

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

test('the openrc the server writes is enough; tokens are cached per credentials in a 0600 file', async () => {
  const first = await ok(admin, 'token', 'issue', '-f', 'json');
  assert.deepEqual(Object.keys(first), ['expires', 'id', 'project_id', 'user_id']);
  assert.ok(Date.parse(first.expires) > Date.now());
  const file = path.join(srv.cacheHome, 'abaca', 'tokens.json');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(statSync(path.dirname(file)).mode & 0o777, 0o700);
  assert.ok(!readFileSync(file, 'utf8').includes(ADMIN_PASSWORD), 'the cache holds no password');

  const [again, fresh] = await Promise.all([
    ok(admin, 'token', 'issue', '-f', 'json'),
    ok(admin, '--no-token-cache', 'token', 'issue', '-f', 'json'),
  ]);
  assert.equal(again.id, first.id, 'the second run reuses the cached token');
  assert.notEqual(fresh.id, first.id);

  // A revoked cached token: the next command meets a 401, authenticates again and succeeds.
  await ok(admin, 'token', 'revoke', first.id);
  await ok(admin, 'share', 'list', '-f', 'json');
  const after = await ok(admin, 'token', 'issue', '-f', 'json');
  assert.notEqual(after.id, first.id);
});

test('onboard a tenant: project, user, role, application credential; the member works in it', async () => {
  const project = await ok(admin, 'project', 'create', 'demo', '--description', 'Demo tenant', '-f', 'json');
  assert.equal(project.name, 'demo');
  assert.equal(project.description, 'Demo tenant');
  assert.equal(project.links, undefined);
  const again = await ok(admin, 'project', 'create', 'demo', '--or-show', '-f', 'json');
  assert.equal(again.id, project.id);

  const alice = await abacaOk(
    srv,
    ['user', 'create', 'alice', '--project', 'demo', '--password-prompt', '-f', 'json'],
    admin,
    { input: 'alice-password-1\n' },
  );
  assert.equal(alice.default_project_id, project.id);
  await ok(admin, 'role', 'add', '--project', 'demo', '--user', 'alice', 'member');

  const [projects, users, members] = await Promise.all([
    ok(admin, 'project', 'list', '--long', '-f', 'json'),
    ok(admin, 'user', 'list', '-f', 'json'),
    ok(admin, 'user', 'list', '--project', 'demo', '-f', 'json'),
  ]);
  assert.deepEqual(projects.map((p: { Name: string }) => p.Name).sort(), ['admin', 'demo']);
  assert.deepEqual(Object.keys(projects[0]), ['ID', 'Name', 'Domain ID', 'Description', 'Enabled']);
  assert.deepEqual(users.map((u: { Name: string }) => u.Name).sort(), ['admin', 'alice']);
  assert.deepEqual(members, [{ ID: alice.id, Name: 'alice' }]);

  // alice, with flags instead of environment variables.
  const aliceFlags = [
    '--os-auth-url',
    admin.OS_AUTH_URL!,
    '--os-username',
    'alice',
    '--os-password',
    'alice-password-1',
    '--os-project-name',
    'demo',
  ];
  const token = await ok({}, ...aliceFlags, 'token', 'issue', '-f', 'json');
  assert.equal(token.project_id, project.id);
  assert.equal(token.user_id, alice.id);
  const share = await ok(
    {},
    ...aliceFlags,
    'share',
    'create',
    'NFS',
    '1',
    '--name',
    'alice-data',
    '--wait',
    '-f',
    'json',
  );
  assert.equal(share.project_id, project.id);
  assert.equal(share.host, undefined, 'a member does not see the host');
  const denied = await abacaFails(srv, [...aliceFlags, 'share', 'service', 'list'], {});
  assert.match(denied.stderr, /\(HTTP 403\)/);
  assert.match(denied.stderr, REQUEST_ID);
  // A member's quota show of its own project works (Keystone lookup refused → the id is used as is).
  assert.equal((await ok({}, ...aliceFlags, 'share', 'quota', 'show', project.id, '-f', 'json')).shares, 50);

  // Application credential: the secret is shown once; it authenticates on its own.
  const cred = await ok(
    {},
    ...aliceFlags,
    'application',
    'credential',
    'create',
    'csi',
    '--description',
    'for CSI',
    '-f',
    'json',
  );
  assert.equal(cred.name, 'csi');
  assert.equal(cred.project_id, project.id);
  assert.ok(cred.secret.length >= 16);
  assert.deepEqual(cred.roles.sort(), ['member', 'reader']);
  const appEnv = {
    OS_AUTH_URL: admin.OS_AUTH_URL!,
    OS_AUTH_TYPE: 'v3applicationcredential',
    OS_APPLICATION_CREDENTIAL_ID: cred.id,
    OS_APPLICATION_CREDENTIAL_SECRET: cred.secret,
  };
  const seen = await ok(appEnv, 'share', 'list', '-f', 'json');
  assert.deepEqual(
    seen.map((s: { Name: string }) => s.Name),
    ['alice-data'],
  );
  const creds = await ok({}, ...aliceFlags, 'application', 'credential', 'list', '-f', 'json');
  assert.deepEqual(
    creds.map((c: { Name: string }) => c.Name),
    ['csi'],
  );
  await ok({}, ...aliceFlags, 'application', 'credential', 'delete', 'csi');
  const gone = await abacaFails(srv, ['--no-token-cache', 'share', 'list'], appEnv);
  assert.match(gone.stderr, /\(HTTP 401\)/);
  await ok({}, ...aliceFlags, 'share', 'delete', 'alice-data', '--wait');
});

test('clouds.yaml: ./clouds.yaml and ~/.config/openstack, secure.yaml, OS_CLOUD and --os-cloud', async () => {
  const cloud = (password?: string) =>
    [
      'auth:',
      `  auth_url: ${admin.OS_AUTH_URL}`,
      '  username: admin',
      ...(password ? [`  password: ${password}`] : []),
      '  project_name: admin',
      '  user_domain_name: Default',
      '  project_domain_name: Default',
      'region_name: RegionOne',
    ]
      .map((l) => `    ${l}`)
      .join('\n');
  const work = path.join(srv.home, 'work');
  mkdirSync(work, { recursive: true });
  writeFileSync(path.join(work, 'clouds.yaml'), `clouds:\n  here:\n${cloud(ADMIN_PASSWORD)}\n`);
  const userConfig = path.join(srv.home, '.config', 'openstack');
  mkdirSync(userConfig, { recursive: true });
  writeFileSync(path.join(userConfig, 'clouds.yaml'), `clouds:\n  home:\n${cloud()}\n`);
  writeFileSync(
    path.join(userConfig, 'secure.yaml'),
    `clouds:\n  home:\n    auth:\n      password: ${ADMIN_PASSWORD}\n`,
  );

  const here = await abacaOk(srv, ['token', 'issue', '-f', 'json'], { OS_CLOUD: 'here' }, { cwd: work });
  const home = await abacaOk(srv, ['--os-cloud', 'home', 'token', 'issue', '-f', 'json'], {});
  assert.equal(here.project_id, home.project_id);
  // A selected cloud replaces a sourced openrc's variables (here: a wrong auth URL).
  await abacaOk(srv, ['share', 'list'], {
    ...admin,
    OS_AUTH_URL: 'http://127.0.0.1:9/identity/v3',
    OS_CLOUD: 'home',
  });

  const unknown = await abacaFails(srv, ['share', 'list'], { OS_CLOUD: 'nowhere' }, 1, { cwd: work });
  assert.match(unknown.stderr, /^Cloud 'nowhere' is not in .*work\/clouds\.yaml \(it has: here\)\.$/m);
});

test('a static token with --os-endpoint needs no Keystone; identity calls go to the same server', async () => {
  const tokenEnv = { OS_TOKEN: STATIC_TOKEN, OS_ENDPOINT: `${srv.url}/v2` };
  const services = await ok(tokenEnv, 'share', 'service', 'list', '-f', 'json');
  assert.ok(services.some((s: { Binary: string }) => s.Binary === 'manila-share'));
  const projects = await ok(
    {},
    '--os-token',
    STATIC_TOKEN,
    '--os-endpoint',
    `${srv.url}/v2`,
    'project',
    'list',
    '-f',
    'json',
  );
  assert.ok(projects.some((p: { Name: string }) => p.Name === 'admin'));
});

test('failures are one line with a hint, never a stack trace', async () => {
  const wrong = await abacaFails(srv, ['share', 'list'], { ...admin, OS_PASSWORD: 'not-the-password' });
  assert.match(
    wrong.stderr,
    /^The request you have made requires authentication.*\(HTTP 401\) \(Request-ID: req-[0-9a-f-]{36}\)\n$/,
  );

  const port = await closedPort();
  const refused = await abacaFails(srv, ['share', 'list'], {
    ...admin,
    OS_AUTH_URL: `http://127.0.0.1:${port}/identity/v3`,
  });
  assert.equal(
    refused.stderr,
    `Could not connect to http://127.0.0.1:${port} (connection refused). Is abaca-server running there? Check OS_AUTH_URL.\n`,
  );

  const noPrefix = await abacaFails(srv, ['share', 'list'], { ...admin, OS_AUTH_URL: `${srv.url}/v3` });
  assert.match(
    noPrefix.stderr,
    /^No Keystone v3 service at .*\/v3: POST .* answered HTTP 404\. Check OS_AUTH_URL:/,
  );
  assert.ok(noPrefix.stderr.includes(`abaca serves Keystone v3 at ${srv.url}/identity/v3.`));
  // The identity root works: its version document names v3.
  await ok({ ...admin, OS_AUTH_URL: `${srv.url}/identity` }, 'share', 'list');

  const nothing = await abacaFails(srv, ['share', 'list'], {});
  assert.match(nothing.stderr, /^No auth URL: source the openrc that abaca-server writes/);
  const usage = await abacaFails(srv, ['share', 'frobnicate'], admin, 2);
  assert.match(usage.stderr, /unknown command 'frobnicate'/);
  const missing = await abacaFails(srv, ['share', 'create', 'NFS'], admin, 2);
  assert.match(missing.stderr, /missing required argument 'size'/);
});

test('--help explains every option with examples', async () => {
  const [top, create] = await Promise.all([
    runAbaca(srv, ['--help'], {}),
    runAbaca(srv, ['share', 'create', '--help'], {}),
  ]);
  assert.equal(top.code, 0);
  assert.match(top.stdout, /--os-cloud <name>/);
  assert.match(top.stdout, /Examples:\n {2}source data\/openrc && abaca share list/);
  assert.equal(create.code, 0);
  for (const option of [
    '--name',
    '--description',
    '--share-type',
    '--availability-zone',
    '--property',
    '--public',
    '--snapshot-id',
    '--wait',
    '--timeout',
    '--format',
    '--column',
  ])
    assert.match(create.stdout, new RegExp(`${option} .*\\S`), option);
  assert.match(create.stdout, /Examples:\n {2}abaca share create NFS 1 --name data --wait/);
});

test('abaca completion bash completes commands and options', async () => {
  const script = await ok({}, 'completion', 'bash');
  const complete = (line: string) =>
    new Promise<string>((resolve, reject) => {
      const words = line.split(' ');
      const program = `${script}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}
_abaca_complete; echo "\${COMPREPLY[*]}"`;
      execFile('bash', ['-c', program], (err, stdout) => (err ? reject(err) : resolve(stdout.trim())));
    });
  assert.equal(await complete('abaca sh'), 'share');
  assert.deepEqual((await complete('abaca share snapshot ')).split(' '), [
    'create',
    'list',
    'show',
    'set',
    'delete',
  ]);
  assert.match(await complete('abaca share create --w'), /^--wait$/);
  assert.match(await complete('abaca share list --os-c'), /--os-cloud/);
  assert.equal(await complete('abaca share list -f j'), 'json');
  const bad = await abacaFails(srv, ['completion', 'fish'], {}, 2);
  assert.match(bad.stderr, /bash only/);
});
