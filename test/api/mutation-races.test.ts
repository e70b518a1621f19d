import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { accessRulesRepo } from '../../services/repos/access-rules.ts';
import { sharesRepo } from '../../services/repos/shares.ts';
import { snapshotsRepo } from '../../services/repos/snapshots.ts';
import { faultMessage } from '../helpers/app.ts';
import { type ShareFixture, shareFixture } from '../helpers/share-fixture.ts';

/**
 * Invariant 3: a client never sees a 500 for a race it did not cause. A mutation checks its
 * resource, then changes it in a transaction; here another client's delete is committed in
 * between: when the request's transaction opens, or, for a mutation that may change its resource
 * outside one, right after its first read of the resource. The request must answer 404, as if it
 * had come a moment later.
 */

let f: ShareFixture;
before(async () => {
  f = await shareFixture();
});
after(() => f.t.close());

/** Deletes a share (its snapshots first) or a snapshot, committed, as a finished delete task would. */
async function deleteShare(id: string): Promise<void> {
  await f.t.db('share_snapshots').where({ share_id: id }).delete();
  await f.t.db('shares').where({ id }).delete();
}
const deleteSnapshot = (id: string) =>
  f.t
    .db('share_snapshots')
    .where({ id })
    .delete()
    .then(() => {});
const deleteRule = (id: string) =>
  f.t
    .db('share_access_rules')
    .where({ id })
    .delete()
    .then(() => {});

/**
 * Runs `request` with `remove` committed midway: when its first transaction opens, or with
 * `afterRead` already after its first read (by id, outside a transaction) of a share, snapshot or
 * access rule if that comes first.
 */
async function withDeleteMidway<T>(
  remove: () => Promise<void>,
  afterRead: boolean,
  request: () => PromiseLike<T>,
): Promise<T> {
  const db = f.t.db;
  const repos = [sharesRepo, snapshotsRepo, accessRulesRepo] as {
    get: (...a: never[]) => Promise<unknown>;
  }[];
  const gets = repos.map((r) => r.get);
  const transaction = Object.getOwnPropertyDescriptor(db, 'transaction') as PropertyDescriptor;
  let fired = false;
  const fire = async () => {
    if (fired) return;
    fired = true;
    restore();
    await remove();
  };
  const restore = () => {
    repos.forEach((r, i) => {
      r.get = gets[i] as typeof r.get;
    });
    Object.defineProperty(db, 'transaction', transaction);
  };
  repos.forEach((r, i) => {
    const get = gets[i] as (...a: unknown[]) => Promise<unknown>;
    r.get = (async (...args: unknown[]) => {
      const row = await get(...args);
      if (afterRead && row && !(args[0] as { isTransaction?: boolean }).isTransaction) await fire();
      return row;
    }) as typeof r.get;
  });
  Object.defineProperty(db, 'transaction', {
    ...transaction,
    value: async (...args: unknown[]) => {
      await fire();
      return (transaction.value as (...a: unknown[]) => unknown).apply(db, args);
    },
  });
  try {
    return await request();
  } finally {
    restore();
    assert.ok(fired, 'the delete was committed midway');
  }
}

async function ruleOn(shareId: string): Promise<string> {
  const res = await f.action(shareId, { allow_access: { access_type: 'ip', access_to: '10.9.9.9' } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  await f.drain();
  return res.body.access.id;
}

const http = () => f.t.http();
const asAlice = () => f.as(f.alice.token);
const asAdmin = () => f.as(f.admin);

type Ids = { share: string; snapshot?: string; rule?: string };

type Race = {
  name: string;
  /** Makes what the request acts on; returns the ids it needs. */
  setup: () => Promise<Ids>;
  /** What is deleted midway. */
  gone: 'share' | 'snapshot' | 'rule';
  /** Delete after the first read already (for a mutation that used to change outside a transaction). */
  afterRead?: boolean;
  request: (ids: Ids) => PromiseLike<{ status: number; body: Record<string, unknown> }>;
  message: RegExp;
};

const share = async () => ({ share: await f.newShare({ size: 2 }) });
const withSnapshot = async () => {
  const id = await f.newShare({ size: 2 });
  return { share: id, snapshot: await f.newSnapshot(id) };
};
const withRule = async () => {
  const id = await f.newShare({ size: 2 });
  return { share: id, rule: await ruleOn(id) };
};
const action =
  (body: (ids: { snapshot?: string; rule?: string }) => Record<string, unknown>, admin = false) =>
  (ids: { share: string; snapshot?: string; rule?: string }) =>
    http()
      .post(`/v2/shares/${ids.share}/action`)
      .set(admin ? asAdmin() : asAlice())
      .send(body(ids));
const SHARE_GONE = /^Share [0-9a-f-]{36} could not be found\.$/;
const SNAPSHOT_GONE = /^Snapshot [0-9a-f-]{36} could not be found\.$/;
const RULE_GONE = /^Access rule [0-9a-f-]{36} could not be found/;

const races: Race[] = [
  {
    name: 'extend',
    setup: share,
    gone: 'share',
    request: action(() => ({ extend: { new_size: 3 } })),
    message: SHARE_GONE,
  },
  {
    name: 'shrink',
    setup: share,
    gone: 'share',
    request: action(() => ({ shrink: { new_size: 1 } })),
    message: SHARE_GONE,
  },
  {
    name: 'revert',
    setup: withSnapshot,
    gone: 'share',
    request: action((ids) => ({ revert: { snapshot_id: ids.snapshot } })),
    message: SHARE_GONE,
  },
  {
    name: 'delete share',
    setup: share,
    gone: 'share',
    request: (ids) => http().delete(`/v2/shares/${ids.share}`).set(asAlice()),
    message: SHARE_GONE,
  },
  {
    name: 'force_delete share',
    setup: share,
    gone: 'share',
    request: action(() => ({ force_delete: null }), true),
    message: SHARE_GONE,
  },
  {
    name: 'reset_status share',
    afterRead: true,
    setup: share,
    gone: 'share',
    request: action(() => ({ reset_status: { status: 'error' } }), true),
    message: SHARE_GONE,
  },
  {
    name: 'update share',
    afterRead: true,
    setup: share,
    gone: 'share',
    request: (ids) =>
      http()
        .put(`/v2/shares/${ids.share}`)
        .set(asAlice())
        .send({ share: { name: 'renamed' } }),
    message: SHARE_GONE,
  },
  {
    name: 'set share metadata',
    setup: share,
    gone: 'share',
    request: (ids) =>
      http()
        .post(`/v2/shares/${ids.share}/metadata`)
        .set(asAlice())
        .send({ metadata: { k: 'v' } }),
    message: SHARE_GONE,
  },
  {
    name: 'replace share metadata',
    setup: share,
    gone: 'share',
    request: (ids) =>
      http()
        .put(`/v2/shares/${ids.share}/metadata`)
        .set(asAlice())
        .send({ metadata: { k: 'v' } }),
    message: SHARE_GONE,
  },
  {
    name: 'create snapshot',
    setup: share,
    gone: 'share',
    request: (ids) =>
      http()
        .post('/v2/snapshots')
        .set(asAlice())
        .send({ snapshot: { share_id: ids.share } }),
    message: SHARE_GONE,
  },
  {
    name: 'delete snapshot',
    setup: withSnapshot,
    gone: 'snapshot',
    request: (ids) => http().delete(`/v2/snapshots/${ids.snapshot}`).set(asAlice()),
    message: SNAPSHOT_GONE,
  },
  {
    name: 'force_delete snapshot',
    setup: withSnapshot,
    gone: 'snapshot',
    request: (ids) =>
      http().post(`/v2/snapshots/${ids.snapshot}/action`).set(asAdmin()).send({ force_delete: null }),
    message: SNAPSHOT_GONE,
  },
  {
    name: 'reset_status snapshot',
    afterRead: true,
    setup: withSnapshot,
    gone: 'snapshot',
    request: (ids) =>
      http()
        .post(`/v2/snapshots/${ids.snapshot}/action`)
        .set(asAdmin())
        .send({ reset_status: { status: 'error' } }),
    message: SNAPSHOT_GONE,
  },
  {
    name: 'update snapshot',
    afterRead: true,
    setup: withSnapshot,
    gone: 'snapshot',
    request: (ids) =>
      http()
        .put(`/v2/snapshots/${ids.snapshot}`)
        .set(asAlice())
        .send({ snapshot: { name: 'x' } }),
    message: SNAPSHOT_GONE,
  },
  {
    name: 'allow_access',
    setup: share,
    gone: 'share',
    request: action(() => ({ allow_access: { access_type: 'ip', access_to: '10.1.1.1' } })),
    message: SHARE_GONE,
  },
  {
    name: 'deny_access',
    setup: withRule,
    gone: 'share',
    request: action((ids) => ({ deny_access: { access_id: ids.rule } })),
    message: /^(Share|Access rule) [0-9a-f-]{36} could not be found/,
  },
  {
    name: 'set access rule metadata',
    afterRead: true,
    setup: withRule,
    gone: 'rule',
    request: (ids) =>
      http()
        .put(`/v2/share-access-rules/${ids.rule}/metadata`)
        .set(f.as(f.alice.token, '2.45'))
        .send({ metadata: { k: 'v' } }),
    message: RULE_GONE,
  },
];

for (const race of races)
  test(`${race.name}: a delete committed midway is a 404, not a 500`, async () => {
    const ids = await race.setup();
    const remove = {
      share: () => deleteShare(ids.share),
      snapshot: () => deleteSnapshot(ids.snapshot as string),
      rule: () => deleteRule(ids.rule as string),
    }[race.gone];
    const res = await withDeleteMidway(remove, race.afterRead ?? false, () => race.request(ids));
    assert.match(faultMessage(res.body, 'itemNotFound', 404), race.message);
    assert.equal(res.status, 404);
    // Nothing was queued for what is gone.
    assert.equal(await f.drain(), 0);
  });
