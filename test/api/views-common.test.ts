import assert from 'node:assert/strict';
import { test } from 'node:test';
import { iso } from '../../api/views/common.ts';

test('iso() renders exactly what toISOString() does, without the Z', () => {
  const edges = [
    0,
    Date.UTC(1999, 11, 31, 23, 59, 59, 999),
    Date.UTC(2026, 0, 1, 0, 0, 0, 0),
    Date.UTC(2026, 10, 22, 3, 4, 5, 6),
    Date.UTC(2026, 10, 22, 3, 4, 5, 60),
    Date.UTC(999, 0, 1),
    Date.UTC(10_000, 0, 1),
    -Date.UTC(3000, 0, 1),
  ];
  const random = Array.from({ length: 10_000 }, () => Math.floor(Math.random() * Date.UTC(2200, 0, 1)));
  for (const ms of [...edges, ...random]) {
    const d = new Date(ms);
    assert.equal(iso(d), d.toISOString().replace('Z', ''), String(ms));
  }
  assert.equal(iso(null), null);
  assert.throws(() => iso(new Date(Number.NaN)), RangeError);
});
