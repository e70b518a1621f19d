/**
 * serveSocket stops reading a connection whose requests hold more file data than it allows while
 * they are worked on, or whose answers the peer does not take: the peer is held back by TCP, and
 * everything is served once the work or the peer catches up.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import { encodeFrame, type Frame, FrameDecoder } from '../../../backends/replicated/protocol/frame.ts';
import { type Handler, serveSocket } from '../../../backends/replicated/protocol/rpc-server.ts';

const MIB = 1 << 20;
const MAX_HELD = 8 * MIB;
const servers: net.Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

async function serve(handler: Handler): Promise<number> {
  const srv = net.createServer((sock) => serveSocket(sock, handler, { maxHeldBytes: MAX_HELD }));
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return (srv.address() as net.AddressInfo).port;
}

/** A client that pipelines `n` requests at once and collects the answers' request ids. */
async function pipeline(port: number, n: number, payload: Buffer | undefined) {
  const sock = net.connect({ host: '127.0.0.1', port });
  await new Promise((r) => sock.once('connect', r));
  const decoder = new FrameDecoder();
  const answered: number[] = [];
  sock.on('data', (d) => {
    for (const f of decoder.push(d)) answered.push(f.reqId);
  });
  for (let i = 1; i <= n; i++) for (const part of encodeFrame(i, 1, 0, {}, payload)) sock.write(part);
  return { sock, answered };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('requests whose work is not done hold at most the allowed data: reading waits, then all are served', async () => {
  const started: Array<{ f: Frame; done: () => void }> = [];
  const port = await serve(
    (f) =>
      new Promise((resolve) => {
        started.push({ f, done: () => resolve({ header: { ok: true } }) });
      }),
  );
  const n = 200;
  const { sock, answered } = await pipeline(port, n, Buffer.alloc(MIB, 1));
  await sleep(500);
  const held = started.length * MIB;
  assert.ok(held >= MAX_HELD, `the server took requests up to its limit (${started.length} MiB)`);
  assert.ok(
    held <= MAX_HELD + 2 * MIB,
    `no more than the limit (+ what one read brings): ${started.length} MiB`,
  );
  assert.ok(sock.writableLength > 100 * MIB, 'the rest waits on the client');
  // Work finishes as it arrives: everything is read and answered in the end.
  const finish = setInterval(() => {
    for (const s of started.splice(0)) s.done();
  }, 5);
  try {
    for (let t = 0; answered.length < n && t < 400; t++) await sleep(25);
  } finally {
    clearInterval(finish);
    sock.destroy();
  }
  assert.equal(answered.length, n);
  assert.deepEqual(
    [...answered].sort((a, b) => a - b),
    Array.from({ length: n }, (_, i) => i + 1),
  );
});

test('a peer that does not read its answers stops being read once they pile up past the limit', async () => {
  let handled = 0;
  const port = await serve(() => {
    handled++;
    return { header: {}, payload: Buffer.alloc(MIB, 2) };
  });
  const n = 300;
  const { sock, answered } = await pipeline(port, n, undefined);
  sock.pause();
  await sleep(500);
  // Answers in flight: the limit, one more, and what the kernel's socket buffers hold.
  assert.ok(handled < 60, `${handled} requests answered while the peer read nothing`);
  sock.resume();
  for (let t = 0; answered.length < n && t < 400; t++) await sleep(25);
  sock.destroy();
  assert.equal(answered.length, n);
  assert.equal(handled, n);
});
