/**
 * POSIX behaviour of `abaca mount`: one script of file operations (results and error codes) runs
 * on a replicated share mounted with FUSE and on a local ext4 directory, and both must give the
 * same transcript. Also the quota: EDQUOT at exactly the share's size, statfs = the share.
 * Real bricks and share server; needs root and /dev/fuse (skipped with the reason otherwise).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, type TestContext, test } from 'node:test';
import { Cluster } from '../backends/replicated/helpers.ts';
import { codeOf, errCode, fuseSkip, mount, ROOT, tempDir, unmountAll } from './helpers.ts';

const skip = fuseSkip;
let cl: Cluster;
let work = '';
const QUOTA = 4 * 1024 * 1024;

before(async () => {
  if (skip) return;
  work = tempDir('abaca-fuse-posix-');
  cl = await Cluster.start();
  const admin = await cl.client();
  const access = [{ id: 'r1', to: '127.0.0.1', level: 'rw' as const }];
  await admin.createShare('posix', 1024 * 1024 * 1024, { access });
  await admin.createShare('quota', QUOTA, { access });
});
after(async () => {
  await unmountAll();
  await cl?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const location = (share: string) => `abaca://127.0.0.1:${cl.server.port}/${share}`;

/** The operations, each step's outcome one line: what it returned, or its error code. */
function transcript(root: string): string[] {
  const out: string[] = [];
  const j = (...p: string[]) => path.join(root, ...p);
  const step = (name: string, fn: () => unknown) => {
    try {
      const r = fn();
      out.push(`${name}: ok${r === undefined ? '' : ` ${JSON.stringify(r)}`}`);
    } catch (err) {
      out.push(`${name}: ${errCode(err)}`);
    }
  };
  const read = (...p: string[]) => fs.readFileSync(j(...p), 'utf8');
  const mode = (...p: string[]) => (fs.lstatSync(j(...p)).mode & 0o7777).toString(8);
  const kind = (...p: string[]) => {
    const st = fs.lstatSync(j(...p));
    return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
  };

  step('mkdir d', () => fs.mkdirSync(j('d')));
  step('mkdir d again', () => fs.mkdirSync(j('d')));
  step('mkdir in a missing parent', () => fs.mkdirSync(j('nope', 'x')));
  step('mkdir a 256-byte name', () => fs.mkdirSync(j('n'.repeat(256))));
  step('create a 256-byte name', () => fs.writeFileSync(j('n'.repeat(256)), 'x'));
  step('mkdir a 255-byte name', () => fs.mkdirSync(j('n'.repeat(255))));
  step('stat a 256-byte name', () => fs.statSync(j('n'.repeat(256))));
  step('write d/f', () => fs.writeFileSync(j('d', 'f'), 'hello'));
  step('read d/f', () => read('d', 'f'));
  step('size d/f', () => fs.statSync(j('d', 'f')).size);
  step('kind d, d/f', () => [kind('d'), kind('d', 'f')]);
  step('rmdir a non-empty dir', () => fs.rmdirSync(j('d')));
  step('open a missing file', () => fs.openSync(j('missing'), 'r'));
  step('stat a missing file', () => fs.statSync(j('d', 'missing')));
  step('open a dir for writing', () => fs.openSync(j('d'), 'w'));
  step('read a dir', () => fs.readFileSync(j('d')));
  step('create exclusive over a file', () => fs.openSync(j('d', 'f'), 'wx'));
  step('create exclusive over a dir', () => fs.openSync(j('d'), 'wx'));
  step('create exclusive new', () => fs.closeSync(fs.openSync(j('d', 'new'), 'wx')));
  step('append', () => {
    fs.appendFileSync(j('d', 'f'), ' world');
    return read('d', 'f');
  });
  step('O_APPEND fd after a write through another fd', () => {
    const a = fs.openSync(j('d', 'f'), 'a');
    fs.writeFileSync(j('d', 'f'), 'xyz');
    fs.writeSync(a, '!');
    fs.closeSync(a);
    return read('d', 'f');
  });
  step('truncate smaller', () => {
    fs.truncateSync(j('d', 'f'), 2);
    return read('d', 'f');
  });
  step('truncate larger (zeros)', () => {
    fs.truncateSync(j('d', 'f'), 5);
    return fs.readFileSync(j('d', 'f')).toString('hex');
  });
  step('pwrite past the end (hole)', () => {
    const fd = fs.openSync(j('d', 'f'), 'r+');
    fs.writeSync(fd, 'Z', 8);
    fs.closeSync(fd);
    return fs.readFileSync(j('d', 'f')).toString('hex');
  });
  step('ftruncate through an fd', () => {
    const fd = fs.openSync(j('d', 'f'), 'r+');
    fs.ftruncateSync(fd, 1);
    const size = fs.fstatSync(fd).size;
    fs.closeSync(fd);
    return size;
  });
  step('open O_TRUNC', () => {
    fs.writeFileSync(j('d', 't'), 'long contents');
    fs.closeSync(fs.openSync(j('d', 't'), 'r+'));
    const fd = fs.openSync(j('d', 't'), fs.constants.O_RDWR | fs.constants.O_TRUNC);
    fs.closeSync(fd);
    return fs.statSync(j('d', 't')).size;
  });
  step('chmod', () => {
    fs.chmodSync(j('d', 'f'), 0o640);
    return mode('d', 'f');
  });
  step('chmod a dir', () => {
    fs.chmodSync(j('d'), 0o750);
    return mode('d');
  });
  step('utimes', () => {
    fs.utimesSync(j('d', 'f'), 1_000_000, 1_500_000);
    const st = fs.statSync(j('d', 'f'));
    return [Math.round(st.atimeMs / 1000), Math.round(st.mtimeMs / 1000)];
  });
  step('chown to root', () => fs.chownSync(j('d', 'f'), 0, 0));
  step('rename over an existing file', () => {
    fs.writeFileSync(j('a'), 'A');
    fs.writeFileSync(j('b'), 'B');
    fs.renameSync(j('a'), j('b'));
    return [read('b'), fs.existsSync(j('a'))];
  });
  step('rename a missing file', () => fs.renameSync(j('missing'), j('x')));
  step('rename a dir over a non-empty dir', () => {
    fs.mkdirSync(j('e'));
    fs.mkdirSync(j('full'));
    fs.writeFileSync(j('full', 'x'), 'x');
    fs.renameSync(j('e'), j('full'));
  });
  step('rename a dir over an empty dir', () => {
    fs.mkdirSync(j('empty'));
    fs.renameSync(j('e'), j('empty'));
    return [fs.existsSync(j('e')), kind('empty')];
  });
  step('rename a file over a dir', () => fs.renameSync(j('b'), j('full')));
  step('rename a dir over a file', () => fs.renameSync(j('full'), j('b')));
  step('rename a dir into itself', () => fs.renameSync(j('full'), j('full', 'sub')));
  step('rename a dir with contents', () => {
    fs.renameSync(j('full'), j('moved'));
    return [read('moved', 'x'), fs.existsSync(j('full'))];
  });
  step('directory link counts after mkdir, a rename between directories and rmdir', () => {
    fs.mkdirSync(j('p1'));
    fs.mkdirSync(j('p2'));
    fs.mkdirSync(j('p1', 'sub'));
    const counts = () => [fs.statSync(j('p1')).nlink, fs.statSync(j('p2')).nlink];
    const made = counts();
    fs.renameSync(j('p1', 'sub'), j('p2', 'sub'));
    const moved = counts();
    fs.rmdirSync(j('p2', 'sub'));
    return [made, moved, counts()];
  });
  step('hard link', () => {
    fs.linkSync(j('b'), j('l'));
    const a = fs.statSync(j('b'));
    const b = fs.statSync(j('l'));
    return [a.nlink, b.nlink, a.ino === b.ino, read('l')];
  });
  step('write through one link, read the other', () => {
    fs.writeFileSync(j('l'), 'through l');
    return read('b');
  });
  step('hard link over an existing name', () => fs.linkSync(j('b'), j('l')));
  step('hard link to a dir', () => fs.linkSync(j('d'), j('dl')));
  step('unlink one link', () => {
    fs.unlinkSync(j('l'));
    return [fs.statSync(j('b')).nlink, read('b')];
  });
  step('symlink', () => {
    fs.symlinkSync('d/f', j('s'));
    return [fs.readlinkSync(j('s')), kind('s'), read('s')];
  });
  step('symlink over an existing name', () => fs.symlinkSync('x', j('s')));
  step('dangling symlink', () => {
    fs.symlinkSync('nowhere', j('dangling'));
    return [fs.readlinkSync(j('dangling')), codeOf(() => fs.statSync(j('dangling')))];
  });
  step('readlink of a file', () => fs.readlinkSync(j('b')));
  step('unlink a dir', () => fs.unlinkSync(j('d')));
  step('rmdir a file', () => fs.rmdirSync(j('b')));
  step('unlink a missing file', () => fs.unlinkSync(j('missing')));
  step('unlink while open: the fd still reads and writes', () => {
    fs.writeFileSync(j('open'), 'still here');
    const fd = fs.openSync(j('open'), 'r+');
    fs.unlinkSync(j('open'));
    const gone = !fs.existsSync(j('open'));
    const buf = Buffer.alloc(10);
    fs.readSync(fd, buf, 0, 10, 0);
    fs.writeSync(fd, '!', 10);
    const size = fs.fstatSync(fd).size;
    fs.closeSync(fd);
    return [gone, buf.toString(), size, fs.readdirSync(root).filter((n) => n.startsWith('.')).length];
  });
  step('fsync and fdatasync', () => {
    const fd = fs.openSync(j('b'), 'r+');
    fs.writeSync(fd, 'synced', 0);
    fs.fsyncSync(fd);
    fs.fdatasyncSync(fd);
    fs.closeSync(fd);
    return read('b');
  });
  step('large file round trip', () => {
    const data = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 12)) & 0xff;
    fs.writeFileSync(j('big'), data);
    return fs.readFileSync(j('big')).equals(data);
  });
  step('readdir', () => fs.readdirSync(root).sort());
  step('readdir with types', () =>
    fs
      .readdirSync(j('d'), { withFileTypes: true })
      .map((e) => `${e.name}:${e.isFile() ? 'f' : e.isDirectory() ? 'd' : '?'}`)
      .sort(),
  );
  step('rmdir a missing dir', () => fs.rmdirSync(j('missing')));
  step('rm -r', () => {
    fs.rmSync(j('d'), { recursive: true });
    fs.rmSync(j('moved'), { recursive: true });
    return fs.readdirSync(root).sort();
  });
  return out;
}

/** statfs f_type of ext4 (and ext2/3). */
const EXT4_MAGIC = 0xef53;

/**
 * A new directory on ext4 to run the script in: under the temporary directory when that is ext4,
 * else in the checkout (a tmpfs /tmp would answer some steps differently).
 */
function ext4Dir(t: TestContext): string {
  for (const base of [work, ROOT])
    if (fs.statfsSync(base).type === EXT4_MAGIC) {
      const dir = fs.mkdtempSync(path.join(base, '.posix-ext4-'));
      t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
      return dir;
    }
  throw new Error(`neither ${work} nor ${ROOT} is on ext4: nothing to compare the mount with`);
}

test('the same script gives the same results on the mount and on local ext4', {
  skip,
  timeout: 120_000,
}, async (t) => {
  const m = await mount(location('posix'), path.join(work, 'mnt'));
  const local = ext4Dir(t);
  const want = transcript(local);
  const got = transcript(m.dir);
  const diffs = want.flatMap((line, i) => (line === got[i] ? [] : [`ext4:  ${line}\nabaca: ${got[i]}`]));
  assert.equal(got.length, want.length);
  assert.deepEqual(diffs, [], `differences from ext4:\n${diffs.join('\n')}`);
  if (process.env.ABACA_TEST_VERBOSE) console.log(got.join('\n'));
});

test('EDQUOT at exactly the share size; statfs reports the share', { skip, timeout: 60_000 }, async () => {
  const m = await mount(location('quota'), path.join(work, 'quota'));
  const st = fs.statfsSync(m.dir);
  assert.equal(st.blocks * st.bsize, QUOTA);
  const f = path.join(m.dir, 'fill');
  fs.writeFileSync(f, Buffer.alloc(QUOTA - 1, 1));
  fs.appendFileSync(f, 'x'); // exactly the size
  assert.equal(fs.statSync(f).size, QUOTA);
  assert.equal(fs.statfsSync(m.dir).bavail, 0);
  assert.equal(
    codeOf(() => fs.appendFileSync(f, 'y')),
    'EDQUOT',
  );
  assert.equal(
    codeOf(() => fs.writeFileSync(path.join(m.dir, 'other'), 'z')),
    'EDQUOT',
  );
  // A large write past the quota, written behind: refused by a later write or by close.
  fs.unlinkSync(path.join(m.dir, 'other'));
  fs.truncateSync(f, 0);
  assert.equal(
    codeOf(() => fs.writeFileSync(path.join(m.dir, 'huge'), Buffer.alloc(QUOTA + 1024 * 1024, 2))),
    'EDQUOT',
  );
  fs.unlinkSync(path.join(m.dir, 'huge'));
  fs.writeFileSync(f, Buffer.alloc(QUOTA, 1));
  // Space comes back when a file shrinks.
  fs.truncateSync(f, QUOTA - 10);
  fs.writeFileSync(path.join(m.dir, 'other'), '0123456789');
  assert.equal(
    codeOf(() => fs.appendFileSync(f, 'w')),
    'EDQUOT',
  );
});
