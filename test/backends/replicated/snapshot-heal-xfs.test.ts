import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  assertReplicasEqual,
  Cluster,
  readReplica,
  replicaDifferences,
  settled,
  waitFor,
} from './helpers.ts';

const MIB = 1024 * 1024;

/** Why the reflink test cannot run here, or null: it needs root and mkfs.xfs (CI has both). */
function cannotRun(): string | null {
  if (process.getuid?.() !== 0) return 'needs root to mount an XFS loop image';
  try {
    execFileSync('mkfs.xfs', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'mkfs.xfs not found (Debian package xfsprogs)';
  }
  return null;
}

const skip = cannotRun();
let mnt = '';
let img = '';

before(() => {
  if (skip) return;
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'abaca-xfs-'));
  img = path.join(base, 'xfs.img');
  mnt = path.join(base, 'mnt');
  fs.mkdirSync(mnt);
  fs.closeSync(fs.openSync(img, 'w'));
  fs.truncateSync(img, 1024 * MIB);
  execFileSync('mkfs.xfs', ['-q', '-m', 'reflink=1', img]);
  execFileSync('mount', ['-o', 'loop', img, mnt]);
});

after(() => {
  if (skip || !mnt) return;
  execFileSync('umount', [mnt]);
  fs.rmSync(path.dirname(img), { recursive: true, force: true });
});

test('on XFS with reflink, snapshot heal reflinks the files a returning brick still holds unchanged', {
  skip: skip ?? false,
}, async () => {
  const saved = process.env['TMPDIR'];
  process.env['TMPDIR'] = mnt; // the cluster's brick directories go on the XFS image
  const cl = await Cluster.start();
  if (saved === undefined) delete process.env['TMPDIR'];
  else process.env['TMPDIR'] = saved;
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
