/** Validation of numbers that arrive in JSON headers (offsets, sizes, modes, times). */
import { ReplicatedError } from './errors.ts';

/** `HOST:PORT` (an IPv6 host in brackets) as host and port. */
export function splitAddr(addr: string): [string, number] {
  const i = addr.lastIndexOf(':');
  return [addr.slice(0, i).replace(/^\[|\]$/g, ''), Number(addr.slice(i + 1))];
}

/** A non-negative safe integer (offsets, lengths, sizes, modes, epochs), or `dflt` when absent. */
export function num(v: unknown, dflt: number): number {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new ReplicatedError('EINVAL', `bad number ${String(v)}`);
  return v;
}

/** A non-negative finite time in milliseconds (fractions allowed), or `dflt` when absent. */
export function timeMs(v: unknown, dflt: number): number {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    throw new ReplicatedError('EINVAL', `bad time ${String(v)}`);
  return v;
}
