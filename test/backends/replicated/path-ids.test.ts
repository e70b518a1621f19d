import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isUnder } from '../../../backends/replicated/protocol/paths.ts';
import { PathIds } from '../../../backends/replicated/server/path-ids.ts';
import { rng } from './helpers.ts';

/** The index's private directory sets: every one non-empty, every entry known or leading to one. */
function checkIndex(ids: PathIds, model: Map<string, string>): void {
  const below = (ids as unknown as { below: Map<string, Set<string>> }).below;
  const reachable = new Set<string>();
  const walk = (dir: string): void => {
    const set = below.get(dir);
    if (!set) return;
    assert.ok(set.size > 0, `empty set kept for "${dir}"`);
    for (const c of set) {
      reachable.add(c);
      walk(c);
    }
  };
  walk('');
  for (const p of model.keys()) assert.ok(reachable.has(p), `${p} is not indexed below its directory`);
  for (const dir of below.keys())
    assert.ok(dir === '' || reachable.has(dir), `directory set for ${dir} is not reachable from the root`);
  // Nothing indexed that leads nowhere: each reachable path is cached or has something below it.
  for (const p of reachable) assert.ok(model.has(p) || below.has(p), `${p} indexed with nothing below`);
}

test('PathIds forgets exactly what the walk of every path did, and keeps no empty index behind', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const rand = rng(seed);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const randomPath = (): string =>
      Array.from({ length: 1 + Math.floor(rand() * 4) }, () => pick(['a', 'b', 'c', 'dd'])).join('/');
    const ids = new PathIds();
    const model = new Map<string, string>();
    for (let i = 0; i < 3000; i++) {
      const p = randomPath();
      const r = rand();
      if (r < 0.55) {
        const id = `id${i}`;
        ids.set(p, id);
        model.set(p, id);
      } else if (r < 0.97) {
        ids.forgetUnder(p);
        for (const k of [...model.keys()]) if (isUnder(k, p)) model.delete(k);
      } else {
        ids.clear();
        model.clear();
      }
      assert.equal(ids.size, model.size, `seed ${seed}, step ${i}`);
      for (const q of ['a', 'a/b', 'b/c/dd', p]) assert.equal(ids.get(q), model.get(q));
      if (i % 100 === 0) checkIndex(ids, model);
    }
    checkIndex(ids, model);
    ids.forgetUnder('');
    assert.equal(ids.size, 0);
    assert.equal((ids as unknown as { below: Map<string, Set<string>> }).below.size, 0);
  }
});

test('PathIds: a name and a sibling that shares its prefix are separate subtrees', () => {
  const ids = new PathIds();
  ids.set('d/f', '1');
  ids.set('d/f/g', '2'); // a stale name below a file is still forgotten with it
  ids.set('d/ff', '3');
  ids.set('dd/f', '4');
  ids.forgetUnder('d/f');
  assert.deepEqual(
    ['d/f', 'd/f/g', 'd/ff', 'dd/f'].map((p) => ids.get(p)),
    [undefined, undefined, '3', '4'],
  );
  ids.forgetUnder('d');
  assert.equal(ids.get('d/ff'), undefined);
  assert.equal(ids.get('dd/f'), '4');
});
