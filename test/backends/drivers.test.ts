import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  BackendConfigError,
  createBackend,
  DEFAULT_AVAILABILITY_ZONE,
  parseBackendSpec,
} from '../../backends/drivers.ts';

async function rejectsConfig(spec: unknown, message: RegExp): Promise<void> {
  await assert.rejects(createBackend(spec), (err: unknown) => {
    assert.ok(err instanceof BackendConfigError, String(err));
    assert.match(err.message, message);
    return true;
  });
}

test('drivers: a memory backend from its spec, options passed through', async (t) => {
  const backend = await createBackend({
    name: 'mem',
    driver: 'memory',
    options: {
      pools: [{ name: 'p1', totalCapacityGiB: 5 }],
      capabilities: { revertToSnapshotSupport: false },
    },
  });
  t.after(() => backend.close());
  assert.equal(backend.name, 'mem');
  const stats = await backend.stats();
  assert.equal(stats.driver, 'memory');
  assert.deepEqual(
    stats.pools.map((p) => [p.name, p.totalCapacityGiB]),
    [['p1', 5]],
  );
  assert.equal(stats.capabilities.revertToSnapshotSupport, false);
  assert.equal(stats.capabilities.snapshotSupport, true);
});

test('drivers: a local backend from its spec works in its rootDir', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'abaca-registry-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const backend = await createBackend({
    name: 'dev',
    driver: 'local',
    availabilityZone: 'zone-a',
    options: { rootDir: dir, capacityGiB: 20, reflink: 'never' },
  });
  t.after(() => backend.close());
  const [loc] = await backend.createShare({ id: 'share1', size: 1, shareProto: 'NFS', pool: 'local' });
  assert.equal(loc?.path, join(dir, 'shares', 'share1', 'data'));
  assert.equal((await backend.stats()).pools[0]?.totalCapacityGiB, 20);
  assert.deepEqual((await readdir(dir)).sort(), ['shares', 'snapshots', 'tmp']);
});

test('drivers: a local backend slowed down before or after the work of a call', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'abaca-registry-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const share = { id: 'share1', size: 1, shareProto: 'NFS' as const, pool: 'local' };
  const sizeOnDisk = async () =>
    (JSON.parse(await readFile(join(dir, 'shares', 'share1', 'share.json'), 'utf8')) as { size: number })
      .size;
  const make = (delayWhen: 'before' | 'after') =>
    createBackend({
      name: 'slow',
      driver: 'local',
      options: { rootDir: dir, capacityGiB: 20, reflink: 'never', delays: { extendShare: 400 }, delayWhen },
    });
  const after = await make('after');
  t.after(() => after.close());
  await after.createShare(share);
  const started = Date.now();
  const extending = after.extendShare(share, 2);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(await sizeOnDisk(), 2, 'after: the work is done while the call still waits');
  await extending;
  assert.ok(Date.now() - started >= 400);

  const before = await make('before');
  t.after(() => before.close());
  const extendingAgain = before.extendShare(share, 3);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(await sizeOnDisk(), 2, 'before: nothing done while the call waits');
  await extendingAgain;
  assert.equal(await sizeOnDisk(), 3);
  // Calls not listed are not slowed, and the backend is still the local one.
  assert.equal((await before.stats()).driver, 'local');
  await rejectsConfig(
    { name: 'x', driver: 'local', options: { rootDir: dir, capacityGiB: 1, delayWhen: 'during' } },
    /options\.delayWhen/,
  );
});

test('drivers: parseBackendSpec fills defaults', () => {
  const spec = parseBackendSpec({ name: 'm', driver: 'memory' });
  assert.deepEqual(spec, {
    name: 'm',
    driver: 'memory',
    availabilityZone: DEFAULT_AVAILABILITY_ZONE,
    options: {},
  });
  assert.equal(
    parseBackendSpec({ name: 'm', driver: 'memory', availabilityZone: 'az1' }).availabilityZone,
    'az1',
  );
});

test('drivers: an unknown driver names the known ones', async () => {
  await rejectsConfig(
    { name: 'x', driver: 'glusterfs', options: {} },
    /unknown driver "glusterfs".*memory, local/,
  );
});

test('drivers: bad specs and options get messages naming the field', async () => {
  const cases: Array<[unknown, RegExp]> = [
    [undefined, /Invalid backend configuration/],
    [{ driver: 'memory' }, /^Invalid backend configuration: name: /],
    [{ name: 'a@b', driver: 'memory' }, /name: letters, digits/],
    [{ name: 'x', driver: 'memory', availabilityZone: '' }, /availabilityZone/],
    [{ name: 'x', driver: 'local', options: {} }, /options\.rootDir: .*options\.capacityGiB/],
    [{ name: 'x', driver: 'local', options: { rootDir: '/tmp/x', capacityGiB: -1 } }, /options\.capacityGiB/],
    [
      { name: 'x', driver: 'local', options: { rootDir: '/tmp/x', capacityGiB: 1, reflink: 'yes' } },
      /options\.reflink/,
    ],
    [
      { name: 'x', driver: 'local', options: { rootDir: '/tmp/x', capacityGiB: 1, rootdir: 'typo' } },
      /rootdir/,
    ],
    [
      { name: 'x', driver: 'memory', options: { capabilities: { protocols: ['FTP'] } } },
      /options\.capabilities\.protocols\.0/,
    ],
    [{ name: 'x', driver: 'memory', options: { pools: [] } }, /options\.pools/],
  ];
  for (const [spec, message] of cases) await rejectsConfig(spec, message);
});
