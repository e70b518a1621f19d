/**
 * Creates written behind, checked at random: a seeded run of creates (closed at once, or kept
 * open while other things happen), writes, renames of files and directories, unlinks, mkdirs and
 * listings on mount A, with pauses that let deferred creates go out by their timer. Checked
 * against a model all along: A's listings show every file it created, B's show every file A
 * closed (and maybe ones still open on A), and at the end the share holds exactly the model's
 * tree and contents, on every replica alike.
 * Real bricks and share server; needs root and /dev/fuse (skipped with the reason otherwise).
 * ABACA_FUZZ_STEPS raises the number of steps per seed for a longer run by hand.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { assertReplicasEqual, Cluster, rng, settled } from '../backends/replicated/helpers.ts';
import { fuseSkip, mount, tempDir, unmountAll } from './helpers.ts';

const skip = fuseSkip;
const STEPS = Number(process.env['ABACA_FUZZ_STEPS'] ?? 250);
let cl: Cluster;
let work = '';

before(async () => {
  if (skip) return;
  work = tempDir('abaca-fuse-deferred-random-');
  cl = await Cluster.start({ serverArgs: ['--no-auto-heal'] });
});
after(async () => {
  await unmountAll();
  await cl?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const seed of [71, 72]) {
  test(`seed ${seed}: deferred creates among renames, unlinks and listings agree with a model`, {
    skip,
    timeout: 240_000,
  }, async () => {
    const share = `dr${seed}`;
    const admin = await cl.client();
    await admin.createShare(share, 1 << 30, { access: [{ id: 'r1', to: '127.0.0.1', level: 'rw' }] });
    const loc = `abaca://127.0.0.1:${cl.server.port}/${share}`;
    // B caches no names or attributes: what it shows is the share as it is (A's view may lag
    // B's by up to its timeouts otherwise, as over NFS).
    const [a, b] = await Promise.all([
      mount(loc, path.join(work, `${share}-a`)),
      mount(loc, path.join(work, `${share}-b`), ['-o', 'entry_timeout=0,attr_timeout=0']),
    ]);
    const rand = rng(seed);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const dirs = new Set<string>(['']);
    /** Files by path: what they hold (closed) or what was written so far (open). */
    const files = new Map<string, string>();
    /** Files open on A: path -> descriptor. */
    const open = new Map<string, number>();
    const A = (p: string) => path.join(a.dir, p);
    const B = (p: string) => path.join(b.dir, p);
    const join = (d: string, n: string) => (d === '' ? n : `${d}/${n}`);
    const under = (p: string, d: string) => p === d || p.startsWith(`${d}/`);
    const parent = (p: string) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    const free = (): string | undefined => {
      const p = join(pick([...dirs]), pick(names));
      return dirs.has(p) || files.has(p) ? undefined : p;
    };
    const childrenOf = (d: string) =>
      [...dirs, ...files.keys()]
        .filter((p) => p !== '' && parent(p) === d)
        .map((p) => p.slice(d === '' ? 0 : d.length + 1))
        .sort();

    for (let step = 0; step < STEPS; step++) {
      const where = `seed ${seed} step ${step}`;
      const r = rand();
      if (r < 0.25) {
        const p = free();
        if (p === undefined) continue;
        const body = `${where}\n`.repeat(1 + Math.floor(rand() * 50));
        fs.writeFileSync(A(p), body);
        files.set(p, body);
      } else if (r < 0.4 && open.size < 6) {
        const p = free();
        if (p === undefined) continue;
        const fd = fs.openSync(A(p), 'w');
        const body = `${where} open\n`;
        fs.writeSync(fd, body);
        open.set(p, fd);
        files.set(p, body);
      } else if (r < 0.5 && open.size > 0) {
        const p = pick([...open.keys()]);
        const fd = open.get(p)!;
        if (rand() < 0.5) {
          const more = `more at ${step}\n`;
          fs.writeSync(fd, more);
          files.set(p, files.get(p)! + more);
        }
        fs.closeSync(fd);
        open.delete(p);
      } else if (r < 0.6) {
        const p = free();
        if (p === undefined) continue;
        fs.mkdirSync(A(p));
        dirs.add(p);
      } else if (r < 0.72) {
        // A rename of a file (closed or open) or of a whole directory, to a free name.
        const from = pick([...dirs, ...files.keys()].filter((p) => p !== ''));
        const to = free();
        if (from === undefined || to === undefined || under(to, from)) continue;
        fs.renameSync(A(from), A(to));
        const move = <T>(m: Map<string, T>) => {
          for (const [k, v] of [...m].filter(([k]) => under(k, from))) {
            m.delete(k);
            m.set(to + k.slice(from.length), v);
          }
        };
        for (const d of [...dirs].filter((d) => under(d, from))) {
          dirs.delete(d);
          dirs.add(to + d.slice(from.length));
        }
        move(files);
        move(open);
      } else if (r < 0.8) {
        const closed = [...files.keys()].filter((p) => !open.has(p));
        if (closed.length === 0) continue;
        const p = pick(closed);
        fs.unlinkSync(A(p));
        files.delete(p);
      } else if (r < 0.9) {
        // A's listing shows what it created, closed or not.
        const d = pick([...dirs]);
        assert.deepEqual(fs.readdirSync(A(d)).sort(), childrenOf(d), `${where}: A lists ${d || '/'}`);
      } else {
        // B's listing (never cached) shows every file A closed, and maybe the ones still open.
        const d = pick([...dirs]);
        const seen = new Set(fs.readdirSync(B(d)));
        for (const n of childrenOf(d)) {
          const p = join(d, n);
          if (!open.has(p)) assert.ok(seen.has(n), `${where}: B lists ${p}`);
        }
        for (const n of seen)
          assert.ok(childrenOf(d).includes(n), `${where}: B lists ${join(d, n)}, not in the model`);
      }
      if (rand() < 0.1) await sleep(Math.floor(rand() * 150));
    }
    for (const fd of open.values()) fs.closeSync(fd);
    open.clear();

    // The share holds the model's tree and contents, read through the library and through B.
    const c = await cl.client(share);
    const walk = async (d: string): Promise<string[]> => {
      const out: string[] = [];
      for (const e of await c.readdirEntries(d)) {
        const p = join(d, e.name);
        out.push(p);
        if (e.type === 'dir') out.push(...(await walk(p)));
      }
      return out;
    };
    const onServer = (await walk('')).sort();
    assert.deepEqual(onServer, [...dirs, ...files.keys()].filter((p) => p !== '').sort(), 'the tree');
    for (const [p, body] of files) {
      assert.equal((await c.readFile(p)).toString(), body, `the contents of ${p}`);
      assert.equal(fs.readFileSync(B(p), 'utf8'), body, `the contents of ${p} through B`);
    }
    await settled(admin, share);
    await assertReplicasEqual(cl, share);
  });
}
