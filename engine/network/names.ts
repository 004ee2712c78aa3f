import { createHash } from 'node:crypto';

/** Linux interface names hold at most 15 characters (IFNAMSIZ 16 with the NUL). */
export const IFNAMSIZ_MAX = 15;

function hash(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/**
 * Bridge of a network: host prefix (`tsf` + 4 hex of the root id), `b`, 7 hex of the network id. The letter keeps
 * bridges and veths apart at a glance; the prefix ties every host object to its root.
 */
export function bridgeName(hostPrefix: string, networkId: string): string {
  return `${hostPrefix}b${networkId.slice(0, IFNAMSIZ_MAX - hostPrefix.length - 1)}`;
}

/** Host end of a container's veth on a network: host prefix, `v`, a hash of (container, network). */
export function vethName(hostPrefix: string, containerId: string, networkId: string): string {
  return `${hostPrefix}v${hash(`${containerId}\0${networkId}`, IFNAMSIZ_MAX - hostPrefix.length - 1)}`;
}

/** True when name is a valid interface name (what the kernel's dev_valid_name accepts). */
export function isValidIfname(name: string): boolean {
  return name.length > 0 && name.length <= IFNAMSIZ_MAX && name !== '.' && name !== '..' && !/[/:\s]/.test(name);
}

/** MAC address derived from the IPv4 address, as classic Docker does (02:42:ac:11:00:02): stable and unique. */
export function macForIp(ip: number): string {
  const bytes = [0x02, 0x42, ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export function isValidMac(mac: string): boolean {
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(mac)) return false;
  const first = parseInt(mac.slice(0, 2), 16);
  return (first & 1) === 0; // not multicast
}

/**
 * nft table of a root: `tsf` + the full 8-hex root id. Unlike interface names it has no length limit, so two roots
 * whose 4-hex host prefixes collide still never share a table.
 */
export function firewallTable(rootId: string): string {
  return `tsf${rootId}`;
}

/** Interface alias (IFLA_IFALIAS) marking a bridge or veth as this root's, for reconcile and stale-root clean-up. */
export function linkAlias(rootId: string): string {
  return `tsfig:${rootId}`;
}
