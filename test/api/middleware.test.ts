import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { faultMessage, makeTestApp, passwordAuth, type TestApp } from '../helpers/app.ts';

let t: TestApp;
before(async () => {
  t = await makeTestApp({ ABACA_BODY_LIMIT: '2048' });
});
after(() => t.close());

const UUID_ID = /^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('request ids', () => {
  test('every response carries a fresh req-<uuid>, errors included', async () => {
    const ok = await t.http().get('/identity/v3').expect(200);
    const missing = await t.http().get('/nowhere').expect(404);
    assert.match(String(ok.headers['x-openstack-request-id']), UUID_ID);
    assert.match(String(missing.headers['x-openstack-request-id']), UUID_ID);
    assert.notEqual(ok.headers['x-openstack-request-id'], missing.headers['x-openstack-request-id']);
  });

  test('x-compute-request-id carries the same id (tempest asserts it on every share API response)', async () => {
    const token = await t.adminToken();
    for (const res of [
      await t.http().get('/v2/types').set('X-Auth-Token', token).expect(200),
      await t.http().get('/v2/shares/nope').set('X-Auth-Token', token).expect(404),
      await t.http().get('/identity/v3').expect(200),
    ]) {
      assert.match(String(res.headers['x-compute-request-id']), UUID_ID);
      assert.equal(res.headers['x-compute-request-id'], res.headers['x-openstack-request-id']);
    }
  });

  test('a 202 goes out with an empty body and no content type (clients parse bodies as JSON)', async () => {
    const token = await t.adminToken();
    const created = await t
      .http()
      .post('/v2/types')
      .set('X-Auth-Token', token)
      .send({ share_type: { name: 'mw-202', extra_specs: { driver_handles_share_servers: false } } })
      .expect(200);
    const del = await t.http().delete(`/v2/types/${created.body.share_type.id}`).set('X-Auth-Token', token);
    assert.equal(del.status, 202);
    assert.equal(del.text, '');
    assert.equal(del.headers['content-type'], undefined);
  });

  test('a well-formed inbound id is kept; a malformed one is replaced', async () => {
    const mine = 'req-0b4b7d0e-8c7e-4a6b-9f51-3d2a5c1e9f00';
    const kept = await t.http().get('/identity/v3').set('X-Openstack-Request-Id', mine).expect(200);
    assert.equal(kept.headers['x-openstack-request-id'], mine);
    const replaced = await t
      .http()
      .get('/identity/v3')
      .set('X-Openstack-Request-Id', 'req-not-a-uuid; drop table')
      .expect(200);
    assert.match(String(replaced.headers['x-openstack-request-id']), UUID_ID);
    assert.notEqual(replaced.headers['x-openstack-request-id'], 'req-not-a-uuid; drop table');
  });

  test('the request id and project id reach the log line', async () => {
    const token = await t.adminToken();
    const res = await t.http().get('/identity/v3/auth/projects').set('X-Auth-Token', token).expect(200);
    const id = res.headers['x-openstack-request-id'];
    const line = t.logs.find((l) => l.request_id === id && l.msg === 'request');
    assert.ok(line, 'an access log line with the request id');
    assert.equal(line.project_id, t.adminProjectId);
    assert.equal(line.status, 200);
  });
});

describe('faults', () => {
  test('unknown route: 404 itemNotFound with a JSON body', async () => {
    const res = await t.http().get('/v9/whatever').expect(404);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.match(faultMessage(res.body, 'itemNotFound', 404), /GET \/v9\/whatever/);
  });

  test('wrong method on a known route: 405 badMethod with Allow', async () => {
    const res = await t.http().put('/identity/v3/auth/tokens').send({}).expect(405);
    assert.match(faultMessage(res.body, 'badMethod', 405), /PUT/);
    assert.match(String(res.headers.allow), /POST/);
    assert.match(String(res.headers.allow), /GET/);
  });

  test('malformed JSON: 400 badRequest, nothing issued', async () => {
    const res = await t
      .http()
      .post('/identity/v3/auth/tokens')
      .set('Content-Type', 'application/json')
      .send('{"auth": {"identity": ')
      .expect(400);
    assert.match(faultMessage(res.body, 'badRequest', 400), /Malformed JSON/);
    assert.equal(res.headers['x-subject-token'], undefined);
  });

  test('a JSON scalar is not a request body: 400', async () => {
    const res = await t
      .http()
      .post('/identity/v3/auth/tokens')
      .set('Content-Type', 'application/json')
      .send('42');
    assert.equal(res.status, 400);
    faultMessage(res.body, 'badRequest', 400);
  });

  test('a body over the configured limit: 413 overLimit', async () => {
    const big = { auth: { identity: { methods: ['password'], padding: 'x'.repeat(4096) } } };
    const res = await t.http().post('/identity/v3/auth/tokens').send(big).expect(413);
    assert.match(faultMessage(res.body, 'overLimit', 413), /2048 bytes/);
  });

  test('a non-JSON content type: 415 badMediaType', async () => {
    const res = await t
      .http()
      .post('/identity/v3/auth/tokens')
      .set('Content-Type', 'application/x-www-form-urlencoded')
      .send('auth=1')
      .expect(415);
    assert.match(faultMessage(res.body, 'badMediaType', 415), /application\/x-www-form-urlencoded/);
  });

  test('a body without a content type is read as JSON', async () => {
    // supertest always sets a content type for a string body, so use a bare HTTP request.
    const server = createServer(t.app.callback()).listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const body = JSON.stringify(passwordAuth('admin', 'wrong-password', 'admin'));
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          { host: '127.0.0.1', port, method: 'POST', path: '/identity/v3/auth/tokens' },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end(body);
      });
      assert.equal(status, 401, 'parsed as JSON and refused for the wrong password, not 415');
    } finally {
      server.close();
    }
  });

  test('an unexpected error: 500 with a generic message; the stack is logged once', async () => {
    const broken = await makeTestApp();
    await broken.db.destroy(); // every query now fails inside the server
    const res = await broken
      .http()
      .post('/identity/v3/auth/tokens')
      .send(passwordAuth('admin', 'x', 'admin'))
      .expect(500);
    const message = faultMessage(res.body, 'computeFault', 500);
    assert.doesNotMatch(message, /knex|pool|destroy|Error:/i, 'no internals leak to the client');
    const id = res.headers['x-openstack-request-id'];
    const errors = broken.logs.filter((l) => l.request_id === id && l.msg === 'unhandled error');
    assert.equal(errors.length, 1);
    assert.match(String((errors[0]!.err as { stack: string }).stack), /Error/);
  });
});

describe('health and metrics', () => {
  test('/healthz is 200 while the database answers', async () => {
    const res = await t.http().get('/healthz').expect(200);
    assert.deepEqual(res.body, { status: 'ok' });
  });

  test('/healthz is 503 serviceUnavailable when the database does not answer', async () => {
    const broken = await makeTestApp();
    await broken.db.destroy();
    const res = await broken.http().get('/healthz').expect(503);
    faultMessage(res.body, 'serviceUnavailable', 503);
  });

  test('/metrics counts requests by route template and status', async () => {
    await t.http().get('/identity/v3').expect(200);
    await t.http().get('/identity/v3/users/abc').expect(401);
    const res = await t.http().get('/metrics').expect(200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.match(
      res.text,
      /abaca_http_requests_total\{method="GET",route="\/identity\/v3",status="200"\} \d+/,
    );
    assert.match(
      res.text,
      /abaca_http_requests_total\{method="GET",route="\/identity\/v3\/users\/:id",status="401"\} \d+/,
    );
    assert.match(
      res.text,
      /abaca_http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/identity\/v3"/,
    );
    assert.doesNotMatch(res.text, /users\/abc/, 'raw ids never become labels');
  });
});
