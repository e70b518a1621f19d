import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { abacaFails, abacaOk, type CliServer, REQUEST_ID, runAbaca, startCliServer } from './helpers.ts';

// `abaca share …` (shares, types, quotas, limits, zones, services, messages) and the output
// formats, run as a subprocess against a server process. Two memory backends: `fast` in zone nova,
// and `slow` in zone slow, whose creates take 1.5 s (so --wait really polls) and whose 20 GiB pool
// makes a larger share fail with "No valid host".
const BACKENDS = [
  {
    name: 'fast',
    driver: 'memory',
    availabilityZone: 'nova',
    options: { pools: [{ name: 'p', totalCapacityGiB: 100 }] },
  },
  {
    name: 'slow',
    driver: 'memory',
    availabilityZone: 'slow',
    options: { pools: [{ name: 'p', totalCapacityGiB: 20 }], delays: { createShare: 1500 } },
  },
];

let srv: CliServer;
let env: Record<string, string>;

before(async () => {
  srv = await startCliServer('abaca-cli-shares', { ABACA_BACKENDS: JSON.stringify(BACKENDS) });
  env = srv.adminEnv;
});
after(() => srv?.stop());

const ok = (...args: string[]) => abacaOk(srv, args, env);
const fails = (code: number, ...args: string[]) => abacaFails(srv, args, env, code);

test('share create --wait, list, show, set, unset, delete --wait', { timeout: 120_000 }, async () => {
  const created = await ok(
    'share',
    'create',
    'nfs',
    '1',
    '--name',
    's1',
    '--description',
    'first',
    '--property',
    'team=db',
    '--availability-zone',
    'slow',
    '--wait',
    '-f',
    'json',
  );
  assert.equal(created.status, 'available');
  assert.equal(created.share_proto, 'NFS');
  assert.equal(created.availability_zone, 'slow');
  assert.deepEqual(created.properties, { team: 'db' });
  assert.equal(created.links, undefined);
  assert.match(created.export_locations[0].path, new RegExp(created.id));

  // Without --wait the answer comes right after the API's 200, while the share is being created.
  const quick = await ok(
    'share',
    'create',
    'NFS',
    '2',
    '--name',
    's2',
    '--availability-zone',
    'slow',
    '-f',
    'json',
  );
  assert.equal(quick.status, 'creating');
  assert.deepEqual(quick.export_locations, []);

  const [list, long, shown] = await Promise.all([
    ok('share', 'list', '--sort-column', 'Name', '-f', 'json'),
    ok('share', 'list', '--long', '--name', 's1', '--property', 'team=db', '-f', 'json'),
    ok('share', 'show', 's1', '-f', 'json'),
  ]);
  assert.deepEqual(Object.keys(list[0]), [
    'ID',
    'Name',
    'Size',
    'Share Proto',
    'Status',
    'Is Public',
    'Share Type Name',
    'Host',
    'Availability Zone',
  ]);
  assert.deepEqual(
    list.map((s: Record<string, unknown>) => [s.Name, s.Size, s['Share Type Name']]),
    [
      ['s1', 1, 'default'],
      ['s2', 2, 'default'],
    ],
  );
  assert.equal(long.length, 1);
  assert.deepEqual(long[0].Properties, { team: 'db' });
  assert.equal(long[0].Description, 'first');

  assert.deepEqual(shown, created);

  await ok(
    'share',
    'set',
    's1',
    '--name',
    's1-renamed',
    '--description',
    'renamed',
    '--property',
    'owner=alice',
  );
  await ok('share', 'unset', 's1-renamed', '--property', 'team');
  const changed = await ok(
    'share',
    'show',
    's1-renamed',
    '-f',
    'json',
    '-c',
    'name',
    '-c',
    'description',
    '-c',
    'properties',
  );
  assert.deepEqual(changed, { description: 'renamed', name: 's1-renamed', properties: { owner: 'alice' } });

  // s2 was created without --wait on a backend that takes 1.5 s: on a loaded machine it may still be
  // creating (and not deletable yet) by now.
  for (let i = 0; i < 120 && (await ok('share', 'show', 's2', '-f', 'json')).status === 'creating'; i++)
    await new Promise((r) => setTimeout(r, 500));
  await ok('share', 'delete', 's1-renamed', 's2', '--wait');
  assert.deepEqual(await ok('share', 'list', '-f', 'json'), []);
});

test('--wait exits 1 with the user message when the share lands in error', { timeout: 120_000 }, async () => {
  const res = await fails(
    1,
    'share',
    'create',
    'NFS',
    '30',
    '--name',
    'toobig',
    '--availability-zone',
    'slow',
    '--wait',
    '-f',
    'json',
  );
  assert.equal(res.stdout, '');
  const [, id] =
    /^Share ([0-9a-f-]{36}) went to status error: No valid host was found\./m.exec(res.stderr) ?? [];
  assert.ok(id, res.stderr);
  assert.match(res.stderr, /slow#p: 20 GiB free/);

  const messages = await ok('share', 'message', 'list', '--resource-id', id, '-f', 'json');
  assert.equal(messages.length, 1);
  assert.equal(messages[0]['Resource Type'], 'SHARE');
  assert.match(messages[0]['User Message'], /No valid host/);
  const message = await ok('share', 'message', 'show', messages[0].ID, '-f', 'json');
  assert.equal(message.resource_id, id);
  await ok('share', 'message', 'delete', messages[0].ID);
  assert.deepEqual(await ok('share', 'message', 'list', '--resource-id', id, '-f', 'json'), []);
  await ok('share', 'delete', id, '--wait');
});

test('--wait gives up after --timeout with exit code 3', { timeout: 120_000 }, async () => {
  const res = await fails(
    3,
    'share',
    'create',
    'NFS',
    '1',
    '--name',
    'slowpoke',
    '--availability-zone',
    'slow',
    '--wait',
    '--timeout',
    '0.2',
  );
  assert.match(
    res.stderr,
    /^Timed out after \d+ s waiting for share [0-9a-f-]{36} to be available \(status: creating\)\.$/m,
  );
  // The create goes on without the client; the share is left for the server to finish.
});

test('unknown shares: a name is a client-side miss, an id the server 404 with its request id', async () => {
  const byName = await fails(1, 'share', 'show', 'no-such-share');
  assert.equal(byName.stderr, "No share with a name or ID of 'no-such-share' exists.\n");
  const byId = await fails(1, 'share', 'delete', '0b5e3d6a-0000-4000-8000-000000000000');
  assert.match(byId.stderr, /Share 0b5e3d6a-0000-4000-8000-000000000000 could not be found\. \(HTTP 404\)/);
  assert.match(byId.stderr, REQUEST_ID);
  assert.match(byId.stderr, /1 of 1 shares failed to delete\./);
});

test('quota show / set / delete, quota exceeded, limits', { timeout: 120_000 }, async () => {
  const defaults = await ok('share', 'quota', 'show', '-f', 'json');
  assert.equal(defaults.shares, 50);
  assert.equal(defaults.gigabytes, 1000);
  assert.equal(defaults.id, undefined);
  await ok('share', 'quota', 'set', 'admin', '--gigabytes', '5', '--shares', '3');
  const detail = await ok('share', 'quota', 'show', 'admin', '--detail', '-f', 'json');
  assert.deepEqual(Object.keys(detail.gigabytes).sort(), ['in_use', 'limit', 'reserved']);
  assert.equal(detail.gigabytes.limit, 5);

  const over = await fails(1, 'share', 'create', 'NFS', '6', '--name', 'over');
  assert.match(over.stderr, /\(HTTP 413\)/);
  assert.match(over.stderr, REQUEST_ID);

  const limits = await ok('share', 'limits', 'show', '--absolute', '-f', 'json');
  assert.ok(
    limits.some((l: { Name: string; Value: number }) => l.Name === 'maxTotalShareGigabytes' && l.Value === 5),
  );
  assert.deepEqual(await ok('share', 'limits', 'show', '--rate', '-f', 'json'), []);

  await ok('share', 'quota', 'delete', 'admin');
  assert.equal(await ok('share', 'quota', 'show', 'admin', '-f', 'value', '-c', 'gigabytes'), '1000\n');
});

test('share type create / list / show / set / unset / access / delete', { timeout: 120_000 }, async () => {
  const gold = await ok(
    'share',
    'type',
    'create',
    'gold',
    'false',
    '--snapshot-support',
    'true',
    '--extra-specs',
    'tier=1',
    '--description',
    'Gold tier',
    '-f',
    'json',
  );
  assert.equal(gold.visibility, 'public');
  assert.deepEqual(gold.required_extra_specs, { driver_handles_share_servers: 'False' });
  assert.deepEqual(gold.optional_extra_specs, { snapshot_support: 'True', tier: '1' });

  // Scoped: an unscoped spec is a capability the scheduler would look for (Manila's capabilities filter).
  await ok('share', 'type', 'set', 'gold', '--extra-specs', 'acme:speed=fast', '--description', 'Gold!');
  await ok('share', 'type', 'unset', 'gold', 'tier');
  const shown = await ok('share', 'type', 'show', gold.id, '-f', 'json');
  assert.deepEqual(shown.optional_extra_specs, { snapshot_support: 'True', 'acme:speed': 'fast' });
  assert.equal(shown.description, 'Gold!');

  const priv = await ok('share', 'type', 'create', 'private', 'false', '--public', 'false', '-f', 'json');
  assert.equal(priv.visibility, 'private');
  // Granted by project name, as `openstack share type access create` sends what was typed.
  await ok('share', 'type', 'access', 'create', 'private', 'admin');
  const granted = await ok('share', 'type', 'access', 'list', 'private', '-f', 'json');
  assert.equal(granted.length, 1);
  assert.match(granted[0]['Project ID'], /^[0-9a-f]{32}$/);
  await ok('share', 'type', 'access', 'delete', 'private', granted[0]['Project ID']);

  const publicOnly = await ok('share', 'type', 'list', '-f', 'json');
  assert.deepEqual(publicOnly.map((t: { Name: string }) => t.Name).sort(), ['default', 'gold']);
  const all = await ok('share', 'type', 'list', '--all', '-f', 'json');
  assert.deepEqual(all.map((t: { Name: string }) => t.Name).sort(), ['default', 'gold', 'private']);
  assert.equal(all.find((t: { Name: string }) => t.Name === 'default')['Is Default'], true);

  const s = await ok(
    'share',
    'create',
    'NFS',
    '1',
    '--name',
    'golden',
    '--share-type',
    'gold',
    '--wait',
    '-f',
    'json',
  );
  assert.equal(s.share_type_name, 'gold');
  const byType = await ok('share', 'list', '--share-type', 'gold', '-f', 'value', '-c', 'Name');
  assert.equal(byType, 'golden\n');
  await ok('share', 'delete', 'golden', '--wait');

  await ok('share', 'type', 'delete', 'gold', 'private');
  const missing = await fails(1, 'share', 'type', 'show', 'gold');
  assert.match(missing.stderr, /No share type with a name or ID of 'gold' exists\./);
});

test('availability zones and services', async () => {
  const zones = await ok('share', 'availability', 'zone', 'list', '-f', 'json');
  assert.deepEqual(zones.map((z: { Name: string }) => z.Name).sort(), ['nova', 'slow']);
  assert.deepEqual(Object.keys(zones[0]), ['Id', 'Name', 'Created At', 'Updated At']);
  const services = await ok('share', 'service', 'list', '--binary', 'manila-share', '-f', 'json');
  assert.deepEqual(services.map((s: { Host: string }) => s.Host.split('@')[1]).sort(), ['fast', 'slow']);
  assert.ok(
    services.every((s: { State: string; Status: string }) => s.State === 'up' && s.Status === 'enabled'),
  );
});

test('output formats: table, value, yaml, csv, shell, --noindent, -c, --sort-column', {
  timeout: 120_000,
}, async () => {
  await ok('share', 'create', 'NFS', '3', '--name', 'fmt-b', '--wait');
  await ok('share', 'create', 'NFS', '1', '--name', 'fmt-a', '--wait');
  // `--name~ fmt-` leaves out the share the timeout test left creating.
  const [table, value, yaml, csv, shell, compact, sorted, empty, printEmpty] = await Promise.all([
    ok('share', 'list', '--name~', 'fmt-', '-c', 'Name', '-c', 'Size', '--sort-column', 'Name'),
    ok(
      'share',
      'list',
      '--name~',
      'fmt-',
      '-f',
      'value',
      '-c',
      'Size',
      '-c',
      'Name',
      '--sort-column',
      'Size',
    ),
    ok('share', 'show', 'fmt-a', '-f', 'yaml'),
    ok('share', 'list', '--name~', 'fmt-', '-f', 'csv', '-c', 'Name', '-c', 'Size', '--sort-column', 'Name'),
    ok('share', 'show', 'fmt-a', '-f', 'shell', '-c', 'name', '-c', 'size', '--prefix', 'share_'),
    runAbaca(srv, ['share', 'show', 'fmt-a', '-f', 'json', '--noindent', '-c', 'name', '-c', 'size'], env),
    ok(
      'share',
      'list',
      '--name~',
      'fmt-',
      '-f',
      'json',
      '-c',
      'Name',
      '--sort-column',
      'Size',
      '--sort-descending',
    ),
    ok('share', 'list', '--name', 'nothing-matches'),
    ok('share', 'list', '--name', 'nothing-matches', '--print-empty', '-c', 'ID'),
  ]);
  assert.equal(
    table,
    [
      '+-------+------+',
      '| Name  | Size |',
      '+-------+------+',
      '| fmt-a |    1 |',
      '| fmt-b |    3 |',
      '+-------+------+',
      '',
    ].join('\n'),
  );
  // Columns come in the list's order, whatever the order of -c.
  assert.equal(value, 'fmt-a 1\nfmt-b 3\n');
  const doc = parseYaml(yaml);
  assert.equal(doc.name, 'fmt-a');
  assert.equal(doc.size, 1);
  assert.equal(csv, '"Name","Size"\n"fmt-a",1\n"fmt-b",3\n');
  assert.equal(shell, 'share_name="fmt-a"\nshare_size="1"\n');
  assert.equal(compact.stdout, '{"name":"fmt-a","size":1}\n');
  assert.deepEqual(sorted, [{ Name: 'fmt-b' }, { Name: 'fmt-a' }]);
  assert.equal(empty, '');
  assert.equal(printEmpty, '+----+\n| ID |\n+----+\n+----+\n');

  const badColumn = await fails(2, 'share', 'list', '-c', 'Nope');
  assert.match(
    badColumn.stderr,
    /No recognized column names in 'Nope'\. Recognized columns are 'ID', 'Name'/,
  );
  await ok('share', 'delete', 'fmt-a', 'fmt-b', '--wait');
});
