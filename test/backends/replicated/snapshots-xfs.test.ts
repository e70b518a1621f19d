import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { assertReplicasEqual } from './helpers.ts';
import { useXfsImage } from './xfs-image.ts';

const MIB = 1024 * 1024;

const xfs = useXfsImage();
const skip = xfs.skip;

test('on XFS with reflink, snapshot, revert and clone reflink large files, hard-link small ones and stay independent', {
  skip: skip ?? false,
}, async () => {
  const cl = await xfs.startCluster();
  try {
    const admin = await cl.client();
    await admin.createShare('x', 200 * MIB);
    const c = await cl.client('x');
    await c.writeFile('big', Buffer.alloc(32 * MIB, 1));
    await c.writeFile('small', 'small');
    const res = await admin.createSnapshot('x', 's');
    assert.deepEqual(new Set(Object.values(res['methods'] as Record<string, string>)), new Set(['reflink']));
    const live = fs.statSync(path.join(cl.shareDataDir(0, 'x'), 'big'));
    const snap = fs.statSync(path.join(cl.brickDirs[0]!, 'shares', 'x', 'snaps', 's', 'data', 'big'));
    assert.notEqual(live.ino, snap.ino, 'reflink copies are new inodes');
    const snapSmall = path.join(cl.brickDirs[0]!, 'shares', 'x', 'snaps', 's', 'data', 'small');
    const liveSmall = path.join(cl.shareDataDir(0, 'x'), 'small');
    assert.equal(
      fs.statSync(snapSmall).ino,
      fs.statSync(liveSmall).ino,
      'a file under 64 KiB is hard-linked',
    );
    await c.writeFile('small', 'written after the snapshot');
    assert.equal(fs.readFileSync(snapSmall, 'utf8'), 'small', 'the write broke the link first');
    assert.notEqual(fs.statSync(liveSmall).ino, fs.statSync(snapSmall).ino);
    await c.write('big', 0, Buffer.from('changed'));
    assert.equal(
      fs
        .readFileSync(path.join(cl.brickDirs[0]!, 'shares', 'x', 'snaps', 's', 'data', 'big'))
        .subarray(0, 7)
        .toString('hex'),
      '01010101010101',
    );
    await admin.revertToSnapshot('x', 's');
    const c2 = await cl.client('x');
    assert.ok((await c2.readFile('big')).equals(Buffer.alloc(32 * MIB, 1)));
    const cloned = await admin.cloneShare('y', 200 * MIB, { from: 'x', snapshot: 's' });
    assert.equal(cloned['method'], 'reflink');
    await c2.writeFile('small', 'changed in x');
    await admin.setAccess('y', [{ id: 'r', to: '127.0.0.0/8', level: 'rw' }]);
    const y = await cl.client('y');
    assert.equal((await y.readFile('small')).toString(), 'small');
    await assertReplicasEqual(cl, 'x');
    await assertReplicasEqual(cl, 'y');
  } finally {
    await cl.close();
  }
});
