import ipaddr from 'ipaddr.js';
import type { AccessType } from '../backends/types.ts';
import { InvalidInput } from './errors.ts';

export interface CheckedAccessTo {
  /** The canonical form stored and sent to the backend (duplicates are found on it). */
  value: string;
  /** Set when the rule is legal but worth an operator's attention (0.0.0.0/0 opens to everyone). */
  warning?: string;
}

function canonicalIp(addr: ipaddr.IPv4 | ipaddr.IPv6): string {
  if (addr.kind() === 'ipv4') return addr.toString();
  const v6 = addr as ipaddr.IPv6;
  return v6.isIPv4MappedAddress() ? `::ffff:${v6.toIPv4Address().toString()}` : v6.toRFC5952String();
}

function parseAddress(text: string, whole: string): ipaddr.IPv4 | ipaddr.IPv6 {
  // ipaddr.isValid also takes "10.1" and octal forms; only dotted quads and plain IPv6 count here.
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text);
  if (!text.includes('%') && ipaddr.IPv6.isValid(text)) return ipaddr.IPv6.parse(text);
  throw new InvalidInput(
    `access_to '${whole}' is not a valid IPv4 or IPv6 address or CIDR network (for example 10.0.0.0/24 or 2001:db8::/64).`,
  );
}

/** An ip rule: an address or a network in CIDR form, normalised (host bits must be zero). */
function checkIp(raw: string): CheckedAccessTo {
  const [addrText, prefixText, ...rest] = raw.split('/');
  if (rest.length || addrText === undefined)
    throw new InvalidInput(`access_to '${raw}' has more than one '/'.`);
  const addr = parseAddress(addrText, raw);
  const bits = addr.kind() === 'ipv4' ? 32 : 128;
  if (prefixText === undefined) return { value: canonicalIp(addr) };
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits)
    throw new InvalidInput(`access_to '${raw}': the prefix length must be a whole number from 0 to ${bits}.`);
  const prefix = Number(prefixText);
  if (prefix === bits) return { value: canonicalIp(addr) };
  const network =
    addr.kind() === 'ipv4'
      ? ipaddr.IPv4.networkAddressFromCIDR(`${addr.toString()}/${prefix}`)
      : ipaddr.IPv6.networkAddressFromCIDR(`${addr.toString()}/${prefix}`);
  if (canonicalIp(network) !== canonicalIp(addr))
    throw new InvalidInput(
      `access_to '${raw}' has host bits set; did you mean ${canonicalIp(network)}/${prefix}?`,
    );
  const value = `${canonicalIp(addr)}/${prefix}`;
  return prefix === 0
    ? { value, warning: `access rule ${value} opens the share to every address` }
    : { value };
}

/**
 * Validates and normalises access_to for its type, as Manila does: ip takes an IPv4/IPv6 address or
 * CIDR; user a 4–255 character name of letters, digits and `._-\$@`; cert a 1–64 character common
 * name; cephx an id without dots.
 */
export function checkAccessTo(type: AccessType, raw: string): CheckedAccessTo {
  const text = raw.trim();
  switch (type) {
    case 'ip':
      return checkIp(text);
    case 'user':
      if (!/^[\w.\-\\$@]{4,255}$/.test(text))
        throw new InvalidInput(
          `access_to '${raw}' is not a valid user name: 4 to 255 letters, digits or the characters . _ - \\ $ @.`,
        );
      return { value: text };
    case 'cert':
      if (text.length < 1 || text.length > 64)
        throw new InvalidInput(`access_to for a cert rule is a TLS common name of 1 to 64 characters.`);
      return { value: text };
    case 'cephx':
      if (!text || text.length > 255 || text.includes('.'))
        throw new InvalidInput(
          `access_to '${raw}' is not a valid cephx id: up to 255 characters, without '.' (give 'alice', not 'client.alice').`,
        );
      return { value: text };
  }
}
