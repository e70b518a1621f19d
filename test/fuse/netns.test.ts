/**
 * The ip rule decides who mounts: a share server on a veth pair's address, mount A from this
 * network namespace (source address the host end) and mount B from a namespace of its own (the
 * other end). A rule for A's address only: B is refused; an ro rule for B's address: B mounts
 * read-only and reads what A wrote. Needs root, /dev/fuse, ip netns and nsenter.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ReplicatedClient } from '../../backends/replicated/client/client.ts';
import type { Proc } from '../../backends/replicated/processes.ts';
import { Cluster } from '../backends/replicated/helpers.ts';
import { ABACA, codeOf, mount, netnsSkip, tempDir, unmountAll } from './helpers.ts';

const skip = netnsSkip();
const tag = `abm${process.pid % 100000}`;
const ns = `${tag}n`;
const vethHost = `${tag}h`;
const vethNs = `${tag}v`;
const oct = 1 + (process.pid % 250);
const hostAddr = `10.214.${oct}.1`;
const nsAddr = `10.214.${oct}.2`;
let cl: Cluster;
let server: Proc;
let admin: ReplicatedClient;
let work = '';

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });

before(async () => {
  if (skip) return;
  work = tempDir('abaca-fuse-netns-');
  ip('netns', 'add', ns);
  ip('link', 'add', vethHost, 'type', 'veth', 'peer', 'name', vethNs);
  ip('link', 'set', vethNs, 'netns', ns);
  ip('addr', 'add', `${hostAddr}/30`, 'dev', vethHost);
  ip('link', 'set', vethHost, 'up');
  ip('-n', ns, 'addr', 'add', `${nsAddr}/30`, 'dev', vethNs);
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  ip('-n', ns, 'link', 'set', vethNs, 'up');
  cl = await Cluster.start();
  const first = await cl.client();
  await first.createShare('ns', 1 << 30, { access: [{ id: 'r1', to: hostAddr, level: 'rw' }] });
  // The share served from the veth's host address (this server takes it over on first use).
  server = await cl.startServer(['--host', hostAddr]);
  admin = await ReplicatedClient.connect({ host: hostAddr, port: server.port, adminToken: cl.adminToken });
});
after(async () => {
  await unmountAll();
  admin?.close();
  await cl?.close();
  if (!skip) {
    for (const pid of (spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '')
      .split('\n')
      .filter(Boolean))
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {}
    spawnSync('ip', ['netns', 'del', ns]);
    spawnSync('ip', ['link', 'del', vethHost]);
  }
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('mounts from two addresses: the ip rules decide which may mount, and how', {
  skip,
  timeout: 90_000,
}, async () => {
  const loc = `abaca://${hostAddr}:${server.port}/ns`;
  const inNs = ['nsenter', `--net=/run/netns/${ns}`];
  const a = await mount(loc, path.join(work, 'a'));
  fs.writeFileSync(path.join(a.dir, 'from-a'), 'written by A');

  // B's address has no rule.
  const dirB = path.join(work, 'b');
  fs.mkdirSync(dirB);
  const refused = spawnSync(
    inNs[0]!,
    [...inNs.slice(1), process.execPath, ABACA, 'mount', loc, dirB, '--foreground'],
    { encoding: 'utf8' },
  );
  assert.equal(refused.status, 1, refused.stderr);
  assert.match(
    refused.stderr,
    new RegExp(`no access rule of share ns allows ${nsAddr.replace(/\./g, '\\.')}`),
  );

  await admin.setAccess('ns', [
    { id: 'r1', to: hostAddr, level: 'rw' },
    { id: 'r2', to: `${nsAddr}/32`, level: 'ro' },
  ]);
  const b = await mount(loc, dirB, [], {}, inNs);
  assert.match(b.output(), /\(read-only\)/);
  assert.equal(fs.readFileSync(path.join(b.dir, 'from-a'), 'utf8'), 'written by A');
  assert.equal(
    codeOf(() => fs.writeFileSync(path.join(b.dir, 'from-b'), 'x')),
    'EROFS',
  );
  // A's rule removed: A loses access, B keeps reading.
  await admin.setAccess('ns', [{ id: 'r2', to: `${nsAddr}/32`, level: 'ro' }]);
  assert.equal(
    codeOf(() => fs.writeFileSync(path.join(a.dir, 'again'), 'x')),
    'EACCES',
  );
  assert.equal(fs.readFileSync(path.join(b.dir, 'from-a'), 'utf8'), 'written by A');
});
