/**
 * Two mounts of one share at once (ReadWriteMany): close-to-open coherence (B sees what A closed,
 * even with a long attribute timeout), directory changes within the entry timeout, appends from
 * processes on both mounts (none lost or torn), and a rename over a file the other mount is
 * reading (it reads the old file or gets ESTALE, never the new file's bytes).
 * Real bricks and share server; needs root and /dev/fuse (skipped with the reason otherwise).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Cluster } from '../backends/replicated/helpers.ts';
import { codeOf, errCode, fuseSkip, type Mount, mount, tempDir, unmountAll } from './helpers.ts';

const skip = fuseSkip;
let cl: Cluster;
let work = '';
let a: Mount;
let b: Mount;

before(async () => {
  if (skip) return;
  work = tempDir('abaca-fuse-two-');
  cl = await Cluster.start();
  const admin = await cl.client();
  await admin.createShare('rwx', 1024 * 1024 * 1024, {
    access: [{ id: 'r1', to: '127.0.0.1', level: 'rw' }],
  });
  const loc = `abaca://127.0.0.1:${cl.server.port}/rwx`;
  // B keeps attributes for 60 s: what it sees after an open comes from close-to-open, not expiry.
  [a, b] = await Promise.all([
    mount(loc, path.join(work, 'a')),
    mount(loc, path.join(work, 'b'), ['-o', 'attr_timeout=60']),
  ]);
});
after(async () => {
  await unmountAll();
  await cl?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const A = (...p: string[]) => path.join(a.dir, ...p);
const B = (...p: string[]) => path.join(b.dir, ...p);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('what A closed, B reads at its next open (close-to-open)', { skip, timeout: 60_000 }, async () => {
  fs.writeFileSync(A('doc'), 'version one');
  assert.equal(fs.readFileSync(B('doc'), 'utf8'), 'version one');
  assert.equal(fs.statSync(B('doc')).size, 11); // B now caches size 11 for 60 s
  fs.writeFileSync(A('doc'), 'version two is longer');
  assert.equal(fs.readFileSync(B('doc'), 'utf8'), 'version two is longer');
  fs.writeFileSync(A('doc'), 'v3');
  assert.equal(fs.readFileSync(B('doc'), 'utf8'), 'v3');
  // An fd A opened before B wrote sees B's data once A's attribute timeout (1 s) has passed.
  const fd = fs.openSync(A('doc'), 'r+');
  fs.writeFileSync(B('doc'), 'written on B');
  await sleep(1200);
  const buf = Buffer.alloc(64);
  const n = fs.readSync(fd, buf, 0, 64, 0);
  fs.closeSync(fd);
  assert.equal(buf.subarray(0, n).toString(), 'written on B');
});

test('B keeps cached pages across its opens only while the file is unchanged (keep_cache): a same-size change on A is read at the next open', {
  skip,
  timeout: 60_000,
}, async () => {
  const body = (tag: string) => `${tag.repeat(3000)}\n`; // several pages, the same size every time
  fs.writeFileSync(A('kept'), body('a'));
  assert.equal(fs.readFileSync(B('kept'), 'utf8'), body('a'));
  assert.equal(fs.readFileSync(B('kept'), 'utf8'), body('a')); // this open keeps B's pages
  for (const tag of ['b', 'c']) {
    fs.writeFileSync(A('kept'), body(tag)); // size unchanged: the kernel alone would not drop them
    assert.equal(fs.readFileSync(B('kept'), 'utf8'), body(tag), `B reads A's version ${tag}`);
    assert.equal(fs.readFileSync(B('kept'), 'utf8'), body(tag));
  }
  // B's own change, then A's, between two of B's opens.
  fs.writeFileSync(B('kept'), body('d'));
  assert.equal(fs.readFileSync(B('kept'), 'utf8'), body('d'));
  fs.writeFileSync(A('kept'), body('e'));
  assert.equal(fs.readFileSync(B('kept'), 'utf8'), body('e'));
});

test('directory changes on A show up on B within the entry timeout', { skip, timeout: 60_000 }, async () => {
  fs.mkdirSync(A('dir'));
  fs.writeFileSync(A('dir', 'x'), 'x');
  assert.deepEqual(fs.readdirSync(B('dir')), ['x']); // listings are never cached
  assert.equal(fs.readFileSync(B('dir', 'x'), 'utf8'), 'x');
  fs.renameSync(A('dir', 'x'), A('dir', 'y'));
  fs.unlinkSync(A('dir', 'y'));
  await sleep(1200); // entry timeout 1 s
  assert.equal(
    codeOf(() => fs.statSync(B('dir', 'x'))),
    'ENOENT',
  );
  assert.deepEqual(fs.readdirSync(B('dir')), []);
  fs.rmdirSync(B('dir'));
  await sleep(1200);
  assert.equal(fs.existsSync(A('dir')), false);
});

test('a directory A renames: B opens the files it had cached below it at their new names', {
  skip,
  timeout: 60_000,
}, async () => {
  fs.mkdirSync(A('before'));
  fs.writeFileSync(A('before', 'f'), 'moves with its directory');
  assert.equal(fs.readFileSync(B('before', 'f'), 'utf8'), 'moves with its directory');
  fs.renameSync(A('before'), A('after'));
  // B looks up the directory's new name and finds the directory it knows; its cached names
  // below it come along, and so must the paths B sends to the server for them.
  assert.equal(fs.readFileSync(B('after', 'f'), 'utf8'), 'moves with its directory');
  fs.writeFileSync(B('after', 'f'), 'written on B');
  assert.equal(fs.readFileSync(A('after', 'f'), 'utf8'), 'written on B');
});

/** A process appending `count` records of 100 bytes through one O_APPEND descriptor. */
function appender(file: string, tag: string, count: number): Promise<void> {
  const script = `
    const fs = require('node:fs');
    const fd = fs.openSync(${JSON.stringify(file)}, 'a');
    for (let i = 0; i < ${count}; i++) {
      const rec = (${JSON.stringify(tag)} + ' ' + i + ' ').padEnd(99, '.') + '\\n';
      fs.writeSync(fd, rec);
    }
    fs.closeSync(fd);`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${tag}: exit ${code}: ${err}`))));
  });
}

test('appends from 2 processes on each mount: no record lost or torn', {
  skip,
  timeout: 90_000,
}, async () => {
  fs.writeFileSync(A('log'), '');
  const count = 150;
  const writers = [
    appender(A('log'), 'a1', count),
    appender(A('log'), 'a2', count),
    appender(B('log'), 'b1', count),
    appender(B('log'), 'b2', count),
  ];
  await Promise.all(writers);
  for (const view of [A('log'), B('log')]) {
    const text = fs.readFileSync(view, 'utf8');
    assert.equal(text.length, 4 * count * 100);
    const lines = text.split('\n').slice(0, -1);
    const seen = new Map<string, number>();
    for (const line of lines) {
      assert.match(line, /^(a1|a2|b1|b2) \d+ \.+$/, `torn record: ${JSON.stringify(line.slice(0, 40))}`);
      assert.equal(line.length, 99);
      const [tag, i] = line.split(' ');
      const k = `${tag}:${i}`;
      seen.set(k, (seen.get(k) ?? 0) + 1);
    }
    assert.equal(seen.size, 4 * count);
    assert.ok([...seen.values()].every((v) => v === 1));
    // Each writer's records in its own order.
    for (const tag of ['a1', 'a2', 'b1', 'b2']) {
      const mine = lines.filter((l) => l.startsWith(`${tag} `)).map((l) => Number(l.split(' ')[1]));
      assert.deepEqual(
        mine,
        mine.slice().sort((x, y) => x - y),
      );
    }
  }
});

test('rename over a file B is reading: B reads the old bytes or ESTALE, then the new file', {
  skip,
  timeout: 60_000,
}, async () => {
  const old = Buffer.alloc(4 * 1024 * 1024, 'o');
  const fresh = Buffer.alloc(4 * 1024 * 1024, 'n');
  fs.writeFileSync(A('target'), old);
  const fd = fs.openSync(B('target'), 'r');
  const buf = Buffer.alloc(256 * 1024);
  fs.readSync(fd, buf, 0, buf.length, 0);
  assert.ok(buf.every((c) => c === 0x6f));
  fs.writeFileSync(A('target.tmp'), fresh);
  fs.renameSync(A('target.tmp'), A('target'));
  let stale = 0;
  for (let off = buf.length; off < old.length; off += buf.length) {
    try {
      const n = fs.readSync(fd, buf, 0, buf.length, off);
      assert.ok(
        buf.subarray(0, n).every((c) => c === 0x6f),
        `B read the new file's bytes at ${off} through its old descriptor`,
      );
    } catch (err) {
      assert.equal(errCode(err), 'ESTALE');
      stale++;
    }
  }
  fs.closeSync(fd);
  // Pages B had read ahead may still be served from its cache; past them the server says ESTALE.
  assert.ok(stale > 0, 'reads past the cached pages are refused');
  // A new open on B finds the new file (within B's entry timeout too: the open revalidates).
  assert.ok(fs.readFileSync(B('target')).equals(fresh));
});

test('a file A unlinks while B has it open: B gets ESTALE (by close at the latest), not another file', {
  skip,
  timeout: 60_000,
}, async () => {
  fs.writeFileSync(A('gone'), 'data');
  const fd = fs.openSync(B('gone'), 'r+');
  fs.unlinkSync(A('gone'));
  fs.writeFileSync(A('gone'), 'a new file under the old name');
  // Written behind: the refusal comes from the write itself or, at the latest, from close.
  const write = codeOf(() => fs.writeSync(fd, 'X', 0));
  const close = codeOf(() => fs.closeSync(fd));
  assert.deepEqual(
    [write, close].filter((c) => c !== 'ok'),
    ['ESTALE'],
  );
  assert.equal(fs.readFileSync(A('gone'), 'utf8'), 'a new file under the old name');
});
