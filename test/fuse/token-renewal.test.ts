/**
 * `abaca mount` keeps serving past its token's expiry: the CLI renews the token in its last minute
 * and sends the new one on the open connection. A file of its own (it waits out a 60 s token), so
 * it runs beside the other mount tests. Needs root and /dev/fuse (skipped with the reason otherwise).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isMountPoint } from '../../client/mount/mountinfo.ts';
import { tempDir } from '../helpers/db.ts';
import { type ServerProcess, startServerProcess } from '../helpers/process.ts';
import { abaca, fuseSkip } from './helpers.ts';

const skip = fuseSkip;
const PASSWORD = 'renewal-test-password';

test('a mount outlives its token: the CLI renews it before it expires and writes keep working', {
  skip,
  timeout: 240_000,
}, async (t) => {
  // A server of its own whose tokens live 60 s (the least it allows): the share server refuses an
  // expired token on every operation, so without the renewal the writes past the first minute fail.
  const own = tempDir('abaca-fuse-renew');
  const mnt = path.join(own.path, 'mnt');
  let short: ServerProcess | undefined;
  // An after hook, not a finally: it also runs when the test times out while a step still waits,
  // so neither the mount nor the server outlives the test.
  t.after(async () => {
    if (isMountPoint(mnt)) await abaca(['umount', '-l', mnt]);
    await short?.stop();
    own.remove();
  });
  short = await startServerProcess({
    ABACA_DATA_DIR: path.join(own.path, 'server'),
    ABACA_ADMIN_PASSWORD: PASSWORD,
    ABACA_TOKEN_LIFETIME: '60',
  });
  const e = {
    OS_AUTH_URL: `${short.url}/identity/v3`,
    OS_USERNAME: 'admin',
    OS_PASSWORD: PASSWORD,
    OS_PROJECT_NAME: 'admin',
    OS_USER_DOMAIN_NAME: 'Default',
    OS_PROJECT_DOMAIN_NAME: 'Default',
    XDG_CACHE_HOME: path.join(own.path, 'cache'),
  };
  fs.mkdirSync(mnt);
  const run = async (...args: string[]) => {
    const r = await abaca(args, e, 120_000);
    assert.equal(r.code, 0, `abaca ${args.join(' ')}: ${r.stderr}`);
  };
  await run('share', 'create', 'NFS', '1', '--name', 'renewed', '--wait');
  await run('share', 'access', 'create', 'renewed', 'ip', '127.0.0.1', '--wait');
  const fg = abaca(['mount', 'renewed', mnt, '--foreground'], e, 200_000);
  for (let i = 0; i < 100 && !isMountPoint(mnt); i++) await new Promise((res) => setTimeout(res, 100));
  assert.ok(isMountPoint(mnt), 'mounted');
  // The token the mount started with was issued before `started`, so it is expired 60 s later;
  // the writes go on past that (the last ones with the renewed token only).
  const started = Date.now();
  for (let i = 0; Date.now() - started < 66_000; i++) {
    const f = path.join(mnt, `tick-${i}.txt`);
    fs.writeFileSync(f, `tick ${i}`);
    assert.equal(fs.readFileSync(f, 'utf8'), `tick ${i}`, `write ${i} at ${Date.now() - started} ms`);
    await new Promise((res) => setTimeout(res, 5_000));
  }
  await run('umount', mnt);
  const done = await fg;
  assert.equal(done.code, 0, done.stderr);
  assert.match(done.stderr, /token renewed/);
  assert.doesNotMatch(done.stderr, /could not renew/);
});
