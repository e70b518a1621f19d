/**
 * Share-server failover: three share servers under the cluster monitor (`--cluster`), three bricks,
 * real processes on loopback. The owner of a share is killed or paused; the monitor moves the share
 * within its failover time, clients follow the redirect and send again what was in flight, and
 * nothing acknowledged is lost or applied twice. A paused owner that wakes up is fenced; a
 * restarted one does not take its old shares back.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ReplicatedClient } from '../../../backends/replicated/client/client.ts';
import { memoryOwnerStore } from '../../../backends/replicated/cluster.ts';
import { createReplicatedBackend } from '../../../backends/replicated/driver.ts';
import type { Proc } from '../../../backends/replicated/processes.ts';
import { OP } from '../../../backends/replicated/protocol/opcodes.ts';
import type { Backend, ShareRef } from '../../../backends/types.ts';
import { ShareConnection, shareAddressOf } from '../../../client/mount/share-connection.ts';
import {
  appender,
  assertReplicasEqual,
  Cluster,
  checkLog,
  expectCode,
  settled,
  shareRef,
  waitFor,
} from './helpers.ts';

const PROBE_MS = 200;
const FAILOVER_MS = 1500;

let cl: Cluster;
let servers: Proc[];
let owners: ReturnType<typeof memoryOwnerStore>;
let backend: Backend;

before(async () => {
  cl = await Cluster.start({ serverArgs: ['--cluster'] });
  cl.servers.push(await cl.startServer(), await cl.startServer());
  servers = cl.servers;
  owners = memoryOwnerStore();
  backend = createReplicatedBackend({
    name: 'failover',
    shareServers: servers.map((s) => s.addr),
    adminToken: cl.adminToken,
    owners,
    probeMs: PROBE_MS,
    failoverMs: FAILOVER_MS,
  });
  // Every server answered the monitor once: placement sees them all up.
  await new Promise((r) => setTimeout(r, PROBE_MS * 3));
  pool = (await backend.stats()).pools[0]!.name;
});
after(async () => {
  await backend?.close();
  await cl?.close();
});

let pool: string;
const ref = (id: string): ShareRef => shareRef(id, pool);

const serverOf = (admin: string): Proc => servers.find((s) => s.addr === admin)!;

async function connect(locations: Array<{ path: string; preferred?: boolean }>): Promise<ShareConnection> {
  const addr = shareAddressOf(locations)!;
  // The mount's own request timeout (60 s): a paused owner is noticed by the heartbeat, not by it.
  return ShareConnection.open({
    ...addr,
    adminToken: cl.adminToken,
    retryMs: 20_000,
  });
}

test('new shares are spread over the share servers, and the owner is the preferred export location', async () => {
  const made = [];
  for (const id of ['spread1', 'spread2', 'spread3'])
    made.push({ id, locs: await backend.createShare(ref(id)) });
  const used = new Set(made.map((m) => owners.rows.get(m.id)!.server));
  assert.equal(used.size, 3, `owners: ${[...used].join(', ')}`);
  for (const m of made) {
    const owner = owners.rows.get(m.id)!.server;
    const preferred = m.locs.find((l) => l.preferred)!;
    assert.equal(preferred.path, `abaca://${owner}/${m.id}`);
    assert.equal(m.locs.length, 3);
  }
  // A non-owner sends a client to the owner.
  const other = servers.find((s) => s.addr !== owners.rows.get('spread1')!.server)!;
  const e = await expectCode(
    ReplicatedClient.connect({
      host: '127.0.0.1',
      port: other.port,
      share: 'spread1',
      adminToken: cl.adminToken,
    }),
    ['EMOVED'],
  );
  assert.equal(e, 'EMOVED');
  for (const m of made) await backend.deleteShare(ref(m.id));
});

test('a re-sent mutation is applied once: same server, and after a takeover', async () => {
  await backend.createShare(ref('resend'));
  const owner = serverOf(owners.rows.get('resend')!.server);
  const c = await ReplicatedClient.connect({
    host: '127.0.0.1',
    port: owner.port,
    share: 'resend',
    adminToken: cl.adminToken,
  });
  await c.call(OP.create, { path: 'log', mode: 0o644, excl: true, rid: 'r-create' });
  // The same exclusive create again: its first answer, not EEXIST.
  await c.call(OP.create, { path: 'log', mode: 0o644, excl: true, rid: 'r-create', resent: true });
  const rec = Buffer.from('record-1\n');
  await c.call(OP.write, { path: 'log', off: 0, append: true, rid: 'r-app1' }, rec);
  await c.call(OP.write, { path: 'log', off: 0, append: true, rid: 'r-app1', resent: true }, rec);
  assert.equal((await c.readFile('log')).toString(), 'record-1\n');
  // Another server takes the share over (as the monitor would); the old one is fenced.
  const next = servers.find((s) => s !== owner)!;
  const gen = owners.rows.get('resend')!.generation;
  assert.ok(await owners.move('resend', gen, next.addr));
  const admin = await cl.client(undefined, next);
  await admin.assignShares({ resend: { at: 'here', gen: gen + 1 } });
  // The append re-sent to the new owner is not applied again; a new one is.
  const d = await ReplicatedClient.connect({
    host: '127.0.0.1',
    port: next.port,
    share: 'resend',
    adminToken: cl.adminToken,
  });
  await d.call(OP.write, { path: 'log', off: 0, append: true, rid: 'r-app1', resent: true }, rec);
  await d.call(OP.write, { path: 'log', off: 0, append: true, rid: 'r-app2' }, Buffer.from('record-2\n'));
  assert.equal((await d.readFile('log')).toString(), 'record-1\nrecord-2\n');
  // The old owner's connection: told to go elsewhere, nothing applied.
  await expectCode(c.call(OP.write, { path: 'log', off: 0, append: true, rid: 'r-old' }, rec), ['EMOVED']);
  assert.equal((await d.readFile('log')).toString(), 'record-1\nrecord-2\n');
  c.close();
  d.close();
  await backend.deleteShare(ref('resend'));
});

/** Starts a killed share server again on its port, in its place (later tests count on three). */
async function startAgain(addr: string): Promise<Proc> {
  const i = servers.findIndex((s) => s.addr === addr);
  const back = await cl.startServer(['--port', String(servers[i]!.port)]);
  servers[i] = back;
  cl.servers[i] = back;
  return back;
}

/** A new share with an empty file `q`, and a client of its owner. */
async function shareWithFile(id: string): Promise<{ c: ReplicatedClient; owner: Proc }> {
  await backend.createShare(ref(id));
  const owner = serverOf(owners.rows.get(id)!.server);
  const c = await ReplicatedClient.connect({
    host: '127.0.0.1',
    port: owner.port,
    share: id,
    adminToken: cl.adminToken,
  });
  await c.call(OP.create, { path: 'q', mode: 0o644, excl: true });
  return { c, owner };
}

/** Runs fn while bricks 2 and 3 are stopped (SIGSTOP): quorum is lost, brick 1 still answers. */
async function withTwoBricksStopped(fn: () => Promise<unknown>): Promise<void> {
  cl.bricks[1]!.signal('SIGSTOP');
  cl.bricks[2]!.signal('SIGSTOP');
  try {
    await fn();
  } finally {
    cl.bricks[1]!.signal('SIGCONT');
    cl.bricks[2]!.signal('SIGCONT');
  }
}

test('a re-send after a failure without quorum is applied, not answered with the old failure', {
  timeout: 60_000,
}, async () => {
  const { c, owner } = await shareWithFile('quorum');
  await withTwoBricksStopped(() =>
    expectCode(c.call(OP.write, { path: 'q', off: 0, append: true, rid: 'r-q' }, Buffer.from('once\n')), [
      'ENOTCONN',
      'EIO',
    ]),
  );
  const admin = await cl.client(undefined, owner);
  await waitFor(
    async () => (await admin.healInfo('quorum')).every((b) => b.connected),
    20_000,
    'bricks back',
  );
  await waitFor(
    async () => {
      try {
        await c.call(
          OP.write,
          { path: 'q', off: 0, append: true, rid: 'r-q', resent: true },
          Buffer.from('once\n'),
        );
        return true;
      } catch {
        return false;
      }
    },
    20_000,
    'the re-send applied',
  );
  assert.equal((await c.readFile('q')).toString(), 'once\n');
  // The next append goes right after it, and every replica ends up the same.
  await c.call(OP.write, { path: 'q', off: 0, append: true, rid: 'r-q2' }, Buffer.from('twice\n'));
  assert.equal((await c.readFile('q')).toString(), 'once\ntwice\n');
  await settled(admin, 'quorum');
  await assertReplicasEqual(cl, 'quorum', owner);
  c.close();
  await backend.deleteShare(ref('quorum'));
});

test('a re-send that one brick alone applied is not acknowledged while quorum is lost', {
  timeout: 60_000,
}, async () => {
  const { c } = await shareWithFile('lone');
  // Bricks 2 and 3 stop answering: the write reaches brick 1 alone, which applies it and keeps its
  // outcome under the request id; the share server answers that quorum was not reached.
  const send = (resent: boolean) =>
    c.call(OP.write, { path: 'q', off: 0, append: true, rid: 'r-lone', resent }, Buffer.from('lone\n'));
  await withTwoBricksStopped(async () => {
    await expectCode(send(false), ['ENOTCONN', 'EIO']);
    // The client sends it again, as a mount does until its retry timeout: brick 1's record of
    // success is one replica's, not a quorum's, so the answer is still a failure.
    await expectCode(send(true), ['ENOTCONN', 'EIO']);
    await expectCode(send(true), ['ENOTCONN', 'EIO']);
  });
  c.close();
  await backend.deleteShare(ref('lone'));
});

test('a re-send to a new owner, after two bricks restarted and forgot it: answered, not applied twice on them', {
  timeout: 90_000,
}, async () => {
  const { c, owner } = await shareWithFile('forgot');
  const rec = Buffer.from('once\n');
  // Applied on all three; say its answer was lost with the owner.
  await c.call(OP.write, { path: 'q', off: 0, append: true, rid: 'r-forgot' }, rec);
  c.close();
  // Bricks 2 and 3 restart (their request tables start empty), then the owner dies.
  await cl.restartBrick(1);
  await cl.restartBrick(2);
  await owner.kill9();
  await waitFor(() => owners.rows.get('forgot')!.server !== owner.addr, 15_000, 'the share moved');
  const now = serverOf(owners.rows.get('forgot')!.server);
  const admin = await cl.client(undefined, now);
  await waitFor(async () => (await admin.healInfo('forgot')).every((b) => b.connected), 10_000, 'bricks up');
  const d = await ReplicatedClient.connect({
    host: '127.0.0.1',
    port: now.port,
    share: 'forgot',
    adminToken: cl.adminToken,
  });
  // Brick 1 alone remembers the request; the restarted bricks applied it and forgot. It is not
  // sent to them again: the three copies agree, so it is answered as recorded.
  const got = await d
    .call(OP.write, { path: 'q', off: 0, append: true, rid: 'r-forgot', resent: true }, rec)
    .then(
      () => 'ok',
      (e: { code?: string }) => e.code,
    );
  assert.equal(got, 'ok');
  for (let i = 0; i < 3; i++)
    assert.equal(
      fs.readFileSync(path.join(cl.shareDataDir(i, 'forgot'), 'q'), 'utf8'),
      'once\n',
      `brick ${i + 1}`,
    );
  d.close();
  await startAgain(owner.addr);
  await backend.deleteShare(ref('forgot'));
});

test('kill -9 the owner under appends: the share moves, the client follows, nothing lost or doubled', {
  timeout: 90_000,
}, async () => {
  const locs = await backend.createShare(ref('killed'));
  const ownerAddr = owners.rows.get('killed')!.server;
  const conn = await connect(locs);
  await conn.call(OP.create, { path: 'log', mode: 0o644, excl: true });
  const w = appender(conn);
  await waitFor(() => w.acked.length >= 50, 10_000);
  const killedAt = Date.now();
  await serverOf(ownerAddr).kill9();
  const before = w.acked.length;
  await waitFor(() => w.acked.length > before + 20, 15_000);
  const outage = Date.now() - killedAt;
  await w.stop();
  assert.deepEqual(w.errors, []);
  const now = owners.rows.get('killed')!;
  assert.notEqual(now.server, ownerAddr);
  assert.equal(conn.address, now.server);
  assert.ok(w.longestGapMs() < 10_000, `writes stopped for ${w.longestGapMs()} ms`);
  const admin = await cl.client(undefined, serverOf(now.server));
  await settled(admin, 'killed');
  const reader = await cl.client('killed', serverOf(now.server));
  checkLog((await reader.readFile('log')).toString(), w.acked);
  await assertReplicasEqual(cl, 'killed', serverOf(now.server));
  conn.close();
  console.log(`# failover after kill -9: first write after ${outage} ms, longest gap ${w.longestGapMs()} ms`);
  // The killed server comes back on its port: it learns the map and takes nothing back.
  const back = await startAgain(ownerAddr);
  await waitFor(async () => {
    try {
      (
        await ReplicatedClient.connect({
          host: '127.0.0.1',
          port: back.port,
          share: 'killed',
          adminToken: cl.adminToken,
        })
      ).close();
      return false;
    } catch (err) {
      return (err as { code?: string; at?: string }).at === now.server;
    }
  }, 10_000);
  assert.equal(owners.rows.get('killed')!.server, now.server);
  await backend.deleteShare(ref('killed'));
});

test('a paused owner loses the share, and after SIGCONT is fenced: its clients are sent to the new owner', {
  timeout: 90_000,
}, async () => {
  const locs = await backend.createShare(ref('paused'));
  const ownerAddr = owners.rows.get('paused')!.server;
  const owner = serverOf(ownerAddr);
  const conn = await connect(locs);
  await conn.call(OP.create, { path: 'log', mode: 0o644, excl: true });
  const direct = await ReplicatedClient.connect({
    host: '127.0.0.1',
    port: owner.port,
    share: 'paused',
    adminToken: cl.adminToken,
  });
  const w = appender(conn);
  try {
    await waitFor(() => w.acked.length >= 50, 10_000);
    owner.signal('SIGSTOP');
    await waitFor(() => owners.rows.get('paused')!.server !== ownerAddr, 10_000);
    const before = w.acked.length;
    await waitFor(() => w.acked.length > before + 20, 15_000);
    owner.signal('SIGCONT');
    // The old owner may not write: its bricks hold a newer epoch. Just after SIGCONT its brick
    // requests may time out first (their timers ran out while it was stopped): ENOTCONN, which a
    // client also takes as "try elsewhere". Once a brick answers, it knows it is fenced.
    await waitFor(
      async () => {
        const code = await direct.writeFile('stale', 'from the old owner').then(
          () => 'written',
          (e: { code?: string }) => e.code,
        );
        assert.ok(code === 'EMOVED' || code === 'ENOTCONN', `the old owner answered ${code}`);
        return code === 'EMOVED';
      },
      15_000,
      'the old owner fenced (EMOVED)',
    );
    const more = w.acked.length;
    await waitFor(() => w.acked.length > more + 20, 15_000);
  } finally {
    owner.signal('SIGCONT');
    await w.stop();
  }
  assert.deepEqual(w.errors, []);
  // Failover plus the heartbeat's ping timeout, far below the 60 s request timeout.
  assert.ok(w.longestGapMs() < 10_000, `writes stopped for ${w.longestGapMs()} ms`);
  console.log(`# failover after SIGSTOP: longest gap ${w.longestGapMs()} ms`);
  const newOwner = owners.rows.get('paused')!.server;
  const admin = await cl.client(undefined, serverOf(newOwner));
  await settled(admin, 'paused');
  const reader = await cl.client('paused', serverOf(newOwner));
  assert.equal(await reader.exists('stale'), false);
  checkLog((await reader.readFile('log')).toString(), w.acked);
  await assertReplicasEqual(cl, 'paused', serverOf(newOwner));
  direct.close();
  conn.close();
  await backend.deleteShare(ref('paused'));
});

test('planned handovers under appends (the owner disabled while it answers): nothing lost or doubled, replicas equal', {
  timeout: 120_000,
}, async () => {
  const locs = await backend.createShare(ref('handover'));
  const conn = await connect(locs);
  await conn.call(OP.create, { path: 'log', mode: 0o644, excl: true });
  const w = appender(conn);
  await waitFor(() => w.acked.length >= 50, 10_000);
  // Each handover races the appends in flight: the old owner still answers while the new one
  // claims the bricks, so some appends reach only part of the replicas before the old one is fenced.
  for (let i = 0; i < 6; i++) {
    const from = owners.rows.get('handover')!.server;
    await backend.setComponentDisabled!({ binary: 'abaca-share-server', host: from }, true, null);
    await waitFor(() => owners.rows.get('handover')!.server !== from, 10_000, `handover ${i + 1}`);
    const n = w.acked.length;
    await waitFor(() => w.acked.length > n + 30, 10_000, `appends after handover ${i + 1}`);
    await backend.setComponentDisabled!({ binary: 'abaca-share-server', host: from }, false, null);
  }
  await w.stop();
  assert.deepEqual(w.errors, []);
  const owner = serverOf(owners.rows.get('handover')!.server);
  await settled(await cl.client(undefined, owner), 'handover');
  const reader = await cl.client('handover', owner);
  checkLog((await reader.readFile('log')).toString(), w.acked);
  await assertReplicasEqual(cl, 'handover', owner);
  conn.close();
  await backend.deleteShare(ref('handover'));
});
