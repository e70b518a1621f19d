/**
 * The replicated backend driver against the backend contract (test/backends/contract.ts), over three
 * real bricks and a share server on loopback; then what the contract does not cover: replica counts
 * from the share type, capacity per brick, the tombstone of a share deleted while a brick is down,
 * and access rules enforced on the native protocol.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ReplicatedClient } from '../../../backends/replicated/client/client.ts';
import { createReplicatedBackend } from '../../../backends/replicated/driver.ts';
import type { Backend, ShareRef, SnapshotRef } from '../../../backends/types.ts';
import { backendContract, newId, rejectsWith } from '../contract.ts';
import { Cluster } from './helpers.ts';

let cluster: Cluster;

before(async () => {
  // 30 GiB per brick: small enough that the capacity tests reach the limit without writing data.
  cluster = await Cluster.start({ brickArgs: ['--capacity-gib', '30'] });
});
after(() => cluster?.close());

function driver(): Backend {
  return createReplicatedBackend({
    name: 'replicated1',
    shareServers: [cluster.server.addr],
    adminToken: cluster.adminToken,
  });
}

/** A client of the share with the admin token (held to no access rule), closed after fn. */
async function withShare<T>(share: string, fn: (c: ReplicatedClient) => Promise<T>): Promise<T> {
  const c = await ReplicatedClient.connect({
    host: '127.0.0.1',
    port: cluster.server.port,
    share,
    adminToken: cluster.adminToken,
    timeoutMs: 30_000,
  });
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

const parentOf = (p: string) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');

async function listFiles(c: ReplicatedClient, dir = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await c.readdirEntries(dir)) {
    const p = dir ? `${dir}/${e.name}` : e.name;
    if (e.type === 'dir') out.push(...(await listFiles(c, p)));
    else out.push(p);
  }
  return out.sort();
}

/**
 * A driver that remembers the shares created through it, so a test's cleanup can delete them: the
 * bricks' capacity is small on purpose and the cluster lives for the whole file.
 */
function tracked(made: Set<string>): Backend {
  const b = driver();
  return Object.assign(Object.create(b) as Backend, {
    createShare: (s: ShareRef) => {
      made.add(s.id);
      return b.createShare(s);
    },
    createShareFromSnapshot: (s: ShareRef, snap: SnapshotRef) => {
      made.add(s.id);
      return b.createShareFromSnapshot(s, snap);
    },
  });
}

backendContract('replicated', async () => {
  const made = new Set<string>();
  const backend = tracked(made);
  const opened = [backend];
  return {
    backend,
    cleanup: async () => {
      const b = driver();
      for (const id of made)
        await b.deleteShare({ id, size: 1, shareProto: 'NFS', pool: '' }).catch(() => {});
      for (const x of [b, ...opened]) await x.close();
    },
    write: (id, p, data) =>
      withShare(id, async (c) => {
        if (parentOf(p)) await c.mkdir(parentOf(p), { recursive: true });
        await c.writeFile(p, data);
      }),
    read: (id, p) => withShare(id, (c) => c.readFile(p)).catch(() => undefined),
    remove: (id, p) => withShare(id, (c) => c.unlink(p)),
    list: (id) => withShare(id, (c) => listFiles(c)),
    fill: (id, bytes) =>
      withShare(id, async (c) => {
        // A sparse file: the quota counts logical sizes, the bricks' disks hold nothing.
        await c.create(`fill-${newId()}.bin`);
        const [name] = (await c.readdir('')).filter((n) => n.startsWith('fill-'));
        await c.truncate(name!, bytes);
      }),
    reopen: async () => {
      const b = tracked(made);
      opened.push(b);
      return b;
    },
  };
});

describe('replicated driver beyond the contract', () => {
  const ref = (size = 1, specs: Record<string, string> = {}): ShareRef => ({
    id: newId(),
    size,
    shareProto: 'NATIVE',
    pool: 'zone1',
    specs,
  });

  test('abaca:replica_count from the share type: 1 or 3 replicas; anything else refused', async () => {
    const b = driver();
    const one = ref(1, { 'abaca:replica_count': '1' });
    const three = ref(1);
    await b.createShare(one);
    await b.createShare(three);
    const admin = await cluster.client();
    const replicasOf = async (id: string) =>
      (await admin.call(0x87, { id, token: cluster.adminToken })).header['info'] as { bricks: unknown[] };
    assert.equal((await replicasOf(one.id)).bricks.length, 1);
    assert.equal((await replicasOf(three.id)).bricks.length, 3);
    await rejectsWith(b.createShare(ref(1, { 'abaca:replica_count': '2' })), 'InvalidRequest', /1, 3/);
    await b.close();
  });

  test('export locations name every share server address and stay the same for a new instance', async () => {
    const b = createReplicatedBackend({
      name: 'r',
      shareServers: [cluster.server.addr],
      exportAddresses: ['192.0.2.10:7000', '192.0.2.11:7000'],
      adminToken: cluster.adminToken,
    });
    const share = ref();
    const locs = await b.createShare(share);
    assert.deepEqual(locs, [
      { path: `abaca://192.0.2.10:7000/${share.id}`, preferred: true, isAdminOnly: false },
      { path: `abaca://192.0.2.11:7000/${share.id}`, preferred: false, isAdminOnly: false },
    ]);
    assert.deepEqual(await b.exportLocations(share), locs);
    await b.close();
  });

  test('capacity: each replica reserves the share size on its brick; refusals name the limit', async () => {
    const b = driver();
    const { pools } = await b.stats();
    assert.deepEqual(
      pools.map((p) => p.name),
      ['zone1', 'zone2', 'zone3'],
      'one pool per availability zone of the bricks',
    );
    const before = (await b.stats()).pools.reduce((a, p) => a + p.allocatedCapacityGiB, 0);
    const share = ref(5);
    await b.createShare(share);
    const afterCreate = (await b.stats()).pools.reduce((a, p) => a + p.allocatedCapacityGiB, 0);
    assert.equal(afterCreate, before + 5, 'allocated counts the share once, in its pool');
    await rejectsWith(b.createShare(ref(31)), 'CapacityExceeded', /can promise \d+(\.\d+)? GiB more/);
    await rejectsWith(b.extendShare(share, 40), 'CapacityExceeded');
    await b.deleteShare(share);
    await b.close();
  });

  test('a share deleted while one brick is down never comes back when the brick returns', async () => {
    const b = driver();
    const share = ref();
    await b.createShare(share);
    await withShare(share.id, (c) => c.writeFile('kept', 'data'));
    await cluster.bricks[2]!.kill9();
    await b.deleteShare(share);
    await rejectsWith(b.usage(share), 'NotFound');
    await cluster.restartBrick(2);
    // The returning brick is told to drop it, and no attach can bring it back.
    const admin = await cluster.client();
    for (let i = 0; i < 100; i++) {
      const bricks = await admin.brickStatus();
      if (bricks.every((x) => x['up'])) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await rejectsWith(b.usage(share), 'NotFound');
    await rejectsWith(b.createShare(share), 'InvalidRequest', /was deleted/);
    let gone = false;
    for (let i = 0; i < 50 && !gone; i++) {
      gone = !(await import('node:fs')).existsSync(`${cluster.brickDirs[2]}/shares/${share.id}`);
      if (!gone) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(gone, 'the returning brick removed its copy');
    await b.close();
  });

  test('access: no rule → mount refused; ro → EROFS; a removed rule → EACCES on the next operation', async () => {
    const b = driver();
    const share = ref();
    await b.createShare(share);
    const mount = () =>
      ReplicatedClient.connect({
        host: '127.0.0.1',
        port: cluster.server.port,
        share: share.id,
        timeoutMs: 10_000,
      });
    await assert.rejects(mount(), { code: 'EACCES' });
    const other = {
      id: newId(),
      accessType: 'ip' as const,
      accessTo: '192.0.2.0/24',
      accessLevel: 'rw' as const,
    };
    await b.updateAccess(share, [other]);
    await assert.rejects(mount(), { code: 'EACCES' }, 'a rule for another address');
    const ro = { id: newId(), accessType: 'ip' as const, accessTo: '127.0.0.1', accessLevel: 'ro' as const };
    assert.deepEqual(await b.updateAccess(share, [other, ro]), { [other.id]: 'active', [ro.id]: 'active' });
    const c = await mount();
    try {
      assert.deepEqual(await c.readdir(''), []);
      await assert.rejects(c.writeFile('x', 'y'), { code: 'EROFS' });
      await assert.rejects(c.mkdir('d'), { code: 'EROFS' });
      const rw = { ...ro, id: newId(), accessLevel: 'rw' as const };
      await b.updateAccess(share, [rw]);
      await c.writeFile('x', 'y');
      await b.updateAccess(share, []);
      await assert.rejects(c.readFile('x'), { code: 'EACCES' });
    } finally {
      c.close();
    }
    await b.deleteShare(share);
    await b.close();
  });
});
