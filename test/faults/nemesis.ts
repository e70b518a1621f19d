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
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * With automatic share-server takeover (issue 19, being built), a killed share server need not come
 * back: set this (or FAULTS_SERVER_KILL_FOR_GOOD=1) to leave it dead and count on another share
 * server taking the share over. Today a share has one share server and clients wait for it, so a
 * killed one is restarted within the clients' retry window.
 */
export const SERVER_KILL_FOR_GOOD = process.env['FAULTS_SERVER_KILL_FOR_GOOD'] === '1';

export interface Fault {
  n: number;
  kind: FaultKind;
  /** Brick index (brick faults). */
  brick: number;
  /** Quiet time before the fault. */
  quietMs: number;
  /** How long it lasts (killed, paused or cut off) before it is healed. */
  downMs: number;
  /** Real times, ms since the run's start (filled when it runs). */
  start?: number;
  end?: number;
}

export function describeFault(f: Fault): string {
  const b = `brick${f.brick + 1}`;
  const what: Record<FaultKind, string> = {
    'brick-kill': `kill -9 ${b}, restart after ${f.downMs} ms`,
    'brick-pause': `SIGSTOP ${b}, SIGCONT after ${f.downMs} ms`,
    'brick-partition': `cut ${b} off (veth down), heal after ${f.downMs} ms`,
    'server-kill': SERVER_KILL_FOR_GOOD
      ? 'kill -9 the share server for good'
      : `kill -9 the share server, restart after ${f.downMs} ms`,
    'server-pause': `SIGSTOP the share server, SIGCONT after ${f.downMs} ms`,
  };
  const when = f.start === undefined ? '' : ` [+${f.start}..+${f.end ?? '?'} ms]`;
  return `fault ${f.n}: after ${f.quietMs} ms quiet, ${what[f.kind]}${when}`;
}

/** The whole schedule, from the seed and the duration alone. */
export function schedule(seed: number, durationMs: number, kinds: readonly FaultKind[]): Fault[] {
  const r = rng(seed ^ 0x5eed);
  const weights = (
    [
      ['brick-kill', 25],
      ['brick-pause', 20],
      ['brick-partition', 20],
      ['server-kill', 20],
      ['server-pause', 15],
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
    const downMs =
      kind === 'server-pause' || kind === 'server-kill'
        ? 500 + Math.floor(r() * 4000)
        : 1000 + Math.floor(r() * 5000);
    const f: Fault = { n, kind, brick: Math.floor(r() * 3), quietMs, downMs };
    // about a second to restart a process
    const cost = quietMs + downMs + (kind.endsWith('kill') ? 1000 : 0);
    if (t + cost > durationMs - 3000) break;
    out.push(f);
    t += cost;
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the schedule; `now()` gives ms since the run's start; `stop()` ends it early. */
export async function runNemesis(
  cl: FaultCluster,
  faults: Fault[],
  now: () => number,
  log: (msg: string) => void,
  stop: () => boolean,
): Promise<void> {
  for (const f of faults) {
    if (stop()) return;
    await sleep(f.quietMs);
    f.start = now();
    log(`[+${f.start} ms] ${describeFault(f)}`);
    const b = cl.bricks[f.brick]!;
    switch (f.kind) {
      case 'brick-kill':
        await b.proc.kill9();
        await sleep(f.downMs);
        await cl.restartBrick(f.brick);
        break;
      case 'brick-pause':
        b.proc.signal('SIGSTOP');
        await sleep(f.downMs);
        b.proc.signal('SIGCONT');
        break;
      case 'brick-partition':
        cl.partition(f.brick, true);
        await sleep(f.downMs);
        cl.partition(f.brick, false);
        break;
      case 'server-kill':
        await cl.server.kill9();
        if (SERVER_KILL_FOR_GOOD) break;
        await sleep(f.downMs);
        log(`[+${now()} ms]   restarting the share server`);
        await cl.startServer();
        break;
      case 'server-pause':
        cl.server.signal('SIGSTOP');
        await sleep(f.downMs);
        cl.server.signal('SIGCONT');
        break;
    }
    f.end = now();
    log(`[+${f.end} ms]   healed (fault ${f.n})`);
  }
}
