/**
 * Access on the data path through `abaca mount`: no rule for this address → the mount is refused
 * with the reason; a read-only mount and a read-only rule give EROFS; a rule removed while mounted
 * gives EACCES from the next operation; a rule turned read-only while mounted gives EROFS.
 * Real bricks and share server; needs root and /dev/fuse (skipped with the reason otherwise).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { ReplicatedClient } from '../../backends/replicated/client/client.ts';
import { Cluster } from '../backends/replicated/helpers.ts';
import { ABACA, abaca, codeOf, fuseSkip, mount, tempDir, unmountAll } from './helpers.ts';

const skip = fuseSkip;
let cl: Cluster;
let admin: ReplicatedClient;
let work = '';

before(async () => {
  if (skip) return;
  work = tempDir('abaca-fuse-access-');
  cl = await Cluster.start();
  admin = await cl.client();
});
after(async () => {
  await unmountAll();
  await cl?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const loc = (share: string) => `abaca://127.0.0.1:${cl.server.port}/${share}`;
const rw = [{ id: 'r1', to: '127.0.0.1', level: 'rw' as const }];
const ro = [{ id: 'r1', to: '127.0.0.1', level: 'ro' as const }];

test('no rule for this address: the mount is refused, saying why', { skip, timeout: 60_000 }, async () => {
  await admin.createShare('closed', 1 << 30, { access: [{ id: 'r9', to: '10.9.9.9', level: 'rw' }] });
  const dir = path.join(work, 'closed');
  fs.mkdirSync(dir);
  const r = await abaca(['mount', loc('closed'), dir, '--foreground']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /connecting to abaca:\/\/127\.0\.0\.1:\d+\/closed/);
  assert.match(
    r.stderr,
    /Cannot mount .*closed: no access rule of share closed allows 127\.0\.0\.1 \(add one: abaca share access create/,
  );
  assert.equal(fs.readdirSync(dir).length, 0);
  const missing = await abaca(['mount', loc('nosuch'), dir, '--foreground']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Cannot mount .*nosuch: .*does not have share nosuch/);
  const nowhere = await abaca(['mount', 'abaca://127.0.0.1:1/x', dir, '--foreground']);
  assert.equal(nowhere.code, 1);
  assert.match(nowhere.stderr, /cannot reach the share server at 127\.0\.0\.1:1/);
  const notDir = await abaca(['mount', loc('closed'), path.join(work, 'nope')]);
  assert.match(notDir.stderr, /is not a directory/);
  const badOpt = await abaca(['mount', loc('closed'), dir, '-o', 'frobnicate']);
  assert.equal(badOpt.code, 2);
  assert.match(badOpt.stderr, /unknown mount option 'frobnicate'/);
});

test('--ro and an ro rule give EROFS; reads work', { skip, timeout: 60_000 }, async () => {
  await admin.createShare('shared', 1 << 30, { access: rw });
  const c = await cl.client('shared');
  await c.writeFile('seed', 'seed data');
  const m = await mount(loc('shared'), path.join(work, 'ro-mount'), ['--ro']);
  assert.match(m.output(), /\(read-only\)/);
  assert.equal(fs.readFileSync(path.join(m.dir, 'seed'), 'utf8'), 'seed data');
  assert.equal(
    codeOf(() => fs.writeFileSync(path.join(m.dir, 'new'), 'x')),
    'EROFS',
  );
  assert.equal(
    codeOf(() => fs.appendFileSync(path.join(m.dir, 'seed'), 'x')),
    'EROFS',
  );
  assert.equal(
    codeOf(() => fs.mkdirSync(path.join(m.dir, 'd'))),
    'EROFS',
  );

  await admin.createShare('rorule', 1 << 30, { access: rw });
  const c2 = await cl.client('rorule');
  await c2.writeFile('seed', 'ro rule');
  await admin.setAccess('rorule', ro);
  const r = await mount(loc('rorule'), path.join(work, 'ro-rule'));
  assert.match(r.output(), /\(read-only\)/, 'an ro rule mounts read-only');
  assert.equal(fs.readFileSync(path.join(r.dir, 'seed'), 'utf8'), 'ro rule');
  assert.equal(
    codeOf(() => fs.writeFileSync(path.join(r.dir, 'seed'), 'x')),
    'EROFS',
  );
});

test('rules changed while mounted: ro → EROFS, removed → EACCES, back → works', {
  skip,
  timeout: 60_000,
}, async () => {
  await admin.createShare('live', 1 << 30, { access: rw });
  const m = await mount(loc('live'), path.join(work, 'live'));
  const f = path.join(m.dir, 'f');
  fs.writeFileSync(f, 'one');
  await admin.setAccess('live', ro);
  assert.equal(
    codeOf(() => fs.writeFileSync(f, 'two')),
    'EROFS',
  );
  assert.equal(fs.readFileSync(f, 'utf8'), 'one');
  await admin.setAccess('live', []);
  assert.equal(
    codeOf(() => fs.readFileSync(f)),
    'EACCES',
  );
  assert.equal(
    codeOf(() => fs.writeFileSync(path.join(m.dir, 'g'), 'x')),
    'EACCES',
  );
  await admin.setAccess('live', rw);
  fs.writeFileSync(f, 'three');
  assert.equal(fs.readFileSync(f, 'utf8'), 'three');
});

test('mount.abaca (what mount -t abaca runs) mounts with its -o options and returns', {
  skip,
  timeout: 60_000,
}, async () => {
  const dir = path.join(work, 'helper');
  fs.mkdirSync(dir);
  const helper = path.join(path.dirname(ABACA), 'mount.abaca');
  const r = spawnSync(helper, [loc('shared'), dir, '-o', 'ro,_netdev,attr_timeout=2'], { encoding: 'utf8' });
  try {
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /mounted .* at .*helper \(read-only\); attribute timeout 2 s/);
    const line = fs
      .readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[1] === dir);
    assert.match(line ?? '', /^abaca:\/\/127\.0\.0\.1:\d+\/shared \S+ fuse\.abaca ro,/);
    assert.equal(fs.readFileSync(path.join(dir, 'seed'), 'utf8'), 'seed data');
  } finally {
    const u = await abaca(['umount', dir]);
    assert.equal(u.code, 0, u.stderr);
  }
});
