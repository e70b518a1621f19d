/**
 * The share server answers "no such name" without a read when it knows: a name in a directory it
 * made, that no mutation issued since has named (the lookup before each create of `tar x` or
 * `cp -r`). Checked two ways: seeded random namespace changes with every lookup compared against a
 * model of the tree (and the replicas on disk against the model at the end), and with every brick
 * paused, when only an answer that needs no brick can come back at all.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { assertReplicasEqual, Cluster, replicaStates, rng, settled } from './helpers.ts';

let cl: Cluster;

before(async () => {
  cl = await Cluster.start({ serverArgs: ['--no-auto-heal'] });
});
after(async () => {
  await cl?.close();
});

test('lookups agree with a model of the tree through random creates, renames and removals', async () => {
  const admin = await cl.client();
  for (const seed of [11, 12, 13]) {
    const share = `la${seed}`;
    await admin.createShare(share, 1 << 30, {});
    const c = await cl.client(share);
    const rand = rng(seed);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const dirs = new Set<string>(['']);
    const files = new Set<string>(); // files and symlinks
    const inode = new Map<string, number>(); // which file each name is (hard links share one)
    const names = ['a', 'b', 'c', 'd', 'e'];
    const join = (d: string, n: string) => (d === '' ? n : `${d}/${n}`);
    const taken = (p: string) => dirs.has(p) || files.has(p);
    const under = (p: string, d: string) => p === d || p.startsWith(`${d}/`);
    const freshName = (): string | undefined => {
      const p = join(pick([...dirs]), pick(names));
      return taken(p) ? undefined : p;
    };
    for (let step = 0; step < 400; step++) {
      const r = rand();
      const where = `seed ${seed} step ${step}`;
      const log = (m: string) => process.env['LA_DEBUG'] && console.log(where, m);
      if (r < 0.2) {
        const p = freshName();
        if (p === undefined) continue;
        log(`mkdir ${p}`);
        await c.mkdir(p);
        dirs.add(p);
      } else if (r < 0.45) {
        const p = freshName();
        if (p === undefined) continue;
        log(`create ${p}`);
        if (rand() < 0.5) await c.create(p);
        else await c.createWith(p, Buffer.from(where));
        files.add(p);
        inode.set(p, step);
      } else if (r < 0.55 && files.size > 0) {
        const p = freshName();
        if (p === undefined) continue;
        const existing = pick([...files]);
        if (rand() < 0.5) {
          log(`link ${existing} ${p}`);
          await c.link(existing, p);
          inode.set(p, inode.get(existing)!);
        } else {
          log(`symlink ${p}`);
          await c.symlink('target', p);
          inode.set(p, step);
        }
        files.add(p);
      } else if (r < 0.65 && files.size > 0) {
        const p = pick([...files]);
        log(`unlink ${p}`);
        await c.unlink(p);
        files.delete(p);
        inode.delete(p);
      } else if (r < 0.72) {
        const empty = [...dirs].filter(
          (d) => d !== '' && ![...dirs, ...files].some((q) => q.startsWith(`${d}/`)),
        );
        if (empty.length === 0) continue;
        const d = pick(empty);
        log(`rmdir ${d}`);
        await c.rmdir(d);
        dirs.delete(d);
      } else if (r < 0.9) {
        // A rename of a file or of a whole directory to a name that is free (not below itself).
        const from = pick([...dirs, ...files].filter((p) => p !== ''));
        if (from === undefined) continue;
        const to = freshName();
        if (to === undefined || under(to, from)) continue;
        log(`rename ${from} ${to}`);
        await c.rename(from, to);
        const move = (set: Set<string>) => {
          for (const q of [...set].filter((x) => under(x, from))) {
            set.delete(q);
            set.add(to + q.slice(from.length));
            if (inode.has(q)) {
              inode.set(to + q.slice(from.length), inode.get(q)!);
              inode.delete(q);
            }
          }
        };
        move(dirs);
        move(files);
      } else if (files.size > 0) {
        // A rename that replaces a file.
        const from = pick([...files]);
        const to = pick([...files]);
        if (from === to) continue;
        log(`rename-over ${from} ${to}`);
        await c.rename(from, to);
        // Two names of one file: rename does nothing (POSIX).
        if (inode.get(from) !== inode.get(to)) {
          files.delete(from);
          inode.set(to, inode.get(from)!);
          inode.delete(from);
        }
      }
      // Every name that could be asked for right now: each directory's children from the alphabet.
      for (let k = 0; k < 6; k++) {
        const p = join(pick([...dirs]), pick(names));
        assert.equal(await c.exists(p), taken(p), `${where}: lookup of ${p}`);
      }
    }
    // The replicas hold exactly the model's tree.
    await settled(admin, share);
    await assertReplicasEqual(cl, share);
    const onDisk = [...replicaStates(cl, share)[0]!.entries.keys()].filter((p) => p !== '').sort();
    const model = [...dirs, ...files].filter((p) => p !== '').sort();
    assert.deepEqual(onDisk, model, `seed ${seed}: the replica's tree is the model's`);
  }
});

test('a name in a directory this server made is known missing without asking a brick', async () => {
  const admin = await cl.client();
  await admin.createShare('paused', 1 << 30, {});
  const c = await cl.client('paused');
  await c.mkdir('made');
  await c.createWith('made/f1', Buffer.from('one'));
  await c.rename('made/f1', 'made/f2');
  for (const b of cl.bricks) b.signal('SIGSTOP');
  try {
    const t0 = Date.now();
    // Never named since the mkdir: answered at once, with every brick stopped.
    for (const n of ['f3', 'g', 'sub']) assert.equal(await c.exists(`made/${n}`), false);
    assert.ok(Date.now() - t0 < 1000, `answered in ${Date.now() - t0} ms`);
    // A name given since the mkdir (even one renamed away again) needs a read: no answer while
    // the bricks are stopped.
    const pending = c.exists('made/f2');
    const answered = await Promise.race([
      pending.then(() => true),
      new Promise((r) => setTimeout(() => r(false), 500)),
    ]);
    assert.equal(answered, false, 'a name given since the mkdir was answered without a brick');
    for (const b of cl.bricks) b.signal('SIGCONT');
    assert.equal(await pending, true);
  } finally {
    for (const b of cl.bricks) b.signal('SIGCONT');
  }
});
