import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type Proc, spawnDaemon } from '../../backends/replicated/processes.ts';
import { abacaFails, abacaOk, type CliServer, runAbaca, startCliServer } from './helpers.ts';

// `abaca brick list|show|add|replace|remove` against a server on its default storage (solo mode:
// three bricks and a share server under the data dir), with two more bricks started here: a drain
// and a replace followed with --wait (progress on stderr, the final state on stdout), and the
// refusals an operator meets (a member's 403 is in test/api/bricks.test.ts).
let srv: CliServer;
let env: Record<string, string>;
const extra: Proc[] = [];

before(async () => {
  srv = await startCliServer('abaca-cli-brick');
  env = srv.adminEnv;
});
after(async () => {
  await Promise.all(extra.map((p) => p.kill9().catch(() => {})));
  await srv?.stop();
});

const ok = (...args: string[]) => abacaOk(srv, args, env, { timeoutMs: 90_000 });
const run = (...args: string[]) => runAbaca(srv, args, env, { timeoutMs: 90_000 });

async function newBrick(name: string): Promise<Proc> {
  const p = await spawnDaemon('abaca-brick.js', [
    '--dir',
    path.join(srv.home, name),
    '--port',
    '0',
    '--host-label',
    name,
    '--zone',
    'nova',
  ]);
  extra.push(p);
  return p;
}

test('brick list, add, remove --wait, replace --wait, and the refusals', { timeout: 150_000 }, async () => {
  const share = await ok('share', 'create', 'NFS', '1', '--name', 'b1', '--wait', '-f', 'json');
  assert.equal(share.status, 'available');
  const before = await ok('brick', 'list', '-f', 'json');
  assert.equal(before.length, 3);
  assert.ok(
    before.every((b: Record<string, unknown>) => b['Up'] === true && b['State'] === 'active'),
    JSON.stringify(before),
  );
  const [first, second] = before.map((b: Record<string, unknown>) => String(b['Address']));

  // Every solo brick holds the replica-3 share: none can be drained yet.
  const refused = await abacaFails(srv, ['brick', 'remove', first], env, 1);
  assert.match(refused.stderr, /under its replica count .*\(HTTP 409\)/);

  const b4 = await newBrick('brick4');
  const added = await ok('brick', 'add', b4.addr, '-f', 'json');
  assert.equal(added.address, b4.addr);
  assert.equal(added.up, true);
  assert.equal(added.state, 'active');

  const drained = await run('brick', 'remove', first, '--wait', '-f', 'json');
  assert.equal(drained.code, 0, drained.stderr);
  assert.match(drained.stderr, new RegExp(`brick ${first}: draining — [01]/1 shares moved`));
  const gone = JSON.parse(drained.stdout);
  assert.equal(gone.state, 'removed');
  assert.match(gone.job, /^drain: done, 1\/1 shares moved, 0 entries to heal/);
  const mid = await ok('brick', 'list', '-f', 'json');
  assert.ok(
    mid.some((b: Record<string, unknown>) => b['Address'] === b4.addr && b['Shares'] === 1),
    JSON.stringify(mid),
  );

  // Replacing by a brick in use is refused; by a new empty one it is followed to the end.
  const inUse = await abacaFails(srv, ['brick', 'replace', second, b4.addr], env, 1);
  assert.match(inUse.stderr, /already in use.*\(HTTP 409\)/);
  const b5 = await newBrick('brick5');
  const replaced = await run('brick', 'replace', second, b5.addr, '--wait', '-f', 'json');
  assert.equal(replaced.code, 0, replaced.stderr);
  assert.match(replaced.stderr, new RegExp(`brick ${second}: replacing — `));
  const done = JSON.parse(replaced.stdout);
  assert.equal(done.state, 'replaced');
  assert.match(done.job, new RegExp(`^replace by ${b5.addr}: done, 1/1 shares moved, 0 entries to heal`));

  const heal = await ok('share', 'heal', 'info', 'b1', '-f', 'json');
  assert.equal(heal.status, 'healthy');
  assert.equal(heal.pending_entries, 0);
  assert.ok(
    heal.replicas.some((r: string) => r.includes(b5.addr)) &&
      heal.replicas.some((r: string) => r.includes(b4.addr)),
  );

  const unknown = await abacaFails(srv, ['brick', 'show', 'no-such-brick'], env, 1);
  assert.match(unknown.stderr, /Brick no-such-brick could not be found\. \(HTTP 404\)/);
  const bad = await abacaFails(srv, ['brick', 'add', 'not-an-address'], env, 1);
  assert.match(bad.stderr, /host:port/);
});
