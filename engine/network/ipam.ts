import { EngineError } from '../errors.js';

/** An IPv4 prefix as numbers: `base` is the network address (host bits zero). */
export interface Cidr {
  readonly base: number;
  readonly prefixLen: number;
}

/** Parses a dotted IPv4 address to an unsigned 32-bit number; undefined when it is not one. */
export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

export function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

function maskOf(prefixLen: number): number {
  return prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
}

/** Parses `a.b.c.d/n` (or a bare address as /32); host bits must be zero unless `loose` (then they are cleared). */
export function parseCidr(text: string, loose = false): Cidr | undefined {
  const [addr, len, extra] = text.split('/');
  if (addr === undefined || extra !== undefined) return undefined;
  const ip = parseIpv4(addr);
  if (ip === undefined) return undefined;
  const prefixLen = len === undefined ? 32 : /^\d{1,2}$/.test(len) ? Number(len) : NaN;
  if (!(prefixLen >= 0 && prefixLen <= 32)) return undefined;
  const base = (ip & maskOf(prefixLen)) >>> 0;
  if (!loose && base !== ip) return undefined;
  return { base, prefixLen };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIpv4(cidr.base)}/${cidr.prefixLen}`;
}

export function cidrSize(cidr: Cidr): number {
  return 2 ** (32 - cidr.prefixLen);
}

export function cidrContains(cidr: Cidr, ip: number): boolean {
  return (ip & maskOf(cidr.prefixLen)) >>> 0 === cidr.base;
}

export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  const len = Math.min(a.prefixLen, b.prefixLen);
  const mask = maskOf(len);
  return (a.base & mask) >>> 0 === (b.base & mask) >>> 0;
}

/**
 * Docker's default pool order (ipamutils): 172.17.0.0/16 ... 172.31.0.0/16, then 192.168.0.0/20 ...
 * 192.168.240.0/20. 10.0.0.0/8 is left out on purpose: it is where corporate and cloud networks live.
 */
export function defaultPool(): Cidr[] {
  const pool: Cidr[] = [];
  for (let second = 17; second <= 31; second++)
    pool.push({ base: ((172 << 24) | (second << 16)) >>> 0, prefixLen: 16 });
  for (let third = 0; third < 256; third += 16)
    pool.push({ base: ((192 << 24) | (168 << 16) | (third << 8)) >>> 0, prefixLen: 20 });
  return pool;
}

/** Prefixes a new subnet must not overlap, with who holds them, for the error message. */
export interface TakenPrefix {
  readonly cidr: Cidr;
  /** `route 10.0.0.0/8 dev eth0`, `network "web" of root /var/lib/tsfig`... */
  readonly holder: string;
}

/**
 * Picks the first pool prefix that overlaps nothing taken (host routes and addresses, resolvers, other tsfig
 * networks). Pure, so it is tested against literal route tables.
 */
export function chooseSubnet(pool: readonly Cidr[], taken: readonly TakenPrefix[]): Cidr | undefined {
  return pool.find((candidate) => !taken.some((t) => cidrOverlaps(candidate, t.cidr)));
}

/** The first prefix in taken that overlaps cidr, if any. */
export function findOverlap(cidr: Cidr, taken: readonly TakenPrefix[]): TakenPrefix | undefined {
  return taken.find((t) => cidrOverlaps(cidr, t.cidr));
}

/** Shape of `ip -j route` entries that matter here. */
export interface HostRoute {
  readonly dst: string;
  readonly dev?: string;
  readonly gateway?: string;
}

/** Shape of `ip -j addr` entries that matter here. */
export interface HostAddress {
  readonly ifname: string;
  readonly addr_info?: readonly { family: string; local: string; prefixlen: number }[];
}

/**
 * Host routes and addresses as taken prefixes. The default route and host routes (/32) are skipped as prefixes but
 * addresses are kept, so a /16 containing one of the host's own addresses is never chosen.
 */
export function takenFromHost(
  routes: readonly HostRoute[],
  addresses: readonly HostAddress[],
  nameservers: readonly string[] = [],
): TakenPrefix[] {
  const taken: TakenPrefix[] = [];
  for (const route of routes) {
    if (route.dst === 'default') continue;
    const cidr = parseCidr(route.dst, true);
    if (cidr === undefined || cidr.prefixLen === 0) continue;
    taken.push({ cidr, holder: `host route ${route.dst}${route.dev !== undefined ? ` dev ${route.dev}` : ''}` });
  }
  for (const link of addresses) {
    for (const info of link.addr_info ?? []) {
      if (info.family !== 'inet') continue;
      const cidr = parseCidr(`${info.local}/${info.prefixlen}`, true);
      if (cidr === undefined || cidr.prefixLen === 0) continue;
      taken.push({ cidr, holder: `address ${info.local}/${info.prefixlen} on ${link.ifname}` });
    }
  }
  for (const server of nameservers) {
    const cidr = parseCidr(server);
    if (cidr !== undefined) taken.push({ cidr, holder: `nameserver ${server}` });
  }
  return taken;
}

/** Validates a user subnet (`--subnet`): a network address with its prefix, between /8 and /30. */
export function parseSubnet(text: string): Cidr {
  const loose = parseCidr(text, true);
  if (loose === undefined || !text.includes('/')) {
    throw new EngineError('invalid', `invalid subnet "${text}": expected an IPv4 prefix like 172.30.0.0/16`);
  }
  if (parseCidr(text) === undefined) {
    throw new EngineError('invalid', `invalid subnet "${text}": host bits are set`, {
      hint: `use ${formatCidr(loose)}`,
    });
  }
  if (loose.prefixLen < 8 || loose.prefixLen > 30) {
    throw new EngineError('invalid', `invalid subnet "${text}": the prefix length must be between 8 and 30`);
  }
  return loose;
}

/** The gateway: the given one (validated) or the first host address of the subnet, as Docker does. */
export function chooseGateway(subnet: Cidr, gateway?: string): number {
  if (gateway === undefined) return subnet.base + 1;
  const ip = parseIpv4(gateway);
  if (ip === undefined) throw new EngineError('invalid', `invalid gateway "${gateway}": not an IPv4 address`);
  if (!isHostAddress(subnet, ip)) {
    throw new EngineError('invalid', `invalid gateway "${gateway}": not a host address of ${formatCidr(subnet)}`);
  }
  return ip;
}

/** True for an address inside the subnet that is neither the network nor the broadcast address. */
export function isHostAddress(subnet: Cidr, ip: number): boolean {
  return cidrContains(subnet, ip) && ip !== subnet.base && ip !== subnet.base + cidrSize(subnet) - 1;
}

/**
 * Chooses a container address: the fixed one (validated: inside the subnet, not the gateway, not in use) or the
 * lowest free host address.
 */
export function allocateAddress(subnet: Cidr, gateway: number, used: ReadonlySet<number>, fixed?: string): number {
  const range = formatCidr(subnet);
  if (fixed !== undefined) {
    const ip = parseIpv4(fixed);
    if (ip === undefined) throw new EngineError('invalid', `invalid ip "${fixed}": not an IPv4 address`);
    if (!isHostAddress(subnet, ip)) {
      throw new EngineError('invalid', `invalid ip ${fixed}: not a host address of the network's subnet ${range}`);
    }
    if (ip === gateway) throw new EngineError('conflict', `ip ${fixed} is the gateway of ${range}`);
    if (used.has(ip)) throw new EngineError('conflict', `ip ${fixed} is already in use on ${range}`);
    return ip;
  }
  const last = subnet.base + cidrSize(subnet) - 2;
  for (let ip = subnet.base + 1; ip <= last; ip++) {
    if (ip !== gateway && !used.has(ip)) return ip;
  }
  throw new EngineError('conflict', `no free address left in ${range}`, {
    hint: 'remove unused containers or create a network with a larger --subnet',
  });
}
