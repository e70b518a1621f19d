import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../services/config.ts';

test('defaults: loopback 8786, ./data, PGlite, RegionOne, 1 h tokens', () => {
  const c = loadConfig({});
  assert.equal(c.listenHost, '127.0.0.1');
  assert.equal(c.listenPort, 8786);
  assert.equal(c.publicUrl, 'http://127.0.0.1:8786');
  assert.equal(c.publicUrlExplicit, false);
  assert.equal(c.dataDir, path.resolve('./data'));
  assert.equal(c.databaseUrl, null);
  assert.equal(c.region, 'RegionOne');
  assert.equal(c.tokenLifetimeSeconds, 3600);
  assert.equal(c.adminToken, null);
});

test('explicit settings are honoured', () => {
  const c = loadConfig({
    ABACA_LISTEN: '0.0.0.0:9000',
    ABACA_PUBLIC_URL: 'https://shares.example.test/',
    ABACA_DATA_DIR: '/var/lib/abaca',
    DATABASE_URL: 'postgres://abaca@db/abaca',
    ABACA_REGION: 'west',
    ABACA_TOKEN_LIFETIME: '600',
  });
  assert.equal(c.listenHost, '0.0.0.0');
  assert.equal(c.listenPort, 9000);
  assert.equal(c.publicUrl, 'https://shares.example.test');
  assert.equal(c.publicUrlExplicit, true);
  assert.equal(c.dataDir, '/var/lib/abaca');
  assert.equal(c.databaseUrl, 'postgres://abaca@db/abaca');
  assert.equal(c.region, 'west');
  assert.equal(c.tokenLifetimeSeconds, 600);
});

test('an all-interfaces listen address advertises loopback unless ABACA_PUBLIC_URL says otherwise', () => {
  assert.equal(loadConfig({ ABACA_LISTEN: '0.0.0.0:8786' }).publicUrl, 'http://127.0.0.1:8786');
  assert.equal(loadConfig({ ABACA_LISTEN: '[::1]:8786' }).publicUrl, 'http://[::1]:8786');
});

test('bad values fail with every problem named', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ ABACA_LISTEN: '8786' }, /ABACA_LISTEN must be host:port/],
    [{ ABACA_LISTEN: '127.0.0.1:70000' }, /port must be 0-65535/],
    [{ ABACA_PUBLIC_URL: 'ftp://x' }, /ABACA_PUBLIC_URL/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL must start with postgres/],
    [{ ABACA_ADMIN_PASSWORD: 'short' }, /at least 8 characters/],
    [{ ABACA_TOKEN_LIFETIME: '5' }, /ABACA_TOKEN_LIFETIME/],
    [{ ABACA_LOG_LEVEL: 'loud' }, /ABACA_LOG_LEVEL/],
  ];
  for (const [env, message] of cases) {
    assert.throws(
      () => loadConfig(env),
      (err: Error) => err instanceof ConfigError && message.test(err.message),
    );
  }
  assert.throws(
    () => loadConfig({ ABACA_LISTEN: 'x', DATABASE_URL: 'y' }),
    (err: Error) => /ABACA_LISTEN/.test(err.message) && /DATABASE_URL/.test(err.message),
  );
});

test('the recycle bin: a week by default (Manila), settable, bad values named', () => {
  assert.deepEqual(loadConfig({}).recycleBin, { retentionSeconds: 604800, purgeIntervalSeconds: 60 });
  assert.deepEqual(
    loadConfig({ ABACA_SOFT_DELETED_SHARE_RETENTION: '3600', ABACA_RECYCLE_BIN_PURGE_INTERVAL: '5' })
      .recycleBin,
    { retentionSeconds: 3600, purgeIntervalSeconds: 5 },
  );
  assert.throws(
    () => loadConfig({ ABACA_SOFT_DELETED_SHARE_RETENTION: '-1' }),
    (err: Error) => err instanceof ConfigError && /ABACA_SOFT_DELETED_SHARE_RETENTION/.test(err.message),
  );
  assert.throws(
    () => loadConfig({ ABACA_RECYCLE_BIN_PURGE_INTERVAL: 'soon' }),
    (err: Error) => err instanceof ConfigError && /ABACA_RECYCLE_BIN_PURGE_INTERVAL/.test(err.message),
  );
});
