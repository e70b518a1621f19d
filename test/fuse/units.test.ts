/** The pure parts of the mount client: -o options, the node table, export locations, errno mapping. */
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { test } from 'node:test';
import { ReplicatedError } from '../../backends/replicated/protocol/errors.ts';
import { errnoOf } from '../../client/mount/errno.ts';
import { exportLocation } from '../../client/mount/mount.ts';
import { parseMountOptions } from '../../client/mount/mount-options.ts';
import { NodeTable, ROOT_NODE } from '../../client/mount/node-table.ts';
import { parseExportLocation, shareAddressOf } from '../../client/mount/share-connection.ts';
import { stIno } from '../../client/mount/share-fs.ts';

test('-o options: values, defaults, fstab noise, and refusals', () => {
  const cases: Array<[string[], Record<string, unknown> | RegExp]> = [
    [
      [],
      {
        readOnly: false,
        entryTimeout: 1,
        attrTimeout: 1,
        readers: 8,
        retryTimeout: 30,
        writeBehindMiB: 16,
        directReads: true,
      },
    ],
    [['ro'], { readOnly: true }],
    [['ro,rw'], { readOnly: false }],
    [['timeout=5'], { entryTimeout: 5, attrTimeout: 5 }],
    [['attr_timeout=0.5', 'entry_timeout=0'], { attrTimeout: 0.5, entryTimeout: 0 }],
    [['sync'], { writeBehindMiB: 0 }],
    [['write_behind=64,readers=16,retry_timeout=3'], { writeBehindMiB: 64, readers: 16, retryTimeout: 3 }],
    [
      ['defaults,_netdev,noauto,nofail'],
      { ignored: ['defaults', '_netdev', 'noauto', 'nofail'], kernelFlags: [] },
    ],
    [
      ['x-systemd.automount,x-systemd.mount-timeout=30,comment=abaca,async'],
      { ignored: ['x-systemd.automount', 'x-systemd.mount-timeout=30', 'comment=abaca', 'async'] },
    ],
    [
      ['nosuid,nodev', 'noexec,noatime'],
      { kernelFlags: ['nosuid', 'nodev', 'noexec', 'noatime'], ignored: [] },
    ],
    [['noexec=1'], /unknown mount option 'noexec=1'/],
    [['admin_token_file=/etc/abaca/token'], { adminTokenFile: '/etc/abaca/token' }],
    [['no_direct_reads'], { directReads: false }],
    [['no_direct_reads,direct_reads'], { directReads: true }],
    [['frob'], /unknown mount option 'frob'/],
    [['attr_timeout=-1'], /attr_timeout= needs a number/],
    [['readers=0'], /readers= needs a whole number/],
    [['write_behind=x'], /write_behind= needs/],
    [['admin_token_file='], /needs a path/],
  ];
  for (const [lists, want] of cases) {
    if (want instanceof RegExp) assert.throws(() => parseMountOptions(lists), want, lists.join(' '));
    else {
      const got = parseMountOptions(lists) as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(want)) assert.deepEqual(got[k], v, `${lists.join(' ')}: ${k}`);
    }
  }
});

test('node table: lookups, hard links, renames of files and directories, unlink, forget', () => {
  const t = new NodeTable('fedcba9876543-r');
  const d = t.found('d', 'd-id', true, true);
  const f = t.found('d/f', '0123456789abc-f');
  assert.equal(t.found('d/f', '0123456789abc-f'), f);
  assert.equal(f.nlookup, 2);
  // A hard link: the same node under a second name.
  assert.equal(t.found('l', '0123456789abc-f'), f);
  assert.deepEqual([...f.names].sort(), ['d/f', 'l']);
  // A directory rename moves what is below it.
  t.renamed('d', 'e', true);
  assert.equal(d.path, 'e');
  assert.deepEqual([...f.names].sort(), ['e/f', 'l']);
  assert.equal(t.atPath('e/f'), f);
  assert.equal(t.atPath('d/f'), undefined);
  // The directory found under yet another name (renamed by another mount): what is below follows.
  assert.equal(t.found('x/e2', 'd-id', true, true), d);
  assert.deepEqual([d.path, [...d.names]], ['x/e2', ['x/e2']]);
  assert.deepEqual([...f.names].sort(), ['l', 'x/e2/f']);
  t.renamed('x/e2', 'e', true);
  // Found where another directory was: the names known below that one are forgotten.
  const old = t.found('o', 'o-id', true, true);
  const oldChild = t.found('o/f', 'of-id');
  const moved = t.found('m', 'm-id', true, true);
  const movedChild = t.found('m/f', 'mf-id');
  assert.equal(t.found('o', 'm-id', true, true), moved);
  assert.equal(t.atPath('o/f'), movedChild);
  assert.deepEqual([old.path, oldChild.path], [null, null]);
  // Unlinking one name keeps the node reachable by the other.
  t.detach('l');
  assert.equal(f.path, 'e/f');
  t.detach('e/f');
  assert.equal(f.path, null);
  // A rename over a name detaches the file that had it.
  const g = t.found('g', 'g-id');
  const h = t.found('h', 'h-id');
  t.renamed('g', 'h', false);
  assert.equal(g.path, 'h');
  assert.equal(h.path, null);
  // The path now names another file: a new node, the old one loses the name.
  const g2 = t.found('h', 'g2-id');
  assert.notEqual(g2, g);
  assert.equal(g.path, null);
  // FORGET drops a node once the kernel holds no lookup and it is not open.
  const before = t.size;
  t.forget(f.ino, 3); // d/f twice, l once
  assert.equal(t.get(f.ino), undefined);
  g2.open = 1;
  t.forget(g2.ino, 1);
  assert.ok(t.get(g2.ino));
  assert.equal(t.size, before - 1);
  t.forget(ROOT_NODE, 100);
  assert.ok(t.get(ROOT_NODE));
});

test('export locations, st_ino from file ids, errno values', () => {
  assert.deepEqual(parseExportLocation('abaca://10.0.0.2:7400/8f1c'), {
    host: '10.0.0.2',
    port: 7400,
    share: '8f1c',
  });
  assert.deepEqual(parseExportLocation('abaca://[fd00::1]:7400/s/'), {
    host: 'fd00::1',
    port: 7400,
    share: 's',
  });
  assert.deepEqual(parseExportLocation('abaca://10.0.0.2:7400,[fd00::2]:7401/s'), {
    host: '10.0.0.2',
    port: 7400,
    share: 's',
    others: [{ host: 'fd00::2', port: 7401 }],
  });
  for (const bad of ['abaca://10.0.0.2:7400,/s', 'abaca://10.0.0.2/s', 'abaca://h:70000/s', 'abaca://h:1'])
    assert.equal(parseExportLocation(bad), null, bad);
  // The share API's locations: abaca:// ones of the share, preferred first, each server once.
  assert.deepEqual(
    shareAddressOf([
      { path: 'abaca://10.0.0.3:7400/s', preferred: false },
      { path: '10.0.0.9:/nfs/s', preferred: true },
      { path: 'abaca://10.0.0.2:7400/s', preferred: true },
      { path: 'abaca://10.0.0.3:7400,10.0.0.4:7400/s', preferred: false },
    ]),
    {
      host: '10.0.0.2',
      port: 7400,
      share: 's',
      others: [
        { host: '10.0.0.3', port: 7400 },
        { host: '10.0.0.4', port: 7400 },
      ],
    },
  );
  assert.equal(shareAddressOf([{ path: '10.0.0.9:/nfs/s' }]), null);
  assert.equal(
    exportLocation(parseExportLocation('abaca://[fd00::1]:7400,10.0.0.2:7400/s')!),
    'abaca://[fd00::1]:7400,10.0.0.2:7400/s',
  );
  assert.equal(parseExportLocation('nfs://10.0.0.2/x'), null);
  assert.equal(parseExportLocation('data'), null);
  const id = '3f2a9c4e-1b7d-4e8f-9a0b-1c2d3e4f5a6b';
  assert.equal(stIno(id, 7), stIno(id, 9));
  assert.ok(stIno(id, 7) > 1 && Number.isSafeInteger(stIno(id, 7)));
  assert.equal(stIno('', 7), 7);
  const E = constants.errno;
  for (const [code, errno] of [
    ['EDQUOT', E.EDQUOT],
    ['EROFS', E.EROFS],
    ['EACCES', E.EACCES],
    ['ENOTCONN', E.ENOTCONN],
    ['ETIMEDOUT', E.ENOTCONN],
    ['ENXIO', E.ENOTCONN],
    ['ESTALE', E.ESTALE],
    ['EAGAIN', E.EAGAIN],
  ] as const)
    assert.equal(errnoOf(new ReplicatedError(code)), errno, code);
  assert.equal(errnoOf(new Error('bug')), E.EIO);
});

/** A file's attributes as the share server sends them, for the fake connections below. */
const attr = (id: string, type: string, v: number) => ({
  type,
  id,
  v,
  size: 0,
  mode: 0o644,
  nlink: 1,
  atimeMs: 1,
  mtimeMs: 1,
  ctimeMs: 1,
});

test('a create, unlink or rename answered with attributes costs one request to the share server, and the directory GETATTR after it none', async () => {
  const { OP } = await import('../../backends/replicated/protocol/opcodes.ts');
  const { ShareFs } = await import('../../client/mount/share-fs.ts');
  const calls: number[] = [];
  const conn = {
    call: async (op: number) => {
      calls.push(op);
      if (op === OP.getattr)
        return { header: { attr: attr('fedcba9876543-r', 'dir', 1) }, parts: [], payload: Buffer.alloc(0) };
      if (op === OP.create)
        return {
          header: {
            v: 1,
            size: 0,
            attr: attr('0123456789abc-f', 'file', 1),
            dir: attr('fedcba9876543-r', 'dir', 2),
          },
          parts: [],
          payload: Buffer.alloc(0),
        };
      if (op === OP.rename)
        return {
          header: { dir: { ...attr('fedcba9876543-r', 'dir', 4), mtimeMs: 9 } },
          parts: [],
          payload: Buffer.alloc(0),
        };
      if (op === OP.unlink)
        return {
          header: { dir: { ...attr('fedcba9876543-r', 'dir', 3), mtimeMs: 7 } },
          parts: [],
          payload: Buffer.alloc(0),
        };
      throw new Error(`unexpected op ${op}`);
    },
  };
  // biome-ignore lint/suspicious/noExplicitAny: a fake connection with only call()
  const fs = await ShareFs.create(conn as any, { attrTimeoutMs: 1000 });
  calls.length = 0;
  const r = await fs.create(ROOT_NODE, 'f', 0o644, 0o1101);
  assert.equal(r.attr.ino, stIno('0123456789abc-f', -1));
  assert.deepEqual(calls, [OP.create], 'no getattr after the create');
  const dir = await fs.getattr(ROOT_NODE);
  assert.equal(dir.ino, stIno('fedcba9876543-r', -1));
  assert.deepEqual(calls, [OP.create], 'the directory GETATTR is answered from the create reply');
  await fs.getattr(ROOT_NODE);
  assert.deepEqual(calls, [OP.create, OP.getattr], 'once: the next GETATTR asks the server');
  // A removal answered with the directory's attributes: the GETATTR after it needs no request.
  await fs.release(r.attr.nodeid!, r.fh);
  calls.length = 0;
  await fs.unlink(ROOT_NODE, 'f');
  assert.equal((await fs.getattr(ROOT_NODE)).mtimeMs, 7);
  assert.deepEqual(calls, [OP.unlink], 'the directory GETATTR is answered from the unlink reply');
  // A rename within the directory, likewise.
  calls.length = 0;
  await fs.rename(ROOT_NODE, 'g', ROOT_NODE, 'h', 0);
  assert.equal((await fs.getattr(ROOT_NODE)).mtimeMs, 9);
  assert.deepEqual(calls, [OP.rename], 'the directory GETATTR is answered from the rename reply');
});

test('an open keeps the kernel cached pages only when the file is the version they were read at (FOPEN_KEEP_CACHE)', async () => {
  const { OP } = await import('../../backends/replicated/protocol/opcodes.ts');
  const { ShareFs } = await import('../../client/mount/share-fs.ts');
  const { FOPEN_KEEP_CACHE, FOPEN_DIRECT_IO } = await import('../../client/fuse/protocol.ts');
  let v = 1;
  let releaseRead: (() => void) | undefined;
  const attr = (id: string, type: string) => ({
    type,
    id,
    v,
    size: 4,
    mode: 0o644,
    nlink: 1,
    atimeMs: 1,
    mtimeMs: 1,
    ctimeMs: 1,
  });
  const reply = (header: object) => ({ header, parts: [Buffer.from('data')], payload: Buffer.alloc(0) });
  const conn = {
    call: async (op: number, h: { path?: string }) => {
      if (op === OP.getattr)
        return reply({ attr: h.path ? attr('0123456789abc-f', 'file') : attr('fedcba9876543-r', 'dir') });
      if (op === OP.lookup) return reply({ attr: attr('0123456789abc-f', 'file') });
      if (op === OP.read) {
        if (releaseRead === undefined) await new Promise<void>((r) => (releaseRead = r));
        return reply({});
      }
      throw new Error(`unexpected op ${op}`);
    },
  };
  // biome-ignore lint/suspicious/noExplicitAny: a fake connection with only call()
  const fs = await ShareFs.create(conn as any, { attrTimeoutMs: 1000 });
  const ino = (await fs.lookup(ROOT_NODE, 'f')).nodeid!;
  const keeps = async (flags = 0) => {
    const o = await fs.open(ino, flags);
    await fs.release(ino, o.fh);
    return (o.flags ?? 0) & FOPEN_KEEP_CACHE ? 'keep' : 'drop';
  };
  assert.equal(await keeps(), 'drop', 'the first open: nothing is known of the pages');
  assert.equal(await keeps(), 'keep', 'unchanged since the last open');
  v = 2; // another mount (or this one) changed the file
  assert.equal(await keeps(), 'drop', 'changed: the pages go');
  assert.equal(await keeps(), 'keep');

  // A READ still on its way while an open asks for the attributes may bring older data: the next
  // open drops the pages even though the version did not move.
  const o = await fs.open(ino, 0);
  const slow = fs.read(ino, o.fh, 0, 4);
  await new Promise((r) => setImmediate(r));
  assert.equal(await keeps(), 'keep', 'this open still trusts the pages read before the slow READ was sent');
  releaseRead!();
  await slow;
  assert.equal(await keeps(), 'drop', 'the open that overlapped the READ did not vouch for the pages');
  assert.equal(await keeps(), 'keep');
  await fs.release(ino, o.fh);

  const ap = await fs.open(ino, 0o2000 /* O_APPEND */);
  assert.equal(ap.flags, FOPEN_DIRECT_IO, 'appends bypass the page cache');
  await fs.release(ino, ap.fh);
});

test('READDIRPLUS: listed names come with attributes and node IDs (a lookup each), only for the entries that fit', async () => {
  const { OP } = await import('../../backends/replicated/protocol/opcodes.ts');
  const { ShareFs } = await import('../../client/mount/share-fs.ts');
  const { ENTRY_OUT_SIZE, packDirentsPlus } = await import('../../client/fuse/protocol.ts');
  const attr = (id: string, type: string, size = 0) => ({
    type,
    id,
    v: 1,
    size,
    mode: type === 'dir' ? 0o755 : 0o644,
    nlink: 1,
    atimeMs: 1,
    mtimeMs: 1,
    ctimeMs: 1,
  });
  const calls: number[] = [];
  let writeDone: (() => void) | undefined;
  const files: Record<string, ReturnType<typeof attr>> = {
    '': attr('fedcba9876543-r', 'dir'),
    a: attr('000000000000a-a', 'file', 5),
    b: attr('000000000000b-b', 'file', 7),
  };
  const conn = {
    call: async (op: number, h: { path: string }) => {
      calls.push(op);
      if (op === OP.getattr) return { header: { attr: files[h.path] }, parts: [] };
      if (op === OP.readdir)
        return {
          header: {
            entries: [
              { name: 'a', ...attr('000000000000a-a', 'file', 5) },
              { name: 'b', ...attr('000000000000b-b', 'file', 7) },
              { name: 'sub', ...attr('000000000000c-c', 'dir') },
            ],
            done: true,
          },
          parts: [],
        };
      if (op === OP.lookup) return { header: { attr: attr('000000000000b-b', 'file', 7) }, parts: [] };
      if (op === OP.write) return new Promise((r) => (writeDone = () => r({ header: {}, parts: [] })));
      throw new Error(`unexpected op ${op}`);
    },
  };
  // biome-ignore lint/suspicious/noExplicitAny: a fake connection with only call()
  const fs = await ShareFs.create(conn as any, { attrTimeoutMs: 1000 });
  assert.equal(fs.readdirPlus, true);
  const dh = await fs.opendir();
  const entries = await fs.readdir(ROOT_NODE, dh, 0);
  assert.deepEqual(
    entries.map((e) => e.name),
    ['.', '..', 'a', 'b', 'sub'],
  );
  // Room for 3 records: ".", ".." (no attributes, no lookup) and "a".
  const rec = (name: string) => (ENTRY_OUT_SIZE + 24 + name.length + 7) & ~7;
  const buf = packDirentsPlus(entries, 0, rec('.') + rec('..') + rec('a'), 1, 1);
  assert.equal(buf.length, rec('.') + rec('..') + rec('a'));
  assert.equal(buf.readBigUInt64LE(0), 0n, '"." has node ID 0');
  const aAt = rec('.') + rec('..');
  const aNode = Number(buf.readBigUInt64LE(aAt));
  assert.ok(aNode > 1, 'a has a node ID');
  assert.equal(buf.toString('utf8', aAt + ENTRY_OUT_SIZE + 24, aAt + ENTRY_OUT_SIZE + 25), 'a');
  assert.equal(buf.readBigUInt64LE(aAt + 40 + 8), 5n, "a's size in its attributes");
  assert.equal(fs.nodes.get(aNode)?.path, 'a');
  assert.equal(fs.nodes.atPath('b'), undefined, 'b did not fit: no node, no lookup counted');
  // The node lives on its one lookup until the kernel forgets it.
  calls.length = 0;
  assert.equal((await fs.getattr(aNode)).size, 5);
  fs.forget(aNode, 1);
  assert.equal(fs.nodes.get(aNode), undefined, 'forgotten after the one lookup READDIRPLUS counted');

  // A file with write-behind on its way is listed without attributes (its size on the server is behind).
  const b = await fs.lookup(ROOT_NODE, 'b');
  const fh = (await fs.open(b.nodeid!, 1)).fh;
  await fs.write(b.nodeid!, fh, 7, Buffer.from('more'));
  const plusB = entries.find((e) => e.name === 'b')!.plus!;
  assert.equal(plusB(), null, 'no attributes while writes are in flight');
  writeDone!();
  await fs.flush(b.nodeid!, fh);
  assert.equal(plusB()?.nodeid, b.nodeid, 'attributes again once they reached the server');
  await fs.release(b.nodeid!, fh);
});

test('a share server without reserved ids gets creates at once; after a reconnection the mount asks again, and takes the server clock for deferred creates', async () => {
  const { OP } = await import('../../backends/replicated/protocol/opcodes.ts');
  const { ShareFs } = await import('../../client/mount/share-fs.ts');
  let reservesIds = false; // an older share server first
  const HOUR = 3_600_000; // the newer one's clock is an hour ahead of this host's
  const calls: number[] = [];
  const conn = {
    call: async (op: number) => {
      calls.push(op);
      const reply = (header: Record<string, unknown>) => ({ header, parts: [], payload: Buffer.alloc(0) });
      if (op === OP.getattr) return reply({ attr: attr('fedcba9876543-r', 'dir', 1) });
      if (op === OP.newIds) {
        if (!reservesIds) throw new ReplicatedError('ENOSYS', 'unknown opcode');
        return reply({ ids: ['0123456789abc-1', '0123456789abc-2'], now: Date.now() + HOUR });
      }
      if (op === OP.create) return reply({ v: 1, size: 0, attr: attr('0123456789abc-f', 'file', 1) });
      throw new Error(`unexpected op ${op}`);
    },
    onReconnect: undefined as undefined | ((c: unknown) => Promise<void>),
  };
  const settle = () => new Promise((r) => setImmediate(r));
  // biome-ignore lint/suspicious/noExplicitAny: a fake connection with only call()
  const fs = await ShareFs.create(conn as any, { attrTimeoutMs: 1000 });
  await settle();
  assert.deepEqual(calls, [OP.getattr, OP.newIds], 'asked once, refused');
  calls.length = 0;
  await fs.create(ROOT_NODE, 'a', 0o644, 0o1101);
  assert.deepEqual(calls, [OP.create], 'sent at once, and not asked again on this connection');
  // The mount reconnects, to a share server that reserves ids (a failover to a newer one).
  reservesIds = true;
  await conn.onReconnect!(conn);
  calls.length = 0;
  await fs.create(ROOT_NODE, 'b', 0o644, 0o1101);
  await settle();
  assert.ok(calls.includes(OP.newIds), `asked again after the reconnection: ${calls}`);
  calls.length = 0;
  const r = await fs.create(ROOT_NODE, 'c', 0o644, 0o1101);
  assert.ok(!calls.includes(OP.create), `and the next create is deferred under a reserved id: ${calls}`);
  assert.equal(r.attr.ino, stIno('0123456789abc-2', -1));
  // Its times are the server's clock, as the file will have them once sent.
  assert.ok(
    Math.abs(r.attr.mtimeMs - (Date.now() + HOUR)) < 5_000,
    `mtime ${r.attr.mtimeMs - Date.now()} ms ahead`,
  );
});
