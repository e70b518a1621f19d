/**
 * `abaca mount` as a user meets it, against the whole stack (abaca-server in solo mode: API,
 * identity, bricks and share server, which checks the user's token): by share name with the OS_*
 * credentials, detached once mounted, refused with a one-line reason (no rule, no such share,
 * wrong password), and `abaca umount`.
 * Needs root and /dev/fuse (skipped with the reason otherwise).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { tempDir } from '../helpers/db.ts';
import { type ServerProcess, startServerProcess } from '../helpers/process.ts';
import { abaca, fuseSkip } from './helpers.ts';

const skip = fuseSkip;
const PASSWORD = 'mount-test-password';
const data = tempDir('abaca-fuse-cli');
let server: ServerProcess;
let env: Record<string, string>;
const dir = path.join(data.path, 'mnt');

const mounted = (d: string) =>
  fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === d);

before(async () => {
  if (skip) return;
  server = await startServerProcess({
    ABACA_DATA_DIR: path.join(data.path, 'server'),
    ABACA_ADMIN_PASSWORD: PASSWORD,
  });
  env = {
    OS_AUTH_URL: `${server.url}/identity/v3`,
    OS_USERNAME: 'admin',
    OS_PASSWORD: PASSWORD,
    OS_PROJECT_NAME: 'admin',
    OS_USER_DOMAIN_NAME: 'Default',
    OS_PROJECT_DOMAIN_NAME: 'Default',
    XDG_CACHE_HOME: path.join(data.path, 'cache'),
  };
  fs.mkdirSync(dir);
});
after(async () => {
  if (dir && mounted(dir)) await abaca(['umount', '-l', dir], env);
  await server?.stop();
  data.remove();
});

const ok = async (...args: string[]) => {
  const r = await abaca(args, env, 120_000);
  assert.equal(r.code, 0, `abaca ${args.join(' ')}: ${r.stderr}`);
  return r;
};

test('abaca mount by name: refused without a rule, then mounted, used and unmounted', {
  skip,
  timeout: 180_000,
}, async () => {
  const share = JSON.parse(
    (await ok('share', 'create', 'NFS', '1', '--name', 'data', '--wait', '-f', 'json')).stdout,
  );

  const closed = await abaca(['mount', 'data', dir], env);
  assert.equal(closed.code, 1);
  assert.match(closed.stderr, /^connecting to abaca:\/\/127\.0\.0\.1:\d+\//m);
  assert.match(
    closed.stderr,
    /Cannot mount data \([0-9a-f-]+\): no access rule of share .* allows 127\.0\.0\.1/,
  );
  assert.equal(mounted(dir), false);

  const nosuch = await abaca(['mount', 'nosuch', dir], env);
  assert.equal(nosuch.code, 1);
  assert.match(nosuch.stderr, /No share with a name or ID of 'nosuch' exists/);

  const wrong = await abaca(['mount', 'data', dir, '--no-token-cache'], { ...env, OS_PASSWORD: 'wrong' });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /401|authenticat|password|credentials/i);

  await ok('share', 'access', 'create', 'data', 'ip', '127.0.0.1', '--wait');
  // Without --foreground: returns once the mount answers, a detached process serves it.
  const r = await ok('mount', 'data', dir);
  assert.match(r.stderr, new RegExp(`mounted data \\(${share.id}\\) at ${dir}`));
  assert.ok(mounted(dir));
  fs.writeFileSync(path.join(dir, 'hello.txt'), 'hello through FUSE');
  assert.equal(fs.readFileSync(path.join(dir, 'hello.txt'), 'utf8'), 'hello through FUSE');
  const st = fs.statfsSync(dir);
  assert.equal(st.blocks * st.bsize, 1024 ** 3); // the share's size
  const again = await abaca(['mount', 'data', dir], env);
  assert.match(again.stderr, /already a mount point/);

  await ok('umount', dir);
  assert.equal(mounted(dir), false);
  assert.deepEqual(fs.readdirSync(dir), []);

  // The data is on the share: mounted again (by id, in the foreground this time) it is there.
  const fg = abaca(['mount', share.id, dir, '--foreground'], env, 120_000);
  for (let i = 0; i < 100 && !mounted(dir); i++) await new Promise((res) => setTimeout(res, 100));
  assert.equal(fs.readFileSync(path.join(dir, 'hello.txt'), 'utf8'), 'hello through FUSE');
  await ok('umount', dir);
  const done = await fg;
  assert.equal(done.code, 0, done.stderr);
  assert.match(done.stderr, /unmounted /);
});
