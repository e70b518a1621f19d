import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { makeTestApp, type TestApp } from '../../helpers/app.ts';

let t: TestApp;
before(async () => {
  t = await makeTestApp({ ABACA_PUBLIC_URL: 'http://share.example.test:8786' });
});
after(() => t.close());

test('GET /identity lists the v3 version with status 300', async () => {
  const res = await t.http().get('/identity').expect(300);
  const [v] = res.body.versions.values;
  assert.equal(v.id, 'v3.14');
  assert.equal(v.status, 'stable');
  assert.equal(v.links[0].href, 'http://share.example.test:8786/identity/v3/');
});

test('GET /identity/v3 and /identity/v3/ answer the version document', async () => {
  for (const path of ['/identity/v3', '/identity/v3/']) {
    const res = await t.http().get(path).expect(200);
    assert.equal(res.body.version.id, 'v3.14');
    assert.equal(res.body.version['media-types'][0].type, 'application/vnd.openstack.identity-v3+json');
  }
});

test("the version's self link is a route that answers", async () => {
  const res = await t.http().get('/identity/v3').expect(200);
  const self = new URL(res.body.version.links[0].href);
  await t.http().get(self.pathname).expect(200);
});
