import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  type CompatServer,
  MANILA,
  OPENSTACK,
  openstackClientSkip,
  runClient,
  runOk,
  startCompatServer,
} from '../helpers/openstack.ts';

// The real `openstack share …` and `manila …` commands against a server process whose storage is
// its default backend (a local directory per share under the data dir).
const skip = openstackClientSkip();
let compat: CompatServer;
let env: Record<string, string>;

before(async () => {
  if (skip) return;
  compat = await startCompatServer('abaca-compat-shares');
  env = compat.adminEnv;
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
  const set = await run(OPENSTACK, 'share', 'show', 's1-renamed', '-f', 'json');
  assert.equal(set.description, 'renamed');
  assert.match(JSON.stringify(set.properties), /k2/);
  await run(OPENSTACK, 'share', 'unset', 's1-renamed', '--property', 'k1');
  const unset = await run(OPENSTACK, 'share', 'show', 's1-renamed', '-f', 'json');
  assert.doesNotMatch(JSON.stringify(unset.properties), /k1/);
  await run(OPENSTACK, 'share', 'delete', 's1-renamed', '--wait');
  assert.deepEqual(await run(OPENSTACK, 'share', 'list', '-f', 'json'), []);
});

test('openstack share create --share-type names a non-default type', { skip, timeout: 300_000 }, async () => {
  await run(OPENSTACK, 'share', 'type', 'create', 'gold', 'false', '--snapshot-support', 'true');
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
  await run(OPENSTACK, 'share', 'delete', 'g1', '--wait');
});

test('manila create / list / show / delete', { skip, timeout: 300_000 }, async () => {
  await run(MANILA, 'create', 'NFS', '1', '--name', 'm1');
  let status = '';
  for (let i = 0; i < 30 && status !== 'available'; i++) {
    const shown = await run(MANILA, 'show', 'm1');
    status = /\|\s*status\s*\|\s*(\S+)/.exec(shown)?.[1] ?? '';
    if (status !== 'available') await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal(status, 'available');
  assert.match(await run(MANILA, 'list'), /m1.*available/);
  await run(MANILA, 'delete', 'm1');
  for (let i = 0; i < 30; i++) {
    if (!/m1/.test(await run(MANILA, 'list'))) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.fail('m1 was not deleted');
});

test('quota show / set, limits, availability zones and services', { skip, timeout: 300_000 }, async () => {
  const before = await run(OPENSTACK, 'share', 'quota', 'show', 'admin', '-f', 'json');
  assert.equal(before.shares, 50);
  await run(OPENSTACK, 'share', 'quota', 'set', 'admin', '--shares', '20', '--gigabytes', '500');
  const after = await run(OPENSTACK, 'share', 'quota', 'show', 'admin', '-f', 'json');
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
