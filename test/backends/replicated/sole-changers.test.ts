/**
 * SoleChangers (server/sole-changers.ts): a connection is told it alone changed a directory only
 * when every change of that directory's entries since its mkdir was its own. Seeded random
 * sequences of changes by three connections (and the server's own, e.g. heal's) are checked
 * against a log of every change: the flags may say "not only yours" more often than needed
 * (after a rename, a failed change, a clear), never "only yours" wrongly.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MutationKind } from '../../../backends/replicated/protocol/opcodes.ts';
import { isUnder, parentOf } from '../../../backends/replicated/protocol/paths.ts';
import { SoleChangers } from '../../../backends/replicated/server/sole-changers.ts';
import { rng } from './helpers.ts';

const ENTRY_KINDS = new Set<MutationKind>(['create', 'mkdir', 'symlink', 'unlink', 'rmdir']);

interface Logged {
  kind: MutationKind;
  p: string;
  np?: string;
  by: unknown;
}

/** Whether `by` made `dir` (the last mkdir of that path) and every entry change in it since is its own. */
function trulySole(log: Logged[], dir: string, by: unknown): boolean {
  let made = -1;
  for (let i = log.length - 1; i >= 0; i--) {
    const e = log[i]!;
    if (e.kind === 'mkdir' && e.p === dir) {
      made = i;
      break;
    }
  }
  if (made < 0 || log[made]!.by !== by) return false;
  for (const e of log.slice(made + 1)) {
    // Writes, truncates and attribute changes leave the entries alone.
    const dirs =
      e.kind === 'rename'
        ? [parentOf(e.np!), parentOf(e.p)]
        : e.kind === 'link'
          ? [parentOf(e.np!)]
          : ENTRY_KINDS.has(e.kind)
            ? [parentOf(e.p)]
            : [];
    if (dirs.includes(dir) && e.by !== by) return false;
    // The directory itself removed or moved away: whatever is at its path now is not the one made.
    if (
      (e.kind === 'rmdir' && e.p === dir) ||
      (e.kind === 'rename' && (isUnder(dir, e.p) || isUnder(dir, e.np!)))
    )
      return false;
  }
  return true;
}

test('a connection is told it alone changed a directory only when it did', () => {
  const seeds = Number(process.env.ABACA_SOLE_SEEDS ?? 40);
  const conns: unknown[] = [{ c: 'x' }, { c: 'y' }, { c: 'z' }, undefined];
  const dirs = ['a', 'a/b', 'c', 'c/d', 'a/b/e'];
  const names = ['f', 'g', 'h'];
  let soleSeen = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const rand = rng(seed);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const s = new SoleChangers();
    let log: Logged[] = [];
    const made = new Set<string>();
    for (let step = 0; step < 400; step++) {
      // Mostly one connection at a time, as a mount working in its own directories.
      const by = rand() < 0.8 ? conns[0] : pick(conns);
      const kinds: MutationKind[] = [
        'create',
        'mkdir',
        'unlink',
        'rmdir',
        'rename',
        'link',
        'symlink',
        'write',
      ];
      const kind = pick(kinds);
      const dir = pick(dirs);
      // Renames mostly of files, sometimes of a directory (with what was made below it).
      const p =
        kind === 'mkdir' || kind === 'rmdir' || (kind === 'rename' && rand() < 0.2)
          ? dir
          : `${dir}/${pick(names)}`;
      const np = kind === 'rename' || kind === 'link' ? `${pick(dirs)}/${pick(names)}` : undefined;
      s.issued(kind, p, np, by);
      // A mkdir where a directory is fails, and is told so; other changes may fail too.
      const fails = (kind === 'mkdir' && made.has(p)) || rand() < 0.05;
      if (fails) s.failed(kind, p);
      else {
        log.push({ kind, p, np, by });
        if (kind === 'mkdir') made.add(p);
        if (kind === 'rmdir') made.delete(p);
      }
      // Heal's forgetting.
      if (rand() < 0.02) {
        s.clear();
        log = [];
      }
      const f = s.flags(kind, p, np, by);
      const targetDir = np !== undefined ? parentOf(np) : parentOf(p);
      if (f['dirSole']) {
        soleSeen++;
        assert.ok(
          trulySole(log, targetDir, by),
          `seed ${seed} step ${step}: ${kind} ${p} said sole of ${targetDir}`,
        );
      }
      if (f['fromDirSole'])
        assert.ok(
          trulySole(log, parentOf(p), by),
          `seed ${seed} step ${step}: ${kind} said sole of ${parentOf(p)}`,
        );
      if (f['sole']) assert.ok(trulySole(log, p, by), `seed ${seed} step ${step}: mkdir ${p} said sole`);
    }
  }
  assert.ok(soleSeen > 100, `the flags said "only yours" ${soleSeen} times: the test exercises too little`);
});

test('a directory made and changed by one connection stays its own until another changes it', () => {
  const s = new SoleChangers();
  const x = {};
  const y = {};
  s.issued('mkdir', 'd', undefined, x);
  assert.deepEqual(s.flags('mkdir', 'd', undefined, x), { sole: true });
  s.issued('create', 'd/f', undefined, x);
  assert.deepEqual(s.flags('create', 'd/f', undefined, x), { dirSole: true });
  s.issued('write', 'd/f', undefined, y); // data, not entries
  s.issued('rename', 'd/f', 'd/g', x);
  assert.deepEqual(s.flags('rename', 'd/f', 'd/g', x), { dirSole: true });
  s.issued('unlink', 'd/g', undefined, y);
  assert.deepEqual(s.flags('create', 'd/h', undefined, x), {});
  // A failed mkdir made nothing.
  s.issued('mkdir', 'e', undefined, x);
  s.failed('mkdir', 'e');
  assert.deepEqual(s.flags('mkdir', 'e', undefined, x), {});
  // A rename moves a made directory away: its new path is not known as made.
  s.issued('mkdir', 'm', undefined, x);
  s.issued('rename', 'm', 'n', x);
  assert.deepEqual(s.flags('create', 'n/f', undefined, x), {});
  assert.equal(s.size, 0);
  // A file's rename keeps the directories made elsewhere; a directory's forgets those below it.
  for (const d of ['p', 'p/q', 'p/q/r', 'z']) s.issued('mkdir', d, undefined, x);
  s.issued('rename', 'z/file', 'z/other', x);
  assert.equal(s.size, 4);
  s.issued('rename', 'p/q', 'z/q', x);
  assert.equal(s.size, 2);
  assert.deepEqual(s.flags('create', 'z/f', undefined, x), { dirSole: true });
  assert.deepEqual(s.flags('create', 'p/f', undefined, x), { dirSole: true });
  s.issued('rename', 'p', 'y', x);
  assert.equal(s.size, 1);
});
