/**
 * Share-server failover through the whole stack: an abaca-server process (its embedded database
 * keeps the share owners) with the replicated backend over three `--cluster` share servers and three
 * bricks. A share made through the share API is written to; its owner is killed; the API's cluster
 * monitor moves it, the writer follows, and API calls on the share (extend, snapshot) work again
 * on the new owner. Disabling an owner through the services API (a planned restart) hands its
 * share over while it still answers, without a failover's stall.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { OP } from '../../backends/replicated/protocol/opcodes.ts';
import { ShareConnection, shareAddressOf } from '../../client/mount/share-connection.ts';
import { Cluster, waitFor } from '../backends/replicated/helpers.ts';
import { tempDir } from '../helpers/db.ts';
import { requestPasswordToken, type ServerProcess, startServerProcess } from '../helpers/process.ts';

const data = tempDir('abaca-failover-api');
let cl: Cluster;
let server: ServerProcess;
let headers: Record<string, string>;
const PASSWORD = 'failover-admin-password';

before(async () => {
  cl = await Cluster.start({ serverArgs: ['--cluster'] });
  cl.servers.push(await cl.startServer(), await cl.startServer());
  server = await startServerProcess(
    {
      ABACA_DATA_DIR: data.path,
      ABACA_ADMIN_PASSWORD: PASSWORD,
      ABACA_TASK_LEASE_SECONDS: '5',
      ABACA_BACKENDS: JSON.stringify([
        {
          name: 'repl',
          driver: 'replicated',
          options: {
            shareServers: cl.servers.map((s) => s.addr),
            adminToken: cl.adminToken,
            probeMs: 200,
            failoverMs: 1500,
          },
        },
      ]),
    },
    120_000,
  );
  const res = await requestPasswordToken(server.url, PASSWORD);
  headers = {
    'content-type': 'application/json',
    'X-Auth-Token': res.headers.get('x-subject-token') as string,
    'X-OpenStack-Manila-API-Version': '2.65',
  };
});
after(async () => {
  await server?.stop('SIGKILL');
  await cl?.close();
  data.remove();
});

async function call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${server.url}/v2${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${text}`);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

async function shareStatus(id: string): Promise<{ status: string; size: number }> {
  return (await call('GET', `/shares/${id}`))['share'] as { status: string; size: number };
}

async function until(id: string, status: string): Promise<void> {
  await waitFor(async () => (await shareStatus(id)).status === status, 30_000, `share ${status}`);
}

test('the owner of an API-made share dies: writes continue, and extend and snapshot work on the new owner', {
  timeout: 120_000,
}, async () => {
  const made = (await call('POST', '/shares', { share: { size: 1, share_proto: 'NATIVE', name: 'ha' } }))[
    'share'
  ] as { id: string };
  await until(made.id, 'available');
  const locs = (await call('GET', `/shares/${made.id}/export_locations`))['export_locations'] as Array<{
    path: string;
    preferred: boolean;
  }>;
  assert.equal(locs.length, 3, 'every share server is an export location');
  const addr = shareAddressOf(locs)!;
  const owner = cl.servers.find((s) => s.port === addr.port)!;
  const conn = await ShareConnection.open({ ...addr, adminToken: cl.adminToken, retryMs: 20_000 });
  await conn.call(OP.create, { path: 'f', mode: 0o644, excl: true });
  let written = 0;
  let stop = false;
  const writer = (async () => {
    while (!stop) {
      await conn.call(OP.write, { path: 'f', off: 0, append: true }, Buffer.from(`line ${written}\n`));
      written++;
    }
  })();
  await waitFor(() => written >= 20, 10_000);
  await owner.kill9();
  const at = written;
  await waitFor(() => written >= at + 20, 15_000, 'writes after the failover');
  stop = true;
  await writer;
  assert.notEqual(conn.address, `127.0.0.1:${owner.port}`);

  // The API's calls reach the share's new owner.
  await call('POST', `/shares/${made.id}/action`, { extend: { new_size: 2 } });
  await until(made.id, 'available');
  assert.equal((await shareStatus(made.id)).size, 2);
  const snap = (await call('POST', '/snapshots', { snapshot: { share_id: made.id, name: 's' } }))[
    'snapshot'
  ] as {
    id: string;
  };
  await waitFor(
    async () =>
      ((await call('GET', `/snapshots/${snap.id}`))['snapshot'] as { status: string }).status === 'available',
    30_000,
    'snapshot available',
  );
  const content = (await conn.call(OP.read, { path: 'f', off: 0, len: 1 << 20 })).payload.toString();
  assert.equal(content.split('\n').filter(Boolean).length, written);
  conn.close();
});

test('disabling the owner through the services API hands its share over while writes go on; bad input is refused', {
  timeout: 120_000,
}, async () => {
  const made = (
    await call('POST', '/shares', { share: { size: 1, share_proto: 'NATIVE', name: 'planned' } })
  )['share'] as { id: string };
  await until(made.id, 'available');
  const locs = (await call('GET', `/shares/${made.id}/export_locations`))['export_locations'] as Array<{
    path: string;
    preferred: boolean;
  }>;
  const addr = shareAddressOf(locs)!;
  const conn = await ShareConnection.open({ ...addr, adminToken: cl.adminToken, retryMs: 20_000 });
  await conn.call(OP.create, { path: 'g', mode: 0o644, excl: true });
  type Row = { host: string; binary: string; status: string; state: string };
  const servers = async () =>
    ((await call('GET', '/services?binary=abaca-share-server'))['services'] as Row[]).filter(
      (r) => r.state === 'up',
    );
  const ownerRow = (await servers()).find((r) => r.host.endsWith(`:127.0.0.1:${addr.port}`))!;
  assert.ok(ownerRow, 'the owner is listed as a service');
  let written = 0;
  let stop = false;
  const started = Date.now();
  let longest = 0;
  let last = started;
  const writer = (async () => {
    while (!stop) {
      await conn.call(OP.write, { path: 'g', off: 0, append: true }, Buffer.from(`line ${written}\n`));
      written++;
      longest = Math.max(longest, Date.now() - last);
      last = Date.now();
    }
  })();
  await waitFor(() => written >= 20, 10_000);
  const answer = await call('PUT', '/services/disable', {
    host: ownerRow.host,
    binary: 'abaca-share-server',
  });
  assert.deepEqual(answer, { host: ownerRow.host, binary: 'abaca-share-server', disabled: true });
  await waitFor(
    () => conn.address !== `127.0.0.1:${addr.port}`,
    10_000,
    'the writer moved to another server',
  );
  const at = written;
  await waitFor(() => written >= at + 20, 10_000, 'writes after the handover');
  stop = true;
  await writer;
  assert.ok(longest < 5000, `writes stalled ${longest} ms during a planned handover`);
  assert.equal((await servers()).find((r) => r.host === ownerRow.host)!.status, 'disabled');
  const content = (await conn.call(OP.read, { path: 'g', off: 0, len: 1 << 20 })).payload.toString();
  assert.equal(content.split('\n').filter(Boolean).length, written, 'every acknowledged append there once');
  conn.close();

  // Enabled again: listed as enabled (it takes new shares; its old ones stay where they went).
  await call('PUT', '/services/enable', { host: ownerRow.host, binary: 'abaca-share-server' });
  assert.equal((await servers()).find((r) => r.host === ownerRow.host)!.status, 'enabled');

  const refused = async (body: unknown, status: number, pattern: RegExp) => {
    const res = await fetch(`${server.url}/v2/services/disable`, {
      method: 'PUT',
      headers,
      body: JSON.stringify(body),
    });
    const text = await res.text();
    assert.equal(res.status, status, text);
    assert.match(text, pattern);
  };
  await refused({ host: ownerRow.host }, 400, /binary/);
  await refused({ host: `${ownerRow.host}9`, binary: 'abaca-share-server' }, 404, /no share server/);
  await refused({ host: 'nowhere@nothing', binary: 'manila-share' }, 404, /Unknown service/);
  const brick = ((await call('GET', '/services?binary=abaca-brick'))['services'] as Row[])[0]!;
  await refused({ host: brick.host, binary: 'abaca-brick' }, 501, /abaca brick remove/);
});
