import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { tempDir } from '../helpers/db.ts';
import { REPO_ROOT } from '../helpers/process.ts';
import {
  abacaFails,
  abacaOk,
  type CliResult,
  type CliServer,
  selfSignedCert,
  startCliServer,
} from './helpers.ts';

// The CLI against an API it reaches over HTTPS (a TLS proxy in front of abaca-server, whose public
// URL — catalog and openrc — is the proxy's): certificate verification with OS_CACERT,
// --os-cacert, clouds.yaml's cacert, --insecure; and a reader that closes the pipe early.
let srv: CliServer;
let proxy: https.Server;
let proxied = 0;
const certs = tempDir('abaca-cli-tls');
let cert = '';

before(async () => {
  const pem = selfSignedCert(certs.path);
  cert = pem.cert;
  let upstream = '';
  proxy = https.createServer({ key: readFileSync(pem.key), cert: readFileSync(pem.cert) }, (req, res) => {
    proxied++;
    const out = http.request(`${upstream}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const { port } = proxy.address() as AddressInfo;
  srv = await startCliServer('abaca-cli-tls', {
    ABACA_PUBLIC_URL: `https://127.0.0.1:${port}`,
    ABACA_BACKENDS: JSON.stringify([{ name: 'mem', driver: 'memory' }]),
  });
  upstream = srv.url;
});

after(async () => {
  proxy?.closeAllConnections();
  await new Promise((r) => proxy?.close(r));
  await srv?.stop();
  certs.remove();
});

test('the openrc names the HTTPS URL; its self-signed certificate is refused with a hint, no stack trace', async () => {
  assert.match(srv.adminEnv.OS_AUTH_URL ?? '', /^https:\/\/127\.0\.0\.1:\d+\/identity\/v3$/);
  const res = await abacaFails(srv, ['share', 'list'], srv.adminEnv);
  assert.match(
    res.stderr,
    /^Could not connect to https:\/\/127\.0\.0\.1:\d+ \(TLS: its certificate is self-signed; trust its CA with --os-cacert \/ OS_CACERT, or skip verification with --insecure\)\. Is abaca-server running there\? Check OS_AUTH_URL\.\n$/,
  );
});

test('OS_CACERT, --os-cacert and clouds.yaml cacert trust the CA; every request went through TLS', async () => {
  const before = proxied;
  await abacaOk(srv, ['share', 'create', 'NFS', '1', '--name', 'tls'], { ...srv.adminEnv, OS_CACERT: cert });
  const viaEnv = await abacaOk(srv, ['share', 'list', '-f', 'json', '--no-token-cache'], {
    ...srv.adminEnv,
    OS_CACERT: cert,
  });
  assert.deepEqual(
    viaEnv.map((s: { Name: string }) => s.Name),
    ['tls'],
  );
  const viaFlag = await abacaOk(
    srv,
    ['--os-cacert', cert, 'share', 'list', '-f', 'value', '-c', 'Name', '--no-token-cache'],
    srv.adminEnv,
  );
  assert.equal(viaFlag, 'tls\n');
  // Every call: token (POST), list, per run; the first run created a share as well.
  assert.ok(proxied - before >= 6, `${proxied - before} requests reached the TLS proxy`);

  const { OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME } = srv.adminEnv;
  writeFileSync(
    path.join(srv.home, 'clouds.yaml'),
    `clouds:\n  tls:\n    cacert: ${cert}\n    auth:\n      auth_url: ${OS_AUTH_URL}\n      username: ${OS_USERNAME}\n      password: ${OS_PASSWORD}\n      project_name: ${OS_PROJECT_NAME}\n      user_domain_name: Default\n      project_domain_name: Default\n`,
  );
  assert.equal(
    await abacaOk(srv, ['share', 'list', '-f', 'value', '-c', 'Name', '--no-token-cache'], {
      OS_CLOUD: 'tls',
    }),
    'tls\n',
  );
});

test('--insecure, OS_INSECURE and clouds.yaml verify: false skip verification', async () => {
  const list = ['share', 'list', '-f', 'value', '-c', 'Name', '--no-token-cache'];
  assert.equal(await abacaOk(srv, ['--insecure', ...list], srv.adminEnv), 'tls\n');
  assert.equal(await abacaOk(srv, list, { ...srv.adminEnv, OS_INSECURE: 'true' }), 'tls\n');
  const { OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME } = srv.adminEnv;
  writeFileSync(
    path.join(srv.home, 'clouds.yaml'),
    `clouds:\n  lab:\n    verify: false\n    auth:\n      auth_url: ${OS_AUTH_URL}\n      username: ${OS_USERNAME}\n      password: ${OS_PASSWORD}\n      project_name: ${OS_PROJECT_NAME}\n`,
  );
  assert.equal(await abacaOk(srv, list, { OS_CLOUD: 'lab' }), 'tls\n');
  // OS_INSECURE=false is not insecure.
  await abacaFails(srv, list, { ...srv.adminEnv, OS_INSECURE: 'false' });
});

test('a CA bundle that cannot be read or holds no certificate is a clear one-line error', async () => {
  const missing = await abacaFails(srv, ['share', 'list'], {
    ...srv.adminEnv,
    OS_CACERT: '/nonexistent/ca.pem',
  });
  assert.match(
    missing.stderr,
    /^Cannot read the CA bundle \/nonexistent\/ca\.pem \(from OS_CACERT\): ENOENT/,
  );
  const notPem = path.join(certs.path, 'not-a-cert.txt');
  writeFileSync(notPem, 'hello\n');
  const bad = await abacaFails(srv, ['--os-cacert', notPem, 'share', 'list'], srv.adminEnv);
  assert.equal(bad.stderr, `The CA bundle ${notPem} (from --os-cacert) holds no PEM certificate.\n`);
});

/** Runs the CLI with the reading end of its stdout (or stderr) closed at once, as `| head -1` leaves it. */
function withClosed(
  args: string[],
  env: Record<string, string>,
  closed: 'stdout' | 'stderr' = 'stdout',
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/abaca.js'), ...args], {
      cwd: srv.home,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: srv.home,
        XDG_CACHE_HOME: srv.cacheHome,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child[closed].destroy();
    let stdout = '';
    let stderr = '';
    if (closed === 'stderr')
      child.stdout.on('data', (d) => {
        stdout += d;
      });
    else
      child.stderr.on('data', (d) => {
        stderr += d;
      });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('a reader that goes away (| head -1) ends the CLI quietly: exit 0, nothing on stderr', async () => {
  const help = await withClosed(['--help'], {});
  assert.deepEqual(help, { code: 0, stdout: '', stderr: '' });
  const env = { ...srv.adminEnv, OS_CACERT: cert };
  const list = await withClosed(['share', 'list'], env);
  assert.deepEqual(list, { code: 0, stdout: '', stderr: '' });
  const json = await withClosed(['share', 'list', '-f', 'json'], env);
  assert.deepEqual(json, { code: 0, stdout: '', stderr: '' });
  // A closed stderr is no reason to stop or to change the outcome: a failure is still exit 1.
  const failed = await withClosed(['share', 'show', 'no-such-share'], env, 'stderr');
  assert.deepEqual(failed, { code: 1, stdout: '', stderr: '' });
  const listed = await withClosed(['share', 'list', '-f', 'value', '-c', 'Name'], env, 'stderr');
  assert.deepEqual(listed, { code: 0, stdout: 'tls\n', stderr: '' });
  // And through a shell with pipefail, as a script would run it (not spawnSync: the TLS proxy
  // answers from this process).
  const line = `"${process.execPath}" "${path.join(REPO_ROOT, 'bin/abaca.js')}" share list | head -1`;
  const sh = spawn('bash', ['-o', 'pipefail', '-c', line], {
    cwd: srv.home,
    env: { PATH: process.env.PATH, HOME: srv.home, XDG_CACHE_HOME: srv.cacheHome, ...env },
  });
  let out = '';
  let err = '';
  sh.stdout.on('data', (d) => {
    out += d;
  });
  sh.stderr.on('data', (d) => {
    err += d;
  });
  const code = await new Promise((r) => sh.once('close', r));
  assert.equal(code, 0, err);
  assert.equal(err, '');
  assert.match(out, /^\+-+\+/);
});
