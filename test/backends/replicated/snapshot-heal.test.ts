import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { listSnaps } from '../../../backends/replicated/brick/snapshots.ts';
import type { ReplicatedClient } from '../../../backends/replicated/client/client.ts';
import {
  assertReplicasEqual,
  Cluster,
  type ReplicaState,
  readReplica,
  replicaDifferences,
  rng,
  settled,
  waitFor,
  whileWriting,
} from './helpers.ts';

const MIB = 1024 * 1024;

function snapDir(cl: Cluster, i: number, share: string, snap: string): string {
  return path.join(cl.brickDirs[i]!, 'shares', share, 'snaps', snap);
}

/** Every replica's copy of snapshot `snap` of `share`, read from the bricks' disks. */
function snapStates(cl: Cluster, share: string, snap: string): ReplicaState[] {
  return cl.brickDirs.map((_, i) => {
    const dir = snapDir(cl, i, share, snap);
    return {
      index: i,
      label: `snapshot on replica ${i + 1}`,
      dir,
      entries: readReplica(dir, path.join(dir, 'records.bin')),
    };
  });
}

/**
 * The snapshot trees are equal file by file: names, types, modes, sizes, contents, records, hard
 * links; and the healed copy has the times of the copy it came from (the originals' times may differ
 * by the bricks' own clocks of each operation).
 */
function assertSnapshotsEqual(cl: Cluster, share: string, snap: string, healed?: number): ReplicaState[] {
  const states = snapStates(cl, share, snap);
  assert.deepEqual(
    replicaDifferences(states).map((d) => d.message),
    [],
    `copies of snapshot ${snap} differ`,
  );
  if (healed === undefined) return states;
  for (const [p, e] of states[healed]!.entries) {
    // Taken from that brick's own live tree (a link): the times are its own, as in a snapshot it
    // took itself.
    if (e.type === 'file' && e.nlink > e.links.length) continue;
    const times = states.map((s) => fs.lstatSync(path.join(s.dir, 'data', p)).mtimeMs);
    const mine = times[healed]!;
    assert.ok(
      times.some((t, i) => i !== healed && Math.abs(t - mine) < 1),
      `mtime of '${p}' on the healed copy is no other copy's: ${times.join(', ')}`,
    );
  }
  return states;
}

/** Data that does not compress to holes: a 1 MiB pseudo-random block, varied per MiB. */
function noise(bytes: number, seed: number): Buffer {
  const r = rng(seed);
  const block = Buffer.alloc(MIB);
  for (let i = 0; i < MIB; i += 4) block.writeUInt32LE(Math.floor(r() * 2 ** 32), i);
  const out = Buffer.alloc(bytes);
  for (let o = 0; o < bytes; o += MIB) {
    block.copy(out, o, 0, Math.min(MIB, bytes - o));
    out.writeUInt32LE(o / MIB, o);
  }
  return out;
}

async function waitSnapHealed(
  admin: ReplicatedClient,
  cl: Cluster,
  share: string,
  brick: number,
  snap: string,
) {
  await waitFor(
    async () =>
      fs.existsSync(path.join(snapDir(cl, brick, share, snap), 'snap.json')) &&
      (await admin.healReport(share)).snapshots.length === 0,
    40_000,
    `snapshot ${snap} healed on replica ${brick + 1}`,
  );
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

test('a brick down during the snapshot catches up by heal; revert and clone use its copy', async () => {
  const cl = await Cluster.start();
  try {
    const admin = await cl.client();
    await admin.createShare('s', 1 << 30);
    const c = await cl.client('s');
    await c.mkdir('dir');
    await c.mkdir('dir/deep');
    await c.writeFile('dir/a', 'alpha');
    await c.writeFile('dir/deep/b', Buffer.alloc(70_000, 7)); // above the inline size
    await c.symlink('dir/a', 'ln');
    await c.writeFile('hard', 'two names');
    await c.link('hard', 'dir/hard2');
    await c.writeFile('ro', 'read only');
    await c.chmod('ro', 0o444);
    await c.chmod('dir/deep', 0o555);
    await c.utimes('dir/a', 1_000_000, 2_000_000);
    // A large file with a hole in the middle.
    const big = noise(6 * MIB, 1);
    await c.writeFile('sparse', big.subarray(0, 2 * MIB));
    await c.writeAt('sparse', 10 * MIB, big.subarray(2 * MIB));
    await settled(admin, 's');
    await cl.bricks[2]!.kill9();
    const { writes: n } = await whileWriting(c, { seed: 11, names: 30, chmodRate: 0.3 }, () =>
      admin.createSnapshot('s', 'snap1'),
    );
    assert.ok(n > 5, `writer made ${n} writes`);
    // Changed after the snapshot: the returning brick's live copy is not the snapshot's any more.
    await c.write('sparse', 12 * MIB, Buffer.from('later'));
    assert.equal(fs.existsSync(snapDir(cl, 2, 's', 'snap1')), false);
    await cl.restartBrick(2);
    await waitSnapHealed(admin, cl, 's', 2, 'snap1');
    const states = assertSnapshotsEqual(cl, 's', 'snap1', 2);
    // A file unchanged since the snapshot is taken from the brick's own live tree (a hard link on
    // ext4, copied on write); one changed since is copied (with its hole).
    const inoOf = (p: string) => fs.statSync(p).ino;
    const live = cl.shareDataDir(2, 's');
    const healedData = path.join(snapDir(cl, 2, 's', 'snap1'), 'data');
    assert.equal(inoOf(path.join(healedData, 'dir/deep/b')), inoOf(path.join(live, 'dir/deep/b')));
    assert.notEqual(inoOf(path.join(healedData, 'sparse')), inoOf(path.join(live, 'sparse')));
    await c.write('dir/deep/b', 0, Buffer.from('changed after the heal'));
    await c.chmod('dir/a', 0o600);
    await settled(admin, 's');
    assert.deepEqual(
      replicaDifferences(snapStates(cl, 's', 'snap1')).map((d) => d.message),
      [],
      'the healed copy did not change with the live tree',
    );
    const healed = states[2]!.entries;
    assert.deepEqual(healed.get('hard')!.links, ['dir/hard2', 'hard']);
    assert.equal(healed.get('ro')!.mode, 0o444);
    assert.equal(healed.get('dir/deep')!.mode, 0o555);
    const sp = fs.statSync(path.join(snapDir(cl, 2, 's', 'snap1'), 'data', 'sparse'));
    assert.equal(sp.size, 14 * MIB);
    assert.ok(sp.blocks * 512 < 10 * MIB, `the hole stays a hole (${sp.blocks * 512} bytes allocated)`);
    // Not a staging tree left, and the brick lists it like the others.
    assert.deepEqual(
      fs.readdirSync(path.join(cl.brickDirs[2]!, 'shares', 's', 'snaps')).filter((x) => x.includes('.tmp-')),
      [],
    );
    assert.deepEqual(
      listSnaps(path.join(cl.brickDirs[2]!, 'shares', 's')).map((x) => [x.id, x.createdAt, x.size]),
      listSnaps(path.join(cl.brickDirs[0]!, 'shares', 's')).map((x) => [x.id, x.createdAt, x.size]),
    );
    await assertReplicasEqual(cl, 's');

    // Another brick down: a clone and a revert are served by the healed copy and one original.
    await cl.bricks[0]!.kill9();
    const want = new Map<string, string>();
    for (const [p, e] of states[1]!.entries) if (e.type === 'file') want.set(p, e.sha256);
    await admin.cloneShare('cl', 1 << 30, { from: 's', snapshot: 'snap1' });
    await admin.setAccess('cl', [{ id: 'r1', to: '127.0.0.0/8', level: 'rw' }]);
    const d = await cl.client('cl');
    for (const [p, h] of want) assert.equal(sha(await d.readFile(p)), h, `clone: ${p}`);
    const cloned = readReplica(path.join(cl.brickDirs[2]!, 'shares', 'cl'));
    for (const [p, e] of states[1]!.entries) {
      assert.equal(cloned.get(p)?.id, e.id, `clone record of ${p}`);
      assert.equal(cloned.get(p)?.v, e.v, `clone version of ${p}`);
    }
    await c.writeFile('dir/a', 'after the snapshot');
    await admin.revertToSnapshot('s', 'snap1');
    const c2 = await cl.client('s');
    for (const [p, h] of want) assert.equal(sha(await c2.readFile(p)), h, `revert: ${p}`);
    assert.equal(await c2.exists('w99'), false);
    await cl.restartBrick(0);
    await admin.healNow('s');
    await assertReplicasEqual(cl, 's');
    await assertReplicasEqual(cl, 'cl');
  } finally {
    await cl.close();
  }
});

test('a snapshot deleted while a brick was down is deleted there when it returns, and stays gone', async () => {
  const cl = await Cluster.start();
  try {
    const admin = await cl.client();
    await admin.createShare('s', 1 << 30);
    const c = await cl.client('s');
    await c.writeFile('f', 'kept in s1');
    await admin.createSnapshot('s', 's1');
    await admin.createSnapshot('s', 'keep');
    await cl.bricks[2]!.kill9();
    await admin.deleteSnapshot('s', 's1');
    // Taken and deleted while the brick was away: it only needs the tombstone.
    await admin.createSnapshot('s', 's2');
    await admin.deleteSnapshot('s', 's2');
    assert.deepEqual(
      (await admin.listSnapshots('s')).map((x) => x['id']),
      ['keep'],
    );
    // A snapshot only one brick holds is not the share's: never spread.
    fs.cpSync(snapDir(cl, 0, 's', 'keep'), snapDir(cl, 0, 's', 'lonely'), { recursive: true });
    const lonelyJson = path.join(snapDir(cl, 0, 's', 'lonely'), 'snap.json');
    fs.writeFileSync(
      lonelyJson,
      JSON.stringify({ ...JSON.parse(fs.readFileSync(lonelyJson, 'utf8')), id: 'lonely' }),
    );
    assert.equal(fs.existsSync(path.join(snapDir(cl, 2, 's', 's1'), 'snap.json')), true);
    await cl.restartBrick(2);
    const tomb = (i: number, id: string) =>
      fs.existsSync(path.join(cl.brickDirs[i]!, 'shares', 's', 'meta', 'snaps-deleted', id));
    await waitFor(
      async () =>
        !fs.existsSync(snapDir(cl, 2, 's', 's1')) &&
        tomb(2, 's1') &&
        tomb(2, 's2') &&
        (await admin.healReport('s')).snapshots.length === 0,
      30_000,
      'deletions healed on replica 3',
    );
    await admin.healNow('s');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(fs.existsSync(snapDir(cl, 2, 's', 's1')), false);
    for (const i of [0, 1, 2]) assert.equal(fs.existsSync(snapDir(cl, i, 's', 's2')), false);
    for (const i of [1, 2]) assert.equal(fs.existsSync(snapDir(cl, i, 's', 'lonely')), false);
    assert.deepEqual(
      (await admin.listSnapshots('s')).map((x) => x['id']),
      ['keep'],
    );
    assertSnapshotsEqual(cl, 's', 'keep');
    await assertReplicasEqual(cl, 's');
  } finally {
    await cl.close();
  }
});

test('a snapshot heal cut short by a kill of the target, then of the share server, restarts cleanly; nothing half-made is listed', async () => {
  const cl = await Cluster.start();
  try {
    const admin = await cl.client();
    await admin.createShare('s', 1 << 30);
    const c = await cl.client('s');
    const size = 160 * MIB;
    await c.writeFile('big', noise(size, 3));
    await c.writeFile('small', 'small file');
    await settled(admin, 's');
    await cl.bricks[2]!.kill9();
    await admin.createSnapshot('s', 'snap');
    // Changed after the snapshot: the brick cannot take the snapshot's file from its live tree.
    await c.write('big', 0, Buffer.from('changed'));
    await cl.restartBrick(2);
    const snaps = path.join(cl.brickDirs[2]!, 'shares', 's', 'snaps');
    /** A staging tree (other than `not`) in which the big file is half there. */
    const halfCopied = async (not: string): Promise<string> => {
      let staged = '';
      await waitFor(
        () => {
          const tmp = fs.readdirSync(snaps).find((x) => x.startsWith('snap.tmp-heal-') && x !== not);
          if (!tmp) return false;
          try {
            const st = fs.statSync(path.join(snaps, tmp, 'data', 'big'));
            if (st.size > 0 && st.size < size) {
              staged = tmp;
              return true;
            }
          } catch {
            // not there yet
          }
          return false;
        },
        30_000,
        'the big file half copied',
      );
      return staged;
    };
    const nothingListed = (): void => {
      assert.equal(fs.existsSync(path.join(snaps, 'snap')), false, 'no snapshot published half-made');
      assert.deepEqual(listSnaps(path.join(cl.brickDirs[2]!, 'shares', 's')), []);
    };
    // Cut short by a kill of the target while the big file is on its way...
    const first = await halfCopied('');
    await cl.bricks[2]!.kill9();
    nothingListed();
    await cl.restartBrick(2);
    // ... then by a kill of the share server: another one takes the share over and finishes it.
    await halfCopied(first);
    await cl.server.kill9();
    nothingListed();
    const s2 = await cl.startServer();
    cl.servers.push(s2);
    const admin2 = await cl.client();
    await admin2.attachShare('s');
    await waitSnapHealed(admin2, cl, 's', 2, 'snap');
    assert.deepEqual(
      fs.readdirSync(snaps).filter((x) => x.includes('.tmp-')),
      [],
    );
    assertSnapshotsEqual(cl, 's', 'snap', 2);
    await assertReplicasEqual(cl, 's');
  } finally {
    await cl.close();
  }
});

test('a repeated create leaves a brick that missed the snapshot to heal (same point in time)', async () => {
  const cl = await Cluster.start({ serverArgs: ['--no-auto-heal'] });
  try {
    const admin = await cl.client();
    await admin.createShare('s', 1 << 30);
    const c = await cl.client('s');
    await c.writeFile('f', 'one');
    await settled(admin, 's');
    await cl.bricks[2]!.kill9();
    const first = await admin.createSnapshot('s', 'snap');
    await cl.restartBrick(2);
    await waitFor(
      async () => (await admin.healInfo('s')).every((b) => b.connected),
      20_000,
      'replica 3 back',
    );
    await c.writeFile('f', 'two');
    await settled(admin, 's');
    assert.deepEqual(
      (await admin.healReport('s')).snapshots.map((x) => [x.snapshot, x.action]),
      [['snap', 'copy']],
    );
    // The retry answers the snapshot as it is and does not take a new one on replica 3.
    const again = await admin.createSnapshot('s', 'snap');
    assert.deepEqual(again['snapshot'], first['snapshot']);
    assert.equal(fs.existsSync(snapDir(cl, 2, 's', 'snap')), false);
    const r = await admin.healNow('s');
    assert.equal((r['snapshots'] as unknown as { copied: number }).copied, 1);
    assert.equal(fs.readFileSync(path.join(snapDir(cl, 2, 's', 'snap'), 'data', 'f'), 'utf8'), 'one');
    assertSnapshotsEqual(cl, 's', 'snap', 2);
    assert.deepEqual((await admin.healReport('s')).snapshots, []);
  } finally {
    await cl.close();
  }
});

test('a snapshot of thousands of names heals in pages: every name once, hard links across pages kept', async () => {
  const cl = await Cluster.start();
  try {
    const admin = await cl.client();
    await admin.createShare('s', 1 << 30);
    const c = await cl.client('s');
    // Names that sort in interesting ways: a directory 'a' before a file 'a.b' and 'a-b'
    // (pre-order must follow the component order, not the string order of whole paths).
    await c.mkdir('a');
    await c.writeFile('a.b', 'dot');
    await c.writeFile('a-b', 'dash');
    const ops: Promise<unknown>[] = [];
    for (let d = 0; d < 5; d++) {
      await c.mkdir(`a/d${d}`);
      await c.mkdir(`a/d${d}/sub`);
    }
    for (let d = 0; d < 5; d++)
      for (let i = 0; i < 500; i++) {
        ops.push(c.writeFile(`a/d${d}/f${i}`, `file ${d}/${i}`));
        if (ops.length >= 32) await Promise.all(ops.splice(0));
      }
    await Promise.all(ops.splice(0));
    for (let d = 0; d < 5; d++) await c.writeFile(`a/d${d}/sub/last`, Buffer.alloc(100_000, d + 1));
    // Names of one inode far apart in the walk.
    await c.link('a/d0/f1', 'a/d4/sub/link-to-d0-f1');
    await c.link('a/d0/sub/last', 'zz-big-link');
    await settled(admin, 's');
    await cl.bricks[1]!.kill9();
    await admin.createSnapshot('s', 'many');
    await cl.restartBrick(1);
    await waitSnapHealed(admin, cl, 's', 1, 'many');
    const states = assertSnapshotsEqual(cl, 's', 'many', 1);
    assert.equal(states[1]!.entries.size, 1 + 3 + 10 + 2500 + 5 + 2);
    assert.deepEqual(states[1]!.entries.get('zz-big-link')!.links, ['a/d0/sub/last', 'zz-big-link']);
    assert.deepEqual(states[1]!.entries.get('a/d0/f1')!.links, ['a/d0/f1', 'a/d4/sub/link-to-d0-f1']);
    await assertReplicasEqual(cl, 's');
  } finally {
    await cl.close();
  }
});
