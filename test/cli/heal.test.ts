import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { abacaFails, abacaOk, type CliServer, startCliServer } from './helpers.ts';

// `abaca share heal info|start|resolve` and `abaca share pool list` against a server on its default
// storage (solo mode: three bricks and a share server under the data dir), as an admin and as a
// member, with the mistakes a person makes on the command line.
let srv: CliServer;
let env: Record<string, string>;

before(async () => {
  srv = await startCliServer('abaca-cli-heal');
  env = srv.adminEnv;
});
after(() => srv?.stop());

const ok = (...args: string[]) => abacaOk(srv, args, env);
const fails = async (code: number, ...args: string[]) => (await abacaFails(srv, args, env, code)).stderr;

test('heal info, heal start, pool list on solo storage', { timeout: 120_000 }, async () => {
  const share = await ok('share', 'create', 'NFS', '1', '--name', 'h1', '--wait', '-f', 'json');
  assert.equal(share.status, 'available');

  const info = await ok('share', 'heal', 'info', 'h1', '-f', 'json');
  assert.equal(info.share_id, share.id);
  assert.equal(info.status, 'healthy');
  assert.equal(info.pending_entries, 0);
  assert.equal(info.replicas.length, 3);
  for (const r of info.replicas) assert.match(r, /127\.0\.0\.1:\d+ connected, 0 pending$/);

  const started = await ok('share', 'heal', 'start', 'h1', '--full');
  assert.match(started, new RegExp(`Heal of share ${share.id} started`));
  for (let i = 0; ; i++) {
    const after = await ok('share', 'heal', 'info', share.id, '-f', 'json');
    if (after.last_heal?.includes('finished')) {
      assert.match(after.last_heal, /^full, started .*, finished /);
      break;
    }
    assert.ok(i < 50, `the full heal did not finish: ${JSON.stringify(after)}`);
    await new Promise((r) => setTimeout(r, 200));
  }

  const table = await ok('share', 'pool', 'list');
  assert.match(table, /@solo#nova/);
  const pools = await ok('share', 'pool', 'list', '--detail', '-f', 'json');
  assert.equal(pools.length, 1);
  const p = pools[0];
  assert.equal(p.Backend, 'solo');
  assert.equal(p.Pool, 'nova');
  assert.equal(p.Zone, 'nova');
  assert.ok(p['Allocated GiB'] >= 1, JSON.stringify(p));
  assert.ok(p['Total GiB'] >= p['Free GiB'] + p['Allocated GiB'] - 1e-9, JSON.stringify(p));
  assert.deepEqual(await ok('share', 'pool', 'list', '--backend', '^nothing$', '-f', 'json'), []);
});

test('heal commands: bad input and non-admins get an error a person can act on', {
  timeout: 120_000,
}, async () => {
  await ok('share', 'create', 'NFS', '1', '--name', 'h2', '--wait');
  const policy = await fails(2, 'share', 'heal', 'resolve', 'h2', 'a/b', '--policy', 'newest');
  assert.match(policy, /--policy must be one of source-brick, latest-mtime, bigger-file; got 'newest'/);
  const source = await fails(2, 'share', 'heal', 'resolve', 'h2', 'a/b', '--policy', 'source-brick');
  assert.match(source, /--policy source-brick needs --source-brick/);
  const notSplit = await fails(1, 'share', 'heal', 'resolve', 'h2', 'no/such', '--policy', 'latest-mtime');
  assert.match(notSplit, /no\/such does not exist on any replica \(HTTP 404\)/);
  await ok('share', 'heal', 'info', 'h2');
  const healthy = await fails(1, 'share', 'heal', 'resolve', 'h2', '', '--policy', 'latest-mtime');
  assert.match(
    healthy,
    /the share root is not in split-brain: every replica holds the same version \(HTTP 400\)/,
  );
  const missing = await fails(1, 'share', 'heal', 'info', 'no-such-share');
  assert.match(missing, /No share with a name or ID of 'no-such-share'/);

  await ok('project', 'create', 'team');
  await ok('user', 'create', 'dev', '--password', 'dev-password', '--project', 'team');
  await ok('role', 'add', 'member', '--project', 'team', '--user', 'dev');
  const member = { ...env, OS_USERNAME: 'dev', OS_PASSWORD: 'dev-password', OS_PROJECT_NAME: 'team' };
  await abacaOk(srv, ['share', 'create', 'NFS', '1', '--name', 'mine', '--wait'], member);
  const denied = (await abacaFails(srv, ['share', 'heal', 'info', 'mine'], member, 1)).stderr;
  assert.match(denied, /403|not allowed|admin/i);
  const pools = (await abacaFails(srv, ['share', 'pool', 'list'], member, 1)).stderr;
  assert.match(pools, /403|not allowed|admin/i);
});
