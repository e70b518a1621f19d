import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  assertReplicasEqual,
  Cluster,
  expectCode,
  type ReplicaEntry,
  type ReplicaState,
  readReplica,
  replicaDifferences,
  settled,
  waitFor,
  whileWriting,
} from './helpers.ts';

const MIB = 1024 * 1024;

/** Every replica's copy of snapshot `snap` of `share`, read from the bricks' disks. */
function snapStates(cl: Cluster, share: string, snap: string): ReplicaState[] {
  return cl.brickDirs.map((d, i) => {
    const dir = path.join(d, 'shares', share, 'snaps', snap);
    return {
      index: i,
      label: `snapshot on replica ${i + 1}`,
      dir,
      entries: readReplica(dir, path.join(dir, 'records.bin')),
    };
  });
}

function assertSame(states: ReplicaState[], what: string): void {
  const diffs = replicaDifferences(states);
  assert.deepEqual(
    diffs.map((d) => d.message),
    [],
    `${what} differ`,
  );
}

/** What a snapshot's file must keep forever: contents, mode, size, mtime, type. */
function manifest(m: Map<string, ReplicaEntry>, dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [p, e] of m) {
    const st = fs.lstatSync(p === '' ? path.join(dir, 'data') : path.join(dir, 'data', p));
    out.set(
      p,
      `${e.type} ${e.mode.toString(8)} ${e.size} ${e.sha256} ${e.target} ${e.id} ${e.v} ${st.mtimeMs}`,
    );
  }
  return out;
}

test('snapshot while a writer runs: the three replicas hold the same snapshot, versions included', async () => {
  const cl = await Cluster.start();
  try {
    const admin = await cl.client();
    await admin.createShare('s', 1 << 30);
    const c = await cl.client('s');
    await c.mkdir('dir');
    await c.writeFile('dir/a', 'alpha');
    await c.symlink('dir/a', 'ln');
    await c.writeFile('hard', 'two names');
    await c.link('hard', 'dir/hard2');
    const { result: res, writes: n } = await whileWriting(c, { seed: 7, names: 50, chmodRate: 0.2 }, () =>
      admin.createSnapshot('s', 'snap1'),
    );
    assert.ok(n > 5, `writer made ${n} writes`);
    assert.ok(
      Object.values(res['methods'] as Record<string, string>).every((m) => m === 'link' || m === 'reflink'),
    );
    assertSame(snapStates(cl, 's', 'snap1'), 'snapshots');
    await assertReplicasEqual(cl, 's');
    // a repeated call is a no-op
    const again = await admin.createSnapshot('s', 'snap1');
    assert.deepEqual(again['snapshot'], res['snapshot']);
    assert.deepEqual(
      (await admin.listSnapshots('s')).map((x) => x['id']),
      ['snap1'],
    );
  } finally {
    await cl.close();
  }
});

test('copy-on-write: changing the share never changes the snapshot (file by file)', async () => {
  const cl = await Cluster.start();
  try {
    const admin = await cl.client();
    await admin.createShare('cow', 1 << 30);
    const c = await cl.client('cow');
    const names = ['w', 't', 'm', 'u', 'r', 'x', 'keep', 'l'];
    await c.mkdir('d');
    for (const f of names) await c.writeFile(`d/${f}`, Buffer.alloc(10_000, f.charCodeAt(0)));
    await settled(admin, 'cow');
    await admin.createSnapshot('cow', 'before', { method: 'link' });
    const dirs = cl.brickDirs.map((d) => path.join(d, 'shares', 'cow', 'snaps', 'before'));
    const before = dirs.map((d) => manifest(readReplica(d, path.join(d, 'records.bin')), d));
    // the hard-link tree really shares the inodes
    const live = fs.statSync(path.join(cl.shareDataDir(0, 'cow'), 'd', 'keep'));
    assert.equal(live.ino, fs.statSync(path.join(dirs[0]!, 'data', 'd', 'keep')).ino);
    await new Promise((r) => setTimeout(r, 20));
    await c.write('d/w', 5, Buffer.from('changed'));
    await c.truncate('d/t', 3);
    await c.chmod('d/m', 0o600);
    await c.utimes('d/u', 1000, 2000);
    await c.rename('d/r', 'd/r2');
    await c.unlink('d/x');
    await c.link('d/l', 'd/l2');
    await c.appendFile('d/l2', 'via the new name');
    await c.writeFile('d/new', 'new file');
    assert.equal((await c.readFile('d/l')).toString().endsWith('via the new name'), true);
    assert.equal((await c.stat('d/l')).nlink, 2);
    assert.equal((await c.stat('d/keep')).nlink, 1);
    for (const [i, d] of dirs.entries())
      assert.deepEqual(
        manifest(readReplica(d, path.join(d, 'records.bin')), d),
        before[i],
        `replica ${i + 1}`,
      );
    await assertReplicasEqual(cl, 'cow');
    // usage counts the share's own files, not the snapshot's links
    const u = await admin.usage('cow');
    assert.equal(u.nondirs, names.length);
  } finally {
    await cl.close();
  }
});

test('revert reads back exactly the snapshot, takes its size, and a brick down meanwhile is healed', async () => {
  const cl = await Cluster.start();
  try {
    const admin = await cl.client();
    await admin.createShare('r', 100 * MIB);
    const c = await cl.client('r');
    await c.writeFile('a', 'version one');
    await c.mkdir('sub');
    await c.writeFile('sub/b', Buffer.alloc(MIB, 3));
    await admin.createSnapshot('r', 's1');
    await c.writeFile('a', 'version two, longer');
    await c.unlink('sub/b');
    await c.writeFile('later', 'not in the snapshot');
    await admin.setSize('r', 200 * MIB);
    await cl.bricks[2]!.kill9();
    await admin.revertToSnapshot('r', 's1');
    const c2 = await cl.client('r');
    assert.equal((await c2.readFile('a')).toString(), 'version one');
    assert.ok((await c2.readFile('sub/b')).equals(Buffer.alloc(MIB, 3)));
    assert.equal(await c2.exists('later'), false);
    assert.equal((await admin.usage('r')).nondirs, 2);
    assert.equal((await c2.statfs()).size, 100 * MIB);
    // the snapshot survives; writes after the revert do not touch it
    await c2.writeFile('a', 'after revert');
    await cl.restartBrick(2);
    await admin.healNow('r');
    const states = await assertReplicasEqual(cl, 'r');
    assert.equal(states[2]!.entries.has('later'), false);
    assert.equal(fs.readFileSync(path.join(cl.shareDataDir(2, 'r'), 'a'), 'utf8'), 'after revert');
    assertSame(snapStates(cl, 'r', 's1'), 'snapshots after revert');
    await expectCode(admin.revertToSnapshot('r', 'nope'), ['ENOENT']);
  } finally {
    await cl.close();
  }
});

test('a share from a snapshot is independent in both directions; delete is idempotent', async () => {
  const cl = await Cluster.start();
  try {
    const admin = await cl.client();
    await admin.createShare('src', 40 * MIB);
    const c = await cl.client('src');
    await c.writeFile('f', 'original');
    await c.writeFile('g', 'other');
    await admin.createSnapshot('src', 'snap');
    await c.writeFile('f', 'changed in the source');
    const res = await admin.cloneShare('dst', 50 * MIB, { from: 'src', snapshot: 'snap' });
    assert.ok(['link', 'reflink', 'copy'].includes(String(res['method'])));
    await admin.setAccess('dst', [{ id: 'r1', to: '127.0.0.0/8', level: 'rw' }]);
    const d = await cl.client('dst');
    assert.equal((await d.readFile('f')).toString(), 'original');
    await d.writeFile('g', 'changed in the clone');
    assert.equal((await c.readFile('g')).toString(), 'other');
    await c.writeFile('g', 'source again');
    assert.equal((await d.readFile('g')).toString(), 'changed in the clone');
    assert.equal((await d.statfs()).size, 50 * MIB);
    // repeating the clone is safe
    await admin.cloneShare('dst', 50 * MIB, { from: 'src', snapshot: 'snap' });
    await admin.deleteSnapshot('src', 'snap');
    await admin.deleteSnapshot('src', 'snap');
    await admin.deleteSnapshot('src', 'never-was');
    assert.deepEqual(await admin.listSnapshots('src'), []);
    await c.writeFile('f', 'after the snapshot went');
    assert.equal((await d.readFile('f')).toString(), 'original');
    await assertReplicasEqual(cl, 'src');
    await assertReplicasEqual(cl, 'dst');
    await expectCode(admin.createSnapshot('missing', 'x'), ['ENOENT']);
    await expectCode(admin.cloneShare('dst2', MIB, { from: 'src', snapshot: 'snap' }), ['ENOENT']);
  } finally {
    await cl.close();
  }
});

test('what a crash leaves mid-snapshot or mid-revert is swept when the brick starts; removed trees leave the trash', async () => {
  const cl = await Cluster.start();
  try {
    const admin = await cl.client();
    await admin.createShare('w', 40 * MIB);
    const c = await cl.client('w');
    await c.writeFile('f', 'kept');
    await admin.createSnapshot('w', 'done');
    await admin.revertToSnapshot('w', 'done');
    await admin.deleteSnapshot('w', 'done');
    await admin.createSnapshot('w', 'kept');
    const trash = path.join(cl.brickDirs[0]!, 'trash');
    // the reverted-away tree and the deleted snapshot go in the background, but they go
    await waitFor(() => fs.readdirSync(trash).length === 0, 20_000, 'the trash to empty');
    const share = path.join(cl.brickDirs[0]!, 'shares', 'w');
    const leftovers = [
      path.join(share, 'snaps', 'crashed.tmp-1234abcd', 'data', 'x'),
      path.join(share, 'snaps', 'kept.tmp-heal-0123', 'data', 'y'),
      path.join(share, 'meta', 'revert.tmp-5678abcd', 'data', 'z'),
      path.join(share, 'meta', 'tmp', 'cow-9abc'),
    ];
    for (const l of leftovers) {
      fs.mkdirSync(path.dirname(l), { recursive: true });
      fs.writeFileSync(l, 'left by a crash');
    }
    await cl.restartBrick(0);
    for (const l of leftovers) assert.equal(fs.existsSync(l), false, `${l} swept`);
    assert.deepEqual(fs.readdirSync(path.join(share, 'snaps')), ['kept']);
    assert.deepEqual(
      (await admin.listSnapshots('w')).map((s) => s['id']),
      ['kept'],
    );
    await assertReplicasEqual(cl, 'w');
    assertSame(snapStates(cl, 'w', 'kept'), 'snapshots after the sweep');
  } finally {
    await cl.close();
  }
});

test('the first write to a large hard-linked file copies it without the share server taking the bricks for hung', async () => {
  const cl = await Cluster.start();
  try {
    const setup = await cl.client();
    await setup.createShare('big', 1 << 30);
    const w = await cl.client('big');
    const chunk = Buffer.alloc(4 * MIB, 7);
    await w.writeFile('f', chunk);
    for (let off = chunk.length; off < 384 * MIB; off += chunk.length) await w.write('f', off, chunk);
    await w.writeFile('small', 'small');
    const snap = await setup.createSnapshot('big', 's');
    assert.deepEqual(new Set(Object.values(snap['methods'] as Record<string, string>)), new Set(['link']));
    // A share server with a one-second brick timeout takes the share over (the writes above, on a
    // busy machine, could outlast it): copying 384 MiB on three replicas of one disk takes longer,
    // so before the copy moved off the brick's event loop the next write lost quorum (ENOTCONN).
    const strict = await cl.startServer(['--brick-timeout-ms', '1000']);
    const admin = await cl.client(undefined, strict);
    await admin.attachShare('big');
    const c = await cl.client('big', strict);
    const t0 = Date.now();
    // Two writes in a row to the shared file, and one to another file of the share, at once: the
    // others wait for the copy and are applied in order.
    await Promise.all([
      c.write('f', 0, Buffer.from('first')),
      c.write('f', 2, Buffer.from('SECOND')),
      c.writeFile('small', 'changed while copying'),
    ]);
    const ms = Date.now() - t0;
    assert.equal((await c.read('f', 0, 8)).toString(), 'fiSECOND');
    assert.equal((await c.readFile('small')).toString(), 'changed while copying');
    // Every replica applied every write: nothing was blamed, so no heal had anything to do (a brick
    // taken for hung would have been blamed, and the heal started at once would have repaired it).
    await waitFor(
      async () => (await admin.healInfo('big')).every((b) => b.connected && b.count === 0),
      20_000,
      'markers to clear',
    );
    const { lastHeal } = await admin.healReport('big');
    assert.ok(
      lastHeal === null || lastHeal.stats?.entries === 0,
      `no replica fell behind (the writes took ${ms} ms): ${JSON.stringify(lastHeal)}`,
    );
    for (const d of cl.brickDirs) {
      const fd = fs.openSync(path.join(d, 'shares', 'big', 'snaps', 's', 'data', 'f'), 'r');
      const head = Buffer.alloc(8);
      fs.readSync(fd, head, 0, 8, 0);
      fs.closeSync(fd);
      assert.ok(head.equals(Buffer.alloc(8, 7)), 'the snapshot keeps the old bytes');
    }
    await assertReplicasEqual(cl, 'big');
  } finally {
    await cl.close();
  }
});
