import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { MAX_PAGE } from '../../api/paging.ts';
import { type ShareFixture, shareFixture } from '../helpers/share-fixture.ts';

// A list page reuses the JSON it rendered for a share at an unchanged revision. These tests change
// a share in every way its views show — through this server and through another on the same
// database — and check that each list item is still exactly what GET /v2/shares/{id} renders.

let f: ShareFixture;
before(async () => {
  f = await shareFixture();
});
after(() => f.t.close());

// biome-ignore lint/suspicious/noExplicitAny: response bodies, compared field by field below.
type Body = any;

/** The share as the detail list renders it and as show renders it, for one caller and version. */
async function listedAndShown(http: () => request.Agent, id: string, token: string, version = '2.72') {
  // The admin lists every project's shares (alice's included).
  const query = token === f.admin ? '?all_tenants=True' : '';
  const list = await http().get(`/v2/shares/detail${query}`).set(f.as(token, version)).expect(200);
  assert.match(String(list.headers['content-type']), /^application\/json/);
  const listed = (list.body.shares as Body[]).find((s) => s.id === id);
  const shown = (await http().get(`/v2/shares/${id}`).set(f.as(token, version)).expect(200)).body.share;
  const summary = await http().get(`/v2/shares${query}`).set(f.as(token, version)).expect(200);
  return { listed, shown, summary: (summary.body.shares as Body[]).find((s) => s.id === id) };
}

async function assertSame(http: () => request.Agent, id: string, expect: (s: Body) => void) {
  for (const [token, version] of [
    [f.alice.token, '2.72'],
    [f.admin, '2.72'],
    [f.alice.token, '2.5'],
  ] as const) {
    const { listed, shown, summary } = await listedAndShown(http, id, token, version);
    assert.deepEqual(listed, shown, `list and show differ for ${version}`);
    assert.deepEqual(summary, { id, name: shown.name, links: shown.links });
    expect(listed);
  }
}

describe('share list pages rendered from kept JSON', () => {
  test('every change a share view shows is in the next list page', async () => {
    const http = f.t.http;
    const id = await f.newShare({ name: 'first', metadata: { tier: 'gold' } });
    await assertSame(http, id, (s) => assert.equal(s.name, 'first'));
    // Twice: the second round is served from what the first rendered.
    await assertSame(http, id, (s) => assert.deepEqual(s.metadata, { tier: 'gold' }));

    await http()
      .put(`/v2/shares/${id}`)
      .set(f.as(f.alice.token))
      .send({ share: { display_name: 'renamed', display_description: 'now described' } })
      .expect(200);
    await assertSame(http, id, (s) => {
      assert.equal(s.name, 'renamed');
      assert.equal(s.description, 'now described');
    });

    await http()
      .post(`/v2/shares/${id}/metadata`)
      .set(f.as(f.alice.token))
      .send({ metadata: { zone: 'b' } })
      .expect(200);
    await assertSame(http, id, (s) => assert.deepEqual(s.metadata, { tier: 'gold', zone: 'b' }));
    await http().delete(`/v2/shares/${id}/metadata/tier`).set(f.as(f.alice.token)).expect(200);
    await assertSame(http, id, (s) => assert.deepEqual(s.metadata, { zone: 'b' }));

    const { status } = await f.action(id, { reset_status: { status: 'error' } }, f.admin);
    assert.equal(status, 202);
    await assertSame(http, id, (s) => assert.equal(s.status, 'error'));
  });

  test("a change to the share's type (its extra specs) is in the next list page", async () => {
    const http = f.t.http;
    const type = await http()
      .post('/v2/types')
      .set(f.as(f.admin))
      .send({
        share_type: {
          name: 'rendering',
          extra_specs: { driver_handles_share_servers: false, snapshot_support: true },
        },
      })
      .expect(200);
    const typeId = type.body.share_type.id as string;
    const id = await f.newShare({ share_type: typeId });
    await assertSame(http, id, (s) => assert.equal(s.snapshot_support, true));
    await http()
      .post(`/v2/types/${typeId}/extra_specs`)
      .set(f.as(f.admin))
      .send({ extra_specs: { snapshot_support: 'False' } })
      .expect(200);
    await assertSame(http, id, (s) => assert.equal(s.snapshot_support, false));
    await http().delete(`/v2/types/${typeId}/extra_specs/snapshot_support`).set(f.as(f.admin)).expect(202);
    await assertSame(http, id, (s) => assert.equal(s.snapshot_support, false));
  });

  test('a change made through another server is in this server’s next list page', async () => {
    const first = f.t.app;
    const firstHttp = () => request.agent(first.callback());
    const id = await f.newShare({ name: 'seen-by-both' });
    await assertSame(firstHttp, id, (s) => assert.equal(s.name, 'seen-by-both'));
    // A second server over the same database, with nothing rendered yet.
    await f.t.restart();
    assert.notEqual(f.t.app, first);
    await f.t
      .http()
      .put(`/v2/shares/${id}`)
      .set(f.as(f.alice.token))
      .send({ share: { display_name: 'changed-elsewhere' } })
      .expect(200);
    await f.t
      .http()
      .put(`/v2/shares/${id}/metadata`)
      .set(f.as(f.alice.token))
      .send({ metadata: { only: 'this' } })
      .expect(200);
    await assertSame(firstHttp, id, (s) => {
      assert.equal(s.name, 'changed-elsewhere');
      assert.deepEqual(s.metadata, { only: 'this' });
    });
  });

  test('a deleted share leaves the list at once', async () => {
    const id = await f.newShare({ name: 'short-lived' });
    await assertSame(f.t.http, id, () => {});
    await f.t.http().delete(`/v2/shares/${id}`).set(f.as(f.alice.token)).expect(202);
    await f.drain();
    const list = await f.t.http().get('/v2/shares/detail').set(f.as(f.alice.token)).expect(200);
    assert.equal(
      (list.body.shares as Body[]).find((s) => s.id === id),
      undefined,
    );
  });
});

describe('page size', () => {
  test(`a list without a limit, with limit=0 or with a larger one holds ${MAX_PAGE} shares and links the rest`, async () => {
    // Rows written directly: a thousand creates through the API would only slow the test down.
    const user = await f.t.makeUser({ name: 'pager', project: 'many', role: 'member' });
    const typeId = (await f.t.db('share_types').where({ name: 'default' }).first()).id as string;
    const rows = Array.from({ length: MAX_PAGE + 5 }, (_, i) => ({
      id: randomUUID(),
      project_id: user.projectId,
      user_id: user.userId,
      name: `bulk-${i}`,
      size: 1,
      share_proto: 'NFS',
      status: 'available',
      share_type_id: typeId,
    }));
    for (let i = 0; i < rows.length; i += 200) await f.t.db('shares').insert(rows.slice(i, i + 200));
    for (const query of ['', '?limit=0', '?limit=5000']) {
      const page = await f.t.http().get(`/v2/shares/detail${query}`).set(f.as(user.token)).expect(200);
      assert.equal(page.body.shares.length, MAX_PAGE, query);
      const next = new URL(page.body.shares_links[0].href);
      assert.equal(next.searchParams.get('marker'), page.body.shares.at(-1).id);
      const rest = await f.t
        .http()
        .get(`${next.pathname.replace(/^.*\/v2/, '/v2')}${next.search}`)
        .set(f.as(user.token))
        .expect(200);
      assert.equal(rest.body.shares.length, 5, query);
      assert.equal(rest.body.shares_links, undefined);
      const all = new Set([...page.body.shares, ...rest.body.shares].map((s: Body) => s.id));
      assert.equal(all.size, MAX_PAGE + 5);
    }
    const negative = await f.t.http().get('/v2/shares?limit=-1').set(f.as(user.token));
    assert.equal(negative.status, 400);
    assert.match(negative.body.badRequest.message, /limit/);
  });
});

describe('walking pages with a marker', () => {
  // Rows created within one millisecond (PostgreSQL keeps microseconds, a JS Date does not) and
  // rows without a name: every order must still give each row exactly once, in the database's order.
  test('every share and snapshot appears once, in order, whatever the sort key and direction', async () => {
    const user = await f.t.makeUser({ name: 'walker', project: 'walk', role: 'member' });
    const typeId = (await f.t.db('share_types').where({ name: 'default' }).first()).id as string;
    const base = Date.UTC(2026, 10, 22, 8, 0, 0);
    const at = (i: number) => `${new Date(base + Math.floor(i / 4)).toISOString().slice(0, 23)}${i % 4}00+00`;
    const shares = Array.from({ length: 13 }, (_, i) => ({
      id: randomUUID(),
      project_id: user.projectId,
      user_id: user.userId,
      name: i % 3 === 0 ? null : `walk-${i % 5}`,
      size: 1 + (i % 2),
      share_proto: 'NFS',
      status: 'available',
      share_type_id: typeId,
      created_at: at(i),
    }));
    await f.t.db('shares').insert(shares);
    const source = shares[1] as { id: string };
    await f.t.db('share_snapshots').insert(
      shares.map((s, i) => ({
        id: randomUUID(),
        share_id: source.id,
        project_id: user.projectId,
        user_id: user.userId,
        name: s.name,
        size: 1,
        share_proto: 'NFS',
        status: 'available',
        created_at: at(i),
      })),
    );
    for (const [collection, table] of [
      ['shares', 'shares'],
      ['snapshots', 'share_snapshots'],
    ] as const)
      for (const sortKey of ['created_at', 'name', 'size'])
        for (const sortDir of ['asc', 'desc'] as const) {
          const expected = (
            await f.t
              .db(table)
              .where({ project_id: user.projectId })
              .orderByRaw(`${sortKey} ${sortDir}, id ${sortDir}`)
              .select('id')
          ).map((r: { id: string }) => r.id);
          const seen: string[] = [];
          let url: string | null = `/v2/${collection}?sort_key=${sortKey}&sort_dir=${sortDir}&limit=3`;
          while (url) {
            const page: Body = await f.t.http().get(url).set(f.as(user.token)).expect(200);
            seen.push(...page.body[collection].map((s: Body) => s.id));
            const next = page.body[`${collection}_links`]?.[0]?.href as string | undefined;
            url = next ? new URL(next).pathname.replace(/^.*\/v2/, '/v2') + new URL(next).search : null;
            assert.ok(seen.length <= expected.length, `${collection} ${sortKey} ${sortDir} runs on`);
          }
          assert.deepEqual(seen, expected, `${collection} by ${sortKey} ${sortDir}`);
        }
  });
});
