import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { ApiError, ConnectionError } from '../../cli/client/errors.ts';
import { httpRequest } from '../../cli/client/http.ts';
import { tempDir } from '../helpers/db.ts';
import { selfSignedCert } from './helpers.ts';

// The REST client's transport (cli/client/http.ts, node:http and node:https): JSON both ways,
// faults with their request id, the whole-exchange timeout, keep-alive, and HTTPS verification
// with a CA bundle (OS_CACERT) or none (--insecure).

type Handler = (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void;
let handler: Handler = (_req, _body, res) => res.end();
const connections: { http: number; https: number } = { http: 0, https: 0 };
const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
  let body = '';
  req.on('data', (d) => {
    body += d;
  });
  req.on('end', () => handler(req, body, res));
};

const plain = http.createServer(onRequest);
plain.on('connection', () => connections.http++);
let secure: https.Server;
let plainUrl = '';
let secureUrl = '';
const certs = tempDir('abaca-http-client-certs');
let ca = '';

async function listen(server: http.Server | https.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

before(async () => {
  const { key, cert } = selfSignedCert(certs.path);
  ca = readFileSync(cert, 'utf8');
  secure = https.createServer({ key: readFileSync(key), cert: ca }, onRequest);
  secure.on('secureConnection', () => connections.https++);
  plainUrl = `http://127.0.0.1:${await listen(plain)}`;
  secureUrl = `https://127.0.0.1:${await listen(secure)}`;
});

after(async () => {
  plain.closeAllConnections();
  secure?.closeAllConnections();
  await Promise.all([
    new Promise((r) => plain.close(r)),
    secure ? new Promise((r) => secure.close(r)) : null,
  ]);
  certs.remove();
});

const json = (
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) => {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

test('a JSON body goes out with its headers; the JSON answer, its headers and request id come back', async () => {
  let seen: { method?: string; url?: string; headers?: http.IncomingHttpHeaders; body?: string } = {};
  handler = (req, body, res) => {
    seen = { method: req.method, url: req.url, headers: req.headers, body };
    json(
      res,
      202,
      { share: { id: 'x', name: 'ü' } },
      {
        'X-Openstack-Request-Id': 'req-11111111-2222-3333-4444-555555555555',
        'X-Subject-Token': 'tok',
      },
    );
  };
  const res = await httpRequest({
    method: 'POST',
    url: `${plainUrl}/v2/shares?a=1`,
    query: { limit: 2, name: 'a b', skip: undefined, none: null },
    headers: { 'X-Auth-Token': 'secret' },
    body: { share: { name: 'ü', size: 1 } },
  });
  assert.equal(res.status, 202);
  assert.deepEqual(res.body, { share: { id: 'x', name: 'ü' } });
  assert.equal(res.requestId, 'req-11111111-2222-3333-4444-555555555555');
  assert.equal(res.headers.get('x-subject-token'), 'tok');
  assert.equal(res.headers.get('X-SUBJECT-TOKEN'), 'tok');
  assert.equal(res.headers.get('x-missing'), null);
  assert.equal(seen.method, 'POST');
  assert.equal(seen.url, '/v2/shares?a=1&limit=2&name=a+b');
  assert.equal(seen.headers?.['x-auth-token'], 'secret');
  assert.equal(seen.headers?.['content-type'], 'application/json');
  assert.equal(seen.headers?.accept, 'application/json');
  assert.equal(seen.headers?.['user-agent'], 'abaca-client');
  assert.equal(Number(seen.headers?.['content-length']), Buffer.byteLength(seen.body ?? ''));
  assert.deepEqual(JSON.parse(seen.body ?? ''), { share: { name: 'ü', size: 1 } });
});

test('a Manila or Keystone fault is an ApiError with its message, fault name, status and request id', async () => {
  handler = (_req, _body, res) =>
    json(
      res,
      404,
      { itemNotFound: { code: 404, message: 'Share nope could not be found.' } },
      { 'x-compute-request-id': 'req-aaaaaaaa-2222-3333-4444-555555555555' },
    );
  const err = await httpRequest({ method: 'GET', url: `${plainUrl}/v2/shares/nope` }).catch((e) => e);
  assert.ok(err instanceof ApiError);
  assert.equal(err.status, 404);
  assert.equal(err.fault, 'itemNotFound');
  assert.equal(err.message, 'Share nope could not be found.');
  assert.equal(err.requestId, 'req-aaaaaaaa-2222-3333-4444-555555555555');
  assert.equal(
    err.describe(),
    'Share nope could not be found. (HTTP 404) (Request-ID: req-aaaaaaaa-2222-3333-4444-555555555555)',
  );

  // Not JSON (a proxy's page): its first line; nothing at all: the status text.
  handler = (_req, _body, res) => {
    res.writeHead(502, { 'Content-Type': 'text/html' });
    res.end('Bad gateway from the proxy\n<html>…');
  };
  const page = await httpRequest({ method: 'GET', url: plainUrl }).catch((e) => e);
  assert.ok(page instanceof ApiError);
  assert.equal(page.message, 'Bad gateway from the proxy');
  handler = (_req, _body, res) => {
    res.writeHead(503);
    res.end();
  };
  const empty = await httpRequest({ method: 'GET', url: plainUrl }).catch((e) => e);
  assert.equal(empty.message, 'Service Unavailable');
});

test('the timeout covers the whole exchange, a body that stalls included', async () => {
  handler = (_req, _body, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.write('{"shares": ['); // and nothing more
  };
  const t0 = Date.now();
  const err = await httpRequest({ method: 'GET', url: `${plainUrl}/v2/shares`, timeoutMs: 300 }).catch(
    (e) => e,
  );
  assert.ok(err instanceof ConnectionError, String(err));
  assert.equal(err.code, 'ETIMEDOUT');
  assert.match(err.message, /^no answer from http:\/\/127\.0\.0\.1:\d+ within 0 s \(GET .*\/v2\/shares\)$/);
  assert.ok(Date.now() - t0 < 5_000);
});

test('a refused connection is a ConnectionError that says so', async () => {
  const s = http.createServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  const err = await httpRequest({ method: 'GET', url: `http://127.0.0.1:${port}/identity/v3` }).catch(
    (e) => e,
  );
  assert.ok(err instanceof ConnectionError);
  assert.equal(err.code, 'ECONNREFUSED');
  assert.equal(err.message, `could not connect to http://127.0.0.1:${port} (connection refused)`);
});

test('requests in a row share one kept-alive connection; a connection the server dropped is replaced', async () => {
  handler = (req, _body, res) => json(res, 200, { n: req.url });
  const before = connections.http;
  for (let i = 0; i < 3; i++) {
    const res = await httpRequest<{ n: string }>({ method: 'GET', url: `${plainUrl}/${i}` });
    assert.equal(res.body.n, `/${i}`);
  }
  assert.equal(connections.http - before, 1, 'three requests, one connection');

  // The server closes the idle connection: the next GET goes out on a new one and succeeds.
  plain.closeIdleConnections();
  await new Promise((r) => setTimeout(r, 50));
  const res = await httpRequest<{ n: string }>({ method: 'GET', url: `${plainUrl}/again` });
  assert.equal(res.body.n, '/again');
  assert.equal(connections.http - before, 2);
});

test('a kept-alive connection reset under a request: GET is sent again on a new one, POST is not', async () => {
  const served = new WeakMap<object, number>();
  // The second request on any connection is dropped unanswered, as by a server closing it just then.
  handler = (req, _body, res) => {
    const n = (served.get(req.socket) ?? 0) + 1;
    served.set(req.socket, n);
    if (n >= 2) req.socket.destroy();
    else json(res, 200, { n });
  };
  plain.closeIdleConnections();
  await new Promise((r) => setTimeout(r, 50));
  const before = connections.http;
  assert.deepEqual((await httpRequest({ method: 'GET', url: `${plainUrl}/a` })).body, { n: 1 });
  assert.deepEqual((await httpRequest({ method: 'GET', url: `${plainUrl}/b` })).body, { n: 1 });
  assert.equal(connections.http - before, 2, 'the GET was sent again on a second connection');

  // A POST may have been acted on: never sent twice; the caller sees the reset.
  const err = await httpRequest({ method: 'POST', url: `${plainUrl}/v2/shares`, body: {} }).catch((e) => e);
  assert.ok(err instanceof ConnectionError, String(err));
  assert.equal(err.code, 'ECONNRESET');
  assert.equal(connections.http - before, 2);
});

test('HTTPS: an untrusted certificate is refused with a hint; the CA bundle or insecure lets it through', async () => {
  handler = (_req, _body, res) => json(res, 200, { ok: true });
  const url = `${secureUrl}/identity/v3`;
  const refused = await httpRequest({ method: 'GET', url }).catch((e) => e);
  assert.ok(refused instanceof ConnectionError, String(refused));
  assert.equal(refused.code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
  assert.equal(
    refused.message,
    `could not connect to ${secureUrl} (TLS: its certificate is self-signed; trust its CA with --os-cacert / OS_CACERT, or skip verification with --insecure)`,
  );

  const trusted = await httpRequest({ method: 'GET', url, tls: { ca } });
  assert.deepEqual(trusted.body, { ok: true });
  const insecure = await httpRequest({ method: 'GET', url, tls: { insecure: true } });
  assert.deepEqual(insecure.body, { ok: true });

  // A CA that did not sign the server's certificate is not enough.
  const other = selfSignedCert(certs.path, 'other', 'other CA').cert;
  const wrong = await httpRequest({ method: 'GET', url, tls: { ca: readFileSync(other, 'utf8') } }).catch(
    (e) => e,
  );
  assert.ok(wrong instanceof ConnectionError);
  assert.match(wrong.message, /TLS: .*--os-cacert/);
});
