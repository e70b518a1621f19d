/**
 * Replica placement: spread a replica set over distinct hosts first, then distinct zones. When
 * there are not enough hosts it still places the set but says so in `warning`.
 */
import { ReplicatedError } from '../protocol/errors.ts';

export interface BrickCandidate {
  id: string;
  addr: string;
  host: string;
  zone: string;
  up: boolean;
}

export interface Placement {
  bricks: BrickCandidate[];
  warning?: string;
}

/** `zone`, when given and held by an up brick, is where the first replica goes (the share's pool). */
export function placeReplicas(candidates: BrickCandidate[], replicas: number, zone?: string): Placement {
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5)
    throw new ReplicatedError('EINVAL', 'replica count must be 1..5');
  const pool = candidates.filter((c) => c.up).sort((a, b) => a.id.localeCompare(b.id));
  if (pool.length < replicas)
    throw new ReplicatedError('ENOSPC', `need ${replicas} reachable bricks, have ${pool.length}`);
  const chosen: BrickCandidate[] = [];
  const hosts = new Set<string>();
  const zones = new Set<string>();
  const first = zone === undefined ? undefined : pool.find((c) => c.zone === zone);
  if (first) {
    chosen.push(first);
    hosts.add(first.host);
    zones.add(first.zone);
  }
  while (chosen.length < replicas) {
    const rest = pool.filter((c) => !chosen.includes(c));
    const score = (c: BrickCandidate): number => (hosts.has(c.host) ? 2 : 0) + (zones.has(c.zone) ? 1 : 0);
    const best = rest.reduce((b, c) => (score(c) < score(b) ? c : b));
    chosen.push(best);
    hosts.add(best.host);
    zones.add(best.zone);
  }
  const distinctHosts = new Set(chosen.map((c) => c.host)).size;
  if (distinctHosts < replicas)
    return {
      bricks: chosen,
      warning: `only ${distinctHosts} distinct host(s) for ${replicas} replicas: some replicas share a host`,
    };
  return { bricks: chosen };
}
