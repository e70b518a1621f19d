import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Cluster, checksumWalk, digestOf, expectCode, settled, waitFor } from './helpers.ts';

const sha1 = (s: string): string => createHash('sha1').update(s).digest('hex');

test('f) a manufactured split-brain is detected, listed, refused, and resolved by each policy', async () => {
  const cl = await Cluster.start({ serverArgs: ['--no-auto-heal'] });
  try {
    const admin = await cl.client();
    await admin.createShare('sb', 1 << 30);
    const c = await cl.client('sb');
    const files = ['by-size', 'by-mtime', 'by-source'];
    for (const f of files) await c.writeFile(f, 'base');
    // A write is answered on quorum: let the third replica apply it before editing behind its back.
    await settled(admin, 'sb');
    const dataOf = (i: number, f: string) => path.join(cl.shareDataDir(i, 'sb'), f);
    const ids = cl.brickDirs.map(
      (d) => JSON.parse(fs.readFileSync(path.join(d, 'brick.json'), 'utf8')).id as string,
    );
    // Like editing trusted.afr.* by hand: each replica gets its own contents and blames the others.
    const contents = ['a', 'bbbbbbbbbbbb', 'cccccc'];
    const mtimes = [3_000_000, 1_000_000, 2_000_000];
    for (let i = 0; i < 3; i++) {
      const share = path.join(cl.brickDirs[i]!, 'shares', 'sb');
      for (const f of files) {
        const dataFile = dataOf(i, f);
        fs.writeFileSync(dataFile, contents[i]!);
        fs.utimesSync(dataFile, mtimes[i]! / 1000, mtimes[i]! / 1000);
        const blame = Object.fromEntries(ids.filter((_, j) => j !== i).map((id) => [id, 1]));
        fs.writeFileSync(
          path.join(share, 'meta', 'index', 'pending', sha1(f)),
          JSON.stringify({ path: f, blame }),
        );
      }
    }
    for (let i = 0; i < 3; i++) await cl.restartBrick(i);
    await admin.attachShare('sb');
    await waitFor(async () => (await admin.healInfo('sb')).every((b) => b.connected), 20_000, 'bricks back');
    const stats = await admin.healNow('sb');
    assert.equal(stats['splitBrain'], 3);
    const info = await admin.healInfo('sb');
    for (const b of info) {
      assert.ok(b.connected, JSON.stringify(info));
      for (const f of files)
        assert.ok(
          b.entries.some((e) => e.path === f && e.splitBrain),
          `${f} listed on ${b.addr}`,
        );
    }
    await expectCode(c.readFile('by-size'), ['EIO']);
    await expectCode(c.write('by-size', 0, Buffer.from('x')), ['EIO']);

    await admin.resolveSplitBrain('sb', 'by-size', 'bigger-file');
    await admin.resolveSplitBrain('sb', 'by-mtime', 'latest-mtime');
    await admin.resolveSplitBrain('sb', 'by-source', 'source-brick', cl.bricks[2]!.addr);
    assert.equal((await c.readFile('by-size')).toString(), contents[1]);
    assert.equal((await c.readFile('by-mtime')).toString(), contents[0]);
    assert.equal((await c.readFile('by-source')).toString(), contents[2]);
    const after = await admin.healInfo('sb');
    assert.ok(
      after.every((b) => b.count === 0),
      JSON.stringify(after),
    );
    const d = [0, 1, 2].map((i) => digestOf(checksumWalk(cl.shareDataDir(i, 'sb'))));
    assert.equal(d[0], d[1]);
    assert.equal(d[1], d[2]);
    await c.write('by-size', 0, Buffer.from('ok'));
    await expectCode(admin.resolveSplitBrain('sb', 'by-size', 'coin-flip'), ['EINVAL']);
  } finally {
    await cl.close();
  }
});
