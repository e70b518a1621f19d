import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { assertReplicasEqual, Cluster, checksumWalk, digestOf, rng, settled, waitFor } from './helpers.ts';

const MIB = 1024 * 1024;

test('index heal copies only the changed ranges of a large file, and entries missed meanwhile', async () => {
  const cl = await Cluster.start({ serverArgs: ['--no-auto-heal'] });
  try {
    const admin = await cl.client();
    await admin.createShare('h', 1 << 30);
    const c = await cl.client('h');
    const rand = rng(42);
    const big = Buffer.alloc(24 * MIB);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(Math.floor(rand() * 2 ** 32), i);
    await c.writeFile('big', big);
    await c.writeFile('old-name', 'renamed while down');
    await c.writeFile('doomed', 'unlinked while down');
    await c.writeFile('shrunk', Buffer.alloc(3 * MIB, 0x11));
    await settled(admin, 'h');
    await cl.bricks[1]!.kill9();
    // shrink then grow: the sources hold zeros where the sink still has 0x11
    await c.truncate('shrunk', MIB);
    await c.truncate('shrunk', 3 * MIB);
    const patch = Buffer.alloc(MIB, 7);
    await c.write('big', 8 * MIB, patch);
    await c.write('big', 20 * MIB + 5, Buffer.from('tiny change'));
    patch.copy(big, 8 * MIB);
    Buffer.from('tiny change').copy(big, 20 * MIB + 5);
    await c.rename('old-name', 'new-name');
    await c.unlink('doomed');
    await c.mkdir('new-dir');
    await c.writeFile('new-dir/x', 'created while down');
    await c.chmod('new-name', 0o600);
    await cl.restartBrick(1);
    await waitFor(async () => (await admin.healInfo('h')).every((b) => b.connected), 20_000, 'brick back');
    const info = await admin.healInfo('h');
    const blamed = info.find((b) => b.addr !== cl.bricks[1]!.addr)!;
    assert.ok(blamed.entries.some((e) => e.path === 'big'));
    assert.ok(blamed.entries.some((e) => e.path === ''));
    const stats = await admin.healNow('h');
    // 'big': blocks 8 and 20 only; 'shrunk': its last 2 MiB; no checksums (ranges were recorded)
    assert.ok(stats['bytes']! >= 4 * MIB, `copied ${stats['bytes']} bytes`);
    assert.ok(stats['bytes']! < 5 * MIB, `copied ${stats['bytes']} bytes: only the changed blocks travel`);
    assert.equal(stats['summed'], 0);
    await assertReplicasEqual(cl, 'h');
    assert.ok(fs.readFileSync(path.join(cl.shareDataDir(1, 'h'), 'big')).equals(big));
    assert.equal(
      (await admin.healInfo('h')).reduce((n, b) => n + b.count, 0),
      0,
    );
  } finally {
    await cl.close();
  }
});

test('without recorded ranges (a source restarted), data heal compares block checksums', async () => {
  const cl = await Cluster.start({ serverArgs: ['--no-auto-heal'] });
  try {
    const admin = await cl.client();
    await admin.createShare('s', 1 << 30);
    const c = await cl.client('s');
    await c.writeFile('big', Buffer.alloc(12 * MIB, 1));
    await settled(admin, 's');
    await cl.bricks[2]!.kill9();
    await c.write('big', 5 * MIB + 7, Buffer.from('changed while brick 3 was away'));
    // Both sources forget their in-memory ranges: with one restarted only, heal may pick the other
    // source, which still has them, and copy by ranges instead.
    await cl.restartBrick(0);
    await cl.restartBrick(1);
    await cl.restartBrick(2);
    await waitFor(async () => (await admin.healInfo('s')).every((b) => b.connected), 20_000, 'bricks back');
    const stats = await admin.healNow('s');
    assert.equal(stats['summed'], 12);
    assert.equal(stats['bytes'], MIB);
    await assertReplicasEqual(cl, 's');
  } finally {
    await cl.close();
  }
});

test('full heal finds differences no marker recorded and repairs them from the majority', async () => {
  const cl = await Cluster.start({ serverArgs: ['--no-auto-heal'] });
  try {
    const admin = await cl.client();
    await admin.createShare('fh', 1 << 30);
    const c = await cl.client('fh');
    await c.mkdir('d');
    await c.writeFile('d/a', 'aaa');
    await c.writeFile('d/b', 'bbb');
    await c.writeFile('top', 'top');
    await settled(admin, 'fh');
    // Damage brick 3 behind the share server's back: no marker knows about it.
    const d3 = cl.shareDataDir(2, 'fh');
    fs.chmodSync(path.join(d3, 'd', 'a'), 0o600);
    fs.unlinkSync(path.join(d3, 'd', 'b'));
    fs.writeFileSync(path.join(d3, 'stray'), 'not replicated');
    assert.notEqual(digestOf(checksumWalk(d3)), digestOf(checksumWalk(cl.shareDataDir(0, 'fh'))));
    await admin.healNow('fh');
    assert.notEqual(
      digestOf(checksumWalk(d3)),
      digestOf(checksumWalk(cl.shareDataDir(0, 'fh'))),
      'an index heal only follows markers',
    );
    await admin.healNow('fh', true);
    await assertReplicasEqual(cl, 'fh');
    assert.equal(fs.existsSync(path.join(d3, 'stray')), false);
    assert.equal(fs.readFileSync(path.join(d3, 'd', 'b'), 'utf8'), 'bbb');
    assert.equal((await c.stat('d/a')).mode, 0o644);
  } finally {
    await cl.close();
  }
});

test('the periodic heal repairs a returned brick on its own', async () => {
  const cl = await Cluster.start({ serverArgs: ['--no-auto-heal', '--heal-interval-ms', '500'] });
  try {
    const admin = await cl.client();
    await admin.createShare('t', 1 << 30);
    const c = await cl.client('t');
    await c.writeFile('before', 'x');
    await settled(admin, 't');
    await cl.bricks[2]!.kill9();
    await c.writeFile('during', 'missed by brick 3');
    await c.mkdir('dir-during');
    await cl.restartBrick(2);
    await waitFor(
      async () => {
        const info = await admin.healInfo('t');
        return info.every((b) => b.connected && b.count === 0);
      },
      30_000,
      'the timer to heal',
    );
    await assertReplicasEqual(cl, 't');
    assert.equal(fs.readFileSync(path.join(cl.shareDataDir(2, 't'), 'during'), 'utf8'), 'missed by brick 3');
  } finally {
    await cl.close();
  }
});

test('a brick that lost the share (wiped or replaced disk) is refilled by heal', async () => {
  const cl = await Cluster.start();
  try {
    const admin = await cl.client();
    await admin.createShare('w', 1 << 30);
    const c = await cl.client('w');
    await c.mkdir('a/b', { recursive: true });
    for (let i = 0; i < 20; i++) await c.writeFile(`a/b/f${i}`, `file ${i}`);
    await c.symlink('a/b/f1', 'link');
    await c.writeFile('big', Buffer.alloc(3 * MIB, 9));
    await settled(admin, 'w');
    await cl.bricks[0]!.kill9();
    fs.rmSync(path.join(cl.brickDirs[0]!, 'shares', 'w'), { recursive: true });
    await cl.restartBrick(0);
    await c.writeFile('a/after', 'written while the disk was refilled');
    await waitFor(
      async () => (await admin.healInfo('w')).every((b) => b.connected && b.count === 0),
      30_000,
      'refill',
    );
    await assertReplicasEqual(cl, 'w');
    assert.equal(checksumWalk(cl.shareDataDir(0, 'w')).size, 25); // a, a/b, 20 files, link, big, a/after
  } finally {
    await cl.close();
  }
});

test('hard links made while a brick was down heal as names of one inode, not as copies', async () => {
  const cl = await Cluster.start({ serverArgs: ['--no-auto-heal'] });
  try {
    const admin = await cl.client();
    await admin.createShare('hl', 1 << 30);
    const c = await cl.client('hl');
    await c.mkdir('d');
    await c.mkdir('e');
    await c.writeFile('d/a', 'one');
    await settled(admin, 'hl');
    await cl.bricks[1]!.kill9();
    await c.link('d/a', 'e/b'); // a second name in another directory
    await c.link('d/a', 'd/c');
    await c.writeFile('d/a', 'two');
    await cl.restartBrick(1);
    await waitFor(async () => (await admin.healInfo('hl')).every((b) => b.connected), 20_000, 'brick back');
    await admin.healNow('hl');
    await assertReplicasEqual(cl, 'hl');
    for (let i = 0; i < 3; i++) {
      const ino = (p: string): number => fs.statSync(path.join(cl.shareDataDir(i, 'hl'), p)).ino;
      assert.equal(ino('e/b'), ino('d/a'), `brick ${i + 1}: e/b is a name of d/a's inode`);
      assert.equal(ino('d/c'), ino('d/a'), `brick ${i + 1}: d/c is a name of d/a's inode`);
    }
    assert.equal((await c.stat('d/a')).nlink, 3, 'the index name is not counted');
    // A write through one name shows under the others on every replica.
    await c.writeFile('e/b', 'three');
    await assertReplicasEqual(cl, 'hl');
    for (let i = 0; i < 3; i++)
      assert.equal(fs.readFileSync(path.join(cl.shareDataDir(i, 'hl'), 'd', 'c'), 'utf8'), 'three');
    // Removing every name frees the file: no index entry keeps it alive.
    for (const p of ['d/a', 'e/b', 'd/c']) await c.unlink(p);
    await assertReplicasEqual(cl, 'hl');
    for (let i = 0; i < 3; i++)
      assert.deepEqual(fs.readdirSync(path.join(cl.brickDirs[i]!, 'shares', 'hl', 'meta', 'links')), []);
    assert.equal((await admin.usage('hl')).used, 0);
  } finally {
    await cl.close();
  }
});

test('heal info lists a bounded number of entries per brick and counts them all', async () => {
  const { HEAL_INFO_ENTRIES } = await import('../../../backends/replicated/server/heal.ts');
  const cl = await Cluster.start();
  try {
    const admin = await cl.client();
    await admin.createShare('many', 1 << 30);
    const c = await cl.client('many');
    // More directories with a missed change than one answer lists, with long names: an unbounded
    // list would not fit in one frame's header (256 KiB), and the answer would break the connection.
    const n = HEAL_INFO_ENTRIES + 150;
    const long = 'n'.repeat(200);
    for (let i = 0; i < n; i++) await c.mkdir(`${long}-${i}`);
    await cl.bricks[1]!.kill9();
    for (let i = 0; i < n; i++) await c.mkdir(`${long}-${i}/${long}`);
    const info = await admin.healInfo('many');
    const blamed = info.find((b) => b.addr !== cl.bricks[1]!.addr)!;
    assert.ok(blamed.count >= n, `count ${blamed.count}`);
    assert.ok(blamed.entries.length <= HEAL_INFO_ENTRIES, `${blamed.entries.length} listed`);
    assert.ok(blamed.entries.length > 0);
  } finally {
    await cl.close();
  }
});
