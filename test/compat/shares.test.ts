import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  type CompatApi,
  type CompatServer,
  compatApi,
  MANILA,
  OPENSTACK,
  openstackClientSkip,
  runClient,
  runOk,
  startCompatServer,
} from '../helpers/openstack.ts';

// The real `openstack share …` and `manila …` commands against a server process whose storage is
// its default backend (a local directory per share under the data dir). Set-up, polling and
// clean-up go straight to the API (`api`); the clients run for what each test is about.
const skip = openstackClientSkip();
let compat: CompatServer;
let env: Record<string, string>;
let api: CompatApi;

before(async () => {
  if (skip) return;
  compat = await startCompatServer('abaca-compat-shares');
  env = compat.adminEnv;
  api = await compatApi(compat.server.url);
});
after(() => compat?.stop());

const run = (binary: string, ...args: string[]) => runOk(binary, args, env);

test('openstack share create --wait / list / show / delete --wait', { skip, timeout: 300_000 }, async () => {
  const s = await run(
    OPENSTACK,
    'share',
    'create',
    'NFS',
    '1',
    '--name',
    's1',
    '--property',
    'k1=v1',
    '--wait',
    '-f',
    'json',
  );
  assert.equal(s.status, 'available');
  assert.equal(s.name, 's1');
  assert.equal(s.share_type_name, 'default');
  const list = await run(OPENSTACK, 'share', 'list', '-f', 'json');
  assert.deepEqual(
    list.map((x: Record<string, unknown>) => [x.Name, x.Status, x['Share Proto'], x.Size]),
    [['s1', 'available', 'NFS', 1]],
  );
  const long = await run(
    OPENSTACK,
    'share',
    'list',
    '--long',
    '--name',
    's1',
    '--status',
    'available',
    '--limit',
    '5',
    '-f',
    'json',
  );
  assert.equal(long.length, 1);
  const shown = await run(OPENSTACK, 'share', 'show', 's1', '-f', 'json');
  assert.equal(shown.id, s.id);
  assert.match(JSON.stringify(shown.export_locations), new RegExp(s.id));
  assert.match(JSON.stringify(shown.properties), /k1/);
  await run(
    OPENSTACK,
    'share',
    'set',
    's1',
    '--property',
    'k2=v2',
    '--name',
    's1-renamed',
    '--description',
    'renamed',
  );
  // What set and unset did, read from the API (`share show` is checked above).
  const set = (await api.call('GET', `/v2/shares/${s.id}`)).share;
  assert.deepEqual(
    [set.name, set.description, set.metadata],
    ['s1-renamed', 'renamed', { k1: 'v1', k2: 'v2' }],
  );
  await run(OPENSTACK, 'share', 'unset', 's1-renamed', '--property', 'k1');
  assert.deepEqual((await api.call('GET', `/v2/shares/${s.id}`)).share.metadata, { k2: 'v2' });
  await run(OPENSTACK, 'share', 'delete', 's1-renamed', '--wait');
  // --wait returned once the share was gone.
  assert.deepEqual((await api.call('GET', '/v2/shares')).shares, []);
});

test('openstack share create --share-type names a non-default type', { skip, timeout: 300_000 }, async () => {
  // `share type create` has its own test (share-types.test.ts).
  await api.call('POST', '/v2/types', {
    share_type: {
      name: 'gold',
      extra_specs: { driver_handles_share_servers: 'false', snapshot_support: 'true' },
    },
  });
  const s = await run(
    OPENSTACK,
    'share',
    'create',
    'NFS',
    '2',
    '--name',
    'g1',
    '--share-type',
    'gold',
    '--wait',
    '-f',
    'json',
  );
  assert.equal(s.status, 'available');
  assert.equal(s.share_type_name, 'gold');
  assert.equal(s.size, 2);
  await api.call('DELETE', `/v2/shares/${s.id}`);
  await api.waitGone(`/v2/shares/${s.id}`);
});

test('manila create / list / show / delete', { skip, timeout: 300_000 }, async () => {
  const created = await run(MANILA, 'create', 'NFS', '1', '--name', 'm1');
  const id = /^\|\s*id\s*\|\s*(\S+)/m.exec(created)?.[1] as string;
  assert.match(id, /^[0-9a-f-]{36}$/, created);
  // Polled through the API; the client then shows what the server has.
  await api.waitStatus(`/v2/shares/${id}`, 'share', 'available');
  const shown = await run(MANILA, 'show', 'm1');
  assert.equal(/\|\s*status\s*\|\s*(\S+)/.exec(shown)?.[1], 'available');
  assert.match(await run(MANILA, 'list'), new RegExp(`${id}\\s*\\|\\s*m1\\s*\\|.*available`));
  await run(MANILA, 'delete', 'm1');
  await api.waitGone(`/v2/shares/${id}`);
  assert.doesNotMatch(await run(MANILA, 'list'), /m1/);
});

test('quota show / set, limits, availability zones and services', { skip, timeout: 300_000 }, async () => {
  const before = await run(OPENSTACK, 'share', 'quota', 'show', 'admin', '-f', 'json');
  assert.equal(before.shares, 50);
  await run(OPENSTACK, 'share', 'quota', 'set', 'admin', '--shares', '20', '--gigabytes', '500');
  // What set did, read from the API (`quota show` is checked above and below).
  const after = (await api.call('GET', `/v2/quota-sets/${api.projectId}`)).quota_set;
  assert.equal(after.shares, 20);
  assert.equal(after.gigabytes, 500);
  const limits = await run(OPENSTACK, 'share', 'limits', 'show', '--absolute', '-f', 'json');
  assert.ok(
    limits.some((l: { Name: string; Value: number }) => l.Name === 'maxTotalShares' && l.Value === 20),
  );
  const zones = await run(OPENSTACK, 'share', 'availability', 'zone', 'list', '-f', 'json');
  assert.deepEqual(
    zones.map((z: { Name: string }) => z.Name),
    ['nova'],
  );
  const services = await run(OPENSTACK, 'share', 'service', 'list', '-f', 'json');
  assert.ok(services.some((x: Record<string, string>) => x.Binary === 'manila-share' && x.State === 'up'));
  assert.match(await run(MANILA, 'quota-show'), /shares\s*\|\s*20/);
  await run(OPENSTACK, 'share', 'quota', 'delete', 'admin');
  assert.equal((await run(OPENSTACK, 'share', 'quota', 'show', 'admin', '-f', 'json')).shares, 50);
});

test('a bad request from the client is a clear error', { skip, timeout: 60_000 }, async () => {
  const res = await runClient(OPENSTACK, ['share', 'create', 'NFS', '0', '--name', 'zero'], env);
  assert.notEqual(res.code, 0);
  assert.match(res.stderr, /size.*at least 1 GiB.*\(HTTP 400\) \(Request-ID: req-/);
});
