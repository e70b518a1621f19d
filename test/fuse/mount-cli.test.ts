/**
 * `abaca mount` as a user meets it, against the whole stack (abaca-server in solo mode: API,
 * identity, bricks and share server, which checks the user's token): by share name with the OS_*
 * credentials, detached once mounted, refused with a one-line reason (no rule, no such share,
 * wrong password, FUSE not available), and `abaca umount`; `mount -t abaca` and an fstab line
 * through bin/mount.abaca, with the credentials of an application credential in clouds.yaml.
 * Needs root and /dev/fuse (skipped with the reason otherwise).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { isMountPoint, readMounts } from '../../client/mount/mountinfo.ts';
import { tempDir } from '../helpers/db.ts';
import { type ServerProcess, startServerProcess } from '../helpers/process.ts';
import { ABACA, abaca, fuseSkip, ROOT, runCommand as run } from './helpers.ts';

const skip = fuseSkip;

const NODE = process.execPath;
/** Where mount(8) looks for mount.<type> helpers (/sbin is /usr/sbin on Debian 12). */
const SBIN_HELPER = '/sbin/mount.abaca';

/** Why mount(8) cannot be given this checkout's helper, or false. */
function helperSkip(): string | false {
  // Absent, or a link left dangling by a checkout that is gone: this test puts its own there.
  if (!fs.existsSync(SBIN_HELPER)) return false;
  if (fs.realpathSync(SBIN_HELPER) === fs.realpathSync(path.join(ROOT, 'bin', 'mount.abaca'))) return false;
  const why = `${SBIN_HELPER} is another installation's; this test needs this checkout's`;
  if (process.env.CI) throw new Error(why);
  return why;
}

/** Links SBIN_HELPER to this checkout's bin/mount.abaca unless it already is; remove() undoes it. */
function installHelper(): { remove: () => void } {
  if (fs.existsSync(SBIN_HELPER)) return { remove: () => {} };
  fs.rmSync(SBIN_HELPER, { force: true });
  fs.symlinkSync(path.join(ROOT, 'bin', 'mount.abaca'), SBIN_HELPER);
  return { remove: () => fs.rmSync(SBIN_HELPER, { force: true }) };
}
const PASSWORD = 'mount-test-password';
const data = tempDir('abaca-fuse-cli');
let server: ServerProcess;
let env: Record<string, string>;
const dir = path.join(data.path, 'mnt');

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
  if (dir && isMountPoint(dir)) await abaca(['umount', '-l', dir], env);
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
  assert.equal(isMountPoint(dir), false);

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
  assert.ok(isMountPoint(dir));
  fs.writeFileSync(path.join(dir, 'hello.txt'), 'hello through FUSE');
  assert.equal(fs.readFileSync(path.join(dir, 'hello.txt'), 'utf8'), 'hello through FUSE');
  const st = fs.statfsSync(dir);
  assert.equal(st.blocks * st.bsize, 1024 ** 3); // the share's size
  const again = await abaca(['mount', 'data', dir], env);
  assert.match(again.stderr, /already a mount point/);

  await ok('umount', dir);
  assert.equal(isMountPoint(dir), false);
  assert.deepEqual(fs.readdirSync(dir), []);

  // The data is on the share: mounted again (by id, in the foreground this time) it is there.
  const fg = abaca(['mount', share.id, dir, '--foreground'], env, 120_000);
  for (let i = 0; i < 100 && !isMountPoint(dir); i++) await new Promise((res) => setTimeout(res, 100));
  assert.equal(fs.readFileSync(path.join(dir, 'hello.txt'), 'utf8'), 'hello through FUSE');
  await ok('umount', dir);
  const done = await fg;
  assert.equal(done.code, 0, done.stderr);
  assert.match(done.stderr, /unmounted /);
});

test('FUSE not available: a one-line reason, before anything is asked of the API', {
  skip,
  timeout: 60_000,
}, async () => {
  // Not root: setpriv runs the same command as nobody.
  const user = await run('setpriv', [
    '--reuid',
    '65534',
    '--regid',
    '65534',
    '--clear-groups',
    NODE,
    ABACA,
    'mount',
    'data',
    dir,
  ]);
  assert.equal(user.code, 1, user.stderr);
  assert.equal(
    user.stderr,
    'Cannot mount data: FUSE is not available to this user: abaca mount must run as root.\n',
  );
  // No /dev/fuse (a container without the device): an empty /dev in a mount namespace of its own.
  const nodev = await run('unshare', [
    '--mount',
    '--propagation',
    'private',
    'sh',
    '-c',
    `mount -t tmpfs tmpfs /dev && exec "${NODE}" "${ABACA}" mount data "${dir}"`,
  ]);
  assert.equal(nodev.code, 1, nodev.stderr);
  assert.equal(
    nodev.stderr,
    'Cannot mount data: FUSE is not available: /dev/fuse does not exist (modprobe fuse).\n',
  );
  assert.equal(isMountPoint(dir), false);
});

test('mount -t abaca and an fstab line: credentials from clouds.yaml (an application credential), options for the kernel, mount -a twice', {
  skip: skip || helperSkip(),
  timeout: 180_000,
}, async (t) => {
  const installed = installHelper();
  t.after(installed.remove);
  const cred = JSON.parse(
    (await ok('application', 'credential', 'create', 'fstab-mount', '-f', 'json')).stdout,
  );
  // What a host has at boot: no OS_* variables, a clouds.yaml naming the cloud. mount(8) clears
  // HOME and PATH for its helpers, so the test's clouds.yaml is found through XDG_CONFIG_HOME (at
  // boot: root's ~/.config/openstack or /etc/openstack).
  const config = path.join(data.path, 'config');
  fs.mkdirSync(path.join(config, 'openstack'), { recursive: true });
  fs.writeFileSync(
    path.join(config, 'openstack', 'clouds.yaml'),
    [
      'clouds:',
      '  here:',
      '    auth_type: v3applicationcredential',
      '    auth:',
      `      auth_url: ${env.OS_AUTH_URL}`,
      `      application_credential_id: ${cred.id}`,
      `      application_credential_secret: ${cred.secret}`,
      '',
    ].join('\n'),
  );
  const bootEnv = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    XDG_CONFIG_HOME: config,
    XDG_CACHE_HOME: path.join(data.path, 'boot-cache'),
    LANG: 'C.UTF-8',
  };

  // mount -t abaca SHARE DIR -o …: read-only, with generic flags that reach the kernel's mount.
  const byHand = path.join(data.path, 'by-hand');
  const fromFstab = path.join(data.path, 'from-fstab');
  fs.mkdirSync(byHand);
  fs.mkdirSync(fromFstab);
  t.after(async () => {
    for (const d of [byHand, fromFstab]) if (isMountPoint(d)) await run('umount', ['-l', d]);
  });
  const m = await run(
    'mount',
    ['-t', 'abaca', 'data', byHand, '-o', 'ro,os_cloud=here,nosuid,nodev,noexec,attr_timeout=2'],
    bootEnv,
  );
  assert.equal(m.code, 0, m.stderr);
  const entry = readMounts().find((e) => e.mountPoint === byHand);
  assert.ok(entry, 'mounted');
  assert.equal(entry.fsType, 'fuse.abaca');
  assert.equal(entry.source, 'data');
  for (const flag of ['ro', 'nosuid', 'nodev', 'noexec'])
    assert.ok(entry.options.includes(flag), `${flag} in ${entry.options}`);
  assert.equal(fs.readFileSync(path.join(byHand, 'hello.txt'), 'utf8'), 'hello through FUSE');
  assert.throws(() => fs.writeFileSync(path.join(byHand, 'no'), 'x'), { code: 'EROFS' });
  assert.equal((await run('umount', [byHand])).code, 0);

  // /etc/fstab's form (mount -T reads another file in its place): options mount(8) and systemd use.
  const fstab = path.join(data.path, 'fstab');
  fs.writeFileSync(
    fstab,
    `data ${fromFstab} abaca _netdev,nofail,noatime,os_cloud=here,x-systemd.mount-timeout=30,comment=abaca 0 0\n`,
  );
  for (const round of [1, 2]) {
    // The second mount -a finds the share mounted and leaves it.
    const a = await run('mount', ['-a', '-T', fstab], bootEnv);
    assert.equal(a.code, 0, `mount -a, round ${round}: ${a.stderr}`);
    assert.equal(readMounts().filter((e) => e.mountPoint === fromFstab).length, 1, `round ${round}`);
  }
  fs.writeFileSync(path.join(fromFstab, 'from-fstab.txt'), 'written');
  assert.equal(fs.readFileSync(path.join(fromFstab, 'hello.txt'), 'utf8'), 'hello through FUSE');
  assert.ok(
    readMounts()
      .find((e) => e.mountPoint === fromFstab)
      ?.options.includes('noatime'),
  );
  assert.equal((await run('umount', [fromFstab])).code, 0);
  assert.equal(isMountPoint(fromFstab), false);
});
