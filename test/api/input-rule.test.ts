// The findings of the black-box probe (issue 21): each request here answered 500 (computeFault,
// a stack trace in the log) before the input rule at the edge and the UUID filter schemas existed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { passwordAuth } from '../helpers/app.ts';
import { type ShareFixture, shareFixture } from '../helpers/share-fixture.ts';

let f: ShareFixture;
let shareId: string;
let snapshotId: string;
let typeId: string;
let ruleId: string;
before(async () => {
  f = await shareFixture();
  shareId = await f.newShare({ name: 'probe' });
  snapshotId = await f.newSnapshot(shareId);
  const rule = await f.action(shareId, { allow_access: { access_type: 'ip', access_to: '10.0.0.1' } });
  assert.equal(rule.status, 200, JSON.stringify(rule.body));
  ruleId = rule.body.access.id;
  await f.drain();
  const types = await f.t.http().get('/v2/types').set(f.as(f.admin)).expect(200);
  typeId = types.body.share_types[0].id;
});
after(() => f.t.close());

const NUL = 'a\u0000b';

type Req = { method: 'get' | 'post' | 'put' | 'patch'; path: string; body?: unknown; anonymous?: boolean };

/** Every place the probe found (28), a U+0000 in a stored or filtered string. */
function nulCases(): [string, () => Req][] {
  const q = encodeURIComponent(NUL);
  return [
    [
      'auth: user name (unauthenticated)',
      () => ({
        method: 'post',
        path: '/identity/v3/auth/tokens',
        body: passwordAuth(NUL, 'x', 'admin'),
        anonymous: true,
      }),
    ],
    [
      'auth: password (unauthenticated)',
      () => ({
        method: 'post',
        path: '/identity/v3/auth/tokens',
        body: passwordAuth('admin', NUL, 'admin'),
        anonymous: true,
      }),
    ],
    [
      'auth: project name (unauthenticated)',
      () => ({
        method: 'post',
        path: '/identity/v3/auth/tokens',
        body: passwordAuth('admin', 'x', NUL),
        anonymous: true,
      }),
    ],
    [
      'user create: name',
      () => ({
        method: 'post',
        path: '/identity/v3/users',
        body: { user: { name: NUL, password: 'pw-0123456789' } },
      }),
    ],
    [
      'user create: password',
      () => ({
        method: 'post',
        path: '/identity/v3/users',
        body: { user: { name: 'nul-pw', password: NUL } },
      }),
    ],
    [
      'project create: name',
      () => ({ method: 'post', path: '/identity/v3/projects', body: { project: { name: NUL } } }),
    ],
    [
      'domain create: name',
      () => ({ method: 'post', path: '/identity/v3/domains', body: { domain: { name: NUL } } }),
    ],
    [
      'role create: name',
      () => ({ method: 'post', path: '/identity/v3/roles', body: { role: { name: NUL } } }),
    ],
    [
      'application credential: name',
      () => ({
        method: 'post',
        path: `/identity/v3/users/${f.t.adminUserId}/application_credentials`,
        body: { application_credential: { name: NUL } },
      }),
    ],
    ['users filter: name', () => ({ method: 'get', path: `/identity/v3/users?name=${q}` })],
    ['projects filter: name', () => ({ method: 'get', path: `/identity/v3/projects?name=${q}` })],
    [
      'share create: name',
      () => ({
        method: 'post',
        path: '/v2/shares',
        body: { share: { share_proto: 'NFS', size: 1, name: NUL } },
      }),
    ],
    [
      'share create: description',
      () => ({
        method: 'post',
        path: '/v2/shares',
        body: { share: { share_proto: 'NFS', size: 1, description: NUL } },
      }),
    ],
    [
      'share create: metadata value',
      () => ({
        method: 'post',
        path: '/v2/shares',
        body: { share: { share_proto: 'NFS', size: 1, metadata: { k: NUL } } },
      }),
    ],
    [
      'share update: name',
      () => ({ method: 'put', path: `/v2/shares/${shareId}`, body: { share: { display_name: NUL } } }),
    ],
    [
      'share metadata: key',
      () => ({ method: 'post', path: `/v2/shares/${shareId}/metadata`, body: { metadata: { [NUL]: 'v' } } }),
    ],
    [
      'share metadata item: key in the path',
      () => ({ method: 'put', path: `/v2/shares/${shareId}/metadata/${q}`, body: { meta: { [NUL]: 'v' } } }),
    ],
    [
      'snapshot create: name',
      () => ({ method: 'post', path: '/v2/snapshots', body: { snapshot: { share_id: shareId, name: NUL } } }),
    ],
    [
      'snapshot update: description',
      () => ({
        method: 'put',
        path: `/v2/snapshots/${snapshotId}`,
        body: { snapshot: { display_description: NUL } },
      }),
    ],
    [
      'share type create: name',
      () => ({
        method: 'post',
        path: '/v2/types',
        body: { share_type: { name: NUL, extra_specs: { driver_handles_share_servers: false } } },
      }),
    ],
    [
      'share type: extra spec value',
      () => ({
        method: 'post',
        path: `/v2/types/${typeId}/extra_specs`,
        body: { extra_specs: { color: NUL } },
      }),
    ],
    [
      'access rule metadata: value',
      () => ({
        method: 'put',
        path: `/v2/share-access-rules/${ruleId}/metadata`,
        body: { metadata: { k: NUL } },
      }),
    ],
    ['shares filter: name', () => ({ method: 'get', path: `/v2/shares?name=${q}` })],
    ['shares filter: name~', () => ({ method: 'get', path: `/v2/shares/detail?name~=${q}` })],
    ['shares filter: status', () => ({ method: 'get', path: `/v2/shares?status=${q}` })],
    ['shares filter: share_type_id', () => ({ method: 'get', path: `/v2/shares?share_type_id=${q}` })],
    [
      'shares filter: availability_zone',
      () => ({ method: 'get', path: `/v2/shares?availability_zone=${q}` }),
    ],
    [
      'shares filter: export_location_path',
      () => ({ method: 'get', path: `/v2/shares?export_location_path=${q}` }),
    ],
    [
      'shares filter: project_id',
      () => ({ method: 'get', path: `/v2/shares?all_tenants=1&project_id=${q}` }),
    ],
    ['snapshots filter: share_id', () => ({ method: 'get', path: `/v2/snapshots?share_id=${q}` })],
    ['snapshots filter: name', () => ({ method: 'get', path: `/v2/snapshots/detail?name=${q}` })],
    ['messages filter: resource_id', () => ({ method: 'get', path: `/v2/messages?resource_id=${q}` })],
  ];
}

describe('U+0000 is a 400 wherever a string is stored or filtered on', () => {
  for (const [name, make] of nulCases()) {
    test(name, async () => {
      const r = make();
      let req = f.t.http()[r.method](r.path);
      if (!r.anonymous) req = req.set(f.as(f.admin));
      const res = await (r.body === undefined ? req : req.send(r.body as object));
      assert.equal(res.status, 400, `${r.method} ${r.path}: ${res.status} ${JSON.stringify(res.body)}`);
      assert.equal(res.body.badRequest?.code, 400, JSON.stringify(res.body));
      assert.match(res.body.badRequest.message, /U\+0000/);
      if (r.path.startsWith('/identity')) assert.equal(res.body.error?.code, 400, 'Keystone error body too');
    });
  }

  test('a lone surrogate is refused too (it would be stored as U+FFFD)', async () => {
    const res = await f.t
      .http()
      .post('/v2/shares')
      .set(f.as(f.alice.token))
      .send(`{"share": {"share_proto": "NFS", "size": 1, "name": "x\\ud800y"}}`)
      .set('Content-Type', 'application/json');
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.match(res.body.badRequest.message, /surrogate/);
  });

  test('nothing was half made: the user whose password held U+0000 does not exist', async () => {
    const users = await f.t.db('users').where('name', 'nul-pw').select('id');
    assert.deepEqual(users, []);
  });

  test('a body nested deeper than any API defines is a 400, not a stack overflow', async () => {
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    const res = await f.t
      .http()
      .post('/v2/shares')
      .set(f.as(f.alice.token))
      .set('Content-Type', 'application/json')
      .send(`{"share": ${deep}}`);
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.match(res.body.badRequest.message, /nested deeper/);
  });
});

describe('a UUID-typed filter with a value that is not a UUID matches nothing', () => {
  const cases: [string, string, string][] = [
    ['shares export_location_id', '/v2/shares?export_location_id=not-a-uuid', 'shares'],
    ['shares share_type_id', '/v2/shares?share_type_id=not-a-uuid', 'shares'],
    ['shares detail share_type_id', '/v2/shares/detail?share_type_id=default', 'shares'],
    ['snapshots share_id', '/v2/snapshots?share_id=not-a-uuid', 'snapshots'],
    ['snapshots detail share_id', '/v2/snapshots/detail?share_id=12345', 'snapshots'],
    ['messages resource_id', '/v2/messages?resource_id=not-a-uuid', 'messages'],
  ];
  for (const [name, path, key] of cases) {
    test(`${name}: 200 and an empty list`, async () => {
      const res = await f.t.http().get(path).set(f.as(f.alice.token));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body[key], []);
    });
  }

  test('the same filters with the real UUIDs still match', async () => {
    const byType = await f.t
      .http()
      .get(`/v2/shares?share_type_id=${typeId}`)
      .set(f.as(f.alice.token))
      .expect(200);
    assert.ok(byType.body.shares.some((s: { id: string }) => s.id === shareId));
    const snaps = await f.t
      .http()
      .get(`/v2/snapshots?share_id=${shareId}`)
      .set(f.as(f.alice.token))
      .expect(200);
    assert.deepEqual(
      snaps.body.snapshots.map((s: { id: string }) => s.id),
      [snapshotId],
    );
  });
});

describe('offset beyond the database integer range', () => {
  for (const path of ['/v2/shares', '/v2/shares/detail', '/v2/snapshots', '/v2/snapshots/detail']) {
    test(`${path}?offset=9223372036854775807 is an empty page`, async () => {
      const res = await f.t.http().get(`${path}?offset=9223372036854775807`).set(f.as(f.alice.token));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(Object.values(res.body)[0], []);
    });
  }

  test('an offset with more digits than any integer type is still an empty page', async () => {
    const res = await f.t
      .http()
      .get(`/v2/shares?offset=${'9'.repeat(60)}`)
      .set(f.as(f.alice.token));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.shares, []);
  });

  test('messages: an offset past a safe integer is a 400 naming offset', async () => {
    const res = await f.t.http().get('/v2/messages?offset=9223372036854775807').set(f.as(f.alice.token));
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.match(res.body.badRequest.message, /offset/);
  });
});

describe('a path id that is not a UUID names nothing', () => {
  test('GET /v2/shares/{not a uuid}/heal (admin) is a 404, not a database error (found by the fuzz suite)', async () => {
    const res = await f.t.http().get('/v2/shares/x%1F-1/heal').set(f.as(f.admin));
    assert.equal(res.status, 404, JSON.stringify(res.body));
    assert.equal(res.body.itemNotFound?.code, 404);
    assert.ok(!f.t.logs.some((l) => l.msg === 'database error from client input'), 'no database error');
  });
});

test('a refused input still echoes the microversion, as every share API fault does', async () => {
  const res = await f.t.http().get('/v2/shares?name=a%00b').set(f.as(f.alice.token, '2.60'));
  assert.equal(res.status, 400);
  assert.equal(res.headers['x-openstack-manila-api-version'], '2.60');
});
