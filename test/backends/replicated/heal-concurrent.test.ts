/**
 * Entry operations that overlap the heal of their directory (issue 14). A brick misses an overwrite
 * while it is down; when it returns, the heal of the directory starts, and while it runs a client
 * renames, links, truncates or re-creates the file whose copy on that brick is stale. Whatever the
 * order, heal must end with every replica holding the acknowledged data, and heal info may only be
 * clean once it does. Each case runs with the returning brick first and last in the share's list
 * (ties between replicas are broken by list order, which is how the stale copy once won).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { ReplicatedClient } from '../../../backends/replicated/client/client.ts';
import { assertReplicasEqual, Cluster, settled, waitFor } from './helpers.ts';

/** Files created in the directory while the brick is down: they make its heal take a while. */
const FILLER = Number(process.env['ABACA_HEAL_FILLER'] ?? 1500);
const SHARE = 's';
const A = 'A: the content every replica acknowledged first';
const B = 'B: the overwrite acknowledged while one brick was down';

interface Run {
  cl: Cluster;
  admin: ReplicatedClient;
  c: ReplicatedClient;
}

/** Three bricks; brick 0 (the one that will miss writes) is first or last in the share's list. */
async function start(returningFirst: boolean): Promise<Run> {
  const cl = await Cluster.start();
  const admin = await cl.client();
  const order = returningFirst ? [0, 1, 2] : [1, 2, 0];
  await admin.createShare(SHARE, 1 << 30, { bricks: order.map((i) => cl.brickAddrs[i]!) });
  const c = await cl.client(SHARE);
  return { cl, admin, c };
}

async function fill(c: ReplicatedClient, dir: string): Promise<void> {
  for (let i = 0; i < FILLER; i += 50) {
    const batch: Promise<void>[] = [];
    for (let j = i; j < Math.min(FILLER, i + 50); j++)
      batch.push(c.writeFile(`${dir}/filler-${String(j).padStart(5, '0')}`, `f${j}`));
    await Promise.all(batch);
  }
}

async function healingNow(admin: ReplicatedClient, dir: string): Promise<boolean> {
  return (await admin.healInfo(SHARE)).some((b) => b.entries.some((e) => e.path === dir && e.healing));
}

/**
 * Restarts brick 0, runs `ops` as soon as heal info shows `dir` being healed, and checks that the
 * heal was still running when they were acknowledged (else the case tested nothing).
 */
async function duringHealOf(run: Run, dir: string, ops: () => Promise<void>): Promise<void> {
  await run.cl.restartBrick(0);
  const t0 = Date.now();
  while (!(await healingNow(run.admin, dir))) {
    if (Date.now() - t0 > 20_000) throw new Error(`the heal of '${dir}' never started`);
    await new Promise((r) => setTimeout(r, 2));
  }
  await ops();
  assert.ok(await healingNow(run.admin, dir), `'${dir}' was still being healed when the operations returned`);
}

/** Every replica's disk, and every client read, holds `want` at `p`. */
async function expectEverywhere(run: Run, p: string, want: string): Promise<void> {
  for (let i = 0; i < run.cl.bricks.length; i++) {
    const got = fs.readFileSync(path.join(run.cl.shareDataDir(i, SHARE), p), 'utf8');
    assert.equal(got, want, `brick ${i + 1} holds the wrong content at ${p}`);
  }
  for (let i = 0; i < 6; i++)
    assert.equal((await run.c.readFile(p)).toString(), want, `read ${i + 1} of ${p}`);
}

function absentEverywhere(run: Run, p: string): void {
  for (let i = 0; i < run.cl.bricks.length; i++)
    assert.ok(!fs.existsSync(path.join(run.cl.shareDataDir(i, SHARE), p)), `brick ${i + 1} still has ${p}`);
}

for (const returningFirst of [true, false]) {
  const where = returningFirst ? 'first' : 'last';

  test(`a rename during the heal of its directory keeps the acknowledged overwrite (returning brick ${where})`, async () => {
    const run = await start(returningFirst);
    const { cl, admin, c } = run;
    try {
      await c.mkdir('d');
      await c.writeFile('d/zz-target', A);
      await settled(admin, SHARE);
      await cl.bricks[0]!.kill9();
      await fill(c, 'd');
      await c.writeFile('d/zz-target', B);
      await duringHealOf(run, 'd', () => c.rename('d/zz-target', 'd/zz-renamed'));
      await assertReplicasEqual(cl, SHARE);
      await expectEverywhere(run, 'd/zz-renamed', B);
      absentEverywhere(run, 'd/zz-target');

      // One more fault on a brick that holds B: with a stale copy left anywhere, this is where the
      // majority used to flip to A.
      await cl.bricks[1]!.kill9();
      await c.writeFile('d/one-more', 'created while brick 2 was down');
      await cl.restartBrick(1);
      await assertReplicasEqual(cl, SHARE);
      await expectEverywhere(run, 'd/zz-renamed', B);
      await admin.healNow(SHARE, true);
      await assertReplicasEqual(cl, SHARE);
      await expectEverywhere(run, 'd/zz-renamed', B);
    } finally {
      await cl.close();
    }
  });

  test(`entry operations on stale files during the heal of their directory (returning brick ${where})`, async () => {
    const run = await start(returningFirst);
    const { cl, admin, c } = run;
    try {
      await c.mkdir('d');
      await c.mkdir('e');
      await c.mkdir('d/zz-sub');
      for (const n of ['zz-1', 'zz-2', 'zz-3', 'zz-4', 'zz-5', 'zz-6', 'zz-sub/f'])
        await c.writeFile(`d/${n}`, `${A} (${n})`);
      await c.writeFile('d/aa-existing', 'replaced by a rename');
      await settled(admin, SHARE);
      await cl.bricks[0]!.kill9();
      await fill(c, 'd');
      for (const n of ['zz-1', 'zz-2', 'zz-3', 'zz-4', 'zz-5', 'zz-6', 'zz-sub/f'])
        await c.writeFile(`d/${n}`, `${B} (${n})`);
      await duringHealOf(run, 'd', async () => {
        await c.rename('d/zz-1', 'e/moved'); // into another directory
        await c.rename('d/zz-2', 'd/aa-existing'); // over a name the heal has already passed
        await c.link('d/zz-3', 'd/zz-3-link'); // a second name for a stale inode
        await c.unlink('d/zz-4'); // removed and created again under the same name
        await c.writeFile('d/zz-4', 'C: created again during the heal');
        await c.mkdir('d/new-dir'); // a directory made during the heal, then moved
        await c.writeFile('d/new-dir/x', 'made during the heal');
        await c.rename('d/new-dir', 'e/new-dir');
        await c.rename('d/zz-sub', 'd/zz-sub-moved'); // a directory whose file is stale
        await c.truncate('d/zz-5', 3); // truncated, then renamed
        await c.rename('d/zz-5', 'd/zz-5-renamed');
        await c.rename('d/zz-6', 'e/zz-6'); // into another directory, then over there again
        await c.rename('e/zz-6', 'e/zz-6-again');
      });
      await assertReplicasEqual(cl, SHARE);
      await expectEverywhere(run, 'e/moved', `${B} (zz-1)`);
      await expectEverywhere(run, 'd/aa-existing', `${B} (zz-2)`);
      await expectEverywhere(run, 'd/zz-3', `${B} (zz-3)`);
      await expectEverywhere(run, 'd/zz-3-link', `${B} (zz-3)`);
      await expectEverywhere(run, 'd/zz-4', 'C: created again during the heal');
      await expectEverywhere(run, 'e/new-dir/x', 'made during the heal');
      await expectEverywhere(run, 'd/zz-sub-moved/f', `${B} (zz-sub/f)`);
      await expectEverywhere(run, 'd/zz-5-renamed', B.slice(0, 3));
      await expectEverywhere(run, 'e/zz-6-again', `${B} (zz-6)`);
      for (const gone of ['d/zz-1', 'd/zz-2', 'd/zz-5', 'd/zz-6', 'd/new-dir', 'd/zz-sub', 'e/zz-6'])
        absentEverywhere(run, gone);
      // The link is one inode on every replica: a write through one name shows under the other.
      await c.writeFile('d/zz-3-link', 'D: written through the link');
      await assertReplicasEqual(cl, SHARE);
      await expectEverywhere(run, 'd/zz-3', 'D: written through the link');
    } finally {
      await cl.close();
    }
  });
}

test('reads never return a copy known to be stale, also after the stale file was renamed or linked', async () => {
  const cl = await Cluster.start({ serverArgs: ['--no-auto-heal'] });
  try {
    const admin = await cl.client();
    await admin.createShare(SHARE, 1 << 30);
    const c = await cl.client(SHARE);
    const run: Run = { cl, admin, c };
    await c.mkdir('d');
    await c.mkdir('e');
    await c.mkdir('d/sub');
    await c.writeFile('d/f', A);
    await c.writeFile('d/sub/g', A);
    await c.writeFile('d/h1', A);
    await c.link('d/h1', 'e/h2');
    await settled(admin, SHARE);
    await cl.bricks[0]!.kill9();
    await c.writeFile('d/f', B);
    await c.writeFile('d/sub/g', B);
    await c.write('d/h1', 0, Buffer.from(B)); // through one name of a linked file
    await cl.restartBrick(0);
    await waitFor(async () => (await admin.healInfo(SHARE)).every((b) => b.connected), 20_000, 'brick back');
    // No heal runs: brick 1 still holds A everywhere, and every read must skip it.
    const reads = async (p: string): Promise<void> => {
      for (let i = 0; i < 9; i++) assert.equal((await c.readFile(p)).toString(), B, `read ${i + 1} of ${p}`);
    };
    await reads('d/f');
    await reads('e/h2'); // the other name: its inode missed the write too
    await c.rename('d/f', 'e/f2');
    await reads('e/f2');
    await c.link('e/f2', 'e/f3');
    await reads('e/f3');
    await c.rename('d/sub', 'e/sub2');
    await reads('e/sub2/g');
    assert.equal(
      fs.readFileSync(path.join(cl.shareDataDir(0, SHARE), 'e', 'sub2', 'g'), 'utf8'),
      A,
      'brick 1 still holds the stale copy (reads above had to avoid it)',
    );
    await admin.healNow(SHARE);
    await assertReplicasEqual(cl, SHARE);
    await expectEverywhere(run, 'e/f3', B);
    await expectEverywhere(run, 'e/sub2/g', B);
    await expectEverywhere(run, 'e/h2', B);
  } finally {
    await cl.close();
  }
});
