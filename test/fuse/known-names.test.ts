/**
 * Lookups answered by the mount (docs/mount.md, "Lookups answered by the mount"): in a directory a
 * mount made and alone changed, the lookup of a name it did not put there is answered ENOENT
 * without the share server, the way `tar x` or `cp -r` into a new directory looks up every name
 * before creating it. Shown here:
 * - such lookups are counted by the mount (SIGUSR1), those of existing names and of names in a
 *   directory it did not make are not;
 * - a name another mount makes shows up within the attribute timeout, and at once after this
 *   mount's next change in that directory (whose answer says it is no longer the only one);
 * - seeded random changes (creates written behind, unlinks, renames within and between such
 *   directories, links, symlinks, subdirectories) never make the mount call a name missing that
 *   exists, or the other way round; the bricks' own trees agree at the end.
 * Real bricks and share server; needs root and /dev/fuse (skipped with the reason otherwise).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Cluster, rng, settled } from '../backends/replicated/helpers.ts';
import { counterLine, fuseSkip, type Mount, mount, tempDir, unmountAll } from './helpers.ts';

const skip = fuseSkip;
const SEED = Number(process.env.ABACA_TEST_SEED ?? 7127);
const STEPS = Number(process.env.ABACA_KNOWN_NAMES_STEPS ?? 300);
/**
 * A's attribute timeout (s): long enough that only a change's answer can end a local miss early.
 * Its entry timeout is 0, so that the kernel asks the mount about every name it checks.
 */
const A_ATTR_S = 4;

let cl: Cluster;
let work = '';
let a: Mount;
let b: Mount;

before(async () => {
  if (skip) return;
  work = tempDir('abaca-fuse-known-');
  cl = await Cluster.start();
  const admin = await cl.client();
  await admin.createShare('kn', 256 * 1024 * 1024, {
    access: [{ id: 'r1', to: '127.0.0.1', level: 'rw' }],
  });
  const loc = `abaca://127.0.0.1:${cl.server.port}/kn`;
  [a, b] = await Promise.all([
    mount(loc, path.join(work, 'a'), ['-o', `attr_timeout=${A_ATTR_S},entry_timeout=0`]),
    mount(loc, path.join(work, 'b')),
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

/** The mount's count of lookups it answered itself (SIGUSR1). */
async function answeredHere(m: Mount): Promise<number> {
  const line = await counterLine(m, 'lookups answered by the mount: ');
  return Number(/lookups answered by the mount: (\d+)/.exec(line)![1]);
}

test('missing names in a directory this mount made are answered without the share server', {
  skip,
  timeout: 60_000,
}, async () => {
  fs.mkdirSync(A('made'));
  const before = await answeredHere(a);
  // The lookups before 50 creates, and 50 of names never made.
  for (let i = 0; i < 50; i++) fs.writeFileSync(A('made', `f${i}`), `file ${i}`);
  for (let i = 0; i < 50; i++) assert.equal(fs.existsSync(A('made', `never${i}`)), false);
  const answered = (await answeredHere(a)) - before;
  assert.ok(answered >= 100, `only ${answered} of 100 lookups of missing names answered by the mount`);
  // Names that exist are asked about (entry timeout 0 here: the kernel asks every time).
  for (let i = 0; i < 50; i++) assert.equal(fs.readFileSync(A('made', `f${i}`), 'utf8'), `file ${i}`);
  assert.equal((await answeredHere(a)) - before, answered);
  // In a directory it did not make (the share's root), a missing name is the server's to say.
  assert.equal(fs.existsSync(A('nowhere')), false);
  assert.equal((await answeredHere(a)) - before, answered);
});

test("another mount's new name shows within the attribute timeout, and at once after this mount's next change there", {
  skip,
  timeout: 60_000,
}, async () => {
  fs.mkdirSync(A('shared'));
  fs.writeFileSync(A('shared', 'a1'), 'A');
  fs.writeFileSync(B('shared', 'b1'), 'B');
  // Seen within A's attribute timeout at the latest.
  const deadline = Date.now() + A_ATTR_S * 1000 + 500;
  while (!fs.existsSync(A('shared', 'b1'))) {
    assert.ok(Date.now() < deadline, `b1 not seen on A within ${A_ATTR_S} s`);
    await sleep(100);
  }
  assert.equal(fs.readFileSync(A('shared', 'b1'), 'utf8'), 'B');

  fs.mkdirSync(A('shared2'));
  fs.writeFileSync(A('shared2', 'a1'), 'A');
  assert.equal(fs.existsSync(A('shared2', 'b2')), false);
  fs.writeFileSync(B('shared2', 'b2'), 'B');
  // A's next change in the directory is answered "not only yours": b2 is asked about at once.
  fs.writeFileSync(A('shared2', 'a2'), 'A');
  assert.equal(fs.existsSync(A('shared2', 'b2')), true, 'b2 seen right after A changed the directory');
});

test('seeded random changes: the mount never calls an existing name missing, nor a missing one existing', {
  skip,
  timeout: 180_000,
}, async () => {
  const rand = rng(SEED);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const dirs = ['r0', 'r1', 'r1/sub'];
  for (const d of dirs) fs.mkdirSync(A(d));
  // The model: every name in each made directory (files, links, symlinks, directories).
  const model = new Map<string, Set<string>>(dirs.map((d) => [d, new Set<string>()]));
  model.get('r1')!.add('sub');
  const names = Array.from({ length: 12 }, (_, i) => `n${i}`);
  const where = () => pick(dirs);
  const files = () =>
    [...model.entries()].flatMap(([d, s]) =>
      [...s].filter((n) => !dirs.includes(`${d}/${n}`)).map((n) => `${d}/${n}`),
    );
  for (let step = 0; step < STEPS; step++) {
    const op = Math.floor(rand() * 6);
    const d = where();
    const n = pick(names);
    const rel = `${d}/${n}`;
    const have = model.get(d)!;
    try {
      if (op <= 1 && !have.has(n)) {
        fs.writeFileSync(A(rel), `data ${step}`);
        have.add(n);
      } else if (op === 2 && files().length > 0) {
        const f = pick(files());
        fs.unlinkSync(A(f));
        model.get(path.dirname(f))!.delete(path.basename(f));
      } else if (op === 3 && files().length > 0) {
        const f = pick(files());
        const to = `${where()}/${pick(names)}`;
        if (dirs.includes(to)) continue;
        const sameFile = fs.existsSync(A(to)) && fs.lstatSync(A(to)).ino === fs.lstatSync(A(f)).ino;
        fs.renameSync(A(f), A(to));
        // A rename between two names of one file leaves both (POSIX).
        if (!sameFile) model.get(path.dirname(f))!.delete(path.basename(f));
        model.get(path.dirname(to))!.add(path.basename(to));
      } else if (op === 4 && files().length > 0 && !have.has(n)) {
        fs.linkSync(A(pick(files())), A(rel));
        have.add(n);
      } else if (op === 5 && !have.has(n)) {
        fs.symlinkSync('target', A(rel));
        have.add(n);
      }
    } catch (err) {
      assert.fail(`step ${step} (seed ${SEED}): ${(err as Error).message}`);
    }
    // Now and then the kernel forgets the names it holds (FORGET): the mount must then know them itself.
    if (rand() < 0.3) fs.writeFileSync('/proc/sys/vm/drop_caches', '2');
    // Every candidate name in the directory just changed, and in one other, as the model says.
    for (const dd of new Set([d, where()]))
      for (const nn of names) {
        const expected = model.get(dd)!.has(nn);
        let exists = true;
        try {
          fs.lstatSync(A(dd, nn));
        } catch (err) {
          assert.equal((err as NodeJS.ErrnoException).code, 'ENOENT');
          exists = false;
        }
        assert.equal(
          exists,
          expected,
          `step ${step} (seed ${SEED}): ${dd}/${nn} ${expected ? 'exists' : 'is missing'}`,
        );
      }
  }
  // The bricks hold what the model says, every replica.
  const admin = await cl.client();
  await settled(admin, 'kn');
  for (let i = 0; i < cl.brickDirs.length; i++)
    for (const d of dirs) {
      const onBrick = fs.readdirSync(path.join(cl.shareDataDir(i, 'kn'), d)).sort();
      assert.deepEqual(onBrick, [...model.get(d)!].sort(), `replica ${i}, ${d}`);
    }
});
