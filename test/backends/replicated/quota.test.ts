import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { ReplicatedClient } from '../../../backends/replicated/client/client.ts';
import { Cluster, checksumWalk, expectCode, settled } from './helpers.ts';

const SIZE = 1_000_003;
let cl: Cluster;
let admin: ReplicatedClient;

before(async () => {
  cl = await Cluster.start();
  admin = await cl.client();
  await admin.createShare('q', SIZE);
});
after(async () => {
  await cl?.close();
});

test('concurrent writers cannot exceed the share size by one byte', async () => {
  const clients = await Promise.all([0, 1, 2, 3].map(() => cl.client('q')));
  let accepted = 0;
  let refused = 0;
  await Promise.all(
    clients.flatMap((c, ci) =>
      [0, 1, 2].map(async (fi) => {
        const p = `w${ci}-${fi}`;
        await c.create(p);
        for (let off = 0; ; off += 4096) {
          try {
            await c.write(p, off, Buffer.alloc(4096, 1));
            accepted += 4096;
          } catch (err) {
            assert.equal((err as { code?: string }).code, 'EDQUOT');
            refused++;
            break;
          }
        }
      }),
    ),
  );
  assert.equal(refused, 12);
  assert.ok(accepted <= SIZE, `accepted ${accepted} > ${SIZE}`);
  assert.ok(SIZE - accepted < 4096 * 12, 'the writers filled the share');
  const st = await clients[0]!.statfs();
  assert.equal(st.size, SIZE);
  assert.equal(st.used, accepted);
  // exactly the remaining bytes fit, one more does not
  const rest = SIZE - accepted;
  await clients[0]!.create('last');
  await clients[0]!.write('last', 0, Buffer.alloc(rest, 2));
  assert.equal((await clients[0]!.statfs()).used, SIZE);
  await expectCode(clients[0]!.write('last', rest, Buffer.alloc(1)), ['EDQUOT']);
  await expectCode(clients[0]!.truncate('last', rest + 1), ['EDQUOT']);
  await expectCode(clients[0]!.write('w0-0', 10 ** 9, Buffer.alloc(1)), ['EDQUOT']);
  // overwriting in place needs no new space
  await clients[0]!.write('last', 0, Buffer.alloc(rest, 3));
  await settled(admin, 'q');
  for (let i = 0; i < 3; i++) {
    let bytes = 0;
    for (const v of checksumWalk(cl.shareDataDir(i, 'q')).values())
      if (v.startsWith('file')) bytes += Number(v.split(' ')[2]);
    assert.equal(bytes, SIZE, `brick ${i + 1} holds exactly the share size`);
  }
});

test('shrink below use is refused; resize is immediate; unlink frees space', async () => {
  const c = await cl.client('q');
  const used = (await c.statfs()).used;
  await expectCode(admin.setSize('q', used - 1), ['ENOSPC']);
  assert.equal((await admin.usage('q')).size, SIZE);
  await admin.setSize('q', used + 10_000);
  assert.equal((await c.statfs()).size, used + 10_000);
  await c.writeFile('more', Buffer.alloc(10_000));
  await expectCode(c.writeFile('more2', Buffer.alloc(1)), ['EDQUOT']);
  await c.unlink('more');
  assert.equal((await c.statfs()).used, used);
  await admin.setSize('q', used);
  assert.equal((await admin.usage('q')).size, used);
  await expectCode(c.writeFile('more3', Buffer.alloc(1)), ['EDQUOT']);
});
