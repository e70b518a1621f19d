/**
 * Cluster TLS (docs/tls.md): bricks and a share server started with ABACA_CLUSTER_*, real
 * processes on loopback. Bricks take only mutual TLS with a certificate of the cluster CA; the
 * share server takes TLS only, with or without a client certificate, and admin operations only
 * with one.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { ReplicatedClient } from '../../../backends/replicated/client/client.ts';
import { type Proc, spawnDaemon } from '../../../backends/replicated/processes.ts';
import { ReplicatedError } from '../../../backends/replicated/protocol/errors.ts';
import { encodeFrame, FrameDecoder, KIND_REQUEST } from '../../../backends/replicated/protocol/frame.ts';
import { OP } from '../../../backends/replicated/protocol/opcodes.ts';
import { RpcClient } from '../../../backends/replicated/protocol/rpc-client.ts';
import { type ClusterTls, clusterTlsFromEnv } from '../../../backends/replicated/protocol/tls.ts';
import { ShareConnection } from '../../../client/mount/share-connection.ts';
import { makeTestPki, type TestPki } from '../../helpers/tls.ts';
import { Cluster, checksumWalk, expectCode } from './helpers.ts';

let pki: TestPki;
let cl: Cluster;
let member: ClusterTls;
const extra: Proc[] = [];

const tlsOf = (ca: string, cert?: string, key?: string): ClusterTls =>
  clusterTlsFromEnv({ ABACA_CLUSTER_CA: ca, ABACA_CLUSTER_CERT: cert, ABACA_CLUSTER_KEY: key }, false)!;

before(async () => {
  pki = makeTestPki();
  member = tlsOf(pki.ca, pki.cert, pki.key);
  cl = await Cluster.start({ env: pki.clusterEnv, clientTls: member });
});
after(async () => {
  await Promise.all(extra.map((p) => p.kill9()));
  await cl?.close();
  pki?.remove();
});

/** Sends one request frame over plain TCP; resolves with every byte received until the close. */
function plaintextExchange(port: number, op: number, header: object): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const got: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('the TLS port kept a plaintext connection open for 5 s'));
    }, 5000);
    sock.on('connect', () => {
      for (const p of encodeFrame(1, op, KIND_REQUEST, header)) sock.write(p);
    });
    sock.on('data', (d: Buffer) => got.push(d));
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(got));
    });
  });
}

/** What a rejected exchange must look like: the request or the connection fails, ENOTCONN. */
async function refused(p: Promise<unknown>, re?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ReplicatedError, String(err));
    assert.equal(err.code, 'ENOTCONN', err.message);
    if (re) assert.match(err.message, re);
    return true;
  });
}

/** Connects (TLS or not) and sends the brick hello; resolves with the brick's answer. */
async function hello(port: number, t?: ClusterTls): Promise<Record<string, unknown>> {
  const rpc = await RpcClient.connect('127.0.0.1', port, 3000, { tls: t });
  try {
    return (await rpc.request(OP.bHello, {}, undefined, 3000)).header;
  } finally {
    rpc.close();
  }
}

test('share server ↔ bricks over mutual TLS: write and read through the client, on every replica', async () => {
  const admin = await cl.client();
  // The share server links its bricks in the background after it starts listening.
  let status = await admin.brickStatus();
  for (let i = 0; i < 150 && !status.every((b) => b['up'] === true); i++) {
    await new Promise((r) => setTimeout(r, 100));
    status = await admin.brickStatus();
  }
  assert.equal(status.length, 3);
  for (const b of status) assert.equal(b['up'], true, JSON.stringify(b));
  await admin.createShare('tls1', 64 << 20);
  const c = await cl.client('tls1');
  const data = Buffer.alloc(3 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 12)) & 0xff;
  await c.mkdir('dir');
  await c.writeFile('dir/big.bin', data);
  await c.writeFile('small.txt', 'over TLS');
  assert.ok((await c.readFile('dir/big.bin')).equals(data));
  assert.equal((await c.readFile('small.txt')).toString(), 'over TLS');
  // Every brick applied the writes it was sent over its TLS link.
  const want = checksumWalk(cl.shareDataDir(0, 'tls1'));
  assert.ok(want.has('dir/big.bin') && want.has('small.txt'));
  for (let i = 1; i < 3; i++) assert.deepEqual(checksumWalk(cl.shareDataDir(i, 'tls1')), want);
  // The member certificate opens a brick directly, too (the control for the refusals below).
  assert.equal(typeof (await hello(cl.bricks[0]!.port, member))['id'], 'string');
});

test('a brick refuses a plaintext connection: closed, nothing served', async () => {
  const brick = cl.bricks[0]!;
  const id = JSON.parse(fs.readFileSync(`${cl.brickDirs[0]}/brick.json`, 'utf8')).id as string;
  const bytes = await plaintextExchange(brick.port, OP.bHello, {});
  // No frame came back (a TLS alert at most), and the brick's identity was not revealed.
  assert.ok(!bytes.includes(Buffer.from(id)), 'the brick answered a plaintext hello');
  assert.throws(() => {
    const frames = new FrameDecoder(1 << 20).push(bytes);
    if (bytes.length === 0 || frames.length > 0) throw new Error('no TLS record');
    throw new Error(`not a frame: ${bytes.subarray(0, 2).toString('hex')}`);
  });
  if (bytes.length > 0) assert.equal(bytes[0], 0x15, 'only a TLS alert may come back');
  // The protocol client says what is wrong rather than failing on a garbled frame.
  await refused(hello(brick.port), /TLS-only peer|speaks TLS/);
});

test('a brick refuses a client certificate from another CA, and a client without one', async () => {
  const port = cl.bricks[1]!.port;
  // Trusts the brick (cluster CA) but holds a stranger's certificate.
  await refused(hello(port, tlsOf(pki.ca, pki.otherCert, pki.otherKey)));
  // No certificate at all.
  await refused(hello(port, tlsOf(pki.ca)));
  // And a client of another cluster does not trust this brick.
  await refused(hello(port, tlsOf(pki.otherCa, pki.otherCert, pki.otherKey)), /certificate|signed/);
  // The brick still serves its members.
  assert.equal(typeof (await hello(port, member))['id'], 'string');
});

test('the share server refuses plaintext and foreign certificates; admin needs a member certificate', async () => {
  const port = cl.server.port;
  const open = (tls: ClusterTls | undefined, share?: string) =>
    ReplicatedClient.connect({ host: '127.0.0.1', port, share, adminToken: cl.adminToken, tls });
  const bytes = await plaintextExchange(port, OP.brickStatus, { token: cl.adminToken });
  assert.ok(!bytes.includes(Buffer.from('"bricks"')), 'the share server answered a plaintext request');
  const plain = await open(undefined).catch((e: unknown) => e);
  if (plain instanceof ReplicatedClient) {
    await refused(plain.brickStatus(), /TLS-only peer|speaks TLS/);
    plain.close();
  } else assert.equal((plain as ReplicatedError).code, 'ENOTCONN');
  // A stranger's certificate is refused at the handshake even though a certificate is optional here.
  const foreign = await open(tlsOf(pki.ca, pki.otherCert, pki.otherKey)).catch((e: unknown) => e);
  if (foreign instanceof ReplicatedClient) {
    await refused(foreign.brickStatus());
    foreign.close();
  } else assert.equal((foreign as ReplicatedError).code, 'ENOTCONN');
  // The CA alone (a mount client) connects, but the admin token without a certificate is refused.
  const anon = await open(tlsOf(pki.ca));
  try {
    await expectCode(anon.brickStatus(), ['EACCES']);
    await assert.rejects(anon.brickStatus(), /client certificate of the cluster CA/);
  } finally {
    anon.close();
  }
  await expectCode(open(tlsOf(pki.ca), 'tls1'), ['EACCES']);
  // With the member certificate the same calls work.
  const adm = await open(member, 'tls1');
  try {
    assert.equal((await adm.brickStatus()).length, 3);
    assert.equal((await adm.readFile('small.txt')).toString(), 'over TLS');
  } finally {
    adm.close();
  }
});

test('a TLS share server does not link a plaintext brick', async () => {
  const plainBrick = await spawnDaemon(
    'abaca-brick.js',
    ['--dir', `${cl.dir}/plain-brick`, '--port', '0'],
    undefined,
    {
      ABACA_CLUSTER_CA: '',
      ABACA_CLUSTER_CERT: '',
      ABACA_CLUSTER_KEY: '',
    },
  );
  extra.push(plainBrick);
  // The plaintext brick answers a plaintext hello (the control)…
  assert.equal(typeof (await hello(plainBrick.port))['id'], 'string');
  const admin = await cl.client();
  // …but the share server, speaking TLS, never brings it up.
  await expectCode(admin.registerBrick(plainBrick.addr), ['ENOTCONN']);
  const st = (await admin.brickStatus()).find((b) => b['addr'] === plainBrick.addr);
  assert.ok(st, 'the brick is listed');
  assert.equal(st['up'], false);
  assert.match(String(st['last_error']), /TLS|wrong version|EMSGSIZE|closed|reset/i);
});

test('cluster TLS settings: all or nothing, unreadable files named', () => {
  assert.equal(clusterTlsFromEnv({}), undefined);
  const full = clusterTlsFromEnv(pki.clusterEnv);
  assert.ok(full?.cert && full.key && full.ca.length > 0);
  // A mount client may hold the CA alone; a brick or share server may not.
  assert.equal(clusterTlsFromEnv({ ABACA_CLUSTER_CA: pki.ca }, false)?.cert, undefined);
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ ABACA_CLUSTER_CA: pki.ca }, /needs ABACA_CLUSTER_CERT and ABACA_CLUSTER_KEY/],
    [{ ABACA_CLUSTER_CERT: pki.cert, ABACA_CLUSTER_KEY: pki.key }, /need ABACA_CLUSTER_CA/],
    [{ ABACA_CLUSTER_CA: pki.ca, ABACA_CLUSTER_CERT: pki.cert }, /go together/],
    [{ ...pki.clusterEnv, ABACA_CLUSTER_KEY: `${pki.dir}/missing.pem` }, /ABACA_CLUSTER_KEY: cannot read/],
  ];
  for (const [env, re] of cases) assert.throws(() => clusterTlsFromEnv(env), re, JSON.stringify(env));
});

test('a brick started with half the settings exits with the reason', async () => {
  await assert.rejects(
    spawnDaemon('abaca-brick.js', ['--dir', `${cl.dir}/half`, '--port', '0'], undefined, {
      ABACA_CLUSTER_CA: pki.ca,
      ABACA_CLUSTER_CERT: '',
      ABACA_CLUSTER_KEY: '',
    }),
    /exited with 2: abaca-brick: with ABACA_CLUSTER_CA set, a brick or share server needs/,
  );
});

test('the mount connection (abaca mount) takes cluster TLS from its environment', async () => {
  const saved = { ...process.env };
  const open = () =>
    ShareConnection.open({
      host: '127.0.0.1',
      port: cl.server.port,
      share: 'tls1',
      adminToken: cl.adminToken,
      retryMs: 0,
    });
  try {
    // Without settings it speaks plaintext, which the TLS share server closes.
    for (const k of ['ABACA_CLUSTER_CA', 'ABACA_CLUSTER_CERT', 'ABACA_CLUSTER_KEY']) delete process.env[k];
    await refused(open(), /TLS-only peer/);
    // The CA alone verifies the server, but an admin mount needs the member certificate…
    process.env['ABACA_CLUSTER_CA'] = pki.ca;
    await expectCode(open(), ['EACCES']);
    // …which it presents when it has it.
    Object.assign(process.env, pki.clusterEnv);
    const conn = await open();
    try {
      const r = await conn.call(OP.read, { path: 'small.txt', off: 0, len: 100 });
      assert.equal(r.payload.toString(), 'over TLS');
    } finally {
      conn.close();
    }
  } finally {
    for (const k of ['ABACA_CLUSTER_CA', 'ABACA_CLUSTER_CERT', 'ABACA_CLUSTER_KEY']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
});
