import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { faultMessage, makeTestApp, type TestApp, type TestUser } from '../helpers/app.ts';

let t: TestApp;
let alice: TestUser;
let bob: TestUser;
before(async () => {
  t = await makeTestApp();
  alice = await t.makeUser({ name: 'alice', project: 'demo' });
  bob = await t.makeUser({ name: 'bob', project: 'other' });
});
after(() => t.close());

const H = 'X-OpenStack-Manila-API-Version';

describe('version documents', () => {
  test('GET / is 300 with the CURRENT v2 entry (what `manila` negotiates against), no token needed', async () => {
    const res = await t.http().get('/').expect(300);
    const v = res.body.versions.find((x: { id: string }) => x.id === 'v2.0');
    assert.equal(v.status, 'CURRENT');
    assert.equal(v.min_version, '2.0');
    const [maj, min] = v.version.split('.').map(Number);
    assert.ok(maj === 2 && min >= 72, `max version ${v.version} must be at least 2.72`);
    assert.equal(v.links.find((l: { rel: string }) => l.rel === 'self').href, 'http://127.0.0.1:8786/v2/');
  });

  test('GET / also lists the deprecated v1.0 without versions, and carries no microversion header nor Vary', async () => {
    const res = await t.http().get('/').set(H, '2.50').expect(300);
    assert.deepEqual(res.body.versions.map((x: { id: string }) => x.id).sort(), ['v1.0', 'v2.0']);
    const v1 = res.body.versions.find((x: { id: string }) => x.id === 'v1.0');
    assert.equal(v1.status, 'DEPRECATED');
    assert.equal(v1.version, '');
    assert.equal(v1.min_version, '');
    assert.equal(res.headers['x-openstack-manila-api-version'], undefined);
    assert.equal(res.headers.vary, undefined);
  });

  test('GET /v1 is 200 with only v1.0, microversion 1.0 whatever was asked', async () => {
    for (const asked of [undefined, '5.0']) {
      const req = t.http().get('/v1');
      if (asked) req.set(H, asked);
      const res = await req.expect(200);
      assert.deepEqual(
        res.body.versions.map((x: { id: string }) => x.id),
        ['v1.0'],
      );
      assert.equal(res.headers['x-openstack-manila-api-version'], '1.0');
      assert.match(String(res.headers.vary), /X-OpenStack-Manila-API-Version/);
    }
  });

  test('GET /v2 and /v2/ are 200 with the same document', async () => {
    for (const path of ['/v2', '/v2/']) {
      const res = await t.http().get(path).expect(200);
      assert.equal(res.body.versions[0].status, 'CURRENT');
    }
  });
});

describe('microversions', () => {
  test('absent → 2.0, echoed with Vary', async () => {
    const res = await t.http().get('/v2/types').set('X-Auth-Token', alice.token).expect(200);
    assert.equal(res.headers['x-openstack-manila-api-version'], '2.0');
    assert.match(String(res.headers.vary), /X-OpenStack-Manila-API-Version/i);
  });

  test('the header is read in any case; the API-SIG form works too; latest means the maximum', async () => {
    const a = await t
      .http()
      .get('/v2/types')
      .set('x-openstack-manila-api-version', '2.72')
      .set('X-Auth-Token', alice.token);
    assert.equal(a.headers['x-openstack-manila-api-version'], '2.72');
    const b = await t
      .http()
      .get('/v2/types')
      .set('X-Openstack-Manila-Api-Version', '2.51')
      .set('X-Auth-Token', alice.token);
    assert.equal(b.headers['x-openstack-manila-api-version'], '2.51');
    const c = await t
      .http()
      .get('/v2/types')
      .set('OpenStack-API-Version', 'shared-file-system 2.60')
      .set('X-Auth-Token', alice.token);
    assert.equal(c.headers['x-openstack-manila-api-version'], '2.60');
    const d = await t.http().get('/v2/').set(H, 'latest');
    assert.equal(d.headers['x-openstack-manila-api-version'], d.body.versions[0].version);
  });

  test('out of range → 406 computeFault naming the range; malformed → 400; both echo the header', async () => {
    for (const v of ['1.9', '2.999', '3.0']) {
      const res = await t.http().get('/v2/types').set(H, v).set('X-Auth-Token', alice.token).expect(406);
      assert.match(faultMessage(res.body, 'computeFault', 406), /Minimum is 2\.0 and maximum is 2\.\d+/);
      assert.ok(res.headers['x-openstack-manila-api-version']);
      assert.match(String(res.headers.vary), /Manila-API-Version/i);
    }
    for (const v of ['two', '2', '2.x', '2.1.1']) {
      const res = await t.http().get('/v2/types').set(H, v).set('X-Auth-Token', alice.token).expect(400);
      assert.match(faultMessage(res.body, 'badRequest', 400), /MAJOR\.MINOR/);
    }
  });

  test('identity routes carry no microversion header', async () => {
    const res = await t.http().get('/identity/v3').expect(200);
    assert.equal(res.headers['x-openstack-manila-api-version'], undefined);
  });
});

describe('/v2/{project_id}/… routes', () => {
  test('every route also answers with the caller’s own project id in the path', async () => {
    const plain = await t.http().get('/v2/types').set('X-Auth-Token', alice.token).expect(200);
    const withProject = await t
      .http()
      .get(`/v2/${alice.projectId}/types`)
      .set('X-Auth-Token', alice.token)
      .expect(200);
    assert.deepEqual(withProject.body, plain.body);
  });

  test("another project's id in the path is a 404 for a non-admin, fine for an admin", async () => {
    const res = await t.http().get(`/v2/${bob.projectId}/types`).set('X-Auth-Token', alice.token).expect(404);
    faultMessage(res.body, 'itemNotFound', 404);
    await t
      .http()
      .get(`/v2/${bob.projectId}/types`)
      .set('X-Auth-Token', await t.adminToken())
      .expect(200);
  });

  test('no token is a 401 on the share API', async () => {
    const res = await t.http().get('/v2/types').expect(401);
    faultMessage(res.body, 'unauthorized', 401);
  });
});
