/**
 * Locks across a share-server restart: the restarted server takes the share over with a grace
 * period in which mounts reclaim the locks they held (a conflicting or late reclaim is refused
 * with ENOLCK) and every other lock request waits for the period to end. A share that never had an
 * owner before (just created) has no grace period.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { ReplicatedClient } from '../../../backends/replicated/client/client.ts';
import { OP } from '../../../backends/replicated/protocol/opcodes.ts';
import { Cluster, expectCode } from './helpers.ts';

const GRACE_MS = 2500;
let cl: Cluster;

before(async () => {
  cl = await Cluster.start({ serverArgs: ['--lock-grace-ms', String(GRACE_MS)] });
});
after(async () => {
  await cl?.close();
});

/** A write lock over the whole file `fid`, as a mount sends it. */
const lock = (c: ReplicatedClient, fid: string, owner: string, extra: object = {}) =>
  c.call(OP.lock, { path: 'f', fid, owner, kind: 'posix', start: 0, end: -1, pid: 1, type: 'w', ...extra });

test('a new share has no grace period: its first lock is granted at once', async () => {
  const admin = await cl.client();
  await admin.createShare('fresh', 1 << 20);
  const c = await cl.client('fresh');
  await c.writeFile('f', 'x');
  const fid = (await c.stat('f')).id;
  const t0 = Date.now();
  await lock(c, fid, 'o1');
  assert.ok(Date.now() - t0 < GRACE_MS / 2, `granted in ${Date.now() - t0} ms`);
  await expectCode(lock(c, fid, 'o2', { reclaim: true }), ['ENOLCK']);
});

test('after a restart: reclaims first, a conflicting reclaim refused, other requests wait for the grace end', async () => {
  const admin = await cl.client();
  await admin.createShare('g', 1 << 20);
  const a = await cl.client('g');
  await a.writeFile('f', 'locked file');
  const fid = (await a.stat('f')).id;
  await lock(a, fid, 'a1');
  const b = await cl.client('g');
  await expectCode(lock(b, fid, 'b1'), ['EAGAIN']);

  const port = cl.server.port;
  await cl.server.kill9();
  cl.servers.push(await cl.startServer(['--port', String(port)]));
  // The mounts reconnect: A reclaims its lock, B tries to reclaim one it never held.
  const a2 = await cl.client('g');
  const started = Date.now();
  await lock(a2, fid, 'a1', { reclaim: true });
  const b2 = await cl.client('g');
  await expectCode(lock(b2, fid, 'b1', { reclaim: true }), ['ENOLCK']);
  // B's ordinary request is held until the grace period ends, then meets A's reclaimed lock.
  await expectCode(lock(b2, fid, 'b1'), ['EAGAIN']);
  const waited = Date.now() - started;
  assert.ok(waited >= GRACE_MS - 500, `B's request was answered after ${waited} ms, inside the grace period`);
  // Reclaims after the grace period are refused: the lock may have been taken and released since.
  await expectCode(lock(a2, fid, 'a9', { reclaim: true }), ['ENOLCK']);
  // A lock wait still works after it: A unlocks, B (waiting) gets it.
  const waiting = lock(b2, fid, 'b1', { wait: true, wid: 'w1' });
  await lock(a2, fid, 'a1', { type: 'u' });
  await waiting;
});

test('a lock wait held for the grace period can be cancelled by the mount (EINTR)', async () => {
  const admin = await cl.client();
  await admin.createShare('h', 1 << 20);
  const c = await cl.client('h');
  await c.writeFile('f', 'x');
  const fid = (await c.stat('f')).id;
  const port = cl.server.port;
  await cl.server.kill9();
  cl.servers.push(await cl.startServer(['--port', String(port)]));
  const c2 = await cl.client('h');
  const held = lock(c2, fid, 'o1', { wait: true, wid: 'w7' });
  await new Promise((r) => setTimeout(r, 200));
  await c2.call(OP.lockCancel, { wid: 'w7' });
  await expectCode(held, ['EINTR']);
});
