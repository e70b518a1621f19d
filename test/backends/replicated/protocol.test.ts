import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ReplicatedClient } from '../../../backends/replicated/client/client.ts';
import { encodeFrame } from '../../../backends/replicated/protocol/frame.ts';
import { OP } from '../../../backends/replicated/protocol/opcodes.ts';
import { RpcClient } from '../../../backends/replicated/protocol/rpc-client.ts';
import { Cluster, expectCode } from './helpers.ts';

let cl: Cluster;
let c: ReplicatedClient;

before(async () => {
  cl = await Cluster.start({ serverArgs: ['--handshake-ms', '500'] });
  const admin = await cl.client();
  await admin.createShare('p', 1 << 24);
  c = await cl.client('p');
  await c.writeFile('ok.txt', 'fine');
});
after(async () => {
  await cl?.close();
});

/** Sends raw bytes; resolves with what the server sent back before closing (or after `ms`). */
function raw(
  port: number,
  bytes: Buffer,
  ms = 3000,
  endAfter = false,
): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const t = setTimeout(() => {
      s.destroy();
      resolve({ data: Buffer.concat(chunks), closed: false });
    }, ms);
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(t);
      resolve({ data: Buffer.concat(chunks), closed: true });
    });
    s.on('connect', () => {
      if (bytes.length > 0) s.write(bytes);
      if (endAfter) s.end();
    });
  });
}

function errorOf(data: Buffer): string {
  const hlen = data.readUInt32BE(12);
  return String(JSON.parse(data.toString('utf8', 16, 16 + hlen)).e);
}

async function stillServes(): Promise<void> {
  assert.equal((await c.readFile('ok.txt')).toString(), 'fine');
}

test('oversized, undersized and garbled frames get an error and a disconnect', async () => {
  const big = Buffer.alloc(4);
  big.writeUInt32BE(0xfffffff0, 0);
  let r = await raw(cl.server.port, big);
  assert.ok(r.closed);
  assert.equal(errorOf(r.data), 'EMSGSIZE');
  const tiny = Buffer.alloc(8);
  tiny.writeUInt32BE(3, 0);
  r = await raw(cl.server.port, tiny);
  assert.ok(r.closed);
  assert.equal(errorOf(r.data), 'EINVAL');
  const garbled = Buffer.concat(encodeFrame(1, OP.getattr, 0, { path: 'ok.txt' }));
  garbled.write('!!!!', 16);
  r = await raw(cl.server.port, garbled);
  assert.ok(r.closed);
  assert.equal(errorOf(r.data), 'EINVAL');
  const headerTooLong = Buffer.concat(encodeFrame(1, OP.getattr, 0, { path: 'ok.txt' }));
  headerTooLong.writeUInt32BE(0x7fffffff, 12);
  r = await raw(cl.server.port, headerTooLong);
  assert.ok(r.closed);
  await stillServes();
  // the bricks defend themselves the same way
  r = await raw(cl.bricks[0]!.port, big);
  assert.ok(r.closed);
  assert.equal(errorOf(r.data), 'EMSGSIZE');
  await stillServes();
});

test('a truncated frame then a close, and an idle client, leave the server serving', async () => {
  const f = Buffer.concat(encodeFrame(7, OP.write, 0, { path: 'ok.txt', off: 0 }, Buffer.alloc(1000, 120)));
  const r = await raw(cl.server.port, f.subarray(0, 500), 1000, true);
  assert.ok(r.closed);
  assert.equal(r.data.length, 0);
  const idle = await raw(cl.server.port, Buffer.alloc(0), 5000);
  assert.ok(idle.closed, 'an idle client is disconnected after the handshake timeout');
  const partial = await raw(cl.server.port, f.subarray(0, 10), 5000);
  assert.ok(partial.closed, 'a client stuck inside its first frame is disconnected too');
  const ping = Buffer.concat(encodeFrame(1, OP.ping, 0, {}));
  const later = await raw(cl.server.port, Buffer.concat([ping, f.subarray(0, 300)]), 5000);
  assert.ok(later.closed, 'and so is one that stalls inside a later frame');
  assert.equal(later.data.readUInt32BE(4), 1, 'after its complete request was answered');
  const idleAfterFrame = await raw(cl.server.port, ping, 1500);
  assert.equal(idleAfterFrame.closed, false, 'idle between frames is fine');
  await stillServes();
});

test('a stranger may send headers but no file data: a frame of 1 MiB is refused until mounted or admin', async () => {
  const { FRAME_PREFIX, MAX_HEADER } = await import('../../../backends/replicated/protocol/frame.ts');
  // A length field alone is refused before anything is set aside for the frame.
  const field = Buffer.alloc(4);
  field.writeUInt32BE(1024 * 1024 + 100, 0);
  let r = await raw(cl.server.port, field);
  assert.ok(r.closed);
  assert.equal(errorOf(r.data), 'EMSGSIZE');
  assert.match(r.data.toString(), new RegExp(`over ${FRAME_PREFIX + MAX_HEADER}`));
  // A frame of a header that is nearly the largest allowed is still read and answered.
  const bigHeader = Buffer.concat(encodeFrame(1, OP.ping, 0, { pad: 'p'.repeat(MAX_HEADER - 100) }));
  r = await raw(cl.server.port, bigHeader, 1500);
  assert.equal(r.closed, false);
  assert.equal(r.data.readUInt32BE(4), 1);
  const write = Buffer.concat(
    encodeFrame(2, OP.write, 0, { path: 'ok.txt', off: 0 }, Buffer.alloc(1024 * 1024, 120)),
  );
  // A mount that was refused does not let the connection in.
  const refused = Buffer.concat(encodeFrame(1, OP.mount, 0, { share: 'no-such-share' }));
  r = await raw(cl.server.port, refused, 1500);
  assert.notEqual(errorOf(r.data), 'EMSGSIZE');
  const afterRefused = await new Promise<{ data: Buffer; closed: boolean }>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: cl.server.port });
    const chunks: Buffer[] = [];
    s.on('data', (d) => {
      chunks.push(d);
      if (chunks.length === 1) s.write(write);
    });
    s.on('error', () => {});
    s.on('close', () => resolve({ data: Buffer.concat(chunks), closed: true }));
    s.on('connect', () => s.write(refused));
    setTimeout(() => {
      s.destroy();
      resolve({ data: Buffer.concat(chunks), closed: false });
    }, 3000);
  });
  assert.ok(afterRefused.closed);
  assert.match(afterRefused.data.toString(), /EMSGSIZE/);
  // With the admin token checked, the same connection may send a whole frame: the write is
  // answered (it needs a mount), and the connection goes on.
  const rpc = await RpcClient.connect('127.0.0.1', cl.server.port);
  try {
    await rpc.request(OP.serverState, { token: cl.adminToken });
    await expectCode(rpc.request(OP.write, { path: 'ok.txt', off: 0 }, Buffer.alloc(1024 * 1024, 120)), [
      'EINVAL', // mount a share first
    ]);
    assert.equal(rpc.closed, false);
  } finally {
    rpc.close();
  }
  // A mounted client writes 1 MiB frames as before.
  const data = Buffer.alloc(3 * 1024 * 1024, 7);
  await c.writeFile('big.bin', data);
  assert.ok((await c.readFile('big.bin')).equals(data));
  await stillServes();
});

test('unknown opcodes get ENOSYS and the connection stays usable', async () => {
  const rpc = await RpcClient.connect('127.0.0.1', cl.server.port);
  try {
    await expectCode(rpc.request(0x7777, {}), ['ENOSYS']);
    await expectCode(rpc.request(OP.bMutate, { k: 'write' }), ['ENOSYS']);
    await expectCode(rpc.request(OP.getattr, { path: 'ok.txt' }), ['EINVAL']); // not mounted
    await rpc.request(OP.mount, { share: 'p' });
    assert.equal(
      ((await rpc.request(OP.getattr, { path: 'ok.txt' })).header['attr'] as { size: number }).size,
      4,
    );
    await expectCode(rpc.request(OP.read, { path: 'ok.txt', off: 0, len: 2 ** 40 }), ['EINVAL']);
    await expectCode(rpc.request(OP.write, { path: 'ok.txt', off: -5 }, Buffer.from('x')), ['EINVAL']);
    await expectCode(rpc.request(OP.write, { path: 'ok.txt', off: 1.5 }, Buffer.from('x')), ['EINVAL']);
    await expectCode(rpc.request(OP.write, { path: 'ok.txt', off: '0' }, Buffer.from('x')), ['EINVAL']);
    await expectCode(rpc.request(OP.setattr, { path: 'ok.txt', mode: 'rwx' }), ['EINVAL']);
    await expectCode(rpc.request(OP.setattr, { path: 'ok.txt', mtimeMs: -1 }), ['EINVAL']);
    await expectCode(rpc.request(OP.mount, { share: '../p' }), ['EINVAL']);
    await expectCode(rpc.request(OP.mount, { share: 'nope' }), ['ENOENT']);
  } finally {
    rpc.close();
  }
});

test('bad paths are refused: .., absolute, NUL, long names, empty components', async () => {
  await expectCode(c.writeFile('../escape', 'x'), ['EINVAL']);
  await expectCode(c.writeFile('a/../../escape', 'x'), ['EINVAL']);
  await expectCode(c.writeFile('/etc/passwd', 'x'), ['EINVAL']);
  await expectCode(c.readFile('/etc/passwd'), ['EINVAL']);
  await expectCode(c.create('bad\0name'), ['EINVAL']);
  await expectCode(c.create('x'.repeat(256)), ['ENAMETOOLONG']);
  await c.create('y'.repeat(255));
  await expectCode(c.create('a//b'), ['EINVAL']);
  await expectCode(c.create('./a'), ['EINVAL']);
  await expectCode(c.rename('ok.txt', '../../out'), ['EINVAL']);
  await expectCode(c.link('ok.txt', '/tmp/out'), ['EINVAL']);
  await expectCode(c.rmdir(''), ['EBUSY']);
  await expectCode(c.lookup('', '..'), ['EINVAL']);
  await stillServes();
});

test('admin operations need the admin token and validate their input', async () => {
  const anon = await ReplicatedClient.connect({ host: '127.0.0.1', port: cl.server.port });
  try {
    await expectCode(anon.createShare('sneaky', 1000), ['EACCES']);
    await expectCode(anon.deleteShare('p'), ['EACCES']);
    await expectCode(anon.brickStatus(), ['EACCES']);
  } finally {
    anon.close();
  }
  const wrong = await ReplicatedClient.connect({ host: '127.0.0.1', port: cl.server.port, adminToken: 'x' });
  try {
    await expectCode(wrong.healNow('p'), ['EACCES']);
  } finally {
    wrong.close();
  }
  const admin = await cl.client();
  await expectCode(admin.createShare('../x', 1000), ['EINVAL']);
  await expectCode(admin.createShare('', 1000), ['EINVAL']);
  await expectCode(admin.createShare('ok-name', -1), ['EINVAL']);
  await expectCode(admin.createShare('ok-name', 1000, { replicas: 9 }), ['EINVAL']);
  await expectCode(admin.createShare('ok-name', 1000, { bricks: ['127.0.0.1:1'] }), ['ENOTCONN']);
  await expectCode(admin.setSize('no-such-share', 10), ['ENOENT']);
  await expectCode(admin.resolveSplitBrain('p', '../x', 'bigger-file'), ['EINVAL']);
  await expectCode(admin.usage('ok-name'), ['ENOENT']); // nothing half-made
});

test('a brick refuses bad paths, foreign epochs and unknown shares on its own port', async () => {
  const rpc = await RpcClient.connect('127.0.0.1', cl.bricks[0]!.port);
  try {
    const info = (await rpc.request(OP.bShareInfo, { share: 'p' })).header['info'] as { epoch: number };
    const base = { share: 'p', epoch: info.epoch, k: 'create', id: 'x', mode: 0o644 };
    await expectCode(rpc.request(OP.bMutate, { ...base, epoch: info.epoch - 1, path: 'f' }), ['ESTALE']);
    await expectCode(rpc.request(OP.bMutate, { ...base, path: '../../escape' }), ['EINVAL', 'ENOTCONN']);
    await expectCode(rpc.request(OP.bGetattr, { share: 'p', path: '../../../etc/passwd' }), ['EINVAL']);
    await expectCode(rpc.request(OP.bGetattr, { share: '../p', path: '' }), ['EINVAL']);
    await expectCode(rpc.request(OP.bGetattr, { share: 'nope', path: '' }), ['ENXIO']);
    await expectCode(rpc.request(OP.bRead, { share: 'p', path: 'ok.txt', off: -1, len: 1 }), ['EINVAL']);
    await expectCode(rpc.request(0x1ff, {}), ['ENOSYS']);
  } finally {
    rpc.close();
  }
  await stillServes();
});

test('symlinks are stored, never followed: no escape from the share directory', async () => {
  await c.symlink('/etc', 'etc-link');
  await c.symlink('..', 'up');
  await expectCode(c.readFile('etc-link/passwd'), ['ENOTDIR']);
  await expectCode(c.writeFile('etc-link/abaca-escape', 'x'), ['ENOTDIR']);
  await expectCode(c.writeFile('up/escaped', 'x'), ['ENOTDIR']);
  await expectCode(c.write('etc-link', 0, Buffer.from('x')), ['EINVAL']);
  await expectCode(c.readFile('up'), ['EINVAL']);
  await expectCode(c.mkdir('up/d'), ['ENOTDIR']);
  assert.equal(fs.existsSync('/etc/abaca-escape'), false);
  for (let i = 0; i < 3; i++) {
    const shareDir = path.join(cl.brickDirs[i]!, 'shares');
    assert.deepEqual(fs.readdirSync(shareDir), ['p']);
    assert.equal(fs.existsSync(path.join(shareDir, 'p', 'escaped')), false);
  }
  await stillServes();
});

test('an answer whose header is over the limit fails that request with EMSGSIZE; the connection goes on', async () => {
  const { serveSocket } = await import('../../../backends/replicated/protocol/rpc-server.ts');
  const { MAX_HEADER } = await import('../../../backends/replicated/protocol/frame.ts');
  const server = net.createServer((s) =>
    serveSocket(s, (f) => ({
      header: f.op === OP.ping ? { ok: true } : { list: 'x'.repeat(MAX_HEADER) },
    })),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const rpc = await RpcClient.connect('127.0.0.1', port);
  try {
    await expectCode(rpc.request(OP.getattr, { path: 'a' }), ['EMSGSIZE']);
    assert.deepEqual((await rpc.request(OP.ping, {})).header, { ok: true });
    // The same for a request: refused before it is sent, so the server never drops the link.
    await expectCode(rpc.request(OP.getattr, { path: 'y'.repeat(MAX_HEADER) }), ['EMSGSIZE']);
    // ... and leaves nothing waiting for an answer that cannot come.
    assert.equal((rpc as unknown as { waiters: Map<number, unknown> }).waiters.size, 0);
    assert.deepEqual((await rpc.request(OP.ping, {})).header, { ok: true });
  } finally {
    rpc.close();
    server.close();
  }
});
