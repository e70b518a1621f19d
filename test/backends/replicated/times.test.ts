/**
 * Every replica shows the same mtime: the share server stamps each mutation with its clock and the
 * bricks set the times the operation changed to it (reads rotate among replicas, so a file whose
 * copies carried each kernel's own moment showed a different mtime from one stat to the next).
 * Writes, truncates, creates (of a new file, and over an existing one), mkdir, symlink, link,
 * rename and unlink; explicit times (utimes) stay as given.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Cluster, settled } from './helpers.ts';

test('every replica shows the same mtime for files and directories after each kind of change', async () => {
  const cl = await Cluster.start();
  try {
    const admin = await cl.client();
    await admin.createShare('t', 64 * 1024 * 1024);
    const c = await cl.client('t');
    const mtimes = (rel: string) =>
      cl.brickDirs.map((_, i) => fs.lstatSync(path.join(cl.shareDataDir(i, 't'), rel)).mtimeMs);
    const same = async (rel: string, what: string) => {
      await settled(admin, 't');
      const m = mtimes(rel);
      assert.equal(new Set(m).size, 1, `${what}: mtime of '${rel || '<root>'}' per replica: ${m.join(', ')}`);
      return m[0]!;
    };
    await c.mkdir('d');
    await same('', 'mkdir');
    await same('d', 'mkdir');
    await c.writeFile('d/f', 'first');
    const created = await same('d/f', 'create');
    await same('d', 'create');
    await new Promise((r) => setTimeout(r, 20));
    await c.write('d/f', 5, Buffer.from(' and more'));
    assert.ok((await same('d/f', 'write')) > created, 'a write moves mtime forward');
    await c.truncate('d/f', 3);
    await same('d/f', 'truncate');
    await c.symlink('f', 'd/l');
    await same('d/l', 'symlink');
    await c.link('d/f', 'd/g');
    await same('d', 'link');
    await c.rename('d/g', 'h');
    await same('d', 'rename (old directory)');
    await same('', 'rename (new directory)');
    await c.unlink('h');
    await same('', 'unlink');
    // A create with data of a new file, of an existing one (its data replaced), and of an
    // existing one with nothing to change: the bricks stamp these without looking first.
    await new Promise((r) => setTimeout(r, 20));
    const dirBefore = await same('d', 'before creates');
    await c.createWith('d/small', Buffer.from('x'.repeat(100)), { mode: 0o777 });
    const made = await same('d/small', 'create with data');
    assert.ok(
      (await same('d', 'create with data (directory)')) > dirBefore,
      'a new name moves the directory mtime',
    );
    const atimes = cl.brickDirs.map(
      (_, i) => fs.lstatSync(path.join(cl.shareDataDir(i, 't'), 'd/small')).atimeMs,
    );
    assert.deepEqual(
      new Set(atimes),
      new Set([made]),
      'a new file has the same atime as mtime on every replica',
    );
    const modes = cl.brickDirs.map(
      (_, i) => fs.lstatSync(path.join(cl.shareDataDir(i, 't'), 'd/small')).mode & 0o7777,
    );
    assert.deepEqual(modes, [0o777, 0o777, 0o777], 'a mode the umask would clear is kept');
    await new Promise((r) => setTimeout(r, 20));
    const dirAfterNew = await same('d', 'after create');
    await c.createWith('d/small', Buffer.from('y'.repeat(10)));
    assert.ok((await same('d/small', 'create over an existing file')) > made, 'replaced data moves mtime');
    assert.equal(
      await same('d', 'create over an existing file (directory)'),
      dirAfterNew,
      'no new name: directory unchanged',
    );
    const replaced = await same('d/small', 'again');
    await new Promise((r) => setTimeout(r, 20));
    await c.create('d/small');
    assert.equal(await same('d/small', 'create of an existing file, nothing changed'), replaced);
    assert.equal((await c.readFile('d/small')).toString(), 'y'.repeat(10));
    await c.create('d/private', 0o600);
    // Answered at a majority: the third replica may still be applying it.
    await settled(admin, 't');
    const privateModes = cl.brickDirs.map(
      (_, i) => fs.lstatSync(path.join(cl.shareDataDir(i, 't'), 'd/private')).mode & 0o7777,
    );
    assert.deepEqual(privateModes, [0o600, 0o600, 0o600]);
    // Times a client sets are kept as given, on every replica.
    const given = Date.UTC(2020, 0, 2, 3, 4, 5);
    await c.utimes('d/f', given, given);
    assert.equal(await same('d/f', 'utimes'), given);
  } finally {
    await cl.close();
  }
});
