import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { assertReplicasEqual, readReplica, replicaDifferences, settled, waitFor } from './helpers.ts';
import { useXfsImage } from './xfs-image.ts';

const MIB = 1024 * 1024;

const xfs = useXfsImage();
const skip = xfs.skip;

test('on XFS with reflink, snapshot heal reflinks the files a returning brick still holds unchanged', {
  skip: skip ?? false,
}, async () => {
  const cl = await xfs.startCluster();
  try {
    const admin = await cl.client();
    await admin.createShare('x', 200 * MIB);
    const c = await cl.client('x');
    await c.writeFile('big', Buffer.alloc(32 * MIB, 1));
    await c.writeFile('changed', 'before');
    await settled(admin, 'x');
    await cl.bricks[2]!.kill9();
    await admin.createSnapshot('x', 's');
    await c.writeFile('changed', 'after the snapshot');
    await cl.restartBrick(2);
    const dir = (i: number) => path.join(cl.brickDirs[i]!, 'shares', 'x', 'snaps', 's');
    await waitFor(
      async () =>
        fs.existsSync(path.join(dir(2), 'snap.json')) && (await admin.healReport('x')).snapshots.length === 0,
      30_000,
      'snapshot healed',
    );
    const info = JSON.parse(fs.readFileSync(path.join(dir(2), 'snap.json'), 'utf8')) as { method: string };
    assert.equal(info.method, 'reflink');
    const live = fs.statSync(path.join(cl.shareDataDir(2, 'x'), 'big'));
    const healed = fs.statSync(path.join(dir(2), 'data', 'big'));
    assert.notEqual(live.ino, healed.ino, 'reflink copies are new inodes');
    assert.equal(fs.readFileSync(path.join(dir(2), 'data', 'changed'), 'utf8'), 'before');
    await c.write('big', 0, Buffer.from('changed'));
    await settled(admin, 'x');
    const states = [0, 1, 2].map((i) => ({
      index: i,
      label: `snapshot on replica ${i + 1}`,
      dir: dir(i),
      entries: readReplica(dir(i), path.join(dir(i), 'records.bin')),
    }));
    assert.deepEqual(
      replicaDifferences(states).map((d) => d.message),
      [],
    );
    assert.equal(
      fs
        .readFileSync(path.join(dir(2), 'data', 'big'))
        .subarray(0, 7)
        .toString('hex'),
      '01010101010101',
    );
    await assertReplicasEqual(cl, 'x');
  } finally {
    await cl.close();
  }
});
