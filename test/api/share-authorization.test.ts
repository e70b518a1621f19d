import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { makeTestApp, type TestApp, type TestUser } from '../helpers/app.ts';

/**
 * Every share API route × every kind of caller → the expected status (DESIGN invariant 2: no call
 * lets a project see or change another project's resources). Callers: admin, member and reader of
 * the owning project, a member of another project, no token, an expired token.
 */
let t: TestApp;
let tokens: Record<Caller, string | null>;
let alice: TestUser;
let shareId: string;
/** A snapshot of, and an access rule on, the share rows act on ('' until a row needs one). */
let snapshotId = '';
let ruleId = '';
/** Makes every allow_access body ask for an address no rule has yet. */
let nextAddress = 0;
let privateTypeId: string;

const CALLERS = ['admin', 'member', 'reader', 'other', 'none', 'expired'] as const;
type Caller = (typeof CALLERS)[number];

before(async () => {
  t = await makeTestApp();
  alice = await t.makeUser({ name: 'alice', project: 'demo', role: 'member' });
  const rita = await t.makeUser({ name: 'rita', project: 'demo', role: 'reader' });
  const bob = await t.makeUser({ name: 'bob', project: 'other', role: 'member' });
  // A token that expired: signed by this app's key with an exp in the past.
  const claims = await t.identity.keys.verify(alice.token);
  const old = t.identity.keys.sign({
    ...claims,
    iat: Date.now() / 1000 - 7200,
    exp: Date.now() / 1000 - 3600,
  });
  tokens = {
    admin: await t.adminToken(),
    member: alice.token,
    reader: rita.token,
    other: bob.token,
    none: null,
    expired: old,
  };
  const type = await t
    .http()
    .post('/v2/types')
    .set({ 'X-Auth-Token': tokens.admin as string, 'X-OpenStack-Manila-API-Version': '2.72' })
    .send({
      share_type: {
        name: 'private',
        'share_type_access:is_public': false,
        extra_specs: { driver_handles_share_servers: 'False' },
      },
    })
    .expect(200);
  privateTypeId = type.body.share_type.id;
});
after(() => t.close());

/** 2 GiB, so that it can be both extended and shrunk. */
async function freshShare(): Promise<string> {
  const res = await t
    .http()
    .post('/v2/shares')
    .set({ 'X-Auth-Token': alice.token, 'X-OpenStack-Manila-API-Version': '2.72' })
    .send({ share: { size: 2, share_proto: 'NFS', metadata: { k: 'v' } } })
    .expect(200);
  await t.stack.worker.drain();
  return res.body.share.id;
}

/** An available snapshot of the share: its latest, so it can be reverted to. */
async function freshSnapshot(): Promise<string> {
  await t.stack.worker.drain();
  const res = await t
    .http()
    .post('/v2/snapshots')
    .set({ 'X-Auth-Token': alice.token, 'X-OpenStack-Manila-API-Version': '2.72' })
    .send({ snapshot: { share_id: shareId } })
    .expect(202);
  await t.stack.worker.drain();
  return res.body.snapshot.id;
}

/** An active ip rule on the share, with metadata k=v. */
async function freshRule(): Promise<string> {
  await t.stack.worker.drain();
  const res = await t
    .http()
    .post(`/v2/shares/${shareId}/action`)
    .set({ 'X-Auth-Token': alice.token, 'X-OpenStack-Manila-API-Version': '2.72' })
    .send({
      allow_access: { access_type: 'ip', access_to: `10.1.0.${++nextAddress}`, metadata: { k: 'v' } },
    })
    .expect(200);
  await t.stack.worker.drain();
  return res.body.access.id;
}

interface Row {
  route: string;
  method: 'get' | 'post' | 'put' | 'delete';
  path: () => string;
  body?: () => unknown;
  /** admin, member, reader, other (no token and expired are always 401). */
  expect: [number, number, number, number];
  /** A write: each caller gets its own fresh share (with `of`: its own snapshot or rule on the share). */
  fresh?: boolean;
  /** The row acts on a snapshot of the share or an access rule on it. */
  of?: 'snapshot' | 'rule';
}

const rows: Row[] = [
  { route: 'GET /v2/shares', method: 'get', path: () => '/v2/shares', expect: [200, 200, 200, 200] },
  {
    route: 'GET /v2/shares/detail',
    method: 'get',
    path: () => '/v2/shares/detail',
    expect: [200, 200, 200, 200],
  },
  {
    route: 'GET /v2/shares/{id}',
    method: 'get',
    path: () => `/v2/shares/${shareId}`,
    expect: [200, 200, 200, 404],
  },
  {
    route: 'GET /v2/shares/{id}/export_locations',
    method: 'get',
    path: () => `/v2/shares/${shareId}/export_locations`,
    // Manila checks share:get against the share's project here: another project gets a 403.
    expect: [200, 200, 200, 403],
  },
  {
    route: 'GET /v2/shares/{id}/metadata',
    method: 'get',
    path: () => `/v2/shares/${shareId}/metadata`,
    expect: [200, 200, 200, 404],
  },
  {
    route: 'GET /v2/shares/{id}/metadata/{key}',
    method: 'get',
    path: () => `/v2/shares/${shareId}/metadata/k`,
    expect: [200, 200, 200, 404],
  },
  {
    route: 'POST /v2/shares',
    method: 'post',
    path: () => '/v2/shares',
    body: () => ({ share: { size: 1, share_proto: 'NFS' } }),
    expect: [200, 200, 403, 200],
  },
  {
    route: 'PUT /v2/shares/{id}',
    method: 'put',
    path: () => `/v2/shares/${shareId}`,
    body: () => ({ share: { display_name: 'x' } }),
    expect: [200, 200, 403, 404],
  },
  {
    route: 'POST /v2/shares/{id}/metadata',
    method: 'post',
    path: () => `/v2/shares/${shareId}/metadata`,
    body: () => ({ metadata: { a: 'b' } }),
    expect: [200, 200, 403, 404],
  },
  {
    route: 'PUT /v2/shares/{id}/metadata',
    method: 'put',
    path: () => `/v2/shares/${shareId}/metadata`,
    body: () => ({ metadata: { k: 'v' } }),
    expect: [200, 200, 403, 404],
  },
  {
    route: 'DELETE /v2/shares/{id}/metadata/{key}',
    method: 'delete',
    path: () => `/v2/shares/${shareId}/metadata/k`,
    expect: [200, 200, 403, 404],
    fresh: true,
  },
  {
    route: 'DELETE /v2/shares/{id}',
    method: 'delete',
    path: () => `/v2/shares/${shareId}`,
    expect: [202, 202, 403, 404],
    fresh: true,
  },
  {
    route: 'POST /v2/shares/{id}/action reset_status',
    method: 'post',
    path: () => `/v2/shares/${shareId}/action`,
    body: () => ({ reset_status: { status: 'available' } }),
    expect: [202, 403, 403, 403],
  },
  {
    route: 'POST /v2/shares/{id}/action force_delete',
    method: 'post',
    path: () => `/v2/shares/${shareId}/action`,
    body: () => ({ force_delete: null }),
    expect: [202, 403, 403, 403],
    fresh: true,
  },
  {
    route: 'POST /v2/shares/{id}/action extend',
    method: 'post',
    path: () => `/v2/shares/${shareId}/action`,
    body: () => ({ extend: { new_size: 3 } }),
    expect: [202, 202, 403, 404],
    fresh: true,
  },
  {
    route: 'POST /v2/shares/{id}/action shrink',
    method: 'post',
    path: () => `/v2/shares/${shareId}/action`,
    body: () => ({ shrink: { new_size: 1 } }),
    expect: [202, 202, 403, 404],
    fresh: true,
  },
  {
    route: 'POST /v2/shares/{id}/action revert',
    method: 'post',
    path: () => `/v2/shares/${shareId}/action`,
    body: () => ({ revert: { snapshot_id: snapshotId } }),
    expect: [202, 202, 403, 404],
    fresh: true,
    of: 'snapshot',
  },
  {
    route: 'POST /v2/shares/{id}/action allow_access',
    method: 'post',
    path: () => `/v2/shares/${shareId}/action`,
    body: () => ({ allow_access: { access_type: 'ip', access_to: `10.2.0.${++nextAddress}` } }),
    expect: [200, 200, 403, 404],
  },
  {
    route: 'POST /v2/shares/{id}/action deny_access',
    method: 'post',
    path: () => `/v2/shares/${shareId}/action`,
    body: () => ({ deny_access: { access_id: ruleId } }),
    expect: [202, 202, 403, 404],
    fresh: true,
    of: 'rule',
  },
  {
    route: 'POST /v2/shares/{id}/action access_list',
    method: 'post',
    path: () => `/v2/shares/${shareId}/action`,
    body: () => ({ access_list: null }),
    expect: [200, 200, 200, 404],
    of: 'rule',
  },
  {
    route: 'GET /v2/share-access-rules?share_id=',
    method: 'get',
    path: () => `/v2/share-access-rules?share_id=${shareId}`,
    // Manila answers a share it cannot see here with 400 "Share … not found", as for one that is gone.
    expect: [200, 200, 200, 400],
    of: 'rule',
  },
  {
    route: 'GET /v2/share-access-rules/{id}',
    method: 'get',
    path: () => `/v2/share-access-rules/${ruleId}`,
    expect: [200, 200, 200, 404],
    of: 'rule',
  },
  {
    route: 'PUT /v2/share-access-rules/{id}/metadata',
    method: 'put',
    path: () => `/v2/share-access-rules/${ruleId}/metadata`,
    body: () => ({ metadata: { k: 'v2' } }),
    expect: [200, 200, 403, 404],
    of: 'rule',
  },
  {
    route: 'DELETE /v2/share-access-rules/{id}/metadata/{key}',
    method: 'delete',
    path: () => `/v2/share-access-rules/${ruleId}/metadata/k`,
    expect: [200, 200, 403, 404],
    fresh: true,
    of: 'rule',
  },
  {
    route: 'GET /v2/snapshots',
    method: 'get',
    path: () => '/v2/snapshots',
    expect: [200, 200, 200, 200],
  },
  {
    route: 'GET /v2/snapshots/detail',
    method: 'get',
    path: () => '/v2/snapshots/detail',
    expect: [200, 200, 200, 200],
  },
  {
    route: 'GET /v2/snapshots/{id}',
    method: 'get',
    path: () => `/v2/snapshots/${snapshotId}`,
    expect: [200, 200, 200, 404],
    of: 'snapshot',
  },
  {
    route: 'GET /v2/snapshots/{id}/export-locations',
    method: 'get',
    path: () => `/v2/snapshots/${snapshotId}/export-locations`,
    expect: [200, 200, 200, 404],
    of: 'snapshot',
  },
  {
    route: 'POST /v2/snapshots',
    method: 'post',
    path: () => '/v2/snapshots',
    body: () => ({ snapshot: { share_id: shareId } }),
    expect: [202, 202, 403, 404],
  },
  {
    route: 'PUT /v2/snapshots/{id}',
    method: 'put',
    path: () => `/v2/snapshots/${snapshotId}`,
    body: () => ({ snapshot: { display_name: 'x' } }),
    expect: [200, 200, 403, 404],
    of: 'snapshot',
  },
  {
    route: 'DELETE /v2/snapshots/{id}',
    method: 'delete',
    path: () => `/v2/snapshots/${snapshotId}`,
    expect: [202, 202, 403, 404],
    fresh: true,
    of: 'snapshot',
  },
  {
    route: 'POST /v2/snapshots/{id}/action reset_status',
    method: 'post',
    path: () => `/v2/snapshots/${snapshotId}/action`,
    body: () => ({ reset_status: { status: 'available' } }),
    expect: [202, 403, 403, 403],
    of: 'snapshot',
  },
  {
    route: 'POST /v2/snapshots/{id}/action force_delete',
    method: 'post',
    path: () => `/v2/snapshots/${snapshotId}/action`,
    body: () => ({ force_delete: null }),
    expect: [202, 403, 403, 403],
    fresh: true,
    of: 'snapshot',
  },
  { route: 'GET /v2/types', method: 'get', path: () => '/v2/types', expect: [200, 200, 200, 200] },
  {
    route: 'GET /v2/types/{private}',
    method: 'get',
    path: () => `/v2/types/${privateTypeId}`,
    expect: [200, 404, 404, 404],
  },
  {
    route: 'POST /v2/types',
    method: 'post',
    path: () => '/v2/types',
    body: () => ({
      share_type: { name: `t-${Math.random()}`, extra_specs: { driver_handles_share_servers: 'False' } },
    }),
    expect: [200, 403, 403, 403],
  },
  {
    route: 'GET /v2/types/{id}/extra_specs',
    method: 'get',
    path: () => `/v2/types/${privateTypeId}/extra_specs`,
    expect: [200, 403, 403, 403],
  },
  {
    route: 'GET /v2/quota-sets/{own project}',
    method: 'get',
    path: () => `/v2/quota-sets/${alice.projectId}`,
    expect: [200, 200, 200, 403],
  },
  {
    route: 'PUT /v2/quota-sets/{project}',
    method: 'put',
    path: () => `/v2/quota-sets/${alice.projectId}`,
    body: () => ({ quota_set: { shares: 60 } }),
    expect: [200, 403, 403, 403],
  },
  { route: 'GET /v2/limits', method: 'get', path: () => '/v2/limits', expect: [200, 200, 200, 200] },
  { route: 'GET /v2/messages', method: 'get', path: () => '/v2/messages', expect: [200, 200, 200, 200] },
  {
    route: 'GET /v2/availability-zones',
    method: 'get',
    path: () => '/v2/availability-zones',
    expect: [200, 200, 200, 200],
  },
  { route: 'GET /v2/services', method: 'get', path: () => '/v2/services', expect: [200, 403, 403, 403] },
  {
    route: 'GET /v2/{other project}/shares/{id}',
    method: 'get',
    path: () => `/v2/${alice.projectId}/shares/${shareId}`,
    expect: [200, 200, 200, 404],
  },
];

for (const row of rows) {
  test(row.route, async () => {
    for (const [i, caller] of CALLERS.entries()) {
      if ((row.fresh && !row.of) || !shareId) [shareId, snapshotId, ruleId] = [await freshShare(), '', ''];
      if (row.of === 'snapshot' && (row.fresh || !snapshotId)) snapshotId = await freshSnapshot();
      if (row.of === 'rule' && (row.fresh || !ruleId)) ruleId = await freshRule();
      const token = tokens[caller];
      let req = t.http()[row.method](row.path()).set('X-OpenStack-Manila-API-Version', '2.72');
      if (token) req = req.set('X-Auth-Token', token);
      const res = row.body ? await req.send(row.body() as object) : await req;
      const want = i < 4 ? row.expect[i] : 401;
      assert.equal(res.status, want, `${row.route} as ${caller}: ${res.status} ${JSON.stringify(res.body)}`);
    }
    await t.stack.worker.drain();
  });
}

test('no list, filter or show leaks another project’s share', async () => {
  const mine = await freshShare();
  for (const q of [
    '',
    '?all_tenants=1',
    '?is_public=True',
    `?name=${mine}`,
    `?export_location_id=${mine}`,
    '?project_id=x&all_tenants=1',
  ]) {
    const res = await t
      .http()
      .get(`/v2/shares/detail${q}`)
      .set({ 'X-Auth-Token': tokens.other as string, 'X-OpenStack-Manila-API-Version': '2.72' })
      .expect(200);
    assert.ok(
      !res.body.shares.some((s: { project_id: string }) => s.project_id === alice.projectId),
      `leak via ${q}`,
    );
  }
});

test('no list or filter leaks another project’s snapshot or access rule', async () => {
  [shareId, snapshotId, ruleId] = [await freshShare(), '', ''];
  const snapshot = await freshSnapshot();
  const rule = await freshRule();
  const as = (caller: Caller, path: string) =>
    t
      .http()
      .get(path)
      .set({ 'X-Auth-Token': tokens[caller] as string, 'X-OpenStack-Manila-API-Version': '2.72' });
  // The queries do find it for its own project…
  const own = await as('reader', `/v2/snapshots/detail?share_id=${shareId}`).expect(200);
  assert.deepEqual(
    own.body.snapshots.map((s: { id: string }) => s.id),
    [snapshot],
  );
  // …and never for another.
  for (const path of ['/v2/snapshots', '/v2/snapshots/detail']) {
    for (const q of [
      '',
      '?all_tenants=1',
      `?share_id=${shareId}`,
      `?project_id=${alice.projectId}&all_tenants=1`,
      `?status=available&share_id=${shareId}&all_tenants=1`,
    ]) {
      const res = await as('other', `${path}${q}`).expect(200);
      assert.ok(
        !res.body.snapshots.some(
          (s: { id: string; project_id?: string }) => s.id === snapshot || s.project_id === alice.projectId,
        ),
        `leak via ${path}${q}`,
      );
    }
  }
  for (const res of [
    await as('other', `/v2/share-access-rules?share_id=${shareId}`),
    await as('other', `/v2/share-access-rules?share_id=${shareId}&metadata=%7B%27k%27%3A+%27v%27%7D`),
  ]) {
    // The same answer as for a share that does not exist (Manila's 400), so nothing tells them apart.
    const missing = await as('other', `/v2/share-access-rules?share_id=${randomUUID()}`);
    assert.equal(res.status, 400);
    assert.equal(missing.status, 400);
    assert.equal(
      res.body.badRequest.message.replace(shareId, 'ID'),
      missing.body.badRequest.message.replace(/[0-9a-f-]{36}/, 'ID'),
    );
    assert.doesNotMatch(JSON.stringify(res.body), new RegExp(rule));
  }
});
