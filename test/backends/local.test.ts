import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmod,
  link,
  lstat,
  lutimes,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  readlink,
  rm,
  statfs,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { promisify } from 'node:util';
import {
  createLocalBackend,
  type LocalBackend,
  type LocalBackendOptions,
  type LocalStep,
} from '../../backends/local.ts';
import type { ShareRef, SnapshotRef } from '../../backends/types.ts';
import { type BackendHarness, backendContract, newId, rejectsWith } from './contract.ts';

const run = promisify(execFile);
const EXT4_MAGIC = 0xef53;

interface LocalHarness extends Required<Omit<BackendHarness, 'backend' | 'reopen'>> {
  backend: LocalBackend;
  dir: string;
  root: string;
  reopen(extra?: Partial<LocalBackendOptions>): Promise<LocalBackend>;
}

/** A local backend in a fresh temp dir (optionally under `base`), removed by cleanup(). */
async function localHarness(
  extra: Partial<LocalBackendOptions> = {},
  base = tmpdir(),
): Promise<LocalHarness> {
  const dir = await mkdtemp(join(base, 'abaca-local-'));
  const root = join(dir, 'root');
  const opened: LocalBackend[] = [];
  const open_ = (more: Partial<LocalBackendOptions> = {}) => {
    const b = createLocalBackend({ name: 'local1', rootDir: root, capacityGiB: 100, ...extra, ...more });
    opened.push(b);
    return b;
  };
  const data = (id: string) => join(root, 'shares', id, 'data');
  return {
    backend: open_(),
    dir,
    root,
    reopen: async (more) => open_(more),
    cleanup: async () => {
      for (const b of opened) await b.close();
      await rm(dir, { recursive: true, force: true });
    },
    write: async (id, p, content) => {
      await mkdir(dirname(join(data(id), p)), { recursive: true });
      await writeFile(join(data(id), p), content);
    },
    read: async (id, p) => readFile(join(data(id), p)).catch(() => undefined),
    remove: async (id, p) => rm(join(data(id), p)),
    list: async (id) => (await tree(data(id))).filter((e) => e.type !== 'dir').map((e) => e.path),
    fill: async (id, bytes) => {
      // Sparse: usage counts logical sizes, so this costs no disk space.
      const fh = await open(join(data(id), `fill-${newId()}.bin`), 'w');
      await fh.truncate(bytes);
      await fh.close();
    },
  };
}

backendContract('local', () => localHarness(), { crashPoints: true });

interface Entry {
  path: string;
  type: 'dir' | 'file' | 'symlink';
  mode: number;
  mtimeMs: number;
  content: string;
}

/** Everything a revert must reproduce: types, modes, mtimes, contents, link targets (sorted). */
async function tree(dir: string): Promise<Entry[]> {
  const out: Entry[] = [];
  async function walk(d: string) {
    for (const name of (await readdir(d)).sort()) {
      const p = join(d, name);
      const st = await lstat(p);
      const path = relative(dir, p);
      const mode = st.mode & 0o7777;
      if (st.isDirectory()) {
        out.push({ path, type: 'dir', mode, mtimeMs: st.mtimeMs, content: '' });
        await walk(p);
      } else if (st.isSymbolicLink()) {
        out.push({ path, type: 'symlink', mode: 0, mtimeMs: st.mtimeMs, content: await readlink(p) });
      } else {
        const content = createHash('sha256')
          .update(await readFile(p))
          .digest('hex');
        out.push({ path, type: 'file', mode, mtimeMs: st.mtimeMs, content });
      }
    }
  }
  await walk(dir);
  return out;
}

/** The tree without mtimes, for tests whose files carry "now" times. */
async function shape(dir: string): Promise<Omit<Entry, 'mtimeMs'>[]> {
  return (await tree(dir)).map(({ mtimeMs: _, ...rest }) => rest);
}

function setup(t: TestContext, extra: Partial<LocalBackendOptions> = {}) {
  const h = localHarness(extra);
  t.after(async () => (await h).cleanup());
  return h;
}

const shareRef = (size = 1): ShareRef => ({ id: newId(), size, shareProto: 'NFS', pool: 'local' });

/** A share with varied metadata: modes, fixed mtimes, symlinks (one dangling), an empty and a read-only dir. */
async function seedRich(h: LocalHarness, share: ShareRef): Promise<string> {
  const d = join(h.root, 'shares', share.id, 'data');
  await h.write(share.id, 'plain.txt', 'plain\n');
  await h.write(share.id, 'bin/tool', '#!/bin/sh\necho hi\n');
  await chmod(join(d, 'bin/tool'), 0o755);
  await h.write(share.id, 'secret', 'shh');
  await chmod(join(d, 'secret'), 0o600);
  await mkdir(join(d, 'empty'));
  await symlink('plain.txt', join(d, 'link'));
  await symlink('nowhere/at/all', join(d, 'dangling'));
  await h.write(share.id, 'ro/inside', 'locked');
  await chmod(join(d, 'ro'), 0o555);
  await chmod(join(d, 'bin'), 0o750);
  // Whole seconds: utimes() takes a double, which cannot carry every nanosecond of a "now" mtime.
  for (const p of ['plain.txt', 'bin/tool', 'secret', 'ro/inside', 'empty', 'bin', 'ro', '.'])
    await utimes(join(d, p), 1_000_000_000, 1_500_000_000 + p.length);
  for (const p of ['link', 'dangling']) await lutimes(join(d, p), 1_000_000_000, 1_400_000_000 + p.length);
  return d;
}

describe('local backend', () => {
  test('layout: data under shares/<id>/data, metadata in share.json, no temp files left', async (t) => {
    const h = await setup(t);
    const share = shareRef(2);
    const [loc] = await h.backend.createShare(share);
    assert.deepEqual(loc, {
      path: join(h.root, 'shares', share.id, 'data'),
      preferred: true,
      isAdminOnly: false,
    });
    assert.ok((await lstat(loc.path)).isDirectory());
    await h.backend.extendShare(share, 5);
    const meta = JSON.parse(await readFile(join(h.root, 'shares', share.id, 'share.json'), 'utf8'));
    assert.equal(meta.size, 5);
    assert.equal(meta.proto, 'NFS');
    assert.deepEqual((await readdir(join(h.root, 'shares', share.id))).sort(), ['data', 'share.json']);
    const snap = { id: newId(), shareId: share.id, size: 5 };
    await h.backend.createSnapshot(snap);
    assert.deepEqual((await readdir(join(h.root, 'snapshots', snap.id))).sort(), ['data', 'snapshot.json']);
    assert.deepEqual(await readdir(join(h.root, 'tmp')), []);
  });

  test('path escapes are refused and nothing is created outside rootDir', async (t) => {
    const h = await setup(t);
    const share = shareRef();
    await h.backend.createShare(share);
    const bad = ['..', '../escape', '../../etc', 'a/../../b', '/tmp/abs', 'x\0', '.', '.git', 'sub/dir'];
    for (const id of bad) {
      const ref: ShareRef = { id, size: 1, shareProto: 'NFS', pool: 'local' };
      const snap: SnapshotRef = { id, shareId: share.id, size: 1 };
      await rejectsWith(h.backend.createShare(ref), 'InvalidRequest');
      await rejectsWith(h.backend.deleteShare(ref), 'InvalidRequest');
      await rejectsWith(h.backend.extendShare(ref, 2), 'InvalidRequest');
      await rejectsWith(h.backend.updateAccess(ref, []), 'InvalidRequest');
      await rejectsWith(h.backend.createSnapshot(snap), 'InvalidRequest');
      await rejectsWith(h.backend.createSnapshot({ id: newId(), shareId: id, size: 1 }), 'InvalidRequest');
      await rejectsWith(h.backend.deleteSnapshot(snap), 'InvalidRequest');
      await rejectsWith(h.backend.revertToSnapshot(share, snap), 'InvalidRequest');
      await rejectsWith(h.backend.createShareFromSnapshot(shareRef(), snap), 'InvalidRequest');
    }
    assert.deepEqual(await readdir(h.dir), ['root']);
    assert.deepEqual((await readdir(h.root)).sort(), ['shares', 'snapshots', 'tmp']);
    assert.deepEqual(await readdir(join(h.root, 'shares')), [share.id]);
    assert.deepEqual(await readdir(join(h.root, 'snapshots')), []);
  });

  test('snapshot, revert and clone keep modes, mtimes, symlinks and empty directories', async (t) => {
    const h = await setup(t);
    const share = shareRef();
    await h.backend.createShare(share);
    const d = await seedRich(h, share);
    const before = await tree(d);
    assert.ok(before.some((e) => e.type === 'symlink' && e.content === 'nowhere/at/all'));
    const rootBefore = await lstat(d);
    const snap = { id: newId(), shareId: share.id, size: 1 };
    await h.backend.createSnapshot(snap);
    await chmod(join(d, 'ro'), 0o755);
    await h.write(share.id, 'ro/inside', 'unlocked');
    await h.remove(share.id, 'link');
    await chmod(join(d, 'secret'), 0o644);
    await h.write(share.id, 'extra/new', 'new');
    await h.backend.revertToSnapshot(share, snap);
    assert.deepEqual(await tree(d), before);
    assert.equal((await lstat(d)).mtimeMs, rootBefore.mtimeMs);
    assert.equal((await lstat(d)).mode, rootBefore.mode);
    const clone = shareRef();
    await h.backend.createShareFromSnapshot(clone, snap);
    assert.deepEqual(await tree(join(h.root, 'shares', clone.id, 'data')), before);
  });

  test('usage: sparse files at their logical size, hard links once, symlinks as files', async (t) => {
    const h = await setup(t);
    const share = shareRef();
    await h.backend.createShare(share);
    const d = join(h.root, 'shares', share.id, 'data');
    await h.write(share.id, 'a', Buffer.alloc(100));
    await link(join(d, 'a'), join(d, 'a-again'));
    await symlink('a', join(d, 's'));
    await h.fill(share.id, 5000);
    assert.deepEqual(await h.backend.usage(share), { usedBytes: 5100, files: 3 });
  });

  test('access: ip rules are recorded and active; user, cert, cephx and bad addresses are errors', async (t) => {
    const h = await setup(t);
    const share = shareRef();
    await h.backend.createShare(share);
    const rules = [
      { id: 'ip4', accessType: 'ip', accessTo: '10.1.2.3', accessLevel: 'rw' },
      { id: 'cidr6', accessType: 'ip', accessTo: 'fd00::/8', accessLevel: 'ro' },
      { id: 'bad-ip', accessType: 'ip', accessTo: '10.0.0.0/33', accessLevel: 'rw' },
      { id: 'user', accessType: 'user', accessTo: 'alice', accessLevel: 'rw' },
      { id: 'cert', accessType: 'cert', accessTo: 'client.example.com', accessLevel: 'rw' },
      { id: 'cephx', accessType: 'cephx', accessTo: 'client.k8s', accessLevel: 'rw' },
    ] as const;
    const states = await h.backend.updateAccess(share, [...rules]);
    assert.deepEqual(states, {
      ip4: 'active',
      cidr6: 'active',
      'bad-ip': 'error',
      user: 'error',
      cert: 'error',
      cephx: 'error',
    });
    assert.deepEqual((await h.backend.stats()).capabilities.accessTypes, ['ip']);
    const again = await h.reopen();
    assert.deepEqual(await again.updateAccess(share, [...rules]), states);
    const meta = JSON.parse(await readFile(join(h.root, 'shares', share.id, 'share.json'), 'utf8'));
    assert.deepEqual(meta.accessStates, states);
    assert.equal(meta.accessRules.length, rules.length);
  });

  test('stats: free is the lower of unallocated capacity and real free disk space', async (t) => {
    const h = await setup(t, { capacityGiB: 1e9 });
    await h.backend.createShare(shareRef(3));
    const fsStats = await statfs(h.root);
    const disk = (fsStats.bavail * fsStats.bsize) / 1024 ** 3;
    const [pool] = (await h.backend.stats()).pools;
    assert.equal(pool?.allocatedCapacityGiB, 3);
    assert.ok(
      pool && Math.abs(pool.freeCapacityGiB - disk) < 1,
      `free ${pool?.freeCapacityGiB} ≈ disk ${disk}`,
    );
    const small = await h.reopen({ capacityGiB: 10 });
    assert.equal((await small.stats()).pools[0]?.freeCapacityGiB, 7);
    await rejectsWith(small.createShare({ ...shareRef(), pool: 'other' }), 'InvalidRequest', /other/);
  });

  test('a snapshot outlives its share and can still be cloned', async (t) => {
    const h = await setup(t);
    const share = shareRef();
    await h.backend.createShare(share);
    await h.write(share.id, 'keep', 'me');
    const snap = { id: newId(), shareId: share.id, size: 1 };
    await h.backend.createSnapshot(snap);
    await h.backend.deleteShare(share);
    const clone = shareRef();
    await h.backend.createShareFromSnapshot(clone, snap);
    assert.equal((await h.read(clone.id, 'keep'))?.toString(), 'me');
  });

  describe('crash in the middle of a call, then a restart and a re-run', () => {
    /** Freezes the call at `at` (it never returns, as if the process died) and resolves when it got there. */
    function freezeAt(at: LocalStep, armed = true) {
      let reached!: () => void;
      const got = new Promise<void>((r) => {
        reached = r;
      });
      const freeze = {
        armed,
        got,
        onStep: (s: LocalStep) => {
          if (s !== at || !freeze.armed) return;
          reached();
          return new Promise<void>(() => {});
        },
      };
      return freeze;
    }

    async function prepared(t: TestContext, at: LocalStep) {
      const freeze = freezeAt(at, false);
      const h = await setup(t, { onStep: freeze.onStep });
      const share = shareRef();
      await h.backend.createShare(share);
      await h.write(share.id, 'a', 'original a');
      await h.write(share.id, 'd/b', 'original b');
      const original = await shape(join(h.root, 'shares', share.id, 'data'));
      const snap = { id: newId(), shareId: share.id, size: 1 };
      await h.backend.createSnapshot(snap);
      await h.backend.extendShare(share, 3);
      await h.write(share.id, 'a', 'changed a');
      await h.remove(share.id, 'd/b');
      await h.write(share.id, 'c', 'added c');
      const changed = await shape(join(h.root, 'shares', share.id, 'data'));
      freeze.armed = true;
      return { h, share, snap, original, changed, freeze };
    }

    for (const at of ['revert:copied', 'revert:committed', 'revert:old-moved', 'revert:swapped'] as const) {
      test(`revert frozen at ${at}: the share is wholly old or wholly reverted, and a re-run reverts`, async (t) => {
        const { h, share, snap, original, changed, freeze } = await prepared(t, at);
        void h.backend.revertToSnapshot(share, snap);
        await freeze.got;
        const restarted = await h.reopen({ onStep: undefined });
        await restarted.usage(share); // the first call recovers
        const data = join(h.root, 'shares', share.id, 'data');
        // Before the commit rename the old data stands; after it the revert is finished on restart.
        const committed = at !== 'revert:copied';
        assert.deepEqual(await shape(data), committed ? original : changed);
        const size = async () => (await restarted.stats()).pools[0]?.allocatedCapacityGiB;
        assert.equal(await size(), committed ? 1 : 3, "a committed revert gives the snapshot's size");
        await restarted.revertToSnapshot(share, snap);
        assert.deepEqual(await shape(data), original);
        assert.equal(await size(), 1);
        assert.deepEqual((await readdir(join(h.root, 'shares', share.id))).sort(), ['data', 'share.json']);
      });
    }

    test('snapshot frozen after copying: the re-run makes it; no staging is left', async (t) => {
      const { h, share, original, freeze } = await prepared(t, 'snapshot:copied');
      const data = join(h.root, 'shares', share.id, 'data');
      await h.write(share.id, 'a', 'original a');
      await h.write(share.id, 'd/b', 'original b');
      await rm(join(data, 'c'));
      const snap2 = { id: newId(), shareId: share.id, size: 1 };
      void h.backend.createSnapshot(snap2);
      await freeze.got;
      const restarted = await h.reopen({ onStep: undefined });
      await rejectsWith(restarted.revertToSnapshot(share, snap2), 'NotFound');
      await restarted.createSnapshot(snap2);
      await h.write(share.id, 'a', 'later');
      await restarted.revertToSnapshot(share, snap2);
      assert.deepEqual(await shape(data), original);
      assert.deepEqual(await readdir(join(h.root, 'tmp')), []);
    });

    test('clone frozen after copying: not created until the re-run, which completes it', async (t) => {
      const { h, snap, original, freeze } = await prepared(t, 'create-from-snapshot:copied');
      const clone = shareRef();
      void h.backend.createShareFromSnapshot(clone, snap);
      await freeze.got;
      const restarted = await h.reopen({ onStep: undefined });
      await rejectsWith(restarted.exportLocations(clone), 'NotFound');
      assert.equal(
        (await restarted.stats()).pools[0]?.allocatedCapacityGiB,
        3,
        'only the source share is allocated',
      );
      await restarted.createShareFromSnapshot(clone, snap);
      assert.deepEqual(await shape(join(h.root, 'shares', clone.id, 'data')), original);
      assert.deepEqual((await readdir(join(h.root, 'shares', clone.id))).sort(), ['data', 'share.json']);
    });

    test('deletes frozen after the rename: already gone, the re-run cleans the trash', async (t) => {
      const { h, share, snap, freeze } = await prepared(t, 'delete-snapshot:moved');
      void h.backend.deleteSnapshot(snap);
      await freeze.got;
      const freeze2 = freezeAt('delete-share:moved');
      const second = await h.reopen({ onStep: freeze2.onStep });
      void second.deleteShare(share);
      await freeze2.got;
      // (The second instance's start emptied tmp/ of the first one's trash.)
      assert.deepEqual(await readdir(join(h.root, 'tmp')), [`deleted-share-${share.id}`]);
      const restarted = await h.reopen({ onStep: undefined });
      await rejectsWith(restarted.usage(share), 'NotFound');
      await rejectsWith(restarted.revertToSnapshot(share, snap), 'NotFound');
      await restarted.deleteShare(share);
      await restarted.deleteSnapshot(snap);
      assert.deepEqual(await readdir(join(h.root, 'tmp')), []);
      assert.deepEqual(await readdir(join(h.root, 'shares')), []);
      assert.deepEqual(await readdir(join(h.root, 'snapshots')), []);
    });
  });

  describe('reflink', () => {
    test('falls back to a plain copy where the filesystem has no reflink (ext4)', async (t) => {
      const fsType = (await statfs(tmpdir())).type;
      if (fsType !== EXT4_MAGIC)
        return t.skip(`${tmpdir()} is not ext4 (statfs type 0x${fsType.toString(16)})`);
      const h = await setup(t);
      assert.equal(await h.backend.cloneMethod(), 'copy');
      const share = shareRef();
      await h.backend.createShare(share);
      await h.write(share.id, 'f', 'x');
      const snap = { id: newId(), shareId: share.id, size: 1 };
      await h.backend.createSnapshot(snap);
      const meta = JSON.parse(await readFile(join(h.root, 'snapshots', snap.id, 'snapshot.json'), 'utf8'));
      assert.equal(meta.method, 'copy');
      const strict = await h.reopen({ reflink: 'always' });
      await rejectsWith(strict.createSnapshot({ ...snap, id: newId() }), 'NotSupported', /reflink/);
    });

    test('is used on an XFS loop image (reflink=1): a snapshot costs no data blocks', async (t) => {
      const mnt = await xfsMount(t);
      if (!mnt) return;
      const h = await localHarness({ reflink: 'always' }, mnt);
      t.after(() => h.cleanup());
      assert.equal(await h.backend.cloneMethod(), 'reflink');
      const share = shareRef();
      await h.backend.createShare(share);
      const big = Buffer.alloc(32 * 1024 * 1024, 7);
      const fh = await open(join(h.root, 'shares', share.id, 'data', 'big'), 'w');
      await fh.writeFile(big);
      await fh.sync();
      await fh.close();
      const free = async () => {
        const s = await statfs(mnt);
        return s.bfree * s.bsize;
      };
      const before = await free();
      const snap = { id: newId(), shareId: share.id, size: 1 };
      await h.backend.createSnapshot(snap);
      const used = before - (await free());
      assert.ok(used < 4 * 1024 * 1024, `snapshot used ${used} bytes, a copy would use 32 MiB`);
      await h.write(share.id, 'big', 'overwritten');
      await h.backend.revertToSnapshot(share, snap);
      assert.ok((await h.read(share.id, 'big'))?.equals(big));
    });
  });
});

/** Mounts a fresh XFS loop image with reflink; skips the test (undefined) when that is not possible here. */
async function xfsMount(t: TestContext): Promise<string | undefined> {
  if (process.getuid?.() !== 0) {
    t.skip('needs root to mount a loop image');
    return undefined;
  }
  try {
    await run('mkfs.xfs', ['-V'], { timeout: 5000 });
  } catch {
    t.skip('mkfs.xfs not found (apt-get install xfsprogs)');
    return undefined;
  }
  const dir = await mkdtemp(join(tmpdir(), 'abaca-xfs-'));
  const img = join(dir, 'xfs.img');
  const mnt = join(dir, 'mnt');
  let mounted = false;
  t.after(async () => {
    if (mounted) await run('umount', [mnt], { timeout: 10_000 }).catch(() => run('umount', ['-l', mnt]));
    await rm(dir, { recursive: true, force: true });
  });
  const fh = await open(img, 'w');
  await fh.truncate(320 * 1024 * 1024); // sparse; about the smallest XFS that mkfs.xfs 6 accepts
  await fh.close();
  await mkdir(mnt);
  try {
    await run('mkfs.xfs', ['-q', '-m', 'reflink=1', img], { timeout: 20_000 });
    await run('mount', ['-o', 'loop', img, mnt], { timeout: 20_000 });
    mounted = true;
  } catch (err) {
    t.skip(`cannot make or mount an XFS loop image here: ${(err as Error).message.split('\n')[0]}`);
    return undefined;
  }
  return mnt;
}
