import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { abacaFails, abacaOk, type CliServer, REQUEST_ID, startCliServer } from './helpers.ts';

// Snapshots, revert, resize and access rules through `abaca`, against a server process whose
// memory backend has a 100 GiB pool (so growing a share past it fails in the backend).
let srv: CliServer;
let env: Record<string, string>;

before(async () => {
  srv = await startCliServer('abaca-cli-snapshots', {
    ABACA_BACKENDS: JSON.stringify([
      { name: 'mem', driver: 'memory', options: { pools: [{ name: 'p', totalCapacityGiB: 100 }] } },
    ]),
  });
  env = srv.adminEnv;
});
after(() => srv?.stop());

const ok = (...args: string[]) => abacaOk(srv, args, env);
const fails = (code: number, ...args: string[]) => abacaFails(srv, args, env, code);

test('snapshot create --wait, list, show, set, revert --wait, delete --wait', {
  timeout: 120_000,
}, async () => {
  const share = await ok('share', 'create', 'NFS', '1', '--name', 'data', '--wait', '-f', 'json');
  const snap = await ok(
    'share',
    'snapshot',
    'create',
    'data',
    '--name',
    'snap1',
    '--description',
    'first',
    '--wait',
    '-f',
    'json',
  );
  assert.equal(snap.status, 'available');
  assert.equal(snap.share_id, share.id);
  assert.equal(snap.size, 1);
  assert.ok(Array.isArray(snap.export_locations));

  const [brief, detail, shown] = await Promise.all([
    ok('share', 'snapshot', 'list', '-f', 'json'),
    ok('share', 'snapshot', 'list', '--share', 'data', '--detail', '-f', 'json'),
    ok('share', 'snapshot', 'show', 'snap1', '-f', 'json'),
  ]);
  assert.deepEqual(brief, [{ ID: snap.id, Name: 'snap1' }]);
  assert.equal(detail.length, 1);
  assert.equal(detail[0].Status, 'available');
  assert.equal(detail[0]['Share ID'], share.id);
  assert.equal(detail[0].Description, 'first');
  assert.equal(shown.id, snap.id);

  await ok('share', 'snapshot', 'set', 'snap1', '--name', 'snap-renamed', '--description', 'renamed');
  assert.equal(await ok('share', 'snapshot', 'show', snap.id, '-f', 'value', '-c', 'name'), 'snap-renamed\n');

  // Grow the share, then revert it to the snapshot: it is back at the snapshot's size.
  await ok('share', 'resize', 'data', '2', '--wait');
  await ok('share', 'revert', 'snap-renamed', '--wait');
  const reverted = await ok('share', 'show', 'data', '-f', 'json');
  assert.equal(reverted.status, 'available');
  assert.equal(reverted.size, 1);

  await ok('share', 'snapshot', 'delete', 'snap-renamed', '--wait');
  assert.deepEqual(await ok('share', 'snapshot', 'list', '-f', 'json'), []);
  const missing = await fails(1, 'share', 'revert', 'snap-renamed');
  assert.match(missing.stderr, /No snapshot with a name or ID of 'snap-renamed' exists\./);
  await ok('share', 'delete', 'data', '--wait');
});

test('resize: extend and shrink --wait; same size; an extending_error ends --wait with the message', {
  timeout: 120_000,
}, async () => {
  await ok('share', 'create', 'NFS', '2', '--name', 'grow', '--wait');
  // --wait succeeds only once the share is available at the new size.
  await ok('share', 'resize', 'grow', '4', '--wait');
  await ok('share', 'resize', 'grow', '3', '--wait');

  const same = await fails(1, 'share', 'resize', 'grow', '3');
  assert.equal(same.stderr, 'Share grow is already 3 GiB.\n');

  // The backend's pool has 100 GiB: the extend is accepted, then fails in the worker.
  const res = await fails(1, 'share', 'resize', 'grow', '150', '--wait');
  assert.match(res.stderr, /^Share [0-9a-f-]{36} went to status extending_error: .*capacity/m);
  const after = await ok('share', 'show', 'grow', '-f', 'json');
  assert.equal(after.status, 'extending_error');
  assert.equal(after.size, 3);
  const messages = await ok('share', 'message', 'list', '--resource-id', after.id, '-f', 'json');
  assert.ok(messages.length >= 1);

  // Not available any more: the API refuses another resize (400, with its request id).
  const refused = await fails(1, 'share', 'resize', 'grow', '5');
  assert.match(refused.stderr, /\(HTTP 400\)/);
  assert.match(refused.stderr, REQUEST_ID);
  await ok('share', 'delete', 'grow', '--wait');
});

test("a type no backend can serve: create --wait fails with the scheduler's reason", {
  timeout: 120_000,
}, async () => {
  // snapshot_support is a capability, as in Manila's capabilities filter: `false` asks for a
  // backend without snapshots, and this cloud's only backend has them.
  await ok('share', 'type', 'create', 'nosnap', 'false', '--snapshot-support', 'false');
  const res = await fails(
    1,
    'share',
    'create',
    'NFS',
    '1',
    '--name',
    'plain',
    '--share-type',
    'nosnap',
    '--wait',
  );
  assert.match(res.stderr, /status error.*No valid host was found.*snapshot_support/s);
  await ok('share', 'delete', 'plain', '--wait');
});

test('access create --wait, list, show, delete --wait; export locations', { timeout: 120_000 }, async () => {
  const share = await ok('share', 'create', 'NFS', '1', '--name', 'shared', '--wait', '-f', 'json');
  const rule = await ok(
    'share',
    'access',
    'create',
    'shared',
    'ip',
    '10.0.0.0/24',
    '--access-level',
    'ro',
    '--properties',
    'owner=web',
    '--wait',
    '-f',
    'json',
  );
  assert.equal(rule.state, 'active');
  assert.equal(rule.access_level, 'ro');
  assert.deepEqual(rule.properties, { owner: 'web' });
  const second = await ok(
    'share',
    'access',
    'create',
    'shared',
    'ip',
    '2001:db8::/64',
    '--wait',
    '-f',
    'json',
  );
  assert.equal(second.access_level, 'rw');

  const [all, filtered, shown, locations] = await Promise.all([
    ok('share', 'access', 'list', 'shared', '-f', 'json'),
    ok('share', 'access', 'list', 'shared', '--properties', 'owner=web', '-f', 'json'),
    ok('share', 'access', 'show', rule.id, '-f', 'json'),
    ok('share', 'export', 'location', 'list', 'shared', '-f', 'json'),
  ]);
  assert.deepEqual(all.map((r: Record<string, string>) => r['Access To']).sort(), [
    '10.0.0.0/24',
    '2001:db8::/64',
  ]);
  assert.deepEqual(Object.keys(all[0]), [
    'ID',
    'Access Type',
    'Access To',
    'Access Level',
    'State',
    'Access Key',
    'Created At',
    'Updated At',
  ]);
  assert.deepEqual(
    filtered.map((r: Record<string, string>) => r.ID),
    [rule.id],
  );
  assert.equal(shown.access_to, '10.0.0.0/24');
  assert.equal(locations.length, 1);
  assert.match(locations[0].Path, new RegExp(share.id));
  const location = await ok('share', 'export', 'location', 'show', 'shared', locations[0].ID, '-f', 'json');
  assert.equal(location.path, locations[0].Path);

  await ok('share', 'access', 'delete', 'shared', rule.id, '--wait');
  assert.deepEqual(
    (await ok('share', 'access', 'list', 'shared', '-f', 'json')).map((r: Record<string, string>) => r.ID),
    [second.id],
  );

  // Checked before any request, as python-manilaclient does.
  const badIp = await fails(2, 'share', 'access', 'create', 'shared', 'ip', '10.0.0.0/33');
  assert.match(badIp.stderr, /not an IPv4 or IPv6 address or network/);
  const badType = await fails(2, 'share', 'access', 'create', 'shared', 'kerberos', 'x');
  assert.match(badType.stderr, /Access type must be one of ip, user, cert, cephx/);
  const unknownRule = await fails(1, 'share', 'access', 'show', '0b5e3d6a-0000-4000-8000-000000000000');
  assert.match(unknownRule.stderr, /\(HTTP 404\)/);

  await ok('share', 'access', 'delete', 'shared', second.id, '--wait');
  await ok('share', 'delete', 'shared', '--wait');
});
