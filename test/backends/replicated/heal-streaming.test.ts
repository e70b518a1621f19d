/**
 * A heal pass while clients write, with every replica well: the paths it finds dirty are dirty
 * only through the owner's own mutations still in flight, which end in a clean by themselves.
 * It examines none of them (each would have held the share's writers at the write barrier until
 * every replica had answered everything), and the replicas end equal.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { assertReplicasEqual, Cluster } from './helpers.ts';

const MIB = 1 << 20;
let cl: Cluster;

before(async () => {
  cl = await Cluster.start({ serverArgs: ['--no-auto-heal'] });
});
after(async () => {
  await cl?.close();
});

test('a heal pass during a stream of writes examines no path and holds no writer', async () => {
  const admin = await cl.client();
  await admin.createShare('hs', 1 << 30, {});
  const c = await cl.client('hs');
  await c.create('f');
  let next = 0;
  let done = false;
  const writer = async (): Promise<void> => {
    for (let i = next++; !done; i = next++)
      await c.writeAt('f', (i % 128) * MIB, Buffer.alloc(MIB, i & 0xff));
  };
  const run = Promise.all(Array.from({ length: 16 }, writer));
  const passes = [];
  try {
    while (next < 32) await new Promise((r) => setTimeout(r, 5));
    for (let k = 0; k < 5; k++) {
      passes.push(await admin.healNow('hs'));
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    done = true;
    await run;
  }
  for (const s of passes) assert.equal(s['checked'], 0, `a pass examined paths: ${JSON.stringify(s)}`);
  assert.ok(next > 40, 'the writers went on meanwhile');
  await assertReplicasEqual(cl, 'hs');
});
