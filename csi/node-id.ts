/**
 * Node ids carry the node's address: `NAME@IP`. ControllerPublishVolume grants the share's access
 * rule to that IP, so the controller needs no access to the Kubernetes API to find a node's
 * address, and a node id that names no address is a node this driver does not know (NOT_FOUND).
 */
import ipaddr from 'ipaddr.js';

export interface NodeRef {
  name: string;
  ip: string;
}

export function formatNodeId(name: string, ip: string): string {
  return `${name}@${ipaddr.parse(ip).toString()}`;
}

/** The node a node id names, or null when it is not one of ours. */
export function parseNodeId(id: string): NodeRef | null {
  const at = id.lastIndexOf('@');
  const name = at > 0 ? id.slice(0, at) : '';
  const ip = at > 0 ? id.slice(at + 1) : id;
  if (!ipaddr.isValid(ip)) return null;
  const addr = ipaddr.parse(ip).toString();
  return { name: name || addr, ip: addr };
}

/** Whether an ip rule's `access_to` (an address, or a /32 or /128 network) is exactly `ip`. */
export function ruleMatchesIp(accessTo: string, ip: string): boolean {
  const [addr, bits] = accessTo.split('/');
  if (!addr || !ipaddr.isValid(addr)) return false;
  const a = ipaddr.parse(addr);
  if (bits !== undefined && Number(bits) !== (a.kind() === 'ipv4' ? 32 : 128)) return false;
  return a.toString() === ipaddr.parse(ip).toString();
}
