/**
 * The cluster monitor's decisions (backends/replicated/cluster.ts) against fake share servers that
 * answer `serverState` as told and record the assignments they get: a dead owner loses its
 * shares after failoverMs, to the least loaded live server; an owner that answers but reaches too
 * few bricks loses them too when another server reaches a majority (not when none does); a server
 * that restarts (new process id) is sent the whole map; two monitors on one table decide once; a
 * disabled server that still answers hands its shares over and gets no new ones.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import { memoryOwnerStore, ShareServerCluster } from '../../../backends/replicated/cluster.ts';
import { OP } from '../../../backends/replicated/protocol/opcodes.ts';
import { serveSocket } from '../../../backends/replicated/protocol/rpc-server.ts';
import { waitFor } from './helpers.ts';

const TOKEN = 'cluster-monitor-test-token';

class FakeServer {
  id = 'process-1';
  private readonly sockets = new Set<net.Socket>();
  bricksUp = 3;
  assigned: Array<Record<string, { at: string; gen: number }>> = [];
  private readonly server: net.Server;
  addr = '';
  constructor() {
    this.server = net.createServer((sock) => {
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
      serveSocket(sock, (f) => {
        if (f.header['token'] !== TOKEN) throw Object.assign(new Error('token'), { code: 'EACCES' });
        if (f.op === OP.serverState)
          return { header: { id: this.id, managed: true, shares: [], bricksUp: this.bricksUp, bricks: 3 } };
        if (f.op === OP.assignShares) {
          this.assigned.push(f.header['shares'] as Record<string, { at: string; gen: number }>);
          return { header: { failed: {} } };
        }
        throw Object.assign(new Error('no'), { code: 'ENOSYS' });
      });
    });
  }
  /** As a killed process: connections drop, nothing listens. */
  kill(): void {
    this.server.close();
    for (const s of this.sockets) s.destroy();
  }
  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.addr = `127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }
  /** Was `share` assigned here ("here") at some point? */
  got(share: string, at = 'here'): boolean {
    return this.assigned.some((a) => a[share]?.at === at);
  }
  close(): void {
    this.server.close();
  }
}

const fakes: FakeServer[] = [];
const monitors: ShareServerCluster[] = [];
after(async () => {
  for (const m of monitors) await m.close();
  for (const f of fakes) f.close();
});

async function setup(n: number, store = memoryOwnerStore()) {
  const servers: FakeServer[] = [];
  for (let i = 0; i < n; i++) {
    const f = new FakeServer();
    await f.listen();
    servers.push(f);
    fakes.push(f);
  }
  const monitor = (s = store) => {
    const m = new ShareServerCluster({
      servers: servers.map((f) => f.addr),
      exportAddresses: servers.map((_, i) => `10.0.0.${i + 1}:7400`),
      adminToken: TOKEN,
      store: s,
      probeMs: 50,
      failoverMs: 400,
    });
    monitors.push(m);
    m.start();
    return m;
  };
  return { servers, store, monitor };
}

test('a dead owner loses its shares to the least loaded live server, once', async () => {
  const { servers, store, monitor } = await setup(3);
  // Two monitors (two API processes) on one table.
  const m1 = monitor();
  monitor();
  await waitFor(() => servers.every((f) => m1.isUp(f.addr)), 5000, 'all up');
  await store.claim('a', servers[0]!.addr);
  await store.claim('b', servers[0]!.addr);
  await store.claim('c', servers[1]!.addr);
  servers[0]!.kill();
  await waitFor(async () => (await store.list()).every((o) => o.server !== servers[0]!.addr), 5000, 'moved');
  const rows = await store.list();
  // Each moved share was moved once (generation 2) and went where the fewest were.
  for (const o of rows.filter((r) => r.share !== 'c')) assert.equal(o.generation, 2);
  assert.equal(rows.find((r) => r.share === 'c')!.generation, 1);
  const counts = new Map<string, number>();
  for (const o of rows) counts.set(o.server, (counts.get(o.server) ?? 0) + 1);
  assert.deepEqual([...counts.values()].sort(), [1, 2]);
  // The new owners were told to serve them, the others where they are.
  for (const o of rows.filter((r) => r.share !== 'c')) {
    const owner = servers.find((f) => f.addr === o.server)!;
    // The table moves first; the new owner is told right after.
    await waitFor(() => owner.got(o.share), 2000, `${o.share} assigned to its new owner`);
    const other = servers.find((f) => f !== owner && f !== servers[0])!;
    const at = `10.0.0.${servers.indexOf(owner) + 1}:7400`;
    await waitFor(() => other.got(o.share, at), 2000, `${o.share} announced`);
  }
});

test('an owner cut off from its bricks loses its shares when another reaches them, not otherwise', async () => {
  const { servers, store, monitor } = await setup(2);
  const m = monitor();
  await waitFor(() => servers.every((f) => m.isUp(f.addr)), 5000);
  await store.claim('d', servers[0]!.addr);
  // Both short: nothing would be better elsewhere.
  servers[0]!.bricksUp = 1;
  servers[1]!.bricksUp = 1;
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal((await store.get('d'))!.server, servers[0]!.addr);
  // The other reaches a majority: the share moves there.
  servers[1]!.bricksUp = 3;
  await waitFor(async () => (await store.get('d'))!.server === servers[1]!.addr, 5000);
  await waitFor(() => servers[1]!.got('d'), 2000, 'd assigned to its new owner');
});

test('a share server that restarts is sent the whole map', async () => {
  const { servers, store, monitor } = await setup(2);
  await store.claim('e', servers[0]!.addr);
  await store.claim('f', servers[1]!.addr);
  const m = monitor();
  await waitFor(() => servers.every((f) => m.isUp(f.addr)), 5000);
  await waitFor(() => servers[0]!.got('e') && servers[0]!.got('f', '10.0.0.2:7400'), 3000);
  servers[0]!.assigned = [];
  servers[0]!.id = 'process-2';
  await waitFor(() => servers[0]!.got('e') && servers[0]!.got('f', '10.0.0.2:7400'), 3000);
  assert.equal((await store.get('e'))!.server, servers[0]!.addr, 'a restart moves nothing');
});

test('a disabled share server that still answers hands its shares over and gets no new ones; enabled, it takes new ones', async () => {
  const { servers, store, monitor } = await setup(3);
  const m1 = monitor();
  const m2 = monitor(); // another API process: it learns the disable from the table
  await waitFor(() => servers.every((f) => m1.isUp(f.addr) && m2.isUp(f.addr)), 5000, 'all up');
  await store.claim('g', servers[0]!.addr);
  await store.claim('h', servers[0]!.addr);
  await store.claim('i', servers[1]!.addr);
  await m1.setDisabled(servers[0]!.addr, true, 'kernel upgrade');
  assert.deepEqual(m1.disabledOf(servers[0]!.addr), { disabled: true, reason: 'kernel upgrade' });
  await waitFor(
    async () => (await store.list()).every((o) => o.server !== servers[0]!.addr),
    5000,
    'handed over',
  );
  // While it answers all along: moved once each, to the others, who were told to serve them.
  for (const s of ['g', 'h']) {
    const o = (await store.get(s))!;
    assert.equal(o.generation, 2, `${s} moved once`);
    const owner = servers.find((f) => f.addr === o.server)!;
    await waitFor(() => owner.got(s), 2000, `${s} assigned to its new owner`);
  }
  assert.ok(m1.isUp(servers[0]!.addr), 'the disabled server was up the whole time');
  await waitFor(() => m2.disabledOf(servers[0]!.addr).disabled, 2000, 'the other monitor sees it');
  // New shares go elsewhere while it is disabled, even when it owns the fewest.
  for (const s of ['j', 'k', 'l']) assert.notEqual((await m2.place(s)).server, servers[0]!.addr);
  await m1.setDisabled(servers[0]!.addr, false, null);
  assert.equal(m1.disabledOf(servers[0]!.addr).disabled, false);
  assert.equal(
    (await m1.place('m')).server,
    servers[0]!.addr,
    'enabled and the least loaded: it takes the next',
  );
});
