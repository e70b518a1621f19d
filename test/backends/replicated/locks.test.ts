/** The share server's advisory lock table (server/locks.ts), alone: conflicts, splits, waits, clients going away. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type LockRequest, LockTable } from '../../../backends/replicated/server/locks.ts';

const A = {};
const B = {};
const req = (client: object, owner: string, start: number, end: number, kind: 'posix' | 'flock' = 'posix') =>
  ({ client, owner, kind, start, end, pid: 1 }) as LockRequest;
const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { code: string }) => e.code,
  );

test('conflicts: table of held lock × requested lock', async () => {
  const cases: Array<[string, 'r' | 'w', LockRequest, 'r' | 'w', LockRequest, string]> = [
    ['w vs w overlapping, other client', 'w', req(A, '1', 0, 99), 'w', req(B, '1', 50, 60), 'EAGAIN'],
    ['w vs w disjoint', 'w', req(A, '1', 0, 99), 'w', req(B, '1', 100, 199), 'ok'],
    ['r vs r overlapping', 'r', req(A, '1', 0, 99), 'r', req(B, '1', 0, 99), 'ok'],
    ['r vs w overlapping', 'r', req(A, '1', 0, 99), 'w', req(B, '1', 99, 99), 'EAGAIN'],
    ['same client, other owner', 'w', req(A, '1', 0, 99), 'w', req(A, '2', 0, 99), 'EAGAIN'],
    ['same owner: replaces', 'w', req(A, '1', 0, 99), 'r', req(A, '1', 0, 99), 'ok'],
    ['to infinity', 'w', req(A, '1', 10, Infinity), 'w', req(B, '1', 1e12, 1e12), 'EAGAIN'],
    ['flock and posix apart', 'w', req(A, '1', 0, Infinity, 'flock'), 'w', req(B, '1', 0, 9), 'ok'],
  ];
  for (const [name, t1, r1, t2, r2, want] of cases) {
    const t = new LockTable();
    await t.lock('f', r1, t1, false);
    assert.equal(await code(t.lock('f', r2, t2, false)), want, name);
  }
});

test('unlocking the middle of a range splits it', async () => {
  const t = new LockTable();
  await t.lock('f', req(A, '1', 0, 99), 'w', false);
  t.unlock('f', req(A, '1', 40, 59));
  assert.equal(t.count(), 2);
  assert.equal(await code(t.lock('f', req(B, '1', 40, 59), 'w', false)), 'ok');
  assert.equal(await code(t.lock('f', req(B, '1', 39, 39), 'w', false)), 'EAGAIN');
  assert.equal(await code(t.lock('f', req(B, '1', 60, 60), 'w', false)), 'EAGAIN');
});

test('a waiter is granted at the unlock, in order; cancel gives EINTR; a client gone frees its locks', async () => {
  const t = new LockTable();
  await t.lock('f', req(A, '1', 0, 9), 'w', false);
  const order: string[] = [];
  const w1 = t.lock('f', req(B, '1', 0, 9), 'w', true, 'x').then(() => order.push('b1'));
  const w2 = t.lock('f', req(B, '2', 0, 9), 'w', true, 'y');
  const w2code = code(w2);
  t.cancel(B, 'y');
  assert.equal(await w2code, 'EINTR');
  t.unlock('f', req(A, '1', 0, 9));
  await w1;
  assert.deepEqual(order, ['b1']);
  const w3 = code(t.lock('f', req(A, '3', 5, 5), 'r', true));
  t.dropClient(B);
  assert.equal(await w3, 'ok');
  assert.equal(t.count(), 1);
});

test('grace waits: resolve after the time, EINTR when cancelled, ENOTCONN when the client goes', async () => {
  const t = new LockTable();
  const t0 = Date.now();
  await t.graceWait(A, 'a', 60);
  assert.ok(Date.now() - t0 >= 55);
  const cancelled = code(t.graceWait(A, 'x', 60_000));
  const other = code(t.graceWait(A, 'y', 60_000));
  const gone = code(t.graceWait(B, undefined, 60_000));
  t.cancel(A, 'x');
  assert.equal(await cancelled, 'EINTR');
  t.dropClient(B);
  assert.equal(await gone, 'ENOTCONN');
  t.dropClient(A);
  assert.equal(await other, 'ENOTCONN', 'the cancel took only its own wait');
});

test('a POSIX wait that would close a cycle fails with EDEADLK; flock waits and chains without a cycle wait', async () => {
  const C = {};
  // Two owners: A/1 holds x and waits for y; B/1 holds y and asks for x.
  const t = new LockTable();
  await t.lock('x', req(A, '1', 0, 9), 'w', false);
  await t.lock('y', req(B, '1', 0, 9), 'w', false);
  const aWaits = t.lock('y', req(A, '1', 0, 9), 'w', true, 'a');
  assert.equal(await code(t.lock('x', req(B, '1', 5, 5), 'r', true, 'b')), 'EDEADLK');
  // The refused request left nothing behind: B/1 still holds y, A's wait goes on until B lets go.
  t.unlock('y', req(B, '1', 0, 9));
  await aWaits;

  // Three owners in a ring through a second lock each: A/1 → B/1 → C/1 → A/1.
  const r = new LockTable();
  await r.lock('p', req(A, '1', 0, 0), 'w', false);
  await r.lock('q', req(B, '1', 0, 0), 'w', false);
  await r.lock('s', req(C, '1', 0, 0), 'w', false);
  const w1 = code(r.lock('q', req(A, '1', 0, 0), 'w', true, '1'));
  const w2 = code(r.lock('s', req(B, '1', 0, 0), 'w', true, '2'));
  assert.equal(await code(r.lock('p', req(C, '1', 0, 0), 'w', true, '3')), 'EDEADLK');
  // A chain that does not come back (C/2 holds nothing anyone waits on) just waits.
  const w3 = code(r.lock('p', req(C, '2', 0, 0), 'w', true, '4'));
  // Only the second of two holders waits for the requester: still a deadlock (both must go).
  await r.lock('m', req(A, '2', 0, 0), 'r', false);
  await r.lock('m', req(B, '2', 0, 0), 'r', false);
  await r.lock('n', req(C, '3', 0, 0), 'w', false);
  const w4 = code(r.lock('n', req(B, '2', 0, 0), 'w', true, '5'));
  assert.equal(await code(r.lock('m', req(C, '3', 0, 0), 'w', true, '6')), 'EDEADLK');
  // A going frees p for C/2's wait; B's waits end with B.
  r.dropClient(A);
  r.dropClient(B);
  assert.deepEqual(await Promise.all([w1, w2, w3, w4]), ['ENOTCONN', 'ENOTCONN', 'ok', 'ENOTCONN']);

  // flock locks are not checked, as on Linux: the second wait simply waits.
  const f = new LockTable();
  await f.lock('x', req(A, '1', 0, Infinity, 'flock'), 'w', false);
  await f.lock('y', req(B, '1', 0, Infinity, 'flock'), 'w', false);
  const fa = code(f.lock('y', req(A, '1', 0, Infinity, 'flock'), 'w', true, 'a'));
  const fb = code(f.lock('x', req(B, '1', 0, Infinity, 'flock'), 'w', true, 'b'));
  f.dropClient(B);
  assert.deepEqual(await Promise.all([fa, fb]), ['ok', 'ENOTCONN']);
});
