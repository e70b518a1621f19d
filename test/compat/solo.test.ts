/**
 * Solo mode as a new user meets it: abaca-server with no ABACA_BACKENDS runs three bricks and a
 * share server under its data dir; a share created with the real `openstack` client is replicated,
 * mountable (with an access rule and the project's token) through its export location, survives
 * kill -9 of a brick (writes go on, heal info through the API reports it, the supervisor starts
 * the brick again, heal completes, the replicas are equal on disk), and outlives a restart of the
 * server. Stopping the server stops its storage processes. The client creates the first share and
 * lists the user messages; the rest goes through the API (the client's commands for snapshots,
 * clones, revert, resize, access rules, export locations and tokens are checked against the same
 * API in the other compat files), so the tests here are about what solo mode's storage does.
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
  type CompatApi,
  compatAdminEnv,
  compatApi,
  OPENSTACK,
  openstackClientSkip,
  runOk,
} from '../helpers/openstack.ts';
import { type ServerProcess, startServerProcess } from '../helpers/process.ts';

const skip = openstackClientSkip();
const data = tempDir('abaca-solo');
let server: ServerProcess;
let env: Record<string, string>;
let admin: CompatApi;
const clients: ReplicatedClient[] = [];

async function start(): Promise<void> {
  server = await startServerProcess({
    ABACA_DATA_DIR: data.path,
    ABACA_ADMIN_PASSWORD: COMPAT_ADMIN_PASSWORD,
  });
  env = compatAdminEnv(server.url);
  admin = await compatApi(server.url);
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

/** Grants 127.0.0.1 access to the share (through the API) and waits for the rule to be active. */
async function allowLocal(shareId: string): Promise<void> {
  const { access } = await admin.call('POST', `/v2/shares/${shareId}/action`, {
    allow_access: { access_type: 'ip', access_to: '127.0.0.1' },
  });
  await admin.waitStatus(`/v2/share-access-rules/${access.id}`, 'access', 'active', 'state');
}

/** A 1 GiB NFS share made through the API, once available. */
// biome-ignore lint/suspicious/noExplicitAny: the API's share body
async function apiShare(fields: Record<string, string>): Promise<any> {
  const { share } = await admin.call('POST', '/v2/shares', {
    share: { share_proto: 'NFS', size: 1, ...fields },
  });
  await admin.waitStatus(`/v2/shares/${share.id}`, 'share', 'available');
  return (await admin.call('GET', `/v2/shares/${share.id}`)).share;
}

/** Runs a share action through the API and waits for the share to be available again. */
async function action(shareId: string, body: unknown): Promise<void> {
  await admin.call('POST', `/v2/shares/${shareId}/action`, body);
  await admin.waitStatus(`/v2/shares/${shareId}`, 'share', 'available');
}

/** host, port and share of the share's export location (`abaca://HOST:PORT/SHARE`). */
async function exportOf(shareId: string): Promise<{ host: string; port: number; share: string }> {
  const locations = (await admin.call('GET', `/v2/shares/${shareId}/export_locations`)).export_locations;
  const m = /^abaca:\/\/([^/]+):(\d+)\/(.+)$/.exec(locations[0].path);
  assert.ok(m, `export location ${locations[0].path}`);
  return { host: m[1]!, port: Number(m[2]), share: m[3]! };
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
  const token = admin.token;
  const where = await exportOf(share.id);
  const connect = async () => {
    const c = await ReplicatedClient.connect({ ...where, token });
    clients.push(c);
    return c;
  };
  await assert.rejects(connect(), /no access rule/);
  await allowLocal(share.id);
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
  const during = (await admin.call('GET', `/v2/shares/${share.id}/heal`)).share_heal;
  // The supervisor may already have started the brick again: degraded, or healing what it missed.
  assert.ok(['degraded', 'healing'].includes(during.status), JSON.stringify(during));
  assert.ok(during.pending_entries > 0, JSON.stringify(during));

  // The supervisor starts it again; heal brings it up to date.
  await waitFor(() => pidsOf(`${brickDir(2)} `).length === 1, 20_000, 'brick2 restarted');
  await waitFor(
    async () => (await admin.call('GET', `/v2/shares/${share.id}/heal`)).share_heal.status === 'healthy',
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
  const again = (await admin.call('GET', `/v2/shares/${share.id}`)).share;
  assert.equal(again.status, 'available');
  assert.deepEqual(await exportOf(share.id), where);
  const c2 = await ReplicatedClient.connect({ ...where, token: admin.token });
  clients.push(c2);
  assert.equal((await c2.readFile('during/7')).toString(), 'file 7');
  assert.equal((await c2.readFile('before.txt')).toString(), 'written with three bricks up');
});

test('solo mode: a share server refuses a token of another project', { skip, timeout: 120_000 }, async () => {
  // All through the API: what is under test is the share server's check of the token.
  const share = await apiShare({ name: 'private' });
  await allowLocal(share.id);
  const { project } = await admin.call('POST', '/identity/v3/projects', {
    project: { name: 'other', domain_id: 'default' },
  });
  const { user } = await admin.call('POST', '/identity/v3/users', {
    user: {
      name: 'mallory',
      password: 'mallory-password',
      default_project_id: project.id,
      domain_id: 'default',
    },
  });
  const [member] = (await admin.call('GET', '/identity/v3/roles?name=member')).roles;
  await admin.call('PUT', `/identity/v3/projects/${project.id}/users/${user.id}/roles/${member.id}`);
  const other = await compatApi(server.url, 'mallory', 'mallory-password', 'other');
  assert.equal(other.projectId, project.id);
  await assert.rejects(
    ReplicatedClient.connect({ ...(await exportOf(share.id)), token: other.token }),
    /not scoped to the project/,
  );
  // The same share server admits the owner's token.
  const own = await ReplicatedClient.connect({ ...(await exportOf(share.id)), token: admin.token });
  clients.push(own);
});

test('solo mode end to end: type, share, data through the client, snapshot, revert, clone, extend, shrink refused', {
  skip,
  timeout: 240_000,
}, async () => {
  await admin.call('POST', '/v2/types', {
    share_type: {
      name: 'replicated',
      extra_specs: {
        driver_handles_share_servers: 'false',
        snapshot_support: 'true',
        revert_to_snapshot_support: 'true',
        create_share_from_snapshot_support: 'true',
        'abaca:replica_count': '3',
      },
    },
  });
  const share = await apiShare({ name: 'e2e', share_type: 'replicated' });
  assert.equal(share.share_type_name, 'replicated');
  await allowLocal(share.id);
  const mountOf = async (id: string) => {
    const c = await ReplicatedClient.connect({ ...(await exportOf(id)), token: admin.token });
    clients.push(c);
    return c;
  };
  const c = await mountOf(share.id);
  await c.mkdir('docs');
  await c.writeFile('docs/a.txt', 'version one');
  await c.writeFile('keep.bin', Buffer.alloc(300_000, 7));

  const { snapshot: snap } = await admin.call('POST', '/v2/snapshots', {
    snapshot: { share_id: share.id, name: 'one' },
  });
  await admin.waitStatus(`/v2/snapshots/${snap.id}`, 'snapshot', 'available');
  // Written after the snapshot: a change, a new file, a removal.
  await c.writeFile('docs/a.txt', 'version two, longer');
  await c.writeFile('docs/new.txt', 'only after');
  await c.unlink('keep.bin');

  // A share from the snapshot holds the snapshot's data and is independent of its source.
  const clone = await apiShare({ name: 'e2e-clone', share_type: 'replicated', snapshot_id: snap.id });
  assert.equal(clone.status, 'available');
  await allowLocal(clone.id);
  const k = await mountOf(clone.id);
  assert.equal((await k.readFile('docs/a.txt')).toString(), 'version one');
  assert.deepEqual(await k.readFile('keep.bin'), Buffer.alloc(300_000, 7));
  assert.equal(await k.exists('docs/new.txt'), false);
  await k.writeFile('docs/a.txt', 'changed in the clone');
  assert.equal((await c.readFile('docs/a.txt')).toString(), 'version two, longer');

  // Revert: exactly the snapshot's data again (the mount is re-made, as after any revert).
  await action(share.id, { revert: { snapshot_id: snap.id } });
  const r = await mountOf(share.id);
  assert.equal((await r.readFile('docs/a.txt')).toString(), 'version one');
  assert.deepEqual(await r.readFile('keep.bin'), Buffer.alloc(300_000, 7));
  assert.equal(await r.exists('docs/new.txt'), false);
  assert.equal((await k.readFile('docs/a.txt')).toString(), 'changed in the clone');

  // Extend, fill past the old size (a sparse file counts its full length), shrink refused.
  await action(share.id, { extend: { new_size: 2 } });
  assert.equal((await r.statfs()).size, 2 * 1024 ** 3);
  await r.writeFile('big', '');
  await r.truncate('big', 1.5 * 1024 ** 3);
  // As in Manila, a shrink the driver refuses for the data's sake leaves the share available at
  // its size, and a user message says why.
  await action(share.id, { shrink: { new_size: 1 } });
  const messages = (await run('share', 'message', 'list', '-f', 'json')) as Array<Record<string, string>>;
  assert.ok(
    messages.some(
      (m) => m['Resource ID'] === share.id && /not shrunk to 1 GiB/.test(m['User Message'] ?? ''),
    ),
    JSON.stringify(messages),
  );
  const after = (await admin.call('GET', `/v2/shares/${share.id}`)).share;
  assert.deepEqual([after.status, after.size], ['available', 2]);
  assert.equal((await r.stat('big')).size, 1.5 * 1024 ** 3);
  assert.equal((await r.readFile('docs/a.txt')).toString(), 'version one');
});
