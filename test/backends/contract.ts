/**
 * The contract every backend must pass (docs/backends.md). Each test gets a fresh backend from the
 * harness and cleans it up, even on failure. Data checks need the harness's file access (write/read/
 * remove/list, as a client of the share would do); they are skipped with a message without it.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, type TestContext, test } from 'node:test';
import { inspect, isDeepStrictEqual } from 'node:util';
import { BackendError, type BackendErrorCode } from '../../backends/errors.ts';
import type { AccessRule, Backend, ExportLocation, ShareRef, SnapshotRef } from '../../backends/types.ts';

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
  /**
   * A new backend instance on the same state, as after a restart (the old one stays open). A backend
   * with crash points gets `hooks` (the local backend's onStep option); others ignore them.
   */
  reopen?(hooks?: CrashHooks): Promise<Backend>;
}

/** What a harness hands to a backend instance it opens, for backends that name crash points. */
export interface CrashHooks {
  /**
   * Awaited at each named point inside a multi-step call (the local backend's LOCAL_STEPS). Throwing
   * fails the call there; never returning stands for the process dying there.
   */
  onStep?(step: string, id: string): void | Promise<void>;
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

export interface ContractOptions {
  /**
   * The backend names crash points (the local backend's onStep) and its harness passes hooks on
   * through reopen(): the crash-and-re-run tests apply. A backend that does all its work in one
   * step (memory) has nothing to crash half-way, so those tests are not registered for it.
   */
  crashPoints?: boolean;
}

export function backendContract(
  label: string,
  makeBackend: () => Promise<BackendHarness>,
  options: ContractOptions = {},
): void {
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
    return { id: newId(), size, shareProto: 'NFS', pool };
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

  /** Fixed data for a workflow, so runs on separate backends can be compared with each other. */
  interface WorkflowData {
    seed: Record<string, Buffer>;
    /** Writes (a buffer) and removals (null) made to the share after its snapshot. */
    changes: Record<string, Buffer | null>;
    cloneChanges: Record<string, Buffer | null>;
  }

  function workflowData(): WorkflowData {
    return {
      seed: {
        'a.txt': Buffer.from('alpha\n'),
        'dir/b.bin': randomBytes(96 * 1024),
        'dir/sub/c.txt': Buffer.from('gamma\n'),
        empty: Buffer.alloc(0),
      },
      changes: { 'a.txt': randomBytes(300), 'dir/sub/c.txt': null, 'new/d.bin': randomBytes(5000) },
      cloneChanges: { 'dir/b.bin': randomBytes(10), 'clone-only': Buffer.from('c\n') },
    };
  }

  async function apply(f: Files, shareId: string, set: Record<string, Buffer | null>): Promise<void> {
    for (const [p, data] of Object.entries(set))
      if (data === null) await f.remove(shareId, p);
      else await f.write(shareId, p, data);
  }

  /** What a workflow observes around each call: both shares' files (null: no such share) and the allocation. */
  interface State {
    share: Map<string, string> | null;
    clone: Map<string, string> | null;
    allocated: number;
  }

  interface Observation {
    call: string;
    before: State;
    after: State;
    /** The call's result, reduced to what is the same on every backend instance and run. */
    result: unknown;
  }

  /** Makes a workflow's backend calls: the runner decides how (once, twice, crashing half-way). */
  interface Runner {
    backend(): Backend;
    /** `state` observes the workflow's shares through the runner's current backend. */
    run(call: string, fn: (b: Backend) => Promise<unknown>, state: () => Promise<State>): Promise<unknown>;
  }

  const ruleA: AccessRule = { id: 'rule-a', accessType: 'ip', accessTo: '203.0.113.0/24', accessLevel: 'rw' };
  const ruleB: AccessRule = { id: 'rule-b', accessType: 'ip', accessTo: '203.0.113.7', accessLevel: 'ro' };

  /**
   * A share's life touching every backend call: create, access, snapshot, change, extend, revert,
   * clone, change the clone, extend and shrink it, delete it and the snapshot. Returns what it saw.
   */
  async function workflow(f: Files, pool: string, r: Runner, d: WorkflowData): Promise<Observation[]> {
    const share = shareRef(pool, 1);
    const clone = shareRef(pool, 1);
    const snap: SnapshotRef = { id: newId(), shareId: share.id, size: 1 };
    const base = await allocated(r.backend(), pool);
    const filesOf = async (s: ShareRef) => {
      // usage() is also what settles a share after a failed call (the local backend recovers there).
      const code = await errorCode(r.backend().usage(s));
      if (code === 'NotFound') return null;
      assert.equal(code, undefined);
      return contents(f, s.id);
    };
    const state = async (): Promise<State> => ({
      share: await filesOf(share),
      clone: await filesOf(clone),
      allocated: (await allocated(r.backend(), pool)) - base,
    });
    // Export locations differ between runs (they name the share): compare them within the run.
    const sameLocations = async (b: Backend, s: ShareRef, locs: ExportLocation[]) =>
      isDeepStrictEqual(locs, await b.exportLocations(s));
    const out: Observation[] = [];
    const call = async (name: string, fn: (b: Backend) => Promise<unknown>) => {
      const before = await state();
      const result = await r.run(name, fn, state);
      out.push({ call: name, before, after: await state(), result });
    };
    await call('createShare', async (b) => sameLocations(b, share, await b.createShare(share)));
    await apply(f, share.id, d.seed);
    await call('updateAccess', (b) => b.updateAccess(share, [ruleA, ruleB]));
    await call('createSnapshot', (b) => b.createSnapshot(snap));
    await apply(f, share.id, d.changes);
    await call('extendShare', (b) => b.extendShare(share, 2));
    await call('revertToSnapshot', (b) => b.revertToSnapshot({ ...share, size: 2 }, snap));
    await call('createShareFromSnapshot', async (b) =>
      sameLocations(b, clone, await b.createShareFromSnapshot(clone, snap)),
    );
    await apply(f, clone.id, d.cloneChanges);
    await call('extendShare (clone)', (b) => b.extendShare(clone, 3));
    await call('shrinkShare (clone)', (b) => b.shrinkShare({ ...clone, size: 3 }, 2));
    await call('usage', (b) => b.usage(share));
    await call('exportLocations', async (b) => sameLocations(b, share, await b.exportLocations(share)));
    await call('deleteShare (clone)', (b) => b.deleteShare(clone));
    await call('deleteSnapshot', (b) => b.deleteSnapshot(snap));
    await call('updateAccess (fewer rules)', (b) => b.updateAccess(share, [ruleB]));
    await call('revert to the deleted snapshot', (b) => errorCode(b.revertToSnapshot(share, snap)));
    return out;
  }

  function onceRunner(b: Backend): Runner {
    return { backend: () => b, run: (_call, fn) => fn(b) };
  }

  /** Every call made twice in a row, as when the worker died after the backend acted; both must agree. */
  function twiceRunner(b: Backend): Runner {
    return {
      backend: () => b,
      async run(call, fn) {
        const first = await fn(b);
        assert.deepEqual(await fn(b), first, `${call} repeated gives the same result`);
        return first;
      },
    };
  }

  /**
   * Crashes the `at`-th crash point the backend reaches (counting from 0), then re-runs the call that
   * crashed: on a new instance when the process "dies" there (the call never returns), on the same one
   * when the call "fails" there (the hook throws). Before the re-run, `settled` is shown the state.
   */
  async function crashingRunner(
    h: BackendHarness & { reopen: NonNullable<BackendHarness['reopen']> },
    mode: 'dies' | 'fails',
    at: number,
    settled: (call: string, now: State) => void,
  ): Promise<Runner & { crashedIn(): string | undefined }> {
    let reached = 0;
    let crashed: string | undefined;
    let fired = false;
    let died = () => {};
    const onStep = (step: string) => {
      if (reached++ !== at) return;
      fired = true;
      if (mode === 'fails') throw new Error(`simulated failure at ${step}`);
      died();
      return new Promise<void>(() => {}); // nothing after this point runs, as if the process died
    };
    let current = await h.reopen({ onStep });
    return {
      backend: () => current,
      crashedIn: () => crashed,
      async run(call, fn, state) {
        const death = new Promise<'died'>((resolve) => {
          died = () => resolve('died');
        });
        const outcome = await Promise.race([
          fn(current).then(
            (value) => ({ value }),
            (error: unknown) => ({ error }),
          ),
          death,
        ]);
        if (outcome !== 'died' && 'value' in outcome) return outcome.value;
        if (outcome !== 'died' && (!fired || crashed !== undefined)) throw outcome.error;
        crashed = call;
        if (outcome === 'died') current = await h.reopen();
        settled(call, await state());
        return fn(current);
      },
    };
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
            backend.createShare({ ...shareRef(pool), shareProto: 'FTP' as 'NFS' }),
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
            const share = { id, size: 1, shareProto: 'NFS' as const, pool };
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
            // With the share as the database knows it by now (a create is re-run only while creating, but
            // a restart must not change what the share is).
            assert.deepEqual(await again.createShare({ ...share, size: 2 }), locs);
            assert.equal(await allocated(again, pool), await allocated(h.backend, pool));
            if (h.read) assert.equal((await h.read(share.id, 'kept'))?.toString(), 'yes');
          } finally {
            await again.close();
          }
        });
      });

      test('revert repeated, also with the pre-revert size in the share ref: the same data and size', async (t) => {
        await withFiles(t, async ({ backend }, f, pool) => {
          const share = shareRef(pool, 1);
          const base = await allocated(backend, pool);
          await backend.createShare(share);
          await seed(f, share.id);
          const original = await contents(f, share.id);
          const snap: SnapshotRef = { id: newId(), shareId: share.id, size: 1 };
          await backend.createSnapshot(snap);
          await backend.extendShare(share, 3);
          await mutate(f, share.id);
          // The worker re-runs the task with the share as the database knows it: still 3 GiB.
          for (let i = 0; i < 3; i++) {
            await backend.revertToSnapshot({ ...share, size: 3 }, snap);
            assert.deepEqual(await contents(f, share.id), original, `revert #${i + 1}`);
            assert.equal(await allocated(backend, pool), base + 1, `size after revert #${i + 1}`);
          }
        });
      });

      test('create from snapshot repeated: same locations, one allocation, no second copy, even once the snapshot is gone', async (t) => {
        await withFiles(t, async ({ backend }, f, pool) => {
          const share = shareRef(pool, 1);
          const base = await allocated(backend, pool);
          await backend.createShare(share);
          await seed(f, share.id);
          const original = await contents(f, share.id);
          const snap: SnapshotRef = { id: newId(), shareId: share.id, size: 1 };
          await backend.createSnapshot(snap);
          const clone = shareRef(pool, 2);
          const locs = await backend.createShareFromSnapshot(clone, snap);
          assert.deepEqual(await backend.createShareFromSnapshot(clone, snap), locs);
          assert.equal(await allocated(backend, pool), base + 3);
          assert.deepEqual(await contents(f, clone.id), original);
          await mutate(f, clone.id);
          const changed = await contents(f, clone.id);
          await backend.deleteSnapshot(snap);
          assert.deepEqual(await backend.createShareFromSnapshot(clone, snap), locs);
          assert.deepEqual(await contents(f, clone.id), changed, 'a repeat does not copy again');
          assert.equal(await allocated(backend, pool), base + 3);
          await rejectsWith(backend.createShareFromSnapshot({ ...clone, size: 3 }, snap), 'InvalidRequest');
        });
      });

      test('deletes of shares and snapshots that are gone or never existed succeed, again and again', async (t) => {
        await withFiles(t, async (h, f, pool) => {
          const { backend } = h;
          const share = shareRef(pool, 1);
          const kept = shareRef(pool, 1);
          const base = await allocated(backend, pool);
          await backend.createShare(share);
          await backend.createShare(kept);
          await f.write(kept.id, 'k', 'kept');
          const snap: SnapshotRef = { id: newId(), shareId: share.id, size: 1 };
          await backend.createSnapshot(snap);
          const ghostShare = shareRef(pool, 1);
          const ghostSnaps: SnapshotRef[] = [
            { id: newId(), shareId: share.id, size: 1 },
            { id: newId(), shareId: ghostShare.id, size: 1 },
          ];
          for (let i = 0; i < 2; i++) {
            await backend.deleteShare(ghostShare);
            for (const g of ghostSnaps) await backend.deleteSnapshot(g);
          }
          // A snapshot whose share is gone is still deleted; then both are gone, repeatedly.
          await backend.deleteShare(share);
          for (let i = 0; i < 2; i++) {
            await backend.deleteSnapshot(snap);
            await backend.deleteShare(share);
          }
          await rejectsWith(backend.createShareFromSnapshot(shareRef(pool, 1), snap), 'NotFound');
          await rejectsWith(backend.usage(share), 'NotFound');
          if (h.reopen) {
            const again = await h.reopen();
            try {
              await again.deleteShare(share);
              await again.deleteSnapshot(snap);
              await again.deleteShare(ghostShare);
            } finally {
              await again.close();
            }
          }
          assert.equal(await allocated(backend, pool), base + 1);
          assert.equal((await f.read(kept.id, 'k'))?.toString(), 'kept', 'other shares untouched');
        });
      });

      test('updateAccess repeated gives the same states, also after a restart; the last set wins', async (t) => {
        await withBackend(t, async (h, pool) => {
          const { backend } = h;
          const share = shareRef(pool);
          await backend.createShare(share);
          const { capabilities } = await backend.stats();
          const unsupported = (['ip', 'user', 'cert', 'cephx'] as const).find(
            (x) => !capabilities.accessTypes.includes(x),
          );
          const rules: AccessRule[] = [
            ruleA,
            ruleB,
            // A rule the backend reports in error must come back in error on a repeat, not vanish.
            ...(unsupported
              ? [{ id: 'rule-x', accessType: unsupported, accessTo: 'alice', accessLevel: 'rw' } as const]
              : []),
          ];
          const first = await backend.updateAccess(share, rules);
          assert.deepEqual(Object.keys(first).sort(), rules.map((r) => r.id).sort());
          assert.deepEqual(await backend.updateAccess(share, rules), first);
          if (h.reopen) {
            const again = await h.reopen();
            try {
              assert.deepEqual(await again.updateAccess(share, rules), first);
            } finally {
              await again.close();
            }
          }
          // A repeat of an older set after a newer one is applied: the set given is what holds.
          assert.deepEqual(await backend.updateAccess(share, [ruleB]), { [ruleB.id]: first[ruleB.id] });
          assert.deepEqual(await backend.updateAccess(share, [ruleB]), { [ruleB.id]: first[ruleB.id] });
          assert.deepEqual(await backend.updateAccess(share, []), {});
          assert.deepEqual(await backend.updateAccess(share, []), {});
        });
      });

      test('a refused shrink repeated is refused again, with the size and data untouched', async (t) => {
        await withFiles(t, async (h, f, pool) => {
          if (!h.fill) return t.skip('the harness cannot fill a share');
          const { backend } = h;
          const share = shareRef(pool, 2);
          const base = await allocated(backend, pool);
          await backend.createShare(share);
          await seed(f, share.id);
          const data = await contents(f, share.id); // before the fill, which is too big to hold as hex
          await h.fill(share.id, 1.25 * GiB);
          const usage = await backend.usage(share);
          for (let i = 0; i < 2; i++) {
            await rejectsWith(backend.shrinkShare(share, 1), 'ShrinkPossibleDataLoss');
            assert.equal(await allocated(backend, pool), base + 2);
            assert.deepEqual(await backend.usage(share), usage);
          }
          for (const [p, hex] of data) assert.equal((await f.read(share.id, p))?.toString('hex'), hex, p);
        });
      });

      test('every call repeated on a restarted instance gives the same result', async (t) => {
        await withFiles(t, async (h, f, pool) => {
          if (!h.reopen) return t.skip('the harness cannot reopen the backend');
          const { backend } = h;
          const base = await allocated(backend, pool);
          const share = shareRef(pool, 1);
          const locs = await backend.createShare(share);
          await seed(f, share.id);
          const original = await contents(f, share.id);
          const snap: SnapshotRef = { id: newId(), shareId: share.id, size: 1 };
          await backend.createSnapshot(snap);
          await backend.extendShare(share, 3);
          await backend.shrinkShare({ ...share, size: 3 }, 2);
          const clone = shareRef(pool, 1);
          const cloneLocs = await backend.createShareFromSnapshot(clone, snap);
          await mutate(f, share.id);
          const states = await backend.updateAccess(share, [ruleA]);
          const again = await h.reopen();
          try {
            // With the share as the database knows it by now (a create is re-run only while creating, but
            // a restart must not change what the share is).
            assert.deepEqual(await again.createShare({ ...share, size: 2 }), locs);
            await again.createSnapshot(snap); // keeps the first copy, not the changed data
            await again.extendShare({ ...share, size: 1 }, 3);
            await again.shrinkShare({ ...share, size: 3 }, 2);
            assert.equal(await allocated(again, pool), base + 2 + 1);
            assert.deepEqual(await again.createShareFromSnapshot(clone, snap), cloneLocs);
            assert.deepEqual(await again.updateAccess(share, [ruleA]), states);
            assert.deepEqual(await again.usage(share), await backend.usage(share));
            await again.revertToSnapshot({ ...share, size: 2 }, snap);
            assert.deepEqual(await contents(f, share.id), original);
            assert.equal(await allocated(again, pool), base + 1 + 1);
            await again.deleteShare(clone);
            await again.deleteSnapshot(snap);
            await backend.deleteShare(clone);
            await backend.deleteSnapshot(snap);
            assert.equal(await allocated(again, pool), base + 1);
          } finally {
            await again.close();
          }
        });
      });

      test('a whole workflow with every call made twice ends as the workflow made once', async (t) => {
        const d = workflowData();
        let once: Observation[] = [];
        await withFiles(t, async ({ backend }, f, pool) => {
          once = await workflow(f, pool, onceRunner(backend), d);
        });
        await withFiles(t, async ({ backend }, f, pool) => {
          assert.deepEqual(await workflow(f, pool, twiceRunner(backend), d), once);
        });
        assert.equal(once.at(-1)?.result, 'NotFound');
      });
    });

    if (options.crashPoints)
      describe('a crash in the middle of a call, then a re-run', () => {
        // The crash points are the ones the backend reaches in an uninterrupted workflow; a backend that
        // names none (its harness passes no hooks on) has nothing to crash half-way and is skipped.
        test('each crash point, the process dying or the call failing there: the re-run ends as if nothing happened', async (t) => {
          const d = workflowData();
          const points: string[] = [];
          let reference: Observation[] = [];
          await withFiles(t, async (h, f, pool) => {
            if (!h.reopen) return;
            const b = await h.reopen({ onStep: (step) => void points.push(step) });
            reference = await workflow(f, pool, onceRunner(b), d);
          });
          assert.ok(
            points.length > 0,
            'the backend reached no crash point (does its harness pass hooks on?)',
          );
          for (const mode of ['dies', 'fails'] as const) {
            for (const [at, point] of points.entries()) {
              await t.test(`${mode} at ${point} (crash point ${at + 1} of ${points.length})`, async (st) => {
                await withFiles(st, async (h, f, pool) => {
                  const reopen = h.reopen;
                  assert.ok(reopen);
                  const runner = await crashingRunner({ ...h, reopen }, mode, at, (call, now) => {
                    // Half-way is never visible: the state is the one before the call or the one after it.
                    const ref = reference.find((o) => o.call === call);
                    assert.ok(ref, call);
                    assert.ok(
                      isDeepStrictEqual(now, ref.before) || isDeepStrictEqual(now, ref.after),
                      `after ${mode === 'dies' ? 'dying' : 'failing'} at ${point} in ${call}, the state is neither ` +
                        `the one before nor the one after it: ${inspect(now)}`,
                    );
                  });
                  assert.deepEqual(await workflow(f, pool, runner, d), reference);
                  assert.ok(runner.crashedIn(), `the workflow reached crash point ${point}`);
                });
              });
            }
          }
        });

        test('after a revert fails at any of its crash points, an extend of the share is kept', async (t) => {
          const points: string[] = [];
          let recording = false;
          const scenario = async (b: Backend, f: Files, pool: string) => {
            const share = shareRef(pool, 1);
            await b.createShare(share);
            await seed(f, share.id);
            const original = await contents(f, share.id);
            const snap: SnapshotRef = { id: newId(), shareId: share.id, size: 1 };
            await b.createSnapshot(snap);
            await b.extendShare(share, 2);
            await mutate(f, share.id);
            return { share, snap, original, changed: await contents(f, share.id) };
          };
          await withFiles(t, async (h, f, pool) => {
            if (!h.reopen) return;
            const b = await h.reopen({ onStep: (step) => void (recording && points.push(step)) });
            const { share, snap } = await scenario(b, f, pool);
            recording = true;
            await b.revertToSnapshot({ ...share, size: 2 }, snap);
            recording = false;
          });
          assert.ok(points.length > 0, 'a revert reached no crash point (does the harness pass hooks on?)');
          for (const [at, point] of points.entries()) {
            await t.test(`failed at ${point}`, async (st) => {
              await withFiles(st, async (h, f, pool) => {
                let armed = false;
                let reached = 0;
                const b = await h.reopen!({
                  onStep: (step) => {
                    if (armed && reached++ === at) throw new Error(`simulated failure at ${step}`);
                  },
                });
                const base = await allocated(b, pool);
                const { share, snap, original, changed } = await scenario(b, f, pool);
                armed = true;
                await rejectsWith(b.revertToSnapshot({ ...share, size: 2 }, snap), 'Failed', /simulated/);
                armed = false;
                // The API leaves the share in reverting_error; an operator resets it and the user extends.
                // Whatever the failed revert left must not undo that extend later.
                await b.extendShare(share, 4);
                for (let i = 0; i < 2; i++) {
                  await b.usage(share); // settles the share, as any call does
                  const data = await contents(f, share.id);
                  assert.ok(
                    isDeepStrictEqual(data, original) || isDeepStrictEqual(data, changed),
                    'wholly reverted or wholly not',
                  );
                  assert.equal(await allocated(b, pool), base + 4, 'the extend is kept');
                }
              });
            });
          }
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

/** The BackendError code a call fails with; undefined when it succeeds. */
async function errorCode(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    if (err instanceof BackendError) return err.code;
    throw err;
  }
}

async function allocated(backend: Backend, pool: string): Promise<number> {
  const p = (await backend.stats()).pools.find((x) => x.name === pool);
  assert.ok(p, `pool ${pool} in stats`);
  return p.allocatedCapacityGiB;
}
