/**
 * Access rules on the native protocol: which addresses may use a share, and how (rw or ro).
 * The rules are part of the share's record on its bricks (share.json `access`), written on a
 * quorum like its size, so every share server that attaches the share enforces the same set.
 */
import net from 'node:net';
import { ReplicatedError } from '../protocol/errors.ts';

export interface AccessEntry {
  /** The share API's rule id. */
  id: string;
  /** An address or CIDR (IPv4 or IPv6). */
  to: string;
  level: 'rw' | 'ro';
}

export type AccessLevel = 'rw' | 'ro' | null;

/** Validates rules sent by the backend driver; returns them normalised. */
export function parseAccess(input: unknown): AccessEntry[] {
  if (!Array.isArray(input)) throw new ReplicatedError('EINVAL', 'access must be a list of rules');
  if (input.length > 1000) throw new ReplicatedError('EINVAL', 'at most 1000 access rules per share');
  return input.map((r, i) => {
    const rule = (r ?? {}) as Record<string, unknown>;
    const id = typeof rule['id'] === 'string' && rule['id'] !== '' ? rule['id'] : undefined;
    const to = typeof rule['to'] === 'string' ? rule['to'] : '';
    const level = rule['level'];
    if (!id || id.length > 255) throw new ReplicatedError('EINVAL', `access rule ${i}: id must be a string`);
    if (level !== 'rw' && level !== 'ro')
      throw new ReplicatedError('EINVAL', `access rule ${id}: level must be rw or ro`);
    subnetOf(to, id);
    return { id, to, level };
  });
}

function subnetOf(to: string, id: string): { addr: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const [addr = '', bits] = to.split('/');
  const v = net.isIP(addr);
  if (v === 0)
    throw new ReplicatedError('EINVAL', `access rule ${id}: ${JSON.stringify(to)} is not an address or CIDR`);
  const max = v === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (bits !== undefined && !/^\d+$/.test(bits)))
    throw new ReplicatedError('EINVAL', `access rule ${id}: bad prefix length in ${JSON.stringify(to)}`);
  return { addr, prefix, family: v === 4 ? 'ipv4' : 'ipv6' };
}

/** An IPv4 address a dual-stack socket reports as ::ffff:a.b.c.d, as IPv4. */
function plainAddress(remote: string): string {
  return remote.startsWith('::ffff:') && net.isIPv4(remote.slice(7)) ? remote.slice(7) : remote;
}

/**
 * What a client at `remote` may do: 'rw' if a rw rule covers it, else 'ro' if a ro rule does, else
 * null. A share without an access list (created by an admin tool, not by the backend driver) is
 * not restricted by address.
 */
export function accessFor(rules: AccessEntry[] | undefined, remote: string | undefined): AccessLevel {
  if (rules === undefined) return 'rw';
  if (!remote) return null;
  const address = plainAddress(remote);
  const family = net.isIPv4(address) ? 'ipv4' : 'ipv6';
  let level: AccessLevel = null;
  for (const r of rules) {
    const s = subnetOf(r.to, r.id);
    if (s.family !== family) continue;
    const list = new net.BlockList();
    list.addSubnet(s.addr, s.prefix, s.family);
    if (!list.check(address, family)) continue;
    if (r.level === 'rw') return 'rw';
    level = 'ro';
  }
  return level;
}
