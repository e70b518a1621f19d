import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { tempDir } from '../helpers/db.ts';
import {
  requestPasswordToken,
  runServerCommand,
  type ServerProcess,
  startServerProcess,
} from '../helpers/process.ts';

// The server as operators run it: a real process on loopback over embedded PGlite in a data dir.
const data = tempDir('abaca-server-test');
const env = { ABACA_DATA_DIR: data.path };
let server: ServerProcess | null = null;
after(async () => {
  await server?.stop('SIGKILL');
  data.remove();
});

const token = requestPasswordToken;

function openrcPassword(): string {
  const m = /^export OS_PASSWORD='(.*)'$/m.exec(readFileSync(path.join(data.path, 'openrc'), 'utf8'));
  assert.ok(m, 'openrc has OS_PASSWORD');
  return m[1] as string;
}

let firstToken = '';
before(async () => {
  server = await startServerProcess(env);
});

test('first start: migrates, bootstraps, prints the generated password once and writes openrc', {
  timeout: 90_000,
}, async () => {
  const out = server!.stdout();
  const m = /created user 'admin' \(project 'admin'\) with password: (\S+)/.exec(out);
  assert.ok(m, out);
  const password = m[1] as string;
  assert.equal(out.split(password).length - 1, 1, 'the password appears exactly once');
  assert.equal(openrcPassword(), password);
  const rc = readFileSync(path.join(data.path, 'openrc'), 'utf8');
  assert.match(
    rc,
    new RegExp(`^export OS_AUTH_URL='${server!.url.replace(/[.]/g, '\\.')}/identity/v3'$`, 'm'),
  );
  assert.match(rc, /^export OS_PROJECT_NAME='admin'$/m);
  assert.equal(statSync(path.join(data.path, 'openrc')).mode & 0o777, 0o600);
  const res = await token(server!.url, password);
  assert.equal(res.status, 201);
  firstToken = res.headers.get('x-subject-token') as string;
  assert.ok(firstToken);
  assert.equal((await fetch(`${server!.url}/healthz`)).status, 200);
});

test('SIGTERM lets an in-flight request finish, then exits 0', { timeout: 90_000 }, async () => {
  const { hostname, port } = new URL(server!.url);
  const body = JSON.stringify({
    auth: { identity: { methods: ['password'], password: { user: { id: 'x', password: 'y' } } } },
  });
  const response = new Promise<number>((resolve, reject) => {
    const req = httpRequest(
      {
        host: hostname,
        port: Number(port),
        method: 'POST',
        path: '/identity/v3/auth/tokens',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    // Half the body now, SIGTERM, the rest after: the request is in flight during shutdown.
    req.write(body.slice(0, 20));
    setTimeout(() => {
      server!.child.kill('SIGTERM');
      setTimeout(() => req.end(body.slice(20)), 300);
    }, 200);
  });
  assert.equal(await response, 401, 'the in-flight request got its answer');
  assert.equal(await server!.exited, 0);
  assert.match(server!.stdout(), /shutting down/);
});

test('restart: no new password, and tokens from before the restart still validate', {
  timeout: 90_000,
}, async () => {
  server = await startServerProcess(env);
  assert.doesNotMatch(server.stdout(), /with password/);
  const res = await fetch(`${server.url}/identity/v3/auth/projects`, {
    headers: { 'X-Auth-Token': firstToken },
  });
  assert.equal(res.status, 200);
  await server.stop();
});

test('bootstrap --password resets the admin password and rewrites openrc; rotate-keys and migrate run', {
  timeout: 90_000,
}, async () => {
  const boot = await runServerCommand(['bootstrap', '--password', 'a-new-admin-password'], env);
  assert.equal(boot.code, 0, boot.stderr);
  assert.match(boot.stdout, /admin credentials written to/);
  assert.equal(openrcPassword(), 'a-new-admin-password');
  const rotate = await runServerCommand(['rotate-keys'], env);
  assert.equal(rotate.code, 0, rotate.stderr);
  assert.match(rotate.stdout, /new signing key [0-9a-f]{32}/);
  const migrate = await runServerCommand(['migrate'], env);
  assert.equal(migrate.code, 0, migrate.stderr);
  assert.match(migrate.stdout, /up to date/);

  server = await startServerProcess(env);
  assert.equal((await token(server.url, 'a-new-admin-password')).status, 201);
  assert.equal((await token(server.url, 'old-or-wrong')).status, 401);
  // Signed by the key that rotate-keys retired: still valid within its lifetime.
  const res = await fetch(`${server.url}/identity/v3/auth/projects`, {
    headers: { 'X-Auth-Token': firstToken },
  });
  assert.equal(res.status, 200);
  await server.stop();
});

test('bad configuration and unknown commands exit non-zero with a message a person can act on', {
  timeout: 90_000,
}, async () => {
  const listen = await runServerCommand([], { ...env, ABACA_LISTEN: 'localhost' });
  assert.equal(listen.code, 1);
  assert.match(listen.stderr, /ABACA_LISTEN must be host:port/);
  const db = await runServerCommand(['migrate'], { ...env, DATABASE_URL: 'mysql://x' });
  assert.equal(db.code, 1);
  assert.match(db.stderr, /DATABASE_URL must start with postgres/);
  const unknown = await runServerCommand(['frobnicate'], env);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
});
