/**
 * The write throughput dip during a brick replacement (issue 19's `bench:failover` reports it):
 * three bricks and a share server on loopback, one share prefilled with `ABACA_BENCH_PREFILL_MIB`
 * (default 256) so the new brick has something to copy; a writer writes files of 8 MiB through the
 * client library (1 MiB chunks, pipelined). Measured in one run: the writer's MB/s over
 * `ABACA_BENCH_SECONDS` (default 5) with three healthy bricks (baseline), then one brick is killed
 * and replaced by a new empty one and the writer's MB/s is taken from the replace call until the
 * new brick holds a full copy (during replace).
 *
 * `node --import tsx bench/brick-replace.ts` prints the result as JSON; `measureBrickReplace()`
 * returns it to another bench.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ReplicatedClient } from '../backends/replicated/client/client.ts';
import { type Proc, spawnDaemon } from '../backends/replicated/processes.ts';
import { OP } from '../backends/replicated/protocol/opcodes.ts';

const MiB = 1024 * 1024;

export interface BrickReplaceResult {
  baselineMBps: number;
  duringReplaceMBps: number;
  /** From the replace call until the new brick held a full copy. */
  replaceSeconds: number;
  /** Bytes the new brick received by heal (the prefill plus what was written meanwhile). */
  prefillMiB: number;
}

/** A writer of 8 MiB files, one after the other; counts the bytes acknowledged. */
function startWriter(c: ReplicatedClient, prefix: string) {
  const file = randomBytes(8 * MiB);
  let bytes = 0;
  let stop = false;
  const run = (async () => {
    // writeFile pipelines the 1 MiB chunks of a file (16 in flight).
    for (let f = 0; !stop; f++) {
      await c.writeFile(`${prefix}-${f}`, file);
      bytes += file.length;
    }
  })();
  return {
    get bytes() {
      return bytes;
    },
    async stop() {
      stop = true;
      await run;
    },
  };
}

export async function measureBrickReplace(
  opts: { prefillMiB?: number; seconds?: number } = {},
): Promise<BrickReplaceResult> {
  const prefillMiB = opts.prefillMiB ?? Number(process.env['ABACA_BENCH_PREFILL_MIB'] ?? 256);
  const seconds = opts.seconds ?? Number(process.env['ABACA_BENCH_SECONDS'] ?? 5);
  const dir = fs.mkdtempSync(
    path.join(process.env['ABACA_BENCH_DIR'] ?? os.tmpdir(), 'abaca-brick-replace-'),
  );
  const procs: Proc[] = [];
  const token = randomBytes(16).toString('hex');
  const brick = async (name: string) => {
    const p = await spawnDaemon('abaca-brick.js', [
      '--dir',
      path.join(dir, name),
      '--port',
      '0',
      '--host-label',
      name,
      '--zone',
      name,
    ]);
    procs.push(p);
    return p;
  };
  const clients: ReplicatedClient[] = [];
  try {
    const bricks = await Promise.all(['b1', 'b2', 'b3'].map(brick));
    const server = await spawnDaemon(
      'abaca-share-server.js',
      ['--bricks', bricks.map((b) => b.addr).join(','), '--brick-timeout-ms', '3000'],
      undefined,
      { ABACA_ADMIN_TOKEN: token },
    );
    procs.push(server);
    const connect = async (share?: string) => {
      const c = await ReplicatedClient.connect({
        host: '127.0.0.1',
        port: server.port,
        adminToken: token,
        timeoutMs: 60_000,
        ...(share ? { share } : {}),
      });
      clients.push(c);
      return c;
    };
    const admin = await connect();
    await admin.createShare('bench', 64 * 1024 * MiB);
    const data = await connect('bench');
    // Prefill: what the new brick must copy.
    const block = randomBytes(8 * MiB);
    for (let i = 0; i < prefillMiB; i += 8) await data.writeFile(`prefill-${i}`, block);

    const w = startWriter(data, 'base');
    await new Promise((r) => setTimeout(r, 500)); // ramp
    const b0 = w.bytes;
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const baselineMBps = (w.bytes - b0) / MiB / ((Date.now() - t0) / 1000);
    await w.stop();

    const fresh = await brick('b4');
    const w2 = startWriter(data, 'during');
    await new Promise((r) => setTimeout(r, 500));
    await bricks[0]!.kill9();
    const b1 = w2.bytes;
    const t1 = Date.now();
    const call = (op: number, h: Record<string, unknown>) =>
      admin.call(op, { ...h, token }).then((r) => r.header);
    await call(OP.brickReplace, { brick: bricks[0]!.addr, addr: fresh.addr });
    for (;;) {
      const list = (await call(OP.brickList, {})) as { jobs: Array<{ state: string; error: string | null }> };
      const job = list.jobs[0];
      if (job?.state === 'failed') throw new Error(`replace failed: ${job.error}`);
      if (job?.state === 'done') break;
      if (Date.now() - t1 > 600_000) throw new Error('replace did not finish in 10 min');
      await new Promise((r) => setTimeout(r, 100));
    }
    const replaceSeconds = (Date.now() - t1) / 1000;
    const duringReplaceMBps = (w2.bytes - b1) / MiB / replaceSeconds;
    await w2.stop();
    return {
      baselineMBps: Math.round(baselineMBps * 10) / 10,
      duringReplaceMBps: Math.round(duringReplaceMBps * 10) / 10,
      replaceSeconds: Math.round(replaceSeconds * 10) / 10,
      prefillMiB,
    };
  } finally {
    for (const c of clients) c.close();
    await Promise.all(procs.map((p) => p.kill9().catch(() => {})));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  measureBrickReplace().then(
    (r) => {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
