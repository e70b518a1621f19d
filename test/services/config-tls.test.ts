import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ConfigError, loadConfig } from '../../services/config.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'abaca-config-tls-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string) => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, 'PEM');
  return p;
};
const cert = file('cert.pem');
const key = file('key.pem');
const ca = file('ca.pem');

test('without ABACA_TLS_* the API is plain HTTP', () => {
  const c = loadConfig({});
  assert.equal(c.tls, null);
  assert.match(c.publicUrl, /^http:\/\//);
});

test('ABACA_TLS_CERT + ABACA_TLS_KEY: HTTPS, and the default public URL says https', () => {
  const c = loadConfig({ ABACA_TLS_CERT: cert, ABACA_TLS_KEY: key, ABACA_LISTEN: '0.0.0.0:8443' });
  assert.deepEqual(c.tls, { cert, key, ca: null });
  assert.equal(c.publicUrl, 'https://127.0.0.1:8443');
  const withCa = loadConfig({ ABACA_TLS_CERT: cert, ABACA_TLS_KEY: key, ABACA_TLS_CA: ca });
  assert.equal(withCa.tls?.ca, ca);
  // An explicit public URL (a proxy in front) is kept as given.
  const behind = loadConfig({
    ABACA_TLS_CERT: cert,
    ABACA_TLS_KEY: key,
    ABACA_PUBLIC_URL: 'https://shares.example.test',
  });
  assert.equal(behind.publicUrl, 'https://shares.example.test');
});

test('half a TLS setting, or a file that cannot be read, fails at start-up naming the variable', () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ ABACA_TLS_CERT: cert }, /ABACA_TLS_KEY: HTTPS needs both/],
    [{ ABACA_TLS_KEY: key }, /ABACA_TLS_CERT: HTTPS needs both/],
    [{ ABACA_TLS_CA: ca }, /ABACA_TLS_CA: needs ABACA_TLS_CERT and ABACA_TLS_KEY/],
    [
      { ABACA_TLS_CERT: cert, ABACA_TLS_KEY: path.join(dir, 'missing.pem') },
      /ABACA_TLS_KEY: cannot read .*missing\.pem/,
    ],
    [
      { ABACA_TLS_CERT: cert, ABACA_TLS_KEY: key, ABACA_TLS_CA: path.join(dir, 'nope.pem') },
      /ABACA_TLS_CA: cannot read/,
    ],
  ];
  for (const [env, re] of cases)
    assert.throws(
      () => loadConfig(env),
      (err: unknown) => err instanceof ConfigError && re.test(err.message),
      JSON.stringify(env),
    );
});
