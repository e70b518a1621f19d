import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type BrickCandidate, placeReplicas } from '../../../backends/replicated/server/placement.ts';

const b = (id: string, host: string, zone: string, up = true): BrickCandidate => ({
  id,
  addr: `127.0.0.1:${id}`,
  host,
  zone,
  up,
});

test('replicas go to distinct hosts, then distinct zones', () => {
  const p = placeReplicas(
    [b('1', 'h1', 'z1'), b('2', 'h1', 'z1'), b('3', 'h2', 'z1'), b('4', 'h3', 'z2'), b('5', 'h2', 'z2')],
    3,
  );
  assert.equal(new Set(p.bricks.map((x) => x.host)).size, 3);
  assert.equal(new Set(p.bricks.map((x) => x.zone)).size, 2);
  assert.equal(p.warning, undefined);
});

test('too few hosts: placed anyway, with a warning', () => {
  const p = placeReplicas([b('1', 'h1', 'z'), b('2', 'h1', 'z'), b('3', 'h2', 'z')], 3);
  assert.equal(p.bricks.length, 3);
  assert.match(p.warning ?? '', /only 2 distinct host/);
});

test('down bricks are not used; too few bricks and bad counts are refused', () => {
  const p = placeReplicas([b('1', 'h1', 'z'), b('2', 'h2', 'z', false), b('3', 'h3', 'z')], 2);
  assert.deepEqual(p.bricks.map((x) => x.id).sort(), ['1', '3']);
  assert.throws(() => placeReplicas([b('1', 'h1', 'z')], 2), { code: 'ENOSPC' });
  assert.throws(() => placeReplicas([b('1', 'h1', 'z')], 0), { code: 'EINVAL' });
  assert.throws(() => placeReplicas([b('1', 'h1', 'z')], 6), { code: 'EINVAL' });
});
