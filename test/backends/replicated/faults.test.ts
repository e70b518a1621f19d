import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertReplicasEqual, Cluster, checksumWalk, digestOf, expectCode, waitFor } from './helpers.ts';
import { Workload } from './workload.ts';

const SEED = Number(process.env['ABACA_TEST_SEED'] ?? 6);
const OPS = Number(process.env['ABACA_FAULT_OPS'] ?? 2000);

async function healed(cl: Cluster, share: string): Promise<void> {
  const admin = await cl.client();
  await waitFor(
    async () => {
      const info = await admin.healInfo(share);
      if (!info.every((b) => b.connected)) return false;
      if (info.some((b) => b.count > 0)) {
        await admin.healNow(share);
        return false;
      }
      return true;
    },
    60_000,
    'heal to finish',
  );
}

test('a) kill -9 one brick during 2,000 mixed operations from 4 clients; heal; replicas identical', async () => {
  const cl = await Cluster.start();
  try {
    const admin = await cl.client();
    await admin.createShare('fa', 1 << 30);
    const loads: Workload[] = [];
    for (let i = 0; i < 4; i++) {
      const w = new Workload(await cl.client('fa'), `c${i}`, SEED * 100 + i);
      await w.setup();
      loads.push(w);
    }
    let total = 0;
    let killed: Promise<void> | undefined;
    const onOp = (): void => {
      total++;
      if (total === Math.floor(OPS * 0.35) && !killed) killed = cl.bricks[1]!.kill9();
    };
    await Promise.all(loads.map((w) => w.run(OPS / 4, onOp)));
    await killed;
    assert.equal(total, OPS, 'every operation was acknowledged with one brick down');
    for (const w of loads) await w.verify();
    const info = await admin.healInfo('fa');
    const dead = cl.bricks[1]!.addr;
    assert.equal(info.find((b) => b.addr === dead)!.connected, false);
    for (const b of info.filter((x) => x.addr !== dead))
      assert.ok(b.count > 0, 'the surviving bricks list entries the dead one missed');
    // The brick returns and heal runs while the clients keep working.
    await cl.restartBrick(1);
    await Promise.all(loads.map((w) => w.run(50)));
    await healed(cl, 'fa');
    for (const w of loads) await w.verify();
    await assertReplicasEqual(cl, 'fa');
    // and the healed tree is the model: read every file through brick 2 alone
    await cl.bricks[0]!.kill9();
    await cl.bricks[2]!.kill9();
    const only = checksumWalk(cl.shareDataDir(1, 'fa'));
    let files = 0;
    for (const w of loads) files += w.files.size;
    assert.equal([...only.values()].filter((v) => v.startsWith('file')).length, files);
  } finally {
    await cl.close();
  }
});

test('b) a SIGSTOPped brick costs a bounded stall, then quorum continues; SIGCONT, heal, identical', async () => {
  const cl = await Cluster.start();
  try {
    const admin = await cl.client();
    await admin.createShare('fb', 1 << 30);
    const w = new Workload(await cl.client('fb'), 'w', SEED + 1);
    await w.setup();
    await w.run(100);
    cl.bricks[2]!.signal('SIGSTOP');
    let worst = 0;
    let last = Date.now();
    await w.run(200, () => {
      const now = Date.now();
      worst = Math.max(worst, now - last);
      last = now;
    });
    // brick timeout is 3 s in these tests; the bound is generous for a loaded machine
    assert.ok(worst < 10_000, `stall of ${worst} ms`);
    await w.verify();
    cl.bricks[2]!.signal('SIGCONT');
    await healed(cl, 'fb');
    await assertReplicasEqual(cl, 'fb');
    await w.run(50);
    await w.verify();
  } finally {
    await cl.close();
  }
});

test('c) two bricks down: writes fail ENOTCONN/EIO, in-sync reads work, nothing diverges; heal after', async () => {
  const cl = await Cluster.start();
  try {
    const admin = await cl.client();
    await admin.createShare('fc', 1 << 30);
    const c = await cl.client('fc');
    await c.writeFile('keep.txt', 'in sync');
    await c.mkdir('d');
    await cl.bricks[0]!.kill9();
    await cl.bricks[1]!.kill9();
    await waitFor(
      async () => (await admin.brickStatus()).filter((b) => b['up']).length === 1,
      10_000,
      'bricks down',
    );
    const before = digestOf(checksumWalk(cl.shareDataDir(2, 'fc')));
    await expectCode(c.writeFile('new.txt', 'x'), ['ENOTCONN', 'EIO']);
    await expectCode(c.write('keep.txt', 0, Buffer.from('XX')), ['ENOTCONN', 'EIO']);
    await expectCode(c.mkdir('d2'), ['ENOTCONN', 'EIO']);
    await expectCode(c.rename('keep.txt', 'moved.txt'), ['ENOTCONN', 'EIO']);
    await expectCode(c.unlink('keep.txt'), ['ENOTCONN', 'EIO']);
    assert.equal((await c.readFile('keep.txt')).toString(), 'in sync');
    assert.deepEqual(await c.readdir(''), ['d', 'keep.txt']);
    assert.equal(
      digestOf(checksumWalk(cl.shareDataDir(2, 'fc'))),
      before,
      'the surviving brick did not change',
    );
    await cl.restartBrick(0);
    await cl.restartBrick(1);
    await healed(cl, 'fc');
    await c.writeFile('after.txt', 'quorum is back');
    assert.equal((await c.readFile('after.txt')).toString(), 'quorum is back');
    await assertReplicasEqual(cl, 'fc');
  } finally {
    await cl.close();
  }
});
