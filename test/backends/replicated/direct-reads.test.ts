/**
 * Direct reads (protocol/read-grants.ts): a read through the share server answers with a grant,
 * and each brick it names serves the file's bytes to anyone holding it, but only while the grant
 * holds: the right key (the share server's session on that brick and the share's record
 * generation), the file it names, at the version it names. A brick that missed a write is left
 * out of new grants and refuses the new version; an access change or a new session kills the key.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { ReplicatedClient } from '../../../backends/replicated/client/client.ts';
import { OP } from '../../../backends/replicated/protocol/opcodes.ts';
import { grantOf, type ReadGrant } from '../../../backends/replicated/protocol/read-grants.ts';
import { RpcClient } from '../../../backends/replicated/protocol/rpc-client.ts';
import { Cluster, expectCode, settled, waitFor } from './helpers.ts';

const MiB = 1024 * 1024;
let cl: Cluster;
let c: ReplicatedClient;
const rpcs = new Map<string, RpcClient>();

before(async () => {
  cl = await Cluster.start({ serverArgs: ['--no-auto-heal'] });
  const admin = await cl.client();
  await admin.createShare('dr', 1 << 30, { access: [{ id: 'r1', to: '127.0.0.1', level: 'rw' }] });
  c = await cl.client('dr');
});
after(async () => {
  for (const r of rpcs.values()) r.close();
  await cl?.close();
});

/** A connection to a brick as a mount would make it (none of the share server's credentials). */
async function brick(addr: string): Promise<RpcClient> {
  const open = rpcs.get(addr);
  if (open && !open.closed) return open;
  const r = await RpcClient.connect('127.0.0.1', Number(addr.slice(addr.lastIndexOf(':') + 1)));
  rpcs.set(addr, r);
  return r;
}

async function grantFor(path: string): Promise<ReadGrant> {
  const r = await c.call(OP.read, { path, off: 0, len: 4096 });
  const g = grantOf(r.header['grant']);
  assert.ok(g, `a read of ${path} answers with a grant: ${JSON.stringify(r.header)}`);
  return g;
}

function direct(addr: string, key: string, g: ReadGrant, path: string, off: number, len: number, over = {}) {
  return brick(addr).then((b) =>
    b.request(
      OP.bReadDirect,
      { share: 'dr', key, path, fid: g.id, v: g.v, off, len, ...over },
      undefined,
      10_000,
    ),
  );
}

const keyOn = (g: ReadGrant, addr: string) => g.bricks.find((b) => b.addr === addr)?.key;

test('each in-sync replica named by a grant serves the file; a wrong key, version or file is refused', async () => {
  const data = randomBytes(3 * MiB);
  await c.writeFile('f', data);
  await c.writeFile('other', 'another file');
  const g = await grantFor('f');
  assert.deepEqual(g.bricks.map((b) => b.addr).sort(), [...cl.brickAddrs].sort(), 'all three replicas');
  // A getattr asked with `grant` (a mount's open) brings the same grant; a directory's none.
  const st = await c.call(OP.getattr, { path: 'f', grant: true });
  const sorted = (x: ReadGrant | undefined) =>
    x && { ...x, bricks: [...x.bricks].sort((p, q) => p.addr.localeCompare(q.addr)) };
  assert.deepEqual(sorted(grantOf(st.header['grant'])), sorted(g));
  await c.mkdir('d');
  assert.equal((await c.call(OP.getattr, { path: 'd', grant: true })).header['grant'], undefined);
  assert.equal((await c.call(OP.getattr, { path: 'f' })).header['grant'], undefined);
  for (const [i, b] of g.bricks.entries()) {
    const off = i * MiB;
    const r = await direct(b.addr, b.key, g, 'f', off, MiB);
    assert.ok(r.payload.equals(data.subarray(off, off + MiB)), `brick ${b.addr} serves bytes ${off}+1 MiB`);
    // Past the end: what there is, then nothing.
    assert.equal((await direct(b.addr, b.key, g, 'f', 3 * MiB - 10, MiB)).payload.length, 10);
  }
  const b0 = g.bricks[0]!;
  await expectCode(direct(b0.addr, `${b0.key.slice(1)}x`, g, 'f', 0, 10), ['EACCES']);
  await expectCode(direct(b0.addr, b0.key, g, 'f', 0, 10, { v: g.v + 1 }), ['ESTALE']);
  await expectCode(direct(b0.addr, b0.key, g, 'other', 0, 10), ['ENOENT']);
  await expectCode(direct(b0.addr, b0.key, g, 'f', 0, 10, { share: 'nosuch' }), [
    'ENXIO',
    'ENOENT',
    'EINVAL',
  ]);
  await expectCode(direct(b0.addr, b0.key, g, 'f', 0, 64 * MiB), ['EINVAL']);
  // A write moves the version on every replica: once all have applied it (it is acknowledged
  // after two; until the third has it, that one still serves the old grant the old bytes), the
  // old grant is refused everywhere.
  await c.writeAt('f', 0, Buffer.from('changed'));
  await settled(await cl.client(), 'dr');
  for (const b of g.bricks) await expectCode(direct(b.addr, b.key, g, 'f', 0, 10), ['ESTALE']);
  const g2 = await grantFor('f');
  assert.equal(g2.v > g.v, true);
  assert.equal((await direct(b0.addr, keyOn(g2, b0.addr)!, g2, 'f', 0, 7)).payload.toString(), 'changed');
});

test('a change of the access rules, or a new session on the brick, ends a grant', async () => {
  const g = await grantFor('f');
  const admin = await cl.client();
  await admin.setAccess('dr', [
    { id: 'r1', to: '127.0.0.1', level: 'rw' },
    { id: 'r2', to: '10.9.9.9', level: 'ro' },
  ]);
  for (const b of g.bricks) await expectCode(direct(b.addr, b.key, g, 'f', 0, 10), ['EACCES']);
  const g2 = await grantFor('f');
  for (const b of g2.bricks)
    assert.equal((await direct(b.addr, b.key, g2, 'f', 0, 7)).payload.toString(), 'changed');
  // Brick 1 restarts: the share server claims the share there with a new session.
  const addr = cl.bricks[1]!.addr;
  rpcs.get(addr)?.close();
  await cl.restartBrick(1);
  await waitFor(async () => (await grantFor('f')).bricks.some((b) => b.addr === addr), 20_000);
  await expectCode(direct(addr, keyOn(g2, addr)!, g2, 'f', 0, 10), ['EACCES']);
  const g3 = await grantFor('f');
  assert.equal((await direct(addr, keyOn(g3, addr)!, g3, 'f', 0, 7)).payload.toString(), 'changed');
});

test('a brick that missed a write is left out of new grants, and never serves other bytes than the version granted', async () => {
  const before = await grantFor('f');
  const stopped = cl.bricks[2]!;
  const key = keyOn(before, stopped.addr)!;
  assert.ok(key, 'the brick is in the grant while in sync');
  stopped.signal('SIGSTOP');
  let late: Promise<unknown> | undefined;
  try {
    // Acknowledged by the other two; once the share server gives up on the stopped brick (3 s)
    // it blames it for the file, and new grants leave it out.
    await c.writeAt('f', 0, Buffer.from('CHANGED'));
    await waitFor(
      async () => keyOn(await grantFor('f'), stopped.addr) === undefined,
      15_000,
      'brick left out',
    );
    const g = await grantFor('f');
    assert.equal(g.v > before.v, true);
    // Asked for the new version with the key it held: whatever the stopped brick does first when
    // it runs again (apply the write still queued to it, or answer this), it answers with the new
    // bytes or refuses: never the old ones.
    late = direct(stopped.addr, key, g, 'f', 0, 7).then(
      (r) => assert.equal(r.payload.toString(), 'CHANGED'),
      (err: { code?: string }) => assert.ok(['ESTALE', 'EACCES'].includes(err.code ?? ''), String(err)),
    );
  } finally {
    stopped.signal('SIGCONT');
  }
  await late;
  // After a heal it is named again and serves the new bytes.
  const admin = await cl.client();
  await waitFor(
    async () => {
      await admin.healNow('dr').catch(() => undefined);
      return keyOn(await grantFor('f'), stopped.addr) !== undefined;
    },
    30_000,
    'brick named again after heal',
  );
  const g = await grantFor('f');
  assert.equal(
    (await direct(stopped.addr, keyOn(g, stopped.addr)!, g, 'f', 0, 7)).payload.toString(),
    'CHANGED',
  );
});

test('with --no-direct-reads, reads carry no grant', async () => {
  const p = await cl.startServer(['--no-direct-reads', '--attach', 'dr']);
  const other = await cl.client('dr', p);
  const r = await other.call(OP.read, { path: 'f', off: 0, len: 10 });
  assert.equal(r.header['grant'], undefined);
  assert.equal(r.payload.subarray(0, 7).toString(), 'CHANGED');
  other.close();
});
