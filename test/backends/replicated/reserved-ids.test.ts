/**
 * File ids a share server reserves for one client connection (OP.newIds): a create that names one
 * makes its file under it, once; an id the connection did not reserve (another's, a used one, a
 * made-up one) is not taken, so no client can give two files one id.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { OP } from '../../../backends/replicated/protocol/opcodes.ts';
import { Cluster } from './helpers.ts';

let cl: Cluster;

before(async () => {
  cl = await Cluster.start({ serverArgs: ['--no-auto-heal'] });
});
after(async () => {
  await cl?.close();
});

test('a reserved id names one new file, made through the connection that reserved it', async () => {
  const admin = await cl.client();
  await admin.createShare('ids', 1 << 30, {});
  const c1 = await cl.client('ids');
  const c2 = await cl.client('ids');
  const ids = (await c1.call(OP.newIds, { count: 3 })).header['ids'] as string[];
  assert.equal(ids.length, 3);
  assert.equal(new Set(ids).size, 3);
  const create = (c: typeof c1, path: string, id: string, data = Buffer.alloc(0)) =>
    c.call(OP.create, { path, mode: 0o644, excl: false, trunc: true, id }, data);

  await create(c1, 'a', ids[0]!, Buffer.from('first'));
  assert.equal((await c1.stat('a')).id, ids[0]);
  assert.equal((await c1.readFile('a')).toString(), 'first');
  // Used once: a second file with it gets an id of the server's.
  await create(c1, 'b', ids[0]!);
  assert.notEqual((await c1.stat('b')).id, ids[0]);
  // Another connection's reservation, or one never made, is not taken either.
  await create(c2, 'c', ids[1]!);
  assert.notEqual((await c2.stat('c')).id, ids[1]);
  await create(c1, 'd', '00000000-0000-4000-8000-000000000000');
  assert.notEqual((await c1.stat('d')).id, '00000000-0000-4000-8000-000000000000');
  // A create over a file that exists keeps that file's id.
  await create(c1, 'a', ids[2]!, Buffer.from('again'));
  assert.equal((await c1.stat('a')).id, ids[0]);
  assert.equal((await c1.readFile('a')).toString(), 'again');
  // A create that surely failed leaves its id reserved; a second mount of the same connection
  // (a renewed token) keeps the connection's ids.
  const [again, kept] = (await c1.call(OP.newIds, { count: 2 })).header['ids'] as string[];
  await assert.rejects(create(c1, 'no-such-dir/e', again!), /ENOENT/);
  await create(c1, 'e', again!);
  assert.equal((await c1.stat('e')).id, again);
  await c1.call(OP.mount, { share: 'ids', token: cl.adminToken });
  await create(c1, 'f', kept!);
  assert.equal((await c1.stat('f')).id, kept);
  // Bounded: at most 256 per request, 4096 held by one connection.
  const many = [];
  for (let i = 0; i < 20; i++)
    many.push(...((await c2.call(OP.newIds, { count: 1000 })).header['ids'] as string[]));
  assert.equal(many.length, 4096);
  assert.deepEqual((await c2.call(OP.newIds, { count: 0 })).header['ids'], []);
});
