import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { ReplicatedClient } from '../../../backends/replicated/client/client.ts';
import { assertReplicasEqual, Cluster, checksumWalk, expectCode } from './helpers.ts';

let cl: Cluster;
let c: ReplicatedClient;

before(async () => {
  cl = await Cluster.start();
  const admin = await cl.client();
  await admin.createShare('s1', 64 * 1024 * 1024);
  c = await cl.client('s1');
});
after(async () => {
  await cl?.close();
});

test('files: create, write, read, stat, truncate, chmod, utimes', async () => {
  await c.writeFile('a.txt', 'hello world');
  assert.equal((await c.readFile('a.txt')).toString(), 'hello world');
  const st = await c.stat('a.txt');
  assert.equal(st.type, 'file');
  assert.equal(st.size, 11);
  assert.equal(st.mode, 0o644);
  await c.write('a.txt', 6, Buffer.from('WORLD!'));
  assert.equal((await c.readFile('a.txt')).toString(), 'hello WORLD!');
  await c.truncate('a.txt', 5);
  assert.equal((await c.readFile('a.txt')).toString(), 'hello');
  await c.chmod('a.txt', 0o600);
  assert.equal((await c.stat('a.txt')).mode, 0o600);
  await c.utimes('a.txt', 1_000_000, 2_000_000);
  assert.equal((await c.stat('a.txt')).mtimeMs, 2_000_000);
  assert.equal((await c.lookup('', 'a.txt')).size, 5);
  await expectCode(c.create('a.txt', 0o644, true), ['EEXIST']);
});

test('directories, rename, links, symlinks, paged readdir', async () => {
  await c.mkdir('d1/d2', { recursive: true });
  await c.writeFile('d1/d2/f', 'x');
  await c.rename('d1/d2/f', 'd1/g');
  assert.deepEqual(await c.readdir('d1'), ['d2', 'g']);
  await expectCode(c.rmdir('d1'), ['ENOTEMPTY']);
  await c.link('d1/g', 'd1/h');
  assert.equal((await c.stat('d1/h')).nlink, 2);
  await c.symlink('../a.txt', 'd1/s');
  assert.equal(await c.readlink('d1/s'), '../a.txt');
  assert.equal((await c.stat('d1/s')).type, 'symlink');
  for (let i = 0; i < 25; i++) await c.create(`d1/d2/n${String(i).padStart(2, '0')}`);
  const page = await c.readdirPage('d1/d2', '', 10);
  assert.equal(page.entries.length, 10);
  assert.equal(page.done, false);
  const page2 = await c.readdirPage('d1/d2', page.entries[9]!.name, 10);
  assert.equal(page2.entries[0]!.name, 'n10');
  assert.equal((await c.readdir('d1/d2')).length, 25);
  await c.unlink('d1/h');
  await c.unlink('d1/s');
  await expectCode(c.stat('d1/s'), ['ENOENT']);
  await expectCode(c.unlink('d1'), ['EISDIR']);
  await c.fsync('d1/g');
  await c.fsync();
});

test('file handles: open flags, positions, append, sync', async () => {
  const w = await c.open('h.txt', 'w');
  await w.write('hello ');
  await w.write('world');
  await w.write('HELLO', 0);
  await w.sync();
  await w.close();
  await expectCode(w.write('x'), ['EINVAL']);
  const r = await c.open('h.txt');
  const buf = Buffer.alloc(5);
  assert.equal((await r.read(buf)).bytesRead, 5);
  assert.equal(buf.toString(), 'HELLO');
  assert.equal((await r.read(buf)).bytesRead, 5);
  assert.equal(buf.toString(), ' worl');
  await expectCode(r.write('nope'), ['EACCES']);
  const a = await c.open('h.txt', 'a');
  await a.write('!');
  await a.write('?');
  assert.equal((await c.readFile('h.txt')).toString(), 'HELLO world!?');
  await expectCode(c.open('h.txt', 'wx'), ['EEXIST']);
  await expectCode(c.open('missing.txt', 'r'), ['ENOENT']);
  const t = await c.open('h.txt', 'w+');
  assert.equal((await t.stat()).size, 0);
  await t.writeFile('again');
  assert.equal((await t.readFile()).toString(), 'again');
});

test('a large file round-trips through chunked pipelined I/O', async () => {
  const big = Buffer.alloc(5 * 1024 * 1024 + 123);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
  await c.writeFile('big.bin', big);
  const back = await c.readFile('big.bin');
  assert.equal(back.length, big.length);
  assert.ok(back.equals(big));
});

test('a stream past the early-writeback threshold survives a rename and fsyncs', async () => {
  // 36 MiB through one brick descriptor starts background flushes (every 16 MiB); the rename right
  // after closes the descriptor while a flush may still run (the close waits for it).
  const big = Buffer.alloc(36 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
  await c.writeFile('wb.bin', big);
  await c.rename('wb.bin', 'wb2.bin');
  await c.write('wb2.bin', 0, Buffer.from('head'));
  await c.fsync('wb2.bin');
  big.write('head', 0);
  assert.ok((await c.readFile('wb2.bin')).equals(big));
  await c.unlink('wb2.bin');
});

test('statfs reports the share size and use', async () => {
  const fs1 = await c.statfs();
  assert.equal(fs1.size, 64 * 1024 * 1024);
  await c.writeFile('u.bin', Buffer.alloc(10_000));
  const fs2 = await c.statfs();
  assert.equal(fs2.used - fs1.used, 10_000);
});

test('all three replicas hold the same tree', async () => {
  await assertReplicasEqual(cl, 's1');
  assert.ok(checksumWalk(cl.shareDataDir(0, 's1')).has('big.bin'));
});

test('admin operations are idempotent', async () => {
  const admin = await cl.client();
  const again = await admin.createShare('s1', 64 * 1024 * 1024);
  assert.equal((again['info'] as { id: string }).id, 's1');
  const bricks = await admin.brickStatus();
  assert.equal(bricks.length, 3);
  assert.ok(bricks.every((b) => b['up'] === true));
  await admin.createShare('s2', 1024 * 1024, { replicas: 2 });
  const u = await admin.usage('s2');
  assert.equal(u.size, 1024 * 1024);
  const two = await cl.client('s2');
  await two.writeFile('x', 'on two replicas');
  assert.equal((await two.readFile('x')).toString(), 'on two replicas');
  await admin.deleteShare('s2');
  await admin.deleteShare('s2');
  await expectCode(two.readFile('x'), ['ESTALE']);
  const created = await admin.createShare('s3', 4096, { replicas: 1 });
  assert.equal((created['info'] as { bricks: unknown[] }).bricks.length, 1);
  const one = await cl.client('s3');
  await one.writeFile('y', 'single copy');
  assert.equal((await one.readFile('y')).toString(), 'single copy');
  await admin.deleteShare('s3');
  await expectCode(admin.usage('s2'), ['ENOENT']);
  const info = await admin.healInfo('s1');
  assert.equal(info.length, 3);
  assert.ok(info.every((b) => b.connected));
});
