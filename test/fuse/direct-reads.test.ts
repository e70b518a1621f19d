/**
 * Direct reads through real mounts: a mount reads file data from the bricks with the share
 * server's grants (spread over the replicas), and what it reads is never older than close-to-open
 * allows, even when the replica it was reading from is paused while another mount rewrites the
 * file, and just after it runs again (when it still holds the old version). `-o no_direct_reads`
 * reads through the share server only. The counters come from the mount's SIGUSR1 line.
 * Real bricks and share server; needs root and /dev/fuse (skipped with the reason otherwise).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Cluster, settled, waitFor } from '../backends/replicated/helpers.ts';
import { counterLine, fuseSkip, type Mount, mount, tempDir, unmountAll } from './helpers.ts';

const skip = fuseSkip;
const MiB = 1024 * 1024;
let cl: Cluster;
let work = '';
let loc = '';
let a: Mount;
let b: Mount;

before(async () => {
  if (skip) return;
  work = tempDir('abaca-fuse-direct-');
  cl = await Cluster.start();
  const admin = await cl.client();
  await admin.createShare('dr', 1024 * MiB, { access: [{ id: 'r1', to: '127.0.0.1', level: 'rw' }] });
  loc = `abaca://127.0.0.1:${cl.server.port}/dr`;
  [a, b] = await Promise.all([mount(loc, path.join(work, 'a')), mount(loc, path.join(work, 'b'))]);
});
after(async () => {
  await unmountAll();
  await cl?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

interface Counters {
  off: boolean;
  /** MiB read from each brick directly. */
  perBrick: Map<string, number>;
  refused: number;
  unreachable: number;
}

/** The mount's direct-read counters (SIGUSR1). */
async function counters(m: Mount): Promise<Counters> {
  const line = await counterLine(m, 'direct reads: ');
  const perBrick = new Map<string, number>();
  for (const x of line.matchAll(/(\d+\.\d+\.\d+\.\d+:\d+) \d+ \((\d+\.\d) MiB\)/g))
    perBrick.set(x[1]!, Number(x[2]));
  return {
    off: line.includes('direct reads: off'),
    perBrick,
    refused: Number(/refused by a brick (\d+)/.exec(line)?.[1] ?? 0),
    unreachable: Number(/brick unreachable (\d+)/.exec(line)?.[1] ?? 0),
  };
}

const total = (c: Counters) => [...c.perBrick.values()].reduce((x, y) => x + y, 0);

test('a large file is read from the bricks from its first byte, spread over the replicas', {
  skip,
  timeout: 60_000,
}, async () => {
  const data = randomBytes(24 * MiB);
  fs.writeFileSync(path.join(a.dir, 'big'), data);
  // Every replica has it (A's close waited for two): none refuses B for an older version.
  await settled(await cl.client(), 'dr');
  const before = await counters(b);
  assert.ok(fs.readFileSync(path.join(b.dir, 'big')).equals(data), 'B reads what A wrote');
  const after = await counters(b);
  const read = [...after.perBrick].filter(([addr, mib]) => mib > (before.perBrick.get(addr) ?? 0));
  assert.ok(read.length >= 2, `more than one brick served B: ${JSON.stringify([...after.perBrick])}`);
  // The open's getattr brings the grant, so even the first reads go to the bricks.
  const direct = total(after) - total(before);
  assert.ok(direct >= 23.5, `all of 24 MiB came directly: ${direct}`);
  assert.equal(after.refused, before.refused);
  assert.equal(after.unreachable, 0);
});

test("another mount's rewrite is read at the next open even when a replica missed it (each replica in turn)", {
  skip,
  timeout: 180_000,
}, async () => {
  const file = path.join(a.dir, 'doc');
  const onB = path.join(b.dir, 'doc');
  const admin = await cl.client();
  for (const [i, brick] of cl.bricks.entries()) {
    const v1 = randomBytes(6 * MiB);
    fs.writeFileSync(file, v1);
    assert.ok(fs.readFileSync(onB).equals(v1), `round ${i}: B reads the first version`);
    // Paused past the share server's brick timeout (3 s): it is left out of the rewrite, and keeps
    // the first version, and the session B's grant was made under, until the server claims it again.
    brick.signal('SIGSTOP');
    const v2 = randomBytes(6 * MiB);
    try {
      // Until the share server has declared it down (a fixed wait left half a second of margin).
      await waitFor(
        async () => (await admin.healInfo('dr')).find((x) => x.addr === brick.addr)?.connected === false,
        20_000,
        `brick ${i} declared down`,
      );
      fs.writeFileSync(file, v2);
    } finally {
      brick.signal('SIGCONT');
    }
    assert.ok(
      fs.readFileSync(onB).equals(v2),
      `round ${i}: B reads the second version as brick ${i} runs again`,
    );
    // Paused while A rewrites: B's reads that go to it wait, then go through the share server.
    brick.signal('SIGSTOP');
    const v3 = randomBytes(6 * MiB);
    try {
      fs.writeFileSync(file, v3);
      assert.ok(
        fs.readFileSync(onB).equals(v3),
        `round ${i}: B reads the third version while brick ${i} is paused`,
      );
    } finally {
      brick.signal('SIGCONT');
    }
    // Healed before the next replica is paused: with one replica paused and another still
    // missing the file's last version, one good copy is up, and a write whose outcome differs on
    // the stale copy reaches no quorum (EIO).
    await settled(admin, 'dr');
  }
  const c = await counters(b);
  assert.ok(total(c) > 0, 'B read directly in these rounds too');
});

test('-o no_direct_reads reads through the share server only', { skip, timeout: 60_000 }, async () => {
  const c = await mount(loc, path.join(work, 'c'), ['-o', 'no_direct_reads']);
  const data = randomBytes(4 * MiB);
  fs.writeFileSync(path.join(a.dir, 'plain'), data);
  assert.ok(fs.readFileSync(path.join(c.dir, 'plain')).equals(data));
  assert.equal((await counters(c)).off, true);
});
