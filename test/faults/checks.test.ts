/**
 * The fault-injection run's checker on made-up views (no processes): each kind of damage it must
 * see in a share's records and logs is reported, and what a failed operation may leave is not.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkView, type Problem, type View } from './run.ts';
import { appendRecord, History, type RecordModel, recordContent } from './workload.ts';

function history(): History {
  const h = new History(0);
  const rec = (id: string, over: Partial<RecordModel> = {}): void => {
    const { content, sha } = recordContent(id, `body of ${id}`);
    h.records.set(`s/${id}`, {
      id,
      share: 's',
      sha,
      content,
      acked: true,
      names: new Set([`rec/${id}`]),
      mayBeAbsent: false,
      deleted: false,
      renames: 0,
      ...over,
    });
  };
  rec('a-0');
  rec('a-1', { names: new Set(['rec/a-1', 'rec/a-1~1']) }); // a rename that failed
  rec('a-2', { acked: false, mayBeAbsent: true }); // a create that failed
  rec('a-3', { deleted: true, mayBeAbsent: true, names: new Set() });
  h.appends.set('s/a:10', { key: 'a:10', share: 's', log: 'logs/L0', acked: true });
  h.appends.set('s/a:11', { key: 'a:11', share: 's', log: 'logs/L0', acked: false });
  return h;
}

function good(h: History): View {
  const file = (id: string) => h.records.get(`s/${id}`)!.content;
  return {
    records: new Map([
      ['a-0', file('a-0')],
      ['a-1~1', file('a-1')],
    ]),
    logs: new Map([['L0', appendRecord('a:10', 'x')]]),
  };
}

function problems(h: History, v: View): string[] {
  const out: Problem[] = [];
  checkView('v', 's', v, h, [], out);
  return out.map((p) => p.message);
}

test('a view with every acknowledged write, once, and what failed operations may leave: no problem', () => {
  const h = history();
  assert.deepEqual(problems(h, good(h)), []);
  // The failed create left a prefix of its record (even nothing), the failed append its record.
  const v = good(h);
  v.records.set('a-2', h.records.get('s/a-2')!.content.subarray(0, 5));
  v.logs.set('L0', Buffer.concat([appendRecord('a:10', 'x'), appendRecord('a:11', 'y')]));
  assert.deepEqual(problems(h, v), []);
});

const damage: Array<[string, (h: History, v: View) => void, RegExp]> = [
  [
    'an acknowledged record missing',
    (_h, v) => v.records.delete('a-0'),
    /acknowledged record a-0 is missing/,
  ],
  [
    'a record twice',
    (h, v) => v.records.set('a-1', h.records.get('s/a-1')!.content),
    /record a-1 appears 2 times/,
  ],
  [
    'a deleted record back',
    (h, v) => v.records.set('a-3', h.records.get('s/a-3')!.content),
    /a-3 was deleted .* but is at rec\/a-3/,
  ],
  ['a record never written', (_h, v) => v.records.set('b-7', Buffer.from('b-7\nx\ny')), /never written/],
  [
    'a record with a bad checksum',
    (h, v) => {
      const c = Buffer.from(h.records.get('s/a-0')!.content);
      c.writeUInt8(c.readUInt8(c.length - 1) ^ 1, c.length - 1);
      v.records.set('a-0', c);
    },
    /rec\/a-0 is not record a-0 with its checksum/,
  ],
  [
    'an acknowledged record cut short',
    (h, v) => v.records.set('a-0', h.records.get('s/a-0')!.content.subarray(0, 10)),
    /rec\/a-0 is not record a-0/,
  ],
  [
    'a record under a name it never had',
    (h, v) => {
      v.records.delete('a-0');
      v.records.set('a-0~5', h.records.get('s/a-0')!.content);
    },
    /record a-0 is at rec\/a-0~5, expected rec\/a-0/,
  ],
  [
    'an append twice',
    (_h, v) => v.logs.set('L0', Buffer.concat([appendRecord('a:10', 'x'), appendRecord('a:10', 'x')])),
    /append a:10 appears 2 times/,
  ],
  [
    'an acknowledged append missing',
    (_h, v) => v.logs.set('L0', Buffer.alloc(0)),
    /acknowledged append a:10 is missing/,
  ],
  [
    'a torn append',
    (_h, v) =>
      v.logs.set('L0', Buffer.concat([appendRecord('a:10', 'x'), appendRecord('a:11', 'y').subarray(0, 60)])),
    /not a multiple of 128/,
  ],
  [
    'an append never made',
    (_h, v) => v.logs.set('L0', Buffer.concat([appendRecord('a:10', 'x'), appendRecord('z:1', 'y')])),
    /append z:1 was never made/,
  ],
  [
    'an append in another log',
    (_h, v) => {
      v.logs.set('L0', Buffer.alloc(0));
      v.logs.set('L1', appendRecord('a:10', 'x'));
    },
    /append a:10 was made to logs\/L0/,
  ],
];

for (const [what, hurt, expected] of damage)
  test(`the checker sees ${what}`, () => {
    const h = history();
    const v = good(h);
    hurt(h, v);
    const found = problems(h, v);
    assert.ok(
      found.some((p) => expected.test(p)),
      `expected ${expected} among ${JSON.stringify(found)}`,
    );
  });
