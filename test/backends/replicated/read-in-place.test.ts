/**
 * Servers that read requests into reused memory (protocol/rpc-server.ts readInPlace): the frame
 * decoder gives the same frames whether a read lands in the shared buffer or in place in a large
 * frame's pooled memory; pooled memory goes back to its pool only when the frame and every hold
 * on it are let go; and over real sockets, a payload forwarded to a peer that reads late arrives
 * whole although the request was answered (and its memory would be reused) long before. Memory
 * given back is poisoned here, so a use after its return shows up as wrong bytes.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, test } from 'node:test';
import { rng } from './helpers.ts';

// Read when the module loads: set before the protocol modules are imported.
process.env['ABACA_POISON_REUSED'] = '1';
const { encodeFrame, FrameDecoder, holdPayload } = await import(
  '../../../backends/replicated/protocol/frame.ts'
);
const { ReusedBuffers } = await import('../../../backends/replicated/protocol/reused-buffers.ts');
const { serveSocket } = await import('../../../backends/replicated/protocol/rpc-server.ts');
const { RpcClient } = await import('../../../backends/replicated/protocol/rpc-client.ts');
const { createProtocolServer } = await import('../../../backends/replicated/protocol/tls.ts');

type Frame = ReturnType<InstanceType<typeof FrameDecoder>['push']>[number];
const KIB = 1024;
const MIB = 1024 * KIB;
const SIZES = [0, 1, 100, 16 * KIB - 1, 64 * KIB - 17, 64 * KIB, 200 * KIB, 1000 * KIB, MIB];

/** A pool that counts what it hands out and gets back. */
class CountingBuffers extends ReusedBuffers {
  taken = 0;
  given = 0;
  override take(n: number): Buffer {
    this.taken++;
    return super.take(n);
  }
  override give(buf: Buffer): void {
    this.given++;
    super.give(buf);
  }
}

function frames(seed: number, n: number): Array<{ header: Record<string, unknown>; payload: Buffer }> {
  const rand = rng(seed);
  return Array.from({ length: n }, (_, i) => ({
    header: { i, pad: 'x'.repeat(Math.floor(rand() * 300)) },
    payload: randomBytes(SIZES[Math.floor(rand() * SIZES.length)]!),
  }));
}

test('frames decoded from shared-buffer reads and reads in place are the frames sent', () => {
  for (let seed = 1; seed <= 30; seed++) {
    const rand = rng(seed * 7919);
    const sent = frames(seed, 25);
    const stream = Buffer.concat(sent.flatMap((f, i) => encodeFrame(i + 1, 9, 0, f.header, f.payload)));
    const pool = new CountingBuffers(MIB + 64 * KIB, 4);
    const decoder = new FrameDecoder(17 * MIB, pool);
    const shared = Buffer.alloc(256 * KIB);
    const got: Frame[] = [];
    let at = 0;
    let inPlace = 0;
    while (at < stream.length) {
      const target = decoder.readTarget();
      const most = Math.max(1, Math.floor(rand() * (rand() < 0.5 ? 300 : 256 * KIB)));
      if (target) {
        const n = Math.min(most, target.length, stream.length - at);
        stream.copy(target, 0, at, at + n);
        got.push(...decoder.pushInPlace(n));
        inPlace += n;
        at += n;
      } else {
        const n = Math.min(most, shared.length, stream.length - at);
        stream.copy(shared, 0, at, at + n);
        got.push(...decoder.pushCopy(shared.subarray(0, n)));
        shared.fill(0xee); // nothing of a shared read may be kept
        at += n;
      }
    }
    assert.equal(got.length, sent.length, `seed ${seed}`);
    got.forEach((f, i) => {
      assert.equal(f.reqId, i + 1);
      assert.deepEqual(f.header, sent[i]!.header);
      assert.ok(f.payload.equals(sent[i]!.payload), `seed ${seed}: frame ${i}'s payload`);
    });
    assert.ok(inPlace > 0 || !sent.some((f) => f.payload.length >= 200 * KIB), `seed ${seed}: read in place`);
    // Every pooled frame goes back once released, and only then.
    const pooled = got.filter((f) => f.release);
    assert.equal(pooled.length, pool.taken);
    assert.equal(pool.given, 0);
    for (const f of pooled) f.release!();
    assert.equal(pool.given, pool.taken);
  }
});

test('pooled memory goes back after the frame and every hold are let go, once', () => {
  const pool = new CountingBuffers(MIB + 64 * KIB, 4);
  const decoder = new FrameDecoder(17 * MIB, pool);
  const payload = randomBytes(300 * KIB);
  const [f] = decoder.pushCopy(Buffer.concat(encodeFrame(1, 9, 0, {}, payload)));
  assert.ok(f?.release, 'a large frame is pooled');
  // A hold through another view of the same memory counts as well.
  const viaView = holdPayload([f.parts[0]!.subarray(10)]);
  const viaBuffer = holdPayload(f.parts[0]!);
  f.release();
  f.release(); // a second call is nothing
  assert.equal(pool.given, 0);
  viaView();
  viaView();
  assert.equal(pool.given, 0);
  viaBuffer();
  assert.equal(pool.given, 1);
  // Memory that is not pooled: holds are no-ops.
  const plain = holdPayload([Buffer.from('abc')]);
  plain();
  assert.equal(holdPayload(undefined).length, 0);
});

const closers: Array<() => void> = [];
after(() => {
  for (const c of closers) c();
});

/**
 * A peer that reads nothing until `open()`, then decodes what came: payload checksums by the
 * request's `i`. It never answers.
 */
async function latePeer() {
  const seen = new Map<number, string>();
  let sock: net.Socket | undefined;
  const srv = net.createServer({ pauseOnConnect: true }, (s) => {
    sock = s;
    const decoder = new FrameDecoder();
    s.on('data', (d: Buffer) => {
      for (const f of decoder.push(d))
        seen.set(Number(f.header['i']), createHash('sha256').update(f.payload).digest('hex'));
    });
  });
  closers.push(() => {
    sock?.destroy();
    srv.close();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    seen,
    open: () => sock?.resume(),
  };
}

test('a forwarded payload reaches a peer that reads late whole, though answered and reused long before', {
  timeout: 60_000,
}, async () => {
  const peer = await latePeer();
  const forward = await RpcClient.connect('127.0.0.1', peer.port);
  closers.push(() => forward.close());
  const remotes = new Set<string | undefined>();
  const srv = createProtocolServer(undefined, 'required', (sock, paused) =>
    serveSocket(
      sock,
      (f, s) => {
        remotes.add(s.remoteAddress);
        // Forwarded and answered at once: the peer reads it much later (its answer never comes).
        forward.request(1, f.header, f.parts).catch(() => {});
        return { header: { ok: true } };
      },
      { readInPlace: paused },
    ),
  );
  closers.push(() => srv.close());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  const client = await RpcClient.connect('127.0.0.1', port);
  closers.push(() => client.close());
  const sent = frames(42, 80); // about 30 MiB: far more than the socket buffers, queued in Node
  const want = new Map(sent.map((f, i) => [i, createHash('sha256').update(f.payload).digest('hex')]));
  await Promise.all(sent.map((f, i) => client.request(2, { i }, f.payload)));
  assert.deepEqual([...remotes], ['127.0.0.1'], 'the handler gets the connection, with its address');
  assert.equal(peer.seen.size, 0, 'the peer has read nothing yet');
  peer.open();
  const t0 = Date.now();
  while (peer.seen.size < sent.length && Date.now() - t0 < 20_000)
    await new Promise((r) => setTimeout(r, 50));
  for (const [i, sum] of want) assert.equal(peer.seen.get(i), sum, `payload ${i} arrived as sent`);
  // The accepted connection counts until the client goes: the server closes after it.
  client.close();
  await new Promise<void>((resolve, reject) => srv.close((err) => (err ? reject(err) : resolve())));
});

test('pooled buffers nothing took for a whole trim period are let go; one in use stays', async () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const pool = new ReusedBuffers(1024, 8, 300);
  const bufs = Array.from({ length: 4 }, () => pool.take(1024));
  for (const b of bufs) pool.give(b);
  assert.equal(pool.kept, 4);
  // One buffer in use throughout: taken and given back every 20 ms, the same one each time.
  const used = new Set<Buffer>();
  const busy = setInterval(() => {
    const b = pool.take(1024);
    used.add(b);
    pool.give(b);
  }, 20);
  await sleep(1100);
  clearInterval(busy);
  assert.equal(pool.kept, 1, 'the idle ones went');
  assert.equal(used.size, 1, 'the buffer in use stayed (no fresh one was needed)');
  for (let i = 0; i < 150 && pool.kept > 0; i++) await sleep(20);
  assert.equal(pool.kept, 0, 'and it goes too once idle');
});

test('a write whose share is detached while it waits to be planned is never sent (its memory may be reused)', async () => {
  const { ShareCoordinator } = await import('../../../backends/replicated/server/share-coordinator.ts');
  const { OP } = await import('../../../backends/replicated/protocol/opcodes.ts');
  // Three bricks, faked at the link: the planner's size lookup takes 200 ms; mutations are recorded.
  const sent: Buffer[] = [];
  const link = (addr: string) => ({
    addr,
    up: true,
    hasRoom: true,
    outstanding: 0,
    lagging: false,
    whenRoom: () => Promise.resolve(),
    request(op: number, _header: unknown, payload?: Buffer[]) {
      if (op === OP.bGetattr)
        return new Promise((r) =>
          setTimeout(() => r({ header: { attr: { type: 'file', id: 'x', size: 0 } }, parts: [] }), 200),
        );
      if (op === OP.bMutate) sent.push(Buffer.concat(payload ?? []));
      return Promise.resolve({ header: { v: 1, sizeBefore: 0, sizeAfter: 1, freed: 0 }, parts: [] });
    },
  });
  const members = ['a', 'b', 'c'].map((id) => ({
    id,
    link: link(id) as unknown as import('../../../backends/replicated/server/brick-link.ts').BrickLink,
    ready: true,
    session: 's',
  }));
  const info = { id: 'sh', size: 1e12, bricks: [], epoch: 1, owner: 'me' };
  const coord = new ShareCoordinator(
    info as unknown as ConstructorParameters<typeof ShareCoordinator>[0],
    members,
  );
  const srv = createProtocolServer(undefined, 'required', (sock, paused) =>
    serveSocket(
      sock,
      (f) => coord.mutate('write', { path: 'f', off: 0, rid: 'r1' }, f.parts).then((header) => ({ header })),
      { readInPlace: paused },
    ),
  );
  closers.push(() => srv.close());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const client = await RpcClient.connect('127.0.0.1', (srv.address() as net.AddressInfo).port);
  closers.push(() => client.close());
  // A pooled write (800 KiB) waits in the planner when the share is detached (an admin detach, a
  // move to another share server).
  const answer = client.request(OP.write, {}, randomBytes(800 * KIB)).then(
    () => 'ok',
    (e: { code?: string }) => e.code,
  );
  setTimeout(() => coord.stop(), 50);
  assert.equal(await answer, 'ESTALE');
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(sent.length, 0, 'nothing reached a brick after the answer (it would carry reused memory)');
});
