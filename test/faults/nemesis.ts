/**
 * The nemesis of the fault-injection run: a schedule drawn from the seed before anything runs
 * (one fault at a time, a quiet gap before each), and its execution against the cluster, with the
 * real start and end of every fault kept for the checks ("an error during a fault").
 */
import { rng } from '../backends/replicated/helpers.ts';
import type { FaultCluster } from './cluster.ts';

export const FAULT_KINDS = [
  'brick-kill',
  'brick-pause',
  'brick-partition',
  'server-kill',
  'server-pause',
  'server-partition',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface Fault {
  n: number;
  kind: FaultKind;
  /**
   * Brick index (brick faults); for server faults with several share servers, the index of the
   * share (in `shares`) whose owner at that moment is hit.
   */
  target: number;
  /** The share server hit (index), once known. */
  server?: number;
  /** Quiet time before the fault. */
  quietMs: number;
  /** How long it lasts (killed, paused or cut off) before it is healed. */
  downMs: number;
  /** Real times, ms since the run's start (filled when it runs). */
  start?: number;
  end?: number;
}

export function describeFault(f: Fault, shares: string[] = []): string {
  const b = `brick${f.target + 1}`;
  const srv =
    shares.length === 0
      ? 'the share server'
      : `the owner of ${shares[f.target]}${f.server === undefined ? '' : ` (share server ${f.server + 1})`}`;
  const what: Record<FaultKind, string> = {
    'brick-kill': `kill -9 ${b}, restart after ${f.downMs} ms`,
    'brick-pause': `SIGSTOP ${b}, SIGCONT after ${f.downMs} ms`,
    'brick-partition': `cut ${b} off (veth down), heal after ${f.downMs} ms`,
    'server-kill': `kill -9 ${srv}, restart after ${f.downMs} ms`,
    'server-pause': `SIGSTOP ${srv}, SIGCONT after ${f.downMs} ms`,
    'server-partition': `cut ${srv} off from clients and the monitor (it still reaches the bricks), heal after ${f.downMs} ms`,
  };
  const when = f.start === undefined ? '' : ` [+${f.start}..+${f.end ?? '?'} ms]`;
  return `fault ${f.n}: after ${f.quietMs} ms quiet, ${what[f.kind]}${when}`;
}

/**
 * The whole schedule, from the seed and the duration alone. With several share servers (`servers`
 * > 1, under the cluster monitor) a share server stays down or paused longer, past the monitor's
 * failover time, so that its shares move.
 */
export function schedule(
  seed: number,
  durationMs: number,
  kinds: readonly FaultKind[],
  servers = 1,
): Fault[] {
  const r = rng(seed ^ 0x5eed);
  const weights = (
    [
      ['brick-kill', 25],
      ['brick-pause', 20],
      ['brick-partition', 20],
      ['server-kill', 20],
      ['server-pause', 15],
      ['server-partition', 15],
    ] as Array<[FaultKind, number]>
  ).map(([k, w]): [FaultKind, number] => [k, kinds.includes(k) ? w : 0]);
  const total = weights.reduce((a, [, w]) => a + w, 0);
  const out: Fault[] = [];
  // The first second and the last three are quiet: the clients start, and end on a healed cluster.
  let t = 1000;
  for (let n = 1; ; n++) {
    let x = r() * total;
    let kind: FaultKind = 'brick-kill';
    for (const [k, w] of weights) {
      if (x < w) {
        kind = k;
        break;
      }
      x -= w;
    }
    const quietMs = 1000 + Math.floor(r() * 2500);
    const server = kind.startsWith('server');
    const downMs =
      server && servers > 1
        ? 2000 + Math.floor(r() * 6000)
        : server
          ? 500 + Math.floor(r() * 4000)
          : 1000 + Math.floor(r() * 5000);
    const f: Fault = { n, kind, target: Math.floor(r() * (server && servers > 1 ? 2 : 3)), quietMs, downMs };
    // about a second to restart a process
    const cost = quietMs + downMs + (kind.endsWith('kill') ? 1000 : 0);
    if (t + cost > durationMs - 3000) break;
    out.push(f);
    t += cost;
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the schedule; `now()` gives ms since the run's start; `stop()` ends it early; with several
 * share servers, `ownerOf(share)` says which one a server fault hits.
 */
export async function runNemesis(
  cl: FaultCluster,
  faults: Fault[],
  now: () => number,
  log: (msg: string) => void,
  stop: () => boolean,
  shares: string[] = [],
  ownerOf: (share: string) => number = () => 0,
): Promise<void> {
  for (const f of faults) {
    if (stop()) return;
    await sleep(f.quietMs);
    f.start = now();
    const b = cl.bricks[f.target]!;
    if (f.kind.startsWith('server')) f.server = shares.length === 0 ? 0 : ownerOf(shares[f.target]!);
    const srv = cl.servers[f.server ?? 0]!;
    log(`[+${f.start} ms] ${describeFault(f, shares)}`);
    switch (f.kind) {
      case 'brick-kill':
        await b.proc.kill9();
        await sleep(f.downMs);
        await cl.restartBrick(f.target);
        break;
      case 'brick-pause':
        b.proc.signal('SIGSTOP');
        await sleep(f.downMs);
        b.proc.signal('SIGCONT');
        break;
      case 'brick-partition':
        cl.partition(f.target, true);
        await sleep(f.downMs);
        cl.partition(f.target, false);
        break;
      case 'server-kill':
        await srv.kill9();
        await sleep(f.downMs);
        await cl.startServer(f.server!);
        break;
      case 'server-pause':
        srv.signal('SIGSTOP');
        await sleep(f.downMs);
        srv.signal('SIGCONT');
        break;
      case 'server-partition':
        cl.partitionServer(f.server!, true);
        await sleep(f.downMs);
        cl.partitionServer(f.server!, false);
        break;
    }
    f.end = now();
    const owners = shares.map((s) => `${s} on share server ${ownerOf(s) + 1}`).join(', ');
    log(`[+${f.end} ms]   healed (fault ${f.n})${owners ? `; owners: ${owners}` : ''}`);
  }
}
