/**
 * TLS end to end, as an operator sets it up (docs/tls.md): abaca-server in solo mode with an HTTPS
 * API (ABACA_TLS_CERT/KEY/CA) and cluster TLS for its bricks and share server (ABACA_CLUSTER_*),
 * certificates made by scripts/tls-certs.sh. The real `openstack` client talks to it with
 * OS_CACERT (and fails without); the openrc the server writes works as it is; a share is created
 * through the driver's TLS link and mounted over TLS with a project token.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ReplicatedClient } from '../../backends/replicated/client/client.ts';
import { clusterTlsFromEnv } from '../../backends/replicated/protocol/tls.ts';
import { tempDir } from '../helpers/db.ts';
import {
  COMPAT_ADMIN_PASSWORD,
  compatAdminEnv,
  OPENSTACK,
  openstackClientSkip,
  runClient,
  runOk,
} from '../helpers/openstack.ts';
import { type ServerProcess, startServerProcess, waitFor } from '../helpers/process.ts';
import { makeTestPki, type TestPki } from '../helpers/tls.ts';

const skip = openstackClientSkip();
const data = tempDir('abaca-tls');
let pki: TestPki;
let server: ServerProcess;
let env: Record<string, string>;
const clients: ReplicatedClient[] = [];

before(async () => {
  if (skip) return;
  pki = makeTestPki();
  server = await startServerProcess({
    ABACA_DATA_DIR: data.path,
    ABACA_ADMIN_PASSWORD: COMPAT_ADMIN_PASSWORD,
    ABACA_TLS_CERT: pki.cert,
    ABACA_TLS_KEY: pki.key,
    ABACA_TLS_CA: pki.ca,
    ...pki.clusterEnv,
  });
  env = { ...compatAdminEnv(server.url), OS_CACERT: pki.ca };
});
after(async () => {
  for (const c of clients) c.close();
  await server?.stop();
  data.remove();
  pki?.remove();
});

const run = (...args: string[]) => runOk(OPENSTACK, args, env);

/** One HTTPS request to the API with the test CA; the JSON body and the headers come back. */
function https1(
  method: string,
  url: string,
  headers: Record<string, string>,
  body?: unknown,
  // biome-ignore lint/suspicious/noExplicitAny: response bodies, checked by the assertions
): Promise<{ status: number; headers: Record<string, unknown>; body: any }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${server.url}${url}`,
      { method, ca: readFileSync(pki.ca), headers: { 'content-type': 'application/json', ...headers } },
      (res) => {
        let text = '';
        res.on('data', (d) => {
          text += d;
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : {} }),
        );
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/**
 * The API as the admin over HTTPS, for a test's set-up (the client's own access and export
 * location commands are checked in snapshots-access.test.ts, `token issue` over TLS above).
 */
async function adminApi() {
  const auth = await https1(
    'POST',
    '/identity/v3/auth/tokens',
    {},
    {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'admin', domain: { name: 'Default' }, password: COMPAT_ADMIN_PASSWORD } },
        },
        scope: { project: { name: 'admin', domain: { name: 'Default' } } },
      },
    },
  );
  assert.equal(auth.status, 201, JSON.stringify(auth.body));
  const token = auth.headers['x-subject-token'] as string;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies, checked by the assertions
  const call = async (method: string, url: string, body?: unknown): Promise<any> => {
    const res = await https1(
      method,
      url,
      { 'X-Auth-Token': token, 'X-OpenStack-Manila-API-Version': '2.72' },
      body,
    );
    assert.ok(res.status < 300, `${method} ${url}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  return { token, call };
}

test('the API serves HTTPS: the openstack client works with OS_CACERT and refuses without it', {
  skip,
  timeout: 120_000,
}, async () => {
  assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const token = await run('token', 'issue', '-f', 'json');
  assert.match(token.id, /\S{20,}/);
  const { OS_CACERT: _, ...noCa } = env;
  const refused = await runClient(OPENSTACK, ['token', 'issue', '-f', 'json'], noCa);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /SSL|certificate/i);
  // The catalog the client follows is https too.
  const catalog = await run('catalog', 'list', '-f', 'json');
  const urls = JSON.stringify(catalog);
  assert.match(urls, /https:\/\/127\.0\.0\.1/);
  assert.doesNotMatch(urls, /http:\/\//);
});

test('the openrc the server writes points at https and sets OS_CACERT; sourced as is, it logs in', {
  skip,
  timeout: 60_000,
}, async () => {
  const openrc = path.join(data.path, 'openrc');
  const text = readFileSync(openrc, 'utf8');
  assert.match(text, new RegExp(`OS_AUTH_URL='${server.url}/identity/v3'`));
  assert.match(text, new RegExp(`OS_CACERT='${pki.ca}'`));
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      '/bin/sh',
      ['-c', `. '${openrc}' && ${OPENSTACK} token issue -f value -c project_id`],
      { env: { PATH: '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', LANG: 'C.UTF-8' }, timeout: 60_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout)),
    ),
  );
  assert.match(out.trim(), /^[0-9a-f-]{32,36}$/);
});

test('HTTP/1.1 keep-alive over TLS: requests share one connection', { skip, timeout: 30_000 }, async () => {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: readFileSync(pki.ca) });
  let sockets = 0;
  const get = () =>
    new Promise<number>((resolve, reject) => {
      const req = https.get(`${server.url}/identity/v3`, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('socket', (s) => {
        if (!(s as { counted?: boolean }).counted) {
          (s as { counted?: boolean }).counted = true;
          sockets++;
        }
      });
      req.on('error', reject);
    });
  for (let i = 0; i < 5; i++) assert.equal(await get(), 200);
  agent.destroy();
  assert.equal(sockets, 1);
});

test('solo storage over cluster TLS: a share from the real client, mounted over TLS with a token', {
  skip,
  timeout: 180_000,
}, async () => {
  const share = await run('share', 'create', 'NFS', '1', '--name', 'tls', '--wait', '-f', 'json');
  assert.equal(share.status, 'available');
  const api = await adminApi();
  const token = api.token;
  const { access } = await api.call('POST', `/v2/shares/${share.id}/action`, {
    allow_access: { access_type: 'ip', access_to: '127.0.0.1' },
  });
  await waitFor('the access rule to be active', 60_000, async () =>
    (await api.call('GET', `/v2/share-access-rules/${access.id}`)).access.state === 'active'
      ? true
      : undefined,
  );
  const locations = (await api.call('GET', `/v2/shares/${share.id}/export_locations`)).export_locations;
  const m = /^abaca:\/\/([^/]+):(\d+)\/(.+)$/.exec(locations[0].path);
  assert.ok(m, `export location ${locations[0].path}`);
  const connect = async (tls: ReturnType<typeof clusterTlsFromEnv>) => {
    const c = await ReplicatedClient.connect({ host: m[1]!, port: Number(m[2]), share: m[3], token, tls });
    clients.push(c);
    return c;
  };
  // A mount client holds the CA only; its token (checked by the share server over HTTPS) admits it.
  const c = await connect(clusterTlsFromEnv({ ABACA_CLUSTER_CA: pki.ca }, false));
  await c.writeFile('hello.txt', 'over TLS, end to end');
  assert.equal((await c.readFile('hello.txt')).toString(), 'over TLS, end to end');
  const onDisk = path.join(data.path, 'solo', 'brick1', 'shares', share.id, 'data', 'hello.txt');
  assert.equal(readFileSync(onDisk, 'utf8'), 'over TLS, end to end');
  // Plaintext to the same share server is refused.
  await assert.rejects(connect(undefined), /TLS|closed|ENOTCONN/);
});
