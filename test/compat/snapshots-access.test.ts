import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
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
import { waitFor } from '../helpers/process.ts';

// The real `openstack share …` and `manila …` commands for resize, snapshots, revert, create from
// snapshot, access rules and export locations, against a server process on its default backend
// (`local`: a directory per share under the data dir, which honours only `ip` rules). Set-up,
// polling and the checks of what a command did go straight to the API (`api`); the clients run for
// the commands under test and what they show.
const skip = openstackClientSkip();
let compat: CompatServer;
let env: Record<string, string>;
let api: CompatApi;

before(async () => {
  if (skip) return;
  compat = await startCompatServer('abaca-compat-snapshots');
  env = compat.adminEnv;
  api = await compatApi(compat.server.url);
});
after(() => compat?.stop());

const run = (binary: string, ...args: string[]) => runOk(binary, args, env);

/** Runs a command that must fail; returns its stderr. */
async function runFails(binary: string, ...args: string[]): Promise<string> {
  const res = await runClient(binary, args, env);
  assert.notEqual(res.code, 0, `${binary} ${args.join(' ')} succeeded: ${res.stdout}`);
  return res.stderr;
}

/** A value from a `manila` property table (`| key | value |`). */
function prop(table: string, key: string): string | undefined {
  return new RegExp(`^\\|\\s*${key}\\s*\\|\\s*(.*?)\\s*\\|$`, 'm').exec(table)?.[1];
}

/** A share made through the API (`share create` has its own tests), once available. */
// biome-ignore lint/suspicious/noExplicitAny: the API's share body
async function apiShare(name: string): Promise<any> {
  const { share } = await api.call('POST', '/v2/shares', { share: { share_proto: 'NFS', size: 1, name } });
  await api.waitStatus(`/v2/shares/${share.id}`, 'share', 'available');
  return (await api.call('GET', `/v2/shares/${share.id}`)).share;
}

/** The share's status and size as the API has them. */
async function statusSize(id: string): Promise<[string, number]> {
  const { share } = await api.call('GET', `/v2/shares/${id}`);
  return [share.status, share.size];
}

// The three flows use shares, snapshots and rules of their own and run side by side: most of their
// time is Python start-up and OSC's 5 s --wait poll, not server work.
describe('resize, snapshots, revert, access rules and export locations', { concurrency: true }, () => {
  test('openstack share resize / snapshot create, list, show, set, delete / revert / create --snapshot-id', {
    skip,
    timeout: 300_000,
  }, async () => {
    const s1 = await apiShare('s1');

    const snap1 = await run(
      OPENSTACK,
      'share',
      'snapshot',
      'create',
      's1',
      '--name',
      'snap1',
      '--wait',
      '-f',
      'json',
    );
    assert.equal(snap1.status, 'available');
    assert.equal(snap1.name, 'snap1');
    assert.equal(snap1.share_id, s1.id);
    assert.equal(snap1.size, 1);
    assert.equal(snap1.share_proto, 'NFS');

    await run(OPENSTACK, 'share', 'resize', 's1', '3', '--wait');
    assert.deepEqual(await statusSize(s1.id), ['available', 3]);
    await run(OPENSTACK, 'share', 'resize', 's1', '2', '--wait');
    assert.deepEqual(await statusSize(s1.id), ['available', 2]);

    // The second snapshot through the API (the client's `snapshot create` is checked above).
    const { snapshot: snap2 } = await api.call('POST', '/v2/snapshots', {
      snapshot: { share_id: s1.id, name: 'snap2' },
    });
    await api.waitStatus(`/v2/snapshots/${snap2.id}`, 'snapshot', 'available');
    assert.equal(snap2.size, 2);

    // The other tests run alongside and have snapshots of their own.
    const list = await run(OPENSTACK, 'share', 'snapshot', 'list', '-f', 'json');
    assert.deepEqual(
      list.filter((x: { ID: string }) => [snap1.id, snap2.id].includes(x.ID)),
      [
        { ID: snap1.id, Name: 'snap1' },
        { ID: snap2.id, Name: 'snap2' },
      ],
    );
    // Ordered by the client (its --sort defaults to name:asc).
    const detail = await run(
      OPENSTACK,
      'share',
      'snapshot',
      'list',
      '--share',
      's1',
      '--detail',
      '-f',
      'json',
    );
    assert.deepEqual(
      detail.map((x: Record<string, unknown>) => [x.Name, x.Status, x.Size, x['Share ID']]),
      [
        ['snap1', 'available', 1, s1.id],
        ['snap2', 'available', 2, s1.id],
      ],
    );
    const shown = await run(OPENSTACK, 'share', 'snapshot', 'show', 'snap1', '-f', 'json');
    assert.equal(shown.id, snap1.id);
    assert.equal(shown.share_size, 1);
    assert.deepEqual(shown.export_locations, []);

    await run(OPENSTACK, 'share', 'snapshot', 'set', snap2.id, '--name', 'snap2b', '--description', 'newer');
    const renamed = (await api.call('GET', `/v2/snapshots/${snap2.id}`)).snapshot;
    assert.deepEqual([renamed.name, renamed.description], ['snap2b', 'newer']);

    // Only the latest snapshot can be reverted to (Manila: 409).
    const notLatest = await runFails(OPENSTACK, 'share', 'revert', 'snap1', '--wait');
    assert.match(
      notLatest,
      new RegExp(
        `can be reverted only to its latest snapshot \\(${snap2.id}\\).*\\(HTTP 409\\) \\(Request-ID: req-`,
      ),
    );
    // A share with snapshots cannot be deleted (403 naming them, as Manila).
    const busy = await runFails(OPENSTACK, 'share', 'delete', 's1');
    assert.match(busy, new RegExp(`has 2 snapshot\\(s\\).*${snap1.id}.*\\(HTTP 403\\)`));

    await run(OPENSTACK, 'share', 'snapshot', 'delete', 'snap2b', '--wait');
    // --wait returned once it was gone.
    assert.deepEqual(
      (await api.call('GET', `/v2/snapshots?share_id=${s1.id}`)).snapshots.map((x: { id: string }) => x.id),
      [snap1.id],
    );

    await run(OPENSTACK, 'share', 'revert', 'snap1', '--wait');
    assert.deepEqual(await statusSize(s1.id), ['available', snap1.size]);
    assert.equal((await api.call('GET', `/v2/snapshots/${snap1.id}`)).snapshot.status, 'available');

    const c1 = await run(
      OPENSTACK,
      'share',
      'create',
      'NFS',
      '3',
      '--snapshot-id',
      snap1.id,
      '--name',
      'c1',
      '--wait',
      '-f',
      'json',
    );
    assert.equal(c1.status, 'available');
    assert.equal(c1.size, 3);
    assert.equal(c1.snapshot_id, snap1.id);
    assert.notEqual(c1.id, s1.id);
  });

  test('openstack share access create / list / show / delete, export location list / show', {
    skip,
    timeout: 300_000,
  }, async () => {
    const a1 = await apiShare('a1');

    const rule = await run(
      OPENSTACK,
      'share',
      'access',
      'create',
      'a1',
      'ip',
      '10.0.0.0/24',
      '--access-level',
      'ro',
      '--wait',
      '-f',
      'json',
    );
    assert.equal(rule.share_id, a1.id);
    assert.deepEqual(
      [rule.access_type, rule.access_to, rule.access_level, rule.state, rule.access_key],
      ['ip', '10.0.0.0/24', 'ro', 'active', null],
    );

    // The client itself refuses an address that is not one; nothing reaches the server.
    const bad = await runFails(OPENSTACK, 'share', 'access', 'create', 'a1', 'ip', '10.0.0.300');
    assert.match(bad, /'10\.0\.0\.300' does not appear to be an IPv4 or IPv6 network/);
    // What the client lets through and the server refuses: a duplicate, and a type `local` cannot honour.
    const dup = await runFails(OPENSTACK, 'share', 'access', 'create', a1.id, 'ip', '10.0.0.0/24');
    assert.match(
      dup,
      new RegExp(`already has access rule ${rule.id} for ip:10\\.0\\.0\\.0/24.*\\(HTTP 400\\)`),
    );
    const user = await runFails(OPENSTACK, 'share', 'access', 'create', a1.id, 'user', 'alice1');
    assert.match(user, /cannot enforce 'user' access rules; it supports: ip\. \(HTTP 400\)/);

    const list = await run(OPENSTACK, 'share', 'access', 'list', 'a1', '-f', 'json');
    assert.deepEqual(
      list.map((x: Record<string, unknown>) => [
        x.ID,
        x['Access Type'],
        x['Access To'],
        x['Access Level'],
        x.State,
      ]),
      [[rule.id, 'ip', '10.0.0.0/24', 'ro', 'active']],
    );
    const shown = await run(OPENSTACK, 'share', 'access', 'show', rule.id, '-f', 'json');
    assert.deepEqual(
      [shown.id, shown.share_id, shown.access_to, shown.state],
      [rule.id, a1.id, '10.0.0.0/24', 'active'],
    );

    const locations = await run(OPENSTACK, 'share', 'export', 'location', 'list', 'a1', '-f', 'json');
    assert.equal(locations.length, 1);
    assert.equal(locations[0].Preferred, true);
    assert.match(locations[0].Path, new RegExp(a1.id));
    const location = await run(
      OPENSTACK,
      'share',
      'export',
      'location',
      'show',
      'a1',
      locations[0].ID,
      '-f',
      'json',
    );
    assert.equal(location.id, locations[0].ID);
    assert.equal(location.path, locations[0].Path);
    assert.equal(location.preferred, true);
    // Admin-only fields: the caller here is the admin.
    assert.equal(location.is_admin_only, false);
    assert.equal(location.share_instance_id, a1.id);

    await run(OPENSTACK, 'share', 'access', 'delete', 'a1', rule.id, '--wait');
    // --wait returned once it was gone.
    assert.deepEqual((await api.call('GET', `/v2/share-access-rules?share_id=${a1.id}`)).access_list, []);
    assert.match(
      await runFails(OPENSTACK, 'share', 'access', 'show', rule.id),
      new RegExp(`Access rule ${rule.id} could not be found.*\\(HTTP 404\\)`),
    );
  });

  test('manila extend / shrink / snapshot-create / snapshot-list / revert-to-snapshot / access-allow / access-list / access-deny', {
    skip,
    timeout: 300_000,
  }, async () => {
    const created = await run(MANILA, 'create', 'NFS', '1', '--name', 'm1', '--wait');
    const id = prop(created, 'id') as string;
    assert.equal(prop(created, 'status'), 'available');

    await run(MANILA, 'extend', 'm1', '3', '--wait');
    assert.deepEqual(await statusSize(id), ['available', 3]);
    const shrunk = await run(MANILA, 'shrink', 'm1', '2', '--wait');
    assert.equal(prop(shrunk, 'size'), '2');
    assert.equal(prop(shrunk, 'status'), 'available');

    const snap = await run(MANILA, 'snapshot-create', 'm1', '--name', 'msnap');
    const snapId = prop(snap, 'id') as string;
    assert.equal(prop(snap, 'share_id'), id);
    assert.equal(prop(snap, 'size'), '2');
    await api.waitStatus(`/v2/snapshots/${snapId}`, 'snapshot', 'available');
    assert.match(
      await run(MANILA, 'snapshot-list', '--share-id', id, '--columns', 'id,name,status'),
      new RegExp(`${snapId}\\s*\\|\\s*msnap\\s*\\|\\s*available`),
    );
    assert.match(
      await run(MANILA, 'snapshot-list'),
      new RegExp(`${snapId}\\s*\\|\\s*${id}\\s*\\|\\s*available\\s*\\|\\s*msnap\\s*\\|\\s*2`),
    );

    // Grown through the API (`manila extend` is checked above), then reverted by the client.
    await api.call('POST', `/v2/shares/${id}/action`, { extend: { new_size: 4 } });
    await api.waitStatus(`/v2/shares/${id}`, 'share', 'available');
    assert.deepEqual(await statusSize(id), ['available', 4]);
    await run(MANILA, 'revert-to-snapshot', 'msnap');
    await waitFor('m1 reverted', 60_000, async () => {
      const [status, size] = await statusSize(id);
      if (status.endsWith('error')) throw new Error(`m1 is ${status}`);
      return status === 'available' && size === 2 ? true : undefined;
    });

    const allowed = await run(
      MANILA,
      'access-allow',
      'm1',
      'ip',
      '192.168.1.7',
      '--access-level',
      'rw',
      '--wait',
    );
    const ruleId = prop(allowed, 'id') as string;
    assert.equal(prop(allowed, 'state'), 'active');
    assert.equal(prop(allowed, 'access_to'), '192.168.1.7');
    assert.match(
      await run(MANILA, 'access-list', 'm1'),
      new RegExp(`${ruleId}\\s*\\|\\s*ip\\s*\\|\\s*192\\.168\\.1\\.7\\s*\\|\\s*rw\\s*\\|\\s*active`),
    );
    // manila checks the address itself too.
    assert.match(await runFails(MANILA, 'access-allow', id, 'ip', '10.0.0.300'), /^ERROR: .*does not appear/);

    await run(MANILA, 'access-deny', 'm1', ruleId);
    await api.waitGone(`/v2/share-access-rules/${ruleId}`);
    assert.doesNotMatch(await run(MANILA, 'access-list', id), new RegExp(ruleId));
  });
});
