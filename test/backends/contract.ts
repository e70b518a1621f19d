/**
 * The contract every backend must pass (docs/backends.md). Each test gets a fresh backend from the
 * harness and cleans it up, even on failure. Data checks need the harness's file access (write/read/
 * remove/list, as a client of the share would do); they are skipped with a message without it.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, type TestContext, test } from 'node:test';
import { BackendError, type BackendErrorCode } from '../../backends/errors.ts';
import type { AccessRule, Backend, ShareRef, SnapshotRef } from '../../backends/types.ts';

const GiB = 1024 ** 3;

export interface BackendHarness {
  backend: Backend;
  cleanup(): Promise<void>;
  /** Writes a file into the share, as a client would (parent directories created). */
  write?(shareId: string, path: string, data: Buffer | string): Promise<void>;
  read?(shareId: string, path: string): Promise<Buffer | undefined>;
  remove?(shareId: string, path: string): Promise<void>;
  /** Every file's path in the share, sorted. */
  list?(shareId: string): Promise<string[]>;
  /** Makes the share use at least `bytes` (cheaply: a sparse file, a usage override). */
  fill?(shareId: string, bytes: number): Promise<void>;
  /** A new backend instance on the same state, as after a restart (the old one stays open). */
  reopen?(): Promise<Backend>;
}

type Files = Required<Pick<BackendHarness, 'write' | 'read' | 'remove' | 'list'>>;

export function newId(): string {
  return randomUUID().replaceAll('-', '');
}

export async function rejectsWith(
  p: Promise<unknown>,
  code: BackendErrorCode,
  message?: RegExp,
): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof BackendError, `expected a BackendError, got ${String(err)}`);
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    if (message) assert.match(err.message, message);
    return true;
  });
}

export function backendContract(label: string, makeBackend: () => Promise<BackendHarness>): void {
  async function withBackend(t: TestContext, fn: (h: BackendHarness, pool: string) => Promise<void>) {
    const h = await makeBackend();
    t.after(() => h.cleanup());
    const pool = (await h.backend.stats()).pools[0]?.name;
    assert.ok(pool, 'stats() lists at least one pool');
    await fn(h, pool);
  }

  /** Runs fn when the harness can touch files, else skips the test saying why. */
  async function withFiles(t: TestContext, fn: (h: BackendHarness, f: Files, pool: string) => Promise<void>) {
    await withBackend(t, async (h, pool) => {
      const { write, read, remove, list } = h;
      if (!write || !read || !remove || !list) {
        t.skip('the harness cannot read and write share files');
        return;
      }
      await fn(h, { write, read, remove, list }, pool);
    });
  }

  function shareRef(pool: string, size = 1): ShareRef {
    return { id: newId(), size, proto: 'NFS', pool };
  }

  /** All files with their contents, for byte-for-byte comparisons. */
  async function contents(f: Files, shareId: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const p of await f.list(shareId))
      out.set(p, (await f.read(shareId, p))?.toString('hex') ?? '<missing>');
    return out;
  }

  async function seed(f: Files, shareId: string): Promise<void> {
    await f.write(shareId, 'a.txt', 'alpha\n');
    await f.write(shareId, 'dir/b.bin', randomBytes(64 * 1024));
    await f.write(shareId, 'dir/sub/c.txt', 'gamma\n');
    await f.write(shareId, 'empty', '');
  }

  async function mutate(f: Files, shareId: string): Promise<void> {
    await f.write(shareId, 'a.txt', 'ALPHA, changed and longer\n');
    await f.write(shareId, 'dir/b.bin', randomBytes(1000));
    await f.remove(shareId, 'dir/sub/c.txt');
    await f.write(shareId, 'new/d.txt', 'delta\n');
  }

  describe(`backend contract: ${label}`, () => {
    describe('shares', () => {
      test('create returns a preferred export location, and exportLocations returns the same', async (t) => {
        await withBackend(t, async ({ backend }, pool) => {
          const share = shareRef(pool);
          const locs = await backend.createShare(share);
          assert.ok(locs.length >= 1);
          assert.ok(locs.some((l) => l.preferred && !l.isAdminOnly && l.path.length > 0));
          assert.deepEqual(await backend.exportLocations(share), locs);
          assert.deepEqual(await backend.usage(share), { usedBytes: 0, files: 0 });
        });
      });

      test('delete removes the share; later calls on it are NotFound', async (t) => {
        await withBackend(t, async ({ backend }, pool) => {
          const share = shareRef(pool);
          await backend.createShare(share);
          await backend.deleteShare(share);
          await rejectsWith(backend.exportLocations(share), 'NotFound');
          await rejectsWith(backend.usage(share), 'NotFound');
          await rejectsWith(backend.extendShare(share, 2), 'NotFound');
          await rejectsWith(backend.shrinkShare(share, 1), 'NotFound');
          await rejectsWith(backend.updateAccess(share, []), 'NotFound');
          await rejectsWith(backend.createSnapshot({ id: newId(), shareId: share.id, size: 1 }), 'NotFound');
        });
      });

      test('extend grows the share and its allocation', async (t) => {
        await withBackend(t, async ({ backend }, pool) => {
          const share = shareRef(pool, 1);
          const before = await allocated(backend, pool);
          await backend.createShare(share);
          await backend.extendShare(share, 3);
          assert.equal(await allocated(backend, pool), before + 3);
          await rejectsWith(backend.extendShare({ ...share, size: 3 }, 2), 'InvalidRequest');
        });
      });

      test('shrink succeeds when the data fits', async (t) => {
        await withBackend(t, async ({ backend }, pool) => {
          const share = shareRef(pool, 3);
          const before = await allocated(backend, pool);
          await backend.createShare(share);
          await backend.shrinkShare(share, 1);
          assert.equal(await allocated(backend, pool), before + 1);
          await rejectsWith(backend.shrinkShare({ ...share, size: 1 }, 2), 'InvalidRequest');
        });
      });

      test('shrink below the space in use is refused with the data and size untouched', async (t) => {
        await withFiles(t, async (h, f, pool) => {
          if (!h.fill) return t.skip('the harness cannot fill a share');
          const { backend } = h;
          const share = shareRef(pool, 3);
          const before = await allocated(backend, pool);
          await backend.createShare(share);
          await seed(f, share.id);
          const data = await contents(f, share.id);
          await h.fill(share.id, 1.5 * GiB);
          const used = (await backend.usage(share)).usedBytes;
          assert.ok(used > 1.5 * GiB, `usage ${used} counts the fill`);
          await rejectsWith(backend.shrinkShare(share, 1), 'ShrinkPossibleDataLoss');
          assert.equal(await allocated(backend, pool), before + 3, 'size unchanged');
          assert.equal((await backend.usage(share)).usedBytes, used);
          for (const [p, hex] of data) assert.equal((await f.read(share.id, p))?.toString('hex'), hex, p);
          await backend.shrinkShare(share, 2);
          assert.equal(await allocated(backend, pool), before + 2);
        });
      });

      test('sizes must be whole GiB ≥ 1 and the protocol known', async (t) => {
        await withBackend(t, async ({ backend }, pool) => {
          await rejectsWith(backend.createShare(shareRef(pool, 0)), 'InvalidRequest');
          await rejectsWith(backend.createShare(shareRef(pool, 1.5)), 'InvalidRequest');
          await rejectsWith(
            backend.createShare({ ...shareRef(pool), proto: 'FTP' as 'NFS' }),
            'InvalidRequest',
          );
          const share = shareRef(pool, 2);
          await backend.createShare(share);
          await rejectsWith(backend.extendShare(share, 2.5), 'InvalidRequest');
          await rejectsWith(backend.shrinkShare(share, 0), 'InvalidRequest');
        });
      });

      test('ids that are not plain ids are refused with InvalidRequest', async (t) => {
        await withBackend(t, async ({ backend }, pool) => {
          for (const id of ['', '.', '..', '../x', 'a/b', '/abs', 'x\0y', '.hidden', 'a..b']) {
            const share = { id, size: 1, proto: 'NFS' as const, pool };
            await rejectsWith(backend.createShare(share), 'InvalidRequest');
            await rejectsWith(backend.deleteShare(share), 'InvalidRequest');
            await rejectsWith(backend.usage(share), 'InvalidRequest');
            await rejectsWith(backend.createSnapshot({ id, shareId: newId(), size: 1 }), 'InvalidRequest');
            await rejectsWith(backend.deleteSnapshot({ id, shareId: newId(), size: 1 }), 'InvalidRequest');
          }
        });
      });

      test('usage sums the bytes and counts the files', async (t) => {
        await withFiles(t, async ({ backend }, f, pool) => {
          const share = shareRef(pool);
          await backend.createShare(share);
          await f.write(share.id, 'x', Buffer.alloc(1000));
          await f.write(share.id, 'd/y', Buffer.alloc(24));
          await f.write(share.id, 'd/e/z', '');
          assert.deepEqual(await backend.usage(share), { usedBytes: 1024, files: 3 });
          await f.remove(share.id, 'x');
          assert.deepEqual(await backend.usage(share), { usedBytes: 24, files: 2 });
        });
      });
    });

    describe('snapshots', () => {
      test('a snapshot keeps the data as it was; create-from-snapshot gets that data', async (t) => {
        await withFiles(t, async ({ backend }, f, pool) => {
          const share = shareRef(pool, 2);
          await backend.createShare(share);
          await seed(f, share.id);
          const original = await contents(f, share.id);
          const snap: SnapshotRef = { id: newId(), shareId: share.id, size: share.size };
          await backend.createSnapshot(snap);
          await mutate(f, share.id);
          const clone = shareRef(pool, 2);
          const locs = await backend.createShareFromSnapshot(clone, snap);
          assert.ok(locs.some((l) => l.preferred));
          assert.notDeepEqual(locs, await backend.exportLocations(share));
          assert.deepEqual(await contents(f, clone.id), original);
          assert.deepEqual(await backend.usage(clone), await usageOf(f, clone.id));
        });
      });

      test('revert makes the share equal to the snapshot, byte for byte; the snapshot remains', async (t) => {
        await withFiles(t, async ({ backend }, f, pool) => {
          const share = shareRef(pool);
          await backend.createShare(share);
          await seed(f, share.id);
          const original = await contents(f, share.id);
          const snap: SnapshotRef = { id: newId(), shareId: share.id, size: share.size };
          await backend.createSnapshot(snap);
          await mutate(f, share.id);
          assert.notDeepEqual(await contents(f, share.id), original);
          await backend.revertToSnapshot(share, snap);
          assert.deepEqual(await contents(f, share.id), original);
          // The snapshot survives the revert and can be used again.
          await f.write(share.id, 'after-revert', 'x');
          await backend.revertToSnapshot(share, snap);
          assert.deepEqual(await contents(f, share.id), original);
        });
      });

      test("after a revert the share has the snapshot's size, as in Manila", async (t) => {
        await withBackend(t, async ({ backend }, pool) => {
          const share = shareRef(pool, 2);
          const base = await allocated(backend, pool);
          await backend.createShare(share);
          const snap: SnapshotRef = { id: newId(), shareId: share.id, size: 2 };
          await backend.createSnapshot(snap);
          await backend.extendShare(share, 5);
          await backend.revertToSnapshot({ ...share, size: 5 }, snap);
          assert.equal(await allocated(backend, pool), base + 2);
          await backend.shrinkShare(share, 1);
          await backend.revertToSnapshot({ ...share, size: 1 }, snap);
          assert.equal(await allocated(backend, pool), base + 2);
        });
      });

      test('a share made from a snapshot is independent of its source and of the snapshot', async (t) => {
        await withFiles(t, async ({ backend }, f, pool) => {
          const share = shareRef(pool);
          await backend.createShare(share);
          await seed(f, share.id);
          const original = await contents(f, share.id);
          const snap: SnapshotRef = { id: newId(), shareId: share.id, size: share.size };
          await backend.createSnapshot(snap);
          const clone = shareRef(pool);
          await backend.createShareFromSnapshot(clone, snap);
          await mutate(f, clone.id);
          await f.write(clone.id, 'only-in-clone', 'c');
          assert.deepEqual(await contents(f, share.id), original, 'source unchanged');
          await f.write(share.id, 'only-in-source', 's');
          assert.equal(await f.read(clone.id, 'only-in-source'), undefined);
          const second = shareRef(pool);
          await backend.createShareFromSnapshot(second, snap);
          assert.deepEqual(await contents(f, second.id), original, 'snapshot unchanged');
          // Deleting the clone leaves the source and the snapshot.
          await backend.deleteShare(clone);
          assert.equal((await f.read(share.id, 'a.txt'))?.toString(), 'alpha\n');
        });
      });

      test('snapshot errors: missing share or snapshot, wrong share, too small a clone', async (t) => {
        await withBackend(t, async ({ backend }, pool) => {
          const share = shareRef(pool, 2);
          const other = shareRef(pool, 2);
          await backend.createShare(share);
          await backend.createShare(other);
          const snap: SnapshotRef = { id: newId(), shareId: share.id, size: 2 };
          await backend.createSnapshot(snap);
          const missing: SnapshotRef = { id: newId(), shareId: share.id, size: 1 };
          await rejectsWith(backend.createShareFromSnapshot(shareRef(pool, 2), missing), 'NotFound');
          await rejectsWith(backend.revertToSnapshot(share, missing), 'NotFound');
          await rejectsWith(
            backend.revertToSnapshot(other, { ...snap, shareId: other.id }),
            'InvalidRequest',
          );
          await rejectsWith(backend.createShareFromSnapshot(shareRef(pool, 1), snap), 'InvalidRequest');
          await rejectsWith(backend.createSnapshot({ ...snap, shareId: other.id }), 'InvalidRequest');
          await backend.deleteSnapshot(snap);
          await rejectsWith(backend.createShareFromSnapshot(shareRef(pool, 2), snap), 'NotFound');
        });
      });
    });

    describe('access', () => {
      const rule = (accessTo: string, accessLevel: 'rw' | 'ro' = 'rw'): AccessRule => ({
        id: newId(),
        accessType: 'ip',
        accessTo,
        accessLevel,
      });

      test('updateAccess applies the full set: rules left out are gone', async (t) => {
        await withBackend(t, async ({ backend }, pool) => {
          const share = shareRef(pool);
          await backend.createShare(share);
          const r1 = rule('10.0.0.1');
          const r2 = rule('10.0.0.0/24', 'ro');
          const r3 = rule('2001:db8::/64');
          assert.deepEqual(await backend.updateAccess(share, [r1, r2]), {
            [r1.id]: 'active',
            [r2.id]: 'active',
          });
          assert.deepEqual(await backend.updateAccess(share, [r2, r3]), {
            [r2.id]: 'active',
            [r3.id]: 'active',
          });
          assert.deepEqual(await backend.updateAccess(share, []), {});
        });
      });

      test('a rule type the backend cannot honour is never reported active', async (t) => {
        await withBackend(t, async ({ backend }, pool) => {
          const { capabilities } = await backend.stats();
          const unsupported = (['ip', 'user', 'cert', 'cephx'] as const).find(
            (x) => !capabilities.accessTypes.includes(x),
          );
          if (!unsupported) return t.skip('the backend honours every access type');
          const share = shareRef(pool);
          await backend.createShare(share);
          const good = rule('192.0.2.7');
          const bad: AccessRule = {
            id: newId(),
            accessType: unsupported,
            accessTo: 'alice',
            accessLevel: 'rw',
          };
          try {
            const states = await backend.updateAccess(share, [good, bad]);
            assert.equal(states[bad.id], 'error');
            assert.equal(states[good.id], 'active');
          } catch (err) {
            assert.ok(err instanceof BackendError && err.code === 'NotSupported', String(err));
          }
        });
      });
    });

    describe('capacity', () => {
      test('stats describe the backend, and allocation follows create, extend, shrink and delete', async (t) => {
        await withBackend(t, async ({ backend }, pool) => {
          const stats = await backend.stats();
          assert.equal(stats.backendName, backend.name);
          assert.equal(stats.capabilities.driverHandlesShareServers, false);
          assert.ok(stats.capabilities.protocols.length > 0);
          for (const p of stats.pools) {
            assert.ok(p.freeCapacityGiB >= 0 && p.freeCapacityGiB <= p.totalCapacityGiB, JSON.stringify(p));
            assert.ok(p.allocatedCapacityGiB >= 0);
          }
          const p0 = stats.pools[0]!;
          const share = shareRef(pool, 2);
          await backend.createShare(share);
          let p1 = (await backend.stats()).pools[0]!;
          assert.equal(p1.allocatedCapacityGiB, p0.allocatedCapacityGiB + 2);
          assert.ok(p1.freeCapacityGiB <= p0.freeCapacityGiB);
          await backend.extendShare(share, 4);
          p1 = (await backend.stats()).pools[0]!;
          assert.equal(p1.allocatedCapacityGiB, p0.allocatedCapacityGiB + 4);
          await backend.shrinkShare(share, 3);
          assert.equal(await allocated(backend, pool), p0.allocatedCapacityGiB + 3);
          await backend.deleteShare(share);
          p1 = (await backend.stats()).pools[0]!;
          assert.equal(p1.allocatedCapacityGiB, p0.allocatedCapacityGiB);
        });
      });

      test('a share larger than the free capacity is refused and nothing is allocated', async (t) => {
        await withBackend(t, async ({ backend }, pool) => {
          const p0 = (await backend.stats()).pools[0]!;
          const tooBig = Math.floor(p0.totalCapacityGiB - p0.allocatedCapacityGiB) + 1;
          const share = shareRef(pool, tooBig);
          await rejectsWith(backend.createShare(share), 'CapacityExceeded');
          await rejectsWith(backend.usage(share), 'NotFound');
          assert.equal(await allocated(backend, pool), p0.allocatedCapacityGiB);
          const small = shareRef(pool, 1);
          await backend.createShare(small);
          await rejectsWith(backend.extendShare(small, tooBig + 1), 'CapacityExceeded');
          assert.equal(await allocated(backend, pool), p0.allocatedCapacityGiB + 1);
        });
      });
    });

    describe('idempotency (every call repeated, as after a crash)', () => {
      test('create, extend, shrink and delete of a share', async (t) => {
        await withBackend(t, async ({ backend }, pool) => {
          const share = shareRef(pool, 2);
          const base = await allocated(backend, pool);
          const locs = await backend.createShare(share);
          assert.deepEqual(await backend.createShare(share), locs);
          assert.equal(await allocated(backend, pool), base + 2);
          await rejectsWith(backend.createShare({ ...share, size: 5 }), 'InvalidRequest');
          await backend.extendShare(share, 4);
          await backend.extendShare(share, 4);
          assert.equal(await allocated(backend, pool), base + 4);
          await backend.shrinkShare({ ...share, size: 4 }, 3);
          await backend.shrinkShare({ ...share, size: 4 }, 3);
          assert.equal(await allocated(backend, pool), base + 3);
          await backend.deleteShare(share);
          await backend.deleteShare(share);
          await backend.deleteShare(shareRef(pool)); // never existed
          assert.equal(await allocated(backend, pool), base);
        });
      });

      test('snapshots: a repeated create keeps the first copy; repeated deletes succeed', async (t) => {
        await withFiles(t, async ({ backend }, f, pool) => {
          const share = shareRef(pool);
          await backend.createShare(share);
          await f.write(share.id, 'v', 'one');
          const snap: SnapshotRef = { id: newId(), shareId: share.id, size: 1 };
          await backend.createSnapshot(snap);
          await f.write(share.id, 'v', 'two');
          await backend.createSnapshot(snap);
          await backend.revertToSnapshot(share, snap);
          await backend.revertToSnapshot(share, snap);
          assert.equal((await f.read(share.id, 'v'))?.toString(), 'one');
          const clone = shareRef(pool);
          const locs = await backend.createShareFromSnapshot(clone, snap);
          await f.write(clone.id, 'v', 'three');
          assert.deepEqual(await backend.createShareFromSnapshot(clone, snap), locs);
          assert.equal((await f.read(clone.id, 'v'))?.toString(), 'three', 'a repeat does not re-copy');
          await backend.deleteSnapshot(snap);
          await backend.deleteSnapshot(snap);
          await backend.deleteSnapshot({ id: newId(), shareId: share.id, size: 1 });
          await rejectsWith(backend.revertToSnapshot(share, snap), 'NotFound');
        });
      });

      test('updateAccess with the same set gives the same states', async (t) => {
        await withBackend(t, async ({ backend }, pool) => {
          const share = shareRef(pool);
          await backend.createShare(share);
          const rules: AccessRule[] = [
            { id: newId(), accessType: 'ip', accessTo: '198.51.100.0/24', accessLevel: 'rw' },
            { id: newId(), accessType: 'ip', accessTo: '198.51.100.9', accessLevel: 'ro' },
          ];
          const first = await backend.updateAccess(share, rules);
          assert.deepEqual(await backend.updateAccess(share, rules), first);
          assert.deepEqual(Object.keys(first).sort(), rules.map((r) => r.id).sort());
        });
      });

      test('a new backend instance on the same state sees the same shares and export locations', async (t) => {
        await withBackend(t, async (h, pool) => {
          if (!h.reopen) return t.skip('the harness cannot reopen the backend');
          const share = shareRef(pool, 2);
          const locs = await h.backend.createShare(share);
          await h.write?.(share.id, 'kept', 'yes');
          const again = await h.reopen();
          try {
            assert.deepEqual(await again.exportLocations(share), locs);
            assert.deepEqual(await again.createShare(share), locs);
            assert.equal(await allocated(again, pool), await allocated(h.backend, pool));
            if (h.read) assert.equal((await h.read(share.id, 'kept'))?.toString(), 'yes');
          } finally {
            await again.close();
          }
        });
      });
    });
  });

  async function usageOf(f: Files, shareId: string): Promise<{ usedBytes: number; files: number }> {
    const paths = await f.list(shareId);
    let usedBytes = 0;
    for (const p of paths) usedBytes += (await f.read(shareId, p))?.length ?? 0;
    return { usedBytes, files: paths.length };
  }
}

async function allocated(backend: Backend, pool: string): Promise<number> {
  const p = (await backend.stats()).pools.find((x) => x.name === pool);
  assert.ok(p, `pool ${pool} in stats`);
  return p.allocatedCapacityGiB;
}
