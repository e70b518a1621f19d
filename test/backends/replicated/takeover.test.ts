import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Cluster, checksumWalk, digestOf, expectCode, waitFor } from './helpers.ts';

test('d) kill -9 the share server mid-write; a new one takes over with a higher epoch; the old one is fenced', async () => {
  const cl = await Cluster.start();
  try {
    const s1 = cl.server;
    const admin1 = await cl.client(undefined, s1);
    const e1 = ((await admin1.createShare('td', 1 << 30))['info'] as { epoch: number }).epoch;
    const c1 = await cl.client('td', s1);
    const acked: number[] = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        const body = Buffer.alloc(8192, i % 251);
        await c1.writeFile(`f${i}`, body);
        acked.push(i);
      }
    })().catch((err: { code?: string }) => err.code);
    await waitFor(() => acked.length >= 150, 30_000, 'writes before the crash');
    await s1.kill9();
    const code = await writer;
    stop = true;
    assert.ok(code === 'ENOTCONN' || code === 'ETIMEDOUT', `writer ended with ${String(code)}`);

    const s2 = await cl.startServer();
    const admin2 = await cl.client(undefined, s2);
    const e2 = ((await admin2.attachShare('td'))['info'] as { epoch: number }).epoch;
    assert.ok(e2 > e1, `epoch rose on takeover (${e1} -> ${e2})`);
    const c2 = await cl.client('td', s2);
    for (const i of acked) {
      const got = await c2.readFile(`f${i}`);
      assert.ok(got.equals(Buffer.alloc(8192, i % 251)), `acknowledged write f${i} survived`);
    }
    await c2.writeFile('by-s2', 'second writer');

    // A hung share server (SIGSTOP) loses the share to a third one, then wakes up: fenced.
    s2.signal('SIGSTOP');
    const s3 = await cl.startServer();
    const admin3 = await cl.client(undefined, s3);
    const e3 = ((await admin3.attachShare('td'))['info'] as { epoch: number }).epoch;
    assert.ok(e3 > e2);
    s2.signal('SIGCONT');
    await expectCode(c2.readFile('by-s2'), ['EMOVED']); // fenced for reads too
    await expectCode(c2.writeFile('by-s2', 'stale writer'), ['EMOVED']);
    await expectCode(c2.mkdir('stale-dir'), ['EMOVED']);
    const c3 = await cl.client('td', s3);
    assert.equal((await c3.readFile('by-s2')).toString(), 'second writer');
    assert.equal(await c3.exists('stale-dir'), false);
    for (let i = 0; i < 3; i++) {
      const info = JSON.parse(
        fs.readFileSync(path.join(cl.brickDirs[i]!, 'shares', 'td', 'share.json'), 'utf8'),
      );
      assert.equal(info.epoch, e3, `brick ${i + 1} holds the newest epoch`);
    }
    await waitFor(
      async () => (await admin3.healInfo('td')).every((b) => b.count === 0),
      30_000,
      'clean markers',
    );
    const d = [0, 1, 2].map((i) => digestOf(checksumWalk(cl.shareDataDir(i, 'td'))));
    assert.equal(d[0], d[1]);
    assert.equal(d[1], d[2]);
  } finally {
    await cl.close();
  }
});
