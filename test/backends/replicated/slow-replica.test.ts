/**
 * A replica that falls behind (paused here, with a brick timeout long enough that it stays slow,
 * not down):
 * - it holds the share server to its link's window: the mutations a majority has acknowledged
 *   wait in the share server's memory for the slow replica, and without the window a pause of a
 *   few seconds under a stream (256 MiB from 16 pipelined writers) left hundreds of MiB there;
 * - reads go to the replicas that keep up: before, every third read went to it and waited for the
 *   brick timeout.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { assertReplicasEqual, Cluster, waitFor } from './helpers.ts';

const MIB = 1 << 20;
const WINDOW = 64 * MIB; // DEFAULT_LINK_OPTIONS.windowBytes
let cl: Cluster;

before(async () => {
  // A brick timeout long enough that the paused replica stays slow, not down, however slow the
  // machine is; no heal pass, whose barrier would wait for the paused replica's answers too.
  cl = await Cluster.start({ serverArgs: ['--brick-timeout-ms', '30000', '--no-auto-heal'] });
});
after(async () => {
  await cl?.close();
});

test('a paused replica costs the share server at most its link window, and the stream goes on', async () => {
  const admin = await cl.client();
  await admin.createShare('win', 1 << 30, {});
  const c = await cl.client('win');
  await c.create('f');
  const total = 256;
  const block = (i: number) => Buffer.alloc(MIB, i & 0xff);
  let next = 0;
  const writer = async (): Promise<void> => {
    for (let i = next++; i < total; i = next++) await c.writeAt('f', i * MIB, block(i));
  };
  const run = Promise.all(Array.from({ length: 16 }, writer));
  while (next < 8) await new Promise((r) => setTimeout(r, 5));
  const slow = cl.bricks[2]!;
  const queuedOnSlow = async (): Promise<number> => {
    const l = (await admin.brickStatus()).find((x) => x['addr'] === slow.addr);
    return Number(l?.['queued_bytes']);
  };
  slow.signal('SIGSTOP');
  try {
    // Paused until its window is full, and a while after: the others must wait for it.
    await waitFor(async () => (await queuedOnSlow()) >= WINDOW, 20_000, 'the paused replica a window behind');
    await new Promise((r) => setTimeout(r, 500));
    assert.ok((await queuedOnSlow()) <= WINDOW + MIB, 'the window holds while the replica is paused');
  } finally {
    slow.signal('SIGCONT');
  }
  await run;

  // Acknowledged by the majority; the slow replica finishes its part just after.
  await waitFor(
    async () => (await admin.brickStatus()).every((l) => l['queued_bytes'] === 0),
    10_000,
    'every replica answered',
  );
  const links = await admin.brickStatus();
  const peak = Math.max(...links.map((l) => Number(l['queued_peak_bytes'])));
  assert.ok(peak <= WINDOW + MIB, `at most the window (+ one mutation) waited for it: ${peak} bytes`);

  const want = createHash('sha256');
  for (let i = 0; i < total; i++) want.update(block(i));
  const got = createHash('sha256')
    .update(await c.readFile('f'))
    .digest('hex');
  assert.equal(got, want.digest('hex'));
  await assertReplicasEqual(cl, 'win');
});

test('reads and stats go to the replicas that keep up, not to a paused one', async () => {
  const admin = await cl.client();
  await admin.createShare('rd', 1 << 30, {});
  const c = await cl.client('rd');
  await c.writeFile('r', 'read me');
  const slow = cl.bricks[1]!;
  slow.signal('SIGSTOP');
  try {
    // Its ping goes unanswered from the next half second on.
    await new Promise((r) => setTimeout(r, 1000));
    const t0 = Date.now();
    for (let i = 0; i < 12; i++) {
      assert.equal((await c.readFile('r')).toString(), 'read me');
      assert.equal((await c.stat('r')).size, 7);
    }
    const took = Date.now() - t0;
    assert.ok(took < 10_000, `24 reads took ${took} ms with one replica paused`);
  } finally {
    slow.signal('SIGCONT');
  }
});
