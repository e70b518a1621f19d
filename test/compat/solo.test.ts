/**
 * Solo mode as a new user meets it: abaca-server with no ABACA_BACKENDS runs three bricks and a
 * share server under its data dir; a share created with the real `openstack` client is replicated,
 * mountable (with an access rule and the project's token) through its export location, survives
 * kill -9 of a brick (writes go on, heal info through the API reports it, the supervisor starts
 * the brick again, heal completes, the replicas are equal on disk), and outlives a restart of the
 * server. Stopping the server stops its storage processes.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ReplicatedClient } from '../../backends/replicated/client/client.ts';
import { readReplica, replicaDifferences, waitFor } from '../backends/replicated/helpers.ts';
import { tempDir } from '../helpers/db.ts';
import {
  COMPAT_ADMIN_PASSWORD,
  compatAdminEnv,
  OPENSTACK,
  openstackClientSkip,
  runClient,
  runOk,
} from '../helpers/openstack.ts';
import { type ServerProcess, startServerProcess } from '../helpers/process.ts';

const skip = openstackClientSkip();
const data = tempDir('abaca-solo');
let server: ServerProcess;
let env: Record<string, string>;
const clients: ReplicatedClient[] = [];

async function start(): Promise<void> {
  server = await startServerProcess({
    ABACA_DATA_DIR: data.path,
    ABACA_ADMIN_PASSWORD: COMPAT_ADMIN_PASSWORD,
  });
  env = compatAdminEnv(server.url);
}

before(async () => {
  if (!skip) await start();
});
after(async () => {
  for (const c of clients) c.close();
  await server?.stop();
  data.remove();
});

const run = (...args: string[]) => runOk(OPENSTACK, args, env);
const brickDir = (i: number) => path.join(data.path, 'solo', `brick${i}`);

/** Pids of this test's solo processes whose command line mentions `what`. */
function pidsOf(what: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', what], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

// biome-ignore lint/suspicious/noExplicitAny: response bodies, checked by the assertions.
async function api(method: string, url: string, token: string, body?: unknown): Promise<any> {
  const res = await fetch(`${server.url}${url}`, {
    method,
    headers: {
      'X-Auth-Token': token,
      'Content-Type': 'application/json',
      'X-OpenStack-Manila-API-Version': '2.65',
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : {};
}

test('solo mode: a replicated share from the real client, kill -9 of a brick, heal, restart', {
  skip,
  timeout: 240_000,
}, async () => {
  const share = await run('share', 'create', 'NFS', '1', '--name', 'data', '--wait', '-f', 'json');
  assert.equal(share.status, 'available');
  assert.match(share.host, /@solo#nova$/);
  for (const i of [1, 2, 3]) assert.equal(readReplica(path.join(brickDir(i), 'shares', share.id)).size, 1);

  // Closed until a rule is granted.
  const token = (await run('token', 'issue', '-f', 'json')).id as string;
  const locations = await run('share', 'export', 'location', 'list', 'data', '-f', 'json');
  const m = /^abaca:\/\/([^/]+):(\d+)\/(.+)$/.exec(locations[0].Path);
  assert.ok(m, `export location ${locations[0].Path}`);
  const connect = async () => {
    const c = await ReplicatedClient.connect({ host: m[1]!, port: Number(m[2]), share: m[3], token });
    clients.push(c);
    return c;
  };
  await assert.rejects(connect(), /no access rule/);
  await run('share', 'access', 'create', 'data', 'ip', '127.0.0.1', '--wait');
  const rules = await run('share', 'access', 'list', 'data', '-f', 'json');
  assert.deepEqual(
    rules.map((r: Record<string, string>) => r.State),
    ['active'],
  );
  const c = await connect();
  await c.writeFile('before.txt', 'written with three bricks up');

  // kill -9 one brick; writes go on with two of three.
  const victim = pidsOf(`${brickDir(2)} `);
  assert.equal(victim.length, 1, 'one brick2 process');
  process.kill(victim[0]!, 'SIGKILL');
  for (let i = 0; i < 20; i++)
    await c.writeFile(`during/${i}`, `file ${i}`).catch(async (err) => {
      if ((err as { code?: string }).code !== 'ENOENT') throw err;
      await c.mkdir('during');
      await c.writeFile(`during/${i}`, `file ${i}`);
    });
  const during = (await api('GET', `/v2/shares/${share.id}/heal`, token)).share_heal;
  // The supervisor may already have started the brick again: degraded, or healing what it missed.
  assert.ok(['degraded', 'healing'].includes(during.status), JSON.stringify(during));
  assert.ok(during.pending_entries > 0, JSON.stringify(during));

  // The supervisor starts it again; heal brings it up to date.
  await waitFor(() => pidsOf(`${brickDir(2)} `).length === 1, 20_000, 'brick2 restarted');
  await waitFor(
    async () => (await api('GET', `/v2/shares/${share.id}/heal`, token)).share_heal.status === 'healthy',
    30_000,
    'heal to complete',
  );
  const states = [1, 2, 3].map((i) => ({
    index: i,
    label: `brick${i}`,
    dir: path.join(brickDir(i), 'shares', share.id),
    entries: readReplica(path.join(brickDir(i), 'shares', share.id)),
  }));
  assert.deepEqual(replicaDifferences(states), []);
  assert.equal(states[1]!.entries.get('during/19')?.size, 'file 19'.length);

  // Stopping the server stops the storage; a restart brings the share back, data intact.
  for (const x of clients.splice(0)) x.close();
  assert.equal(await server.stop(), 0);
  await waitFor(() => pidsOf(path.join(data.path, 'solo')).length === 0, 10_000, 'solo processes to stop');
  await start();
  const again = await run('share', 'show', 'data', '-f', 'json');
  assert.equal(again.status, 'available');
  const token2 = (await run('token', 'issue', '-f', 'json')).id as string;
  const c2 = await ReplicatedClient.connect({ host: m[1]!, port: Number(m[2]), share: m[3], token: token2 });
  clients.push(c2);
  assert.equal((await c2.readFile('during/7')).toString(), 'file 7');
  assert.equal((await c2.readFile('before.txt')).toString(), 'written with three bricks up');
});

test('solo mode: a share server refuses a token of another project', { skip, timeout: 120_000 }, async () => {
  const share = await run('share', 'create', 'NFS', '1', '--name', 'private', '--wait', '-f', 'json');
  await run('share', 'access', 'create', 'private', 'ip', '127.0.0.1', '--wait');
  await run('project', 'create', 'other');
  await run('user', 'create', 'mallory', '--password', 'mallory-password', '--project', 'other');
  await run('role', 'add', '--user', 'mallory', '--project', 'other', 'member');
  const other = await runClient(OPENSTACK, ['token', 'issue', '-f', 'json'], {
    ...env,
    OS_USERNAME: 'mallory',
    OS_PASSWORD: 'mallory-password',
    OS_PROJECT_NAME: 'other',
  });
  assert.equal(other.code, 0, other.stderr);
  const locations = await run('share', 'export', 'location', 'list', share.id, '-f', 'json');
  const m = /^abaca:\/\/([^/]+):(\d+)\/(.+)$/.exec(locations[0].Path)!;
  await assert.rejects(
    ReplicatedClient.connect({
      host: m[1]!,
      port: Number(m[2]),
      share: m[3],
      token: JSON.parse(other.stdout).id,
    }),
    /not scoped to the project/,
  );
});

test('solo mode end to end: type, share, data through the client, snapshot, revert, clone, extend, shrink refused', {
  skip,
  timeout: 240_000,
}, async () => {
  await run(
    'share',
    'type',
    'create',
    'replicated',
    'false',
    '--snapshot-support',
    'true',
    '--revert-to-snapshot-support',
    'true',
    '--create-share-from-snapshot-support',
    'true',
    '--extra-specs',
    'abaca:replica_count=3',
  );
  const share = await run(
    'share',
    'create',
    'NFS',
    '1',
    '--name',
    'e2e',
    '--share-type',
    'replicated',
    '--wait',
    '-f',
    'json',
  );
  assert.equal(share.status, 'available');
  await run('share', 'access', 'create', 'e2e', 'ip', '127.0.0.1', '--wait');
  const token = (await run('token', 'issue', '-f', 'json')).id as string;
  const mountOf = async (name: string) => {
    const loc = (await run('share', 'export', 'location', 'list', name, '-f', 'json'))[0].Path as string;
    const m = /^abaca:\/\/([^/]+):(\d+)\/(.+)$/.exec(loc);
    assert.ok(m, loc);
    const c = await ReplicatedClient.connect({ host: m[1]!, port: Number(m[2]), share: m[3], token });
    clients.push(c);
    return c;
  };
  const c = await mountOf('e2e');
  await c.mkdir('docs');
  await c.writeFile('docs/a.txt', 'version one');
  await c.writeFile('keep.bin', Buffer.alloc(300_000, 7));

  const snap = await run('share', 'snapshot', 'create', 'e2e', '--name', 'one', '--wait', '-f', 'json');
  assert.equal(snap.status, 'available');
  // Written after the snapshot: a change, a new file, a removal.
  await c.writeFile('docs/a.txt', 'version two, longer');
  await c.writeFile('docs/new.txt', 'only after');
  await c.unlink('keep.bin');

  // A share from the snapshot holds the snapshot's data and is independent of its source.
  const clone = await run(
    'share',
    'create',
    'NFS',
    '1',
    '--name',
    'e2e-clone',
    '--share-type',
    'replicated',
    '--snapshot-id',
    snap.id,
    '--wait',
    '-f',
    'json',
  );
  assert.equal(clone.status, 'available');
  await run('share', 'access', 'create', 'e2e-clone', 'ip', '127.0.0.1', '--wait');
  const k = await mountOf('e2e-clone');
  assert.equal((await k.readFile('docs/a.txt')).toString(), 'version one');
  assert.deepEqual(await k.readFile('keep.bin'), Buffer.alloc(300_000, 7));
  assert.equal(await k.exists('docs/new.txt'), false);
  await k.writeFile('docs/a.txt', 'changed in the clone');
  assert.equal((await c.readFile('docs/a.txt')).toString(), 'version two, longer');

  // Revert: exactly the snapshot's data again (the mount is re-made, as after any revert).
  await run('share', 'revert', snap.id, '--wait');
  const r = await mountOf('e2e');
  assert.equal((await r.readFile('docs/a.txt')).toString(), 'version one');
  assert.deepEqual(await r.readFile('keep.bin'), Buffer.alloc(300_000, 7));
  assert.equal(await r.exists('docs/new.txt'), false);
  assert.equal((await k.readFile('docs/a.txt')).toString(), 'changed in the clone');

  // Extend, fill past the old size (a sparse file counts its full length), shrink refused.
  await run('share', 'resize', 'e2e', '2', '--wait');
  assert.equal((await r.statfs()).size, 2 * 1024 ** 3);
  await r.writeFile('big', '');
  await r.truncate('big', 1.5 * 1024 ** 3);
  // As in Manila, a shrink the driver refuses for the data's sake leaves the share available at
  // its size, and a user message says why.
  await run('share', 'resize', 'e2e', '1', '--wait');
  const messages = (await run('share', 'message', 'list', '-f', 'json')) as Array<Record<string, string>>;
  assert.ok(
    messages.some(
      (m) => m['Resource ID'] === share.id && /not shrunk to 1 GiB/.test(m['User Message'] ?? ''),
    ),
    JSON.stringify(messages),
  );
  const after = await run('share', 'show', 'e2e', '-f', 'json');
  assert.deepEqual([after.status, after.size], ['available', 2]);
  assert.equal((await r.stat('big')).size, 1.5 * 1024 ** 3);
  assert.equal((await r.readFile('docs/a.txt')).toString(), 'version one');
});
