/**
 * Run by partition.test.ts inside network namespace A (never directly): bricks 1-2 and the share
 * server live in A, brick 3 in namespace B behind a veth pair. Cuts the veth, runs a workload on
 * quorum, rejoins, waits for heal and compares the replicas. Prints one JSON line; exit 0 = pass.
 *   argv: <dir> <nsB> <vethA> <addrB>
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { ReplicatedClient } from '../../../backends/replicated/client/client.ts';
import { type Proc, spawnDaemon } from '../../../backends/replicated/processes.ts';
import { checksumWalk, digestOf, settled, waitFor } from './helpers.ts';
import { Workload } from './workload.ts';

const [dir, nsB, vethA, addrB] = process.argv.slice(2) as [string, string, string, string];
const procs: Proc[] = [];
const clients: ReplicatedClient[] = [];
let exitCode = 1;
try {
  execFileSync('ip', ['link', 'set', 'lo', 'up']);
  const b1 = await spawnDaemon('abaca-brick.js', ['--dir', path.join(dir, 'b1'), '--host-label', 'a1']);
  const b2 = await spawnDaemon('abaca-brick.js', ['--dir', path.join(dir, 'b2'), '--host-label', 'a2']);
  const b3 = await spawnDaemon(
    'abaca-brick.js',
    ['--dir', path.join(dir, 'b3'), '--host', addrB, '--host-label', 'b1'],
    ['ip', 'netns', 'exec', nsB],
  );
  procs.push(b1, b2, b3);
  const adminToken = randomUUID();
  const srv = await spawnDaemon(
    'abaca-share-server.js',
    ['--bricks', [b1.addr, b2.addr, b3.addr].join(','), '--brick-timeout-ms', '3000'],
    undefined,
    { ABACA_ADMIN_TOKEN: adminToken },
  );
  procs.push(srv);
  const connect = async (share?: string): Promise<ReplicatedClient> => {
    const c = await ReplicatedClient.connect({
      host: '127.0.0.1',
      port: srv.port,
      share,
      timeoutMs: 30_000,
      adminToken,
    });
    clients.push(c);
    return c;
  };
  const admin = await connect();
  await admin.createShare('np', 1 << 30);
  const w = new Workload(await connect('np'), 'w', 77);
  await w.setup();
  await w.run(150);
  await settled(admin, 'np');

  execFileSync('ip', ['link', 'set', vethA, 'down']);
  let worst = 0;
  let last = Date.now();
  await w.run(300, () => {
    const now = Date.now();
    worst = Math.max(worst, now - last);
    last = now;
  });
  await w.verify();
  const during = await admin.healInfo('np');
  const cut = during.find((b) => b.addr === b3.addr)!;
  assert.equal(cut.connected, false, 'the cut-off brick is reported disconnected');
  assert.ok(
    during.filter((b) => b.addr !== b3.addr).every((b) => b.count > 0),
    'the others list what it missed',
  );

  execFileSync('ip', ['link', 'set', vethA, 'up']);
  await waitFor(
    async () => {
      const info = await admin.healInfo('np');
      if (!info.every((b) => b.connected)) return false;
      if (info.some((b) => b.count > 0)) {
        await admin.healNow('np');
        return false;
      }
      return true;
    },
    60_000,
    'heal after rejoin',
  );
  const digests = ['b1', 'b2', 'b3'].map((b) =>
    digestOf(checksumWalk(path.join(dir, b, 'shares', 'np', 'data'))),
  );
  assert.equal(digests[0], digests[1]);
  assert.equal(digests[1], digests[2]);
  await w.run(20);
  await w.verify();
  console.log(JSON.stringify({ ok: true, acked: w.acked, worstStallMs: worst, files: w.files.size }));
  exitCode = 0;
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: (err as Error).stack ?? String(err) }));
} finally {
  for (const c of clients) c.close();
  for (const p of procs) await p.kill9();
  process.exit(exitCode);
}
