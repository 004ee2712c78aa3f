import type { NetworkState } from './types.js';

/** DNS wire format, just what the embedded resolver needs: one question in, A answers out. Pure. */

export const DNS_TTL = 600;

/** Held by the running resolver of a root for its whole life. */
export function dnsLockName(rootId: string): string {
  return `tsfig-dns-${rootId}`;
}
export const TYPE_A = 1;
export const TYPE_PTR = 12;
export const TYPE_AAAA = 28;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;

export interface DnsQuery {
  readonly id: number;
  readonly flags: number;
  /** Lower-case, without the trailing dot. */
  readonly name: string;
  readonly type: number;
  readonly qclass: number;
  /** The question section as received (copied into the answer). */
  readonly question: Buffer;
}

/** Parses a query with exactly one question; undefined when it is not one (answer FORMERR). */
export function parseQuery(message: Buffer): DnsQuery | undefined {
  if (message.length < 12 || (message.readUInt16BE(2) & 0x8000) !== 0) return undefined;
  return parseMessage(message);
}

/**
 * Whether reply, received on the forwarding socket, answers the query forwarded with id to server: from the server's
 * own address and port, a response (QR set) with that id and exactly the same question (name compared without case,
 * type, class). Anything else is dropped: another process on the host or a container could otherwise race the real
 * answer with a forged one.
 */
export function isUpstreamReply(
  reply: Buffer,
  from: { readonly address: string; readonly port: number },
  server: { readonly host: string; readonly port: number },
  id: number,
  query: DnsQuery,
): boolean {
  if (from.address !== server.host || from.port !== server.port) return false;
  if (reply.length < 12 || (reply.readUInt16BE(2) & 0x8000) === 0) return false;
  const parsed = parseMessage(reply);
  return (
    parsed !== undefined &&
    parsed.id === id &&
    parsed.name === query.name &&
    parsed.type === query.type &&
    parsed.qclass === query.qclass
  );
}

/**
 * Whether a name outside the engine's containers may be forwarded for a query that reached gateway: never for an
 * `internal` network (docker's --internal; CVE-2024-29018: its containers would reach the outside through DNS), nor
 * for an address that is no network's gateway.
 */
export function mayForward(networks: readonly NetworkState[], gateway: string): boolean {
  const owners = networks.filter((network) => network.gateway === gateway);
  return owners.length > 0 && owners.every((network) => !network.internal);
}

/** The header and the one question of a message (query or response). */
function parseMessage(message: Buffer): DnsQuery | undefined {
  if (message.length < 12) return undefined;
  const flags = message.readUInt16BE(2);
  if (message.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let offset = 12;
  for (;;) {
    const length = message[offset];
    if (length === undefined || (length & 0xc0) !== 0) return undefined;
    offset += 1;
    if (length === 0) break;
    if (offset + length > message.length) return undefined;
    labels.push(message.toString('latin1', offset, offset + length));
    offset += length;
  }
  if (offset + 4 > message.length) return undefined;
  return {
    id: message.readUInt16BE(0),
    flags,
    name: labels.join('.').toLowerCase(),
    type: message.readUInt16BE(offset),
    qclass: message.readUInt16BE(offset + 2),
    question: message.subarray(12, offset + 4),
  };
}

/** An answer to the query: A records (pointing at the question name) or an empty answer with rcode. */
export function buildAnswer(query: DnsQuery, addresses: readonly string[], rcode = 0, authoritative = true): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.id, 0);
  const opcode = query.flags & 0x7800;
  const rd = query.flags & 0x0100;
  header.writeUInt16BE(0x8000 | opcode | (authoritative ? 0x0400 : 0) | rd | 0x0080 | (rcode & 15), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(addresses.length, 6);
  const answers = addresses.map((ip) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(TYPE_A, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(DNS_TTL, 6);
    rr.writeUInt16BE(4, 10);
    ip.split('.').forEach((octet, i) => rr.writeUInt8(Number(octet), 12 + i));
    return rr;
  });
  return Buffer.concat([header, query.question, ...answers]);
}

/** Encodes a domain name as DNS labels (no compression). */
function encodeName(name: string): Buffer {
  const parts = name
    .replace(/\.$/, '')
    .split('.')
    .filter((p) => p !== '')
    .map((label) => {
      const bytes = Buffer.from(label.slice(0, 63), 'latin1');
      return Buffer.concat([Buffer.from([bytes.length]), bytes]);
    });
  return Buffer.concat([...parts, Buffer.from([0])]);
}

/** A PTR answer (reverse lookup of a container address) naming the container. */
export function buildPtrAnswer(query: DnsQuery, target: string): Buffer {
  const header = buildAnswer(query, []);
  header.writeUInt16BE(1, 6);
  const rdata = encodeName(target);
  const rr = Buffer.alloc(12);
  rr.writeUInt16BE(0xc00c, 0);
  rr.writeUInt16BE(TYPE_PTR, 2);
  rr.writeUInt16BE(1, 4);
  rr.writeUInt32BE(DNS_TTL, 6);
  rr.writeUInt16BE(rdata.length, 10);
  return Buffer.concat([header, rr, rdata]);
}

/**
 * The container name for a reverse query (`2.0.18.172.in-addr.arpa`) of an address on the networks a query from
 * client to gateway is answered from (see scope); undefined otherwise (forward it).
 */
export function reverseLookup(
  networks: readonly NetworkState[],
  gateway: string,
  name: string,
  client?: string,
): string | undefined {
  const match = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\.in-addr\.arpa\.?$/.exec(name.toLowerCase());
  if (match === null) return undefined;
  const ip = [match[4], match[3], match[2], match[1]].join('.');
  for (const network of scope(networks, gateway, client)) {
    const ep = Object.values(network.endpoints).find((e) => e.ip === ip);
    if (ep !== undefined) return ep.containerName ?? ep.hostname ?? ep.containerId.slice(0, 12);
  }
  return undefined;
}

/** FORMERR for a message that is not a query we understand (echoes its id when there is one). */
export function formatError(message: Buffer): Buffer {
  const header = Buffer.alloc(12);
  if (message.length >= 2) header.writeUInt16BE(message.readUInt16BE(0), 0);
  header.writeUInt16BE(0x8000 | 0x0080 | RCODE_FORMERR, 2);
  return header;
}

/** Names of an endpoint: container name, hostname, aliases, short id. Lower-case. */
function endpointNames(ep: NetworkState['endpoints'][string]): string[] {
  return [ep.containerName, ep.hostname, ...ep.aliases, ep.containerId.slice(0, 12)]
    .filter((n): n is string => n !== undefined && n !== '')
    .map((n) => n.toLowerCase());
}

/**
 * The networks a query is answered from: the one whose gateway received it, then (as Docker's resolver does) every
 * other network the asking container (found by its address on the first) is attached to.
 */
function scope(networks: readonly NetworkState[], gateway: string, client: string | undefined): NetworkState[] {
  const first = networks.find((n) => n.gateway === gateway);
  if (first === undefined) return [];
  const asker = Object.values(first.endpoints).find((ep) => ep.ip === client)?.containerId;
  if (asker === undefined) return [first];
  return [first, ...networks.filter((n) => n !== first && n.endpoints[asker] !== undefined)];
}

/**
 * Addresses of a name for a query that reached gateway from client: on the gateway's network first, else on the
 * asking container's other networks; every replica of a scaled service (same alias) is returned. undefined when
 * the name is not a container of those networks (forward it).
 */
export function lookup(
  networks: readonly NetworkState[],
  gateway: string,
  name: string,
  client?: string,
): string[] | undefined {
  const wanted = name.replace(/\.$/, '').toLowerCase();
  for (const network of scope(networks, gateway, client)) {
    const found = Object.values(network.endpoints)
      .filter((ep) => endpointNames(ep).includes(wanted))
      .map((ep) => ep.ip);
    if (found.length > 0) return [...new Set(found)];
  }
  return undefined;
}

/** Upstream resolvers from resolv.conf text (the resolver runs in the host's netns, so 127.0.0.53 is fine). */
export function upstreams(resolvConf: string): string[] {
  return [...resolvConf.matchAll(/^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/gm)].map((m) => m[1] ?? '').slice(0, 3);
}

/** resolv.conf of a container on tsfig networks: the embedded resolver on its first network's gateway. */
export function renderResolvConf(gateway: string, hostResolvConf: string): string {
  const search = /^\s*search\s+(.+)$/m.exec(hostResolvConf)?.[1]?.trim();
  return [`nameserver ${gateway}`, ...(search !== undefined ? [`search ${search}`] : []), 'options ndots:0', ''].join(
    '\n',
  );
}
