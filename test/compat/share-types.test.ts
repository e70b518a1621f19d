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

// The real `openstack share type …` and `manila type-…` commands (Debian python3-manilaclient 4.1.1).
// What a command changed is read back from the API (`api`) where the client's own view of it is
// checked elsewhere in the file.
const skip = openstackClientSkip();
let compat: CompatServer;
let env: Record<string, string>;
let api: CompatApi;

before(async () => {
  if (skip) return;
  compat = await startCompatServer('abaca-compat-types');
  env = compat.adminEnv;
  api = await compatApi(compat.server.url);
});

/** The names of the share types the API lists (public and private: `is_public=all`). */
async function typeNames(): Promise<string[]> {
  return (await api.call('GET', '/v2/types?is_public=all')).share_types
    .map((t: { name: string }) => t.name)
    .sort();
}
after(() => compat?.stop());

const run = (binary: string, ...args: string[]) => runOk(binary, args, env);

test('openstack share type create / list / show / set / unset / delete', {
  skip,
  timeout: 240_000,
}, async () => {
  const created = await run(
    OPENSTACK,
    'share',
    'type',
    'create',
    'gold',
    'false',
    '--snapshot-support',
    'true',
    '--revert-to-snapshot-support',
    'true',
    '--extra-specs',
    'foo=bar',
    '--description',
    'Gold tier',
    '-f',
    'json',
  );
  assert.equal(created.name, 'gold');
  assert.equal(created.visibility, 'public');
  assert.deepEqual(created.required_extra_specs, { driver_handles_share_servers: 'False' });
  assert.equal(created.optional_extra_specs.snapshot_support, 'True');
  assert.equal(created.optional_extra_specs.revert_to_snapshot_support, 'True');
  assert.equal(created.optional_extra_specs.foo, 'bar');

  const list = await run(OPENSTACK, 'share', 'type', 'list', '-f', 'json');
  assert.deepEqual(list.map((x: { Name: string }) => x.Name).sort(), ['default', 'gold']);
  const dflt = list.find((x: { Name: string }) => x.Name === 'default');
  assert.equal(dflt['Is Default'], true);

  const shown = await run(OPENSTACK, 'share', 'type', 'show', 'gold', '-f', 'json');
  assert.equal(shown.id, created.id);
  assert.equal(shown.description, 'Gold tier');

  await run(OPENSTACK, 'share', 'type', 'set', 'gold', '--extra-specs', 'baz=qux');
  await run(OPENSTACK, 'share', 'type', 'unset', 'gold', 'foo');
  const after = (await api.call('GET', `/v2/types/${created.id}`)).share_type.extra_specs;
  assert.equal(after.baz, 'qux');
  assert.equal(after.foo, undefined);

  await run(OPENSTACK, 'share', 'type', 'create', 'hidden', 'false', '--public', 'false');
  await run(OPENSTACK, 'share', 'type', 'access', 'create', 'hidden', 'admin');
  const access = await run(OPENSTACK, 'share', 'type', 'access', 'list', 'hidden', '-f', 'json');
  assert.equal(access.length, 1);
  assert.deepEqual(await typeNames(), ['default', 'gold', 'hidden']);
  await run(OPENSTACK, 'share', 'type', 'delete', 'gold', 'hidden');
  assert.deepEqual(await typeNames(), ['default']);
});

test('manila negotiates the version and manages types', { skip, timeout: 240_000 }, async () => {
  await run(MANILA, 'type-create', 'silver', 'false', '--snapshot_support', 'true');
  const list = await run(MANILA, 'type-list');
  assert.match(list, /silver/);
  assert.match(list, /default/);
  const specs = await run(MANILA, 'extra-specs-list');
  assert.match(specs, /snapshot_support : True/);
  await run(MANILA, 'type-key', 'silver', 'set', 'color=blue');
  const silver = (await api.call('GET', '/v2/types')).share_types.find(
    (t: { name: string }) => t.name === 'silver',
  );
  assert.equal(silver.extra_specs.color, 'blue');
  await run(MANILA, 'type-delete', 'silver');
  assert.deepEqual(await typeNames(), ['default']);
});

test('a client mistake is a clear error with the request id', { skip, timeout: 60_000 }, async () => {
  const res = await runClient(OPENSTACK, ['share', 'type', 'create', 'default', 'false'], env);
  assert.notEqual(res.code, 0);
  assert.match(res.stderr, /already exists.*\(HTTP 409\) \(Request-ID: req-[0-9a-f-]{36}\)/);
});
