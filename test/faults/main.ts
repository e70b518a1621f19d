/**
 * `npm run faults -- [--duration 30m] [--seed N] [--faults brick-kill,server-pause,…] [--single-server]
 * [--max-unavailable 20s]`: the fault-injection run by hand, as long as you like. Prints the seed, the fault schedule, the
 * summary and every problem; exit status 1 when a check fails (the bricks' directories are kept
 * then). FAULTS_SEED=N works too. By default three share servers run under the cluster monitor
 * (shares move when their owner dies); --single-server runs one, restarted where clients wait.
 */
import { parseArgs } from 'node:util';
import { FAULT_KINDS, type FaultKind } from './nemesis.ts';
import { runFaults } from './run.ts';

/** "90", "90s", "30m", "1h", "1500ms" → ms (a bare number is seconds). */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (!m) throw new Error(`bad duration ${JSON.stringify(s)} (examples: 90s, 30m, 1h)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * unit);
}

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '60s' },
    seed: { type: 'string' },
    faults: { type: 'string' },
    'single-server': { type: 'boolean', default: false },
    'max-unavailable': { type: 'string' },
  },
});
const seedText = values.seed ?? process.env['FAULTS_SEED'];
const seed = seedText === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(seedText);
if (!Number.isInteger(seed)) throw new Error(`bad seed ${seedText}`);
const kinds = values.faults?.split(',') ?? [...FAULT_KINDS];
for (const k of kinds)
  if (!(FAULT_KINDS as readonly string[]).includes(k))
    throw new Error(`unknown fault ${k} (${FAULT_KINDS.join(', ')})`);
const result = await runFaults({
  seed,
  durationMs: parseDuration(values.duration),
  kinds: kinds as FaultKind[],
  maxUnavailableMs:
    values['max-unavailable'] === undefined ? undefined : parseDuration(values['max-unavailable']),
  takeover: !(values['single-server'] || process.env['FAULTS_SINGLE_SERVER'] === '1'),
  keepOnFailure: true,
});
process.exit(result.problems.length > 0 ? 1 : 0);
