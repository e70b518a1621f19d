import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BackendError } from '../../backends/errors.ts';
import {
  createMemoryBackend,
  createMemoryStore,
  type MemoryBackend,
  type MemoryBackendOptions,
} from '../../backends/memory.ts';
import type { ShareRef } from '../../backends/types.ts';
import { backendContract, newId, rejectsWith } from './contract.ts';

backendContract('memory', async () => {
  const store = createMemoryStore();
  // Like a real NFS backend: ip and user rules only, so the contract's refusal test applies here too.
  const backend = createMemoryBackend({ name: 'mem1', store, capabilities: { accessTypes: ['ip', 'user'] } });
  const opened: MemoryBackend[] = [backend];
  return {
    backend,
    cleanup: async () => {
      for (const b of opened) await b.close();
    },
    write: async (id, p, data) => backend.writeFile(id, p, data),
    read: async (id, p) => backend.readFile(id, p),
    remove: async (id, p) => backend.removeFile(id, p),
    list: async (id) => backend.listFiles(id),
    fill: async (id, bytes) => {
      const { usedBytes } = await backend.usage({ id, size: 1, shareProto: 'NFS', pool: 'memory' });
      backend.setUsage(id, { usedBytes: usedBytes + bytes });
    },
    reopen: async () => {
      const b = createMemoryBackend({ name: 'mem1', store, capabilities: { accessTypes: ['ip', 'user'] } });
      opened.push(b);
      return b;
    },
  };
});

function setup(t: import('node:test').TestContext, options: MemoryBackendOptions = {}) {
  const backend = createMemoryBackend(options);
  t.after(() => backend.close());
  const share = (size = 1, pool = 'memory'): ShareRef => ({ id: newId(), size, shareProto: 'NFS', pool });
  return { backend, share };
}

test('memory: an injected error fails the given number of calls, then calls succeed', async (t) => {
  const { backend, share } = setup(t);
  const s = share();
  backend.inject({ op: 'createShare', error: new BackendError('Failed', 'disk on fire'), times: 1 });
  await rejectsWith(backend.createShare(s), 'Failed', /disk on fire/);
  assert.equal(backend.share(s.id), undefined, 'a failure before the work leaves nothing');
  await backend.createShare(s);
  assert.equal(backend.share(s.id)?.size, 1);
});

test('memory: injections can target one id and persist until cleared', async (t) => {
  const { backend, share } = setup(t);
  const a = share();
  const b = share();
  backend.inject({ op: 'createShare', id: a.id, error: new BackendError('Unavailable', 'no quorum') });
  await backend.createShare(b);
  await rejectsWith(backend.createShare(a), 'Unavailable');
  await rejectsWith(backend.createShare(a), 'Unavailable');
  backend.clearInjections();
  await backend.createShare(a);
  assert.deepEqual(
    backend.calls.filter((c) => c.op === 'createShare').map((c) => c.id),
    [b.id, a.id, a.id, a.id],
  );
});

test("memory: when 'after', the work is done before the error, and a re-run succeeds", async (t) => {
  const { backend, share } = setup(t);
  const s = share(1);
  await backend.createShare(s);
  backend.inject({
    op: 'extendShare',
    error: new BackendError('Failed', 'lost reply'),
    when: 'after',
    times: 1,
  });
  await rejectsWith(backend.extendShare(s, 2), 'Failed');
  assert.equal(backend.share(s.id)?.size, 2);
  await backend.extendShare(s, 2);
  assert.equal(backend.share(s.id)?.size, 2);
});

test('memory: an injected delay slows the call down; close() cuts pending delays short', async (t) => {
  const { backend, share } = setup(t);
  const s = share();
  await backend.createShare(s);
  backend.inject({ op: 'extendShare', delayMs: 80, times: 1 });
  const start = performance.now();
  await backend.extendShare(s, 2);
  assert.ok(performance.now() - start >= 75, 'delayed');
  backend.inject({ op: 'shrinkShare', delayMs: 60_000 });
  const slow = backend.shrinkShare(s, 1);
  await new Promise((r) => setTimeout(r, 10));
  await backend.close();
  await rejectsWith(slow, 'Unavailable');
  assert.equal(backend.share(s.id)?.size, 2, 'the interrupted shrink did nothing');
  await rejectsWith(backend.stats(), 'Unavailable');
});

test('memory: disabled capabilities are refused with NotSupported', async (t) => {
  const { backend, share } = setup(t, {
    capabilities: {
      snapshotSupport: false,
      revertToSnapshotSupport: false,
      createShareFromSnapshotSupport: false,
      protocols: ['CIFS'],
    },
  });
  const stats = await backend.stats();
  assert.equal(stats.capabilities.snapshotSupport, false);
  assert.equal(stats.capabilities.mountSnapshotSupport, false);
  await rejectsWith(backend.createShare(share()), 'NotSupported', /NFS/);
  const s = { ...share(), shareProto: 'CIFS' as const };
  await backend.createShare(s);
  const snap = { id: newId(), shareId: s.id, size: 1 };
  await rejectsWith(backend.createSnapshot(snap), 'NotSupported');
  await rejectsWith(backend.revertToSnapshot(s, snap), 'NotSupported');
  await rejectsWith(
    backend.createShareFromSnapshot({ ...share(), shareProto: 'CIFS' }, snap),
    'NotSupported',
  );
});

test('memory: access types outside the capabilities are reported as error, the rest active', async (t) => {
  const { backend, share } = setup(t, { capabilities: { accessTypes: ['ip', 'cephx'] } });
  const s = share();
  await backend.createShare(s);
  const states = await backend.updateAccess(s, [
    { id: 'r1', accessType: 'ip', accessTo: '10.0.0.0/8', accessLevel: 'rw' },
    { id: 'r2', accessType: 'user', accessTo: 'alice', accessLevel: 'ro' },
    { id: 'r3', accessType: 'cephx', accessTo: 'client.k8s', accessLevel: 'rw' },
  ]);
  assert.deepEqual(states, { r1: 'active', r2: 'error', r3: 'active' });
  assert.deepEqual(backend.share(s.id)?.accessStates, states);
  await rejectsWith(
    backend.updateAccess(s, [
      { id: 'r1', accessType: 'ip', accessTo: '10.0.0.1', accessLevel: 'rw' },
      { id: 'r1', accessType: 'ip', accessTo: '10.0.0.2', accessLevel: 'rw' },
    ]),
    'InvalidRequest',
  );
});

test('memory: pools are accounted separately; an unknown pool is refused', async (t) => {
  const { backend, share } = setup(t, {
    pools: [
      { name: 'fast', totalCapacityGiB: 10 },
      { name: 'slow', totalCapacityGiB: 100 },
    ],
  });
  await backend.createShare(share(8, 'fast'));
  await rejectsWith(backend.createShare(share(3, 'fast')), 'CapacityExceeded');
  await backend.createShare(share(50, 'slow'));
  await rejectsWith(backend.createShare(share(1, 'nowhere')), 'InvalidRequest', /nowhere/);
  const pools = (await backend.stats()).pools;
  assert.deepEqual(pools, [
    { name: 'fast', totalCapacityGiB: 10, allocatedCapacityGiB: 8, freeCapacityGiB: 2 },
    { name: 'slow', totalCapacityGiB: 100, allocatedCapacityGiB: 50, freeCapacityGiB: 50 },
  ]);
});

test('memory: file helpers, usage override and admin export locations', async (t) => {
  const { backend, share } = setup(t, { adminExportLocation: true, exportHost: '192.0.2.1' });
  const s = share();
  const locs = await backend.createShare(s);
  assert.deepEqual(locs, [
    { path: `192.0.2.1:/shares/${s.id}`, preferred: true, isAdminOnly: false },
    { path: `192.0.2.1:/admin/shares/${s.id}`, preferred: false, isAdminOnly: true },
  ]);
  backend.writeFile(s.id, 'a/b', 'hello');
  const read = backend.readFile(s.id, 'a/b');
  assert.equal(read?.toString(), 'hello');
  read?.fill(0); // a copy: changing it does not change the share
  assert.equal(backend.readFile(s.id, 'a/b')?.toString(), 'hello');
  assert.throws(() => backend.writeFile(s.id, '../escape', 'x'), BackendError);
  assert.throws(() => backend.writeFile(newId(), 'x', 'x'), BackendError);
  backend.setUsage(s.id, { usedBytes: 5 * 1024 ** 3 });
  assert.deepEqual(await backend.usage(s), { usedBytes: 5 * 1024 ** 3, files: 1 });
  backend.setUsage(s.id, undefined);
  assert.deepEqual(await backend.usage(s), { usedBytes: 5, files: 1 });
});
