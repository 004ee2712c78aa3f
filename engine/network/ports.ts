import { promises as fs } from 'node:fs';
import { EngineError } from '../errors.js';
import { parseIpv4 } from './ipam.js';

export type PortProto = 'tcp' | 'udp';

/** One `-p` argument, parsed. Ranges are inclusive; a single port has start === end. */
export interface PortSpec {
  /** Host address to bind; '' means every address (0.0.0.0). */
  readonly hostIp: string;
  /** Host port range; undefined means ephemeral ports. */
  readonly hostPorts: { readonly start: number; readonly end: number } | undefined;
  readonly containerPorts: { readonly start: number; readonly end: number };
  readonly proto: PortProto;
}

/** One container port to publish, after expanding ranges. */
export interface PortRequest {
  readonly hostIp: string;
  /** Candidate host ports (one fixed port, a range to pick from, or undefined for ephemeral). */
  readonly hostPorts: { readonly start: number; readonly end: number } | undefined;
  readonly containerPort: number;
  readonly proto: PortProto;
}

/** A published port as stored and reported. */
export interface PublishedPort {
  readonly proto: PortProto;
  /** '' = every host address. */
  readonly hostIp: string;
  readonly hostPort: number;
  readonly containerPort: number;
}

function invalid(spec: string, why: string): EngineError {
  return new EngineError('invalid', `invalid port spec "${spec}": ${why}`, {
    hint: 'use one of 8000, 8000:80, 127.0.0.1:8000:80, 127.0.0.1::80, 8000-8001:80-81, with an optional /tcp or /udp',
  });
}

function parseRange(spec: string, text: string, what: string): { start: number; end: number } {
  const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (match === null) throw invalid(spec, `${what} "${text}" is not a port or a range`);
  const start = Number(match[1]);
  const end = match[2] === undefined ? start : Number(match[2]);
  if (start < 1 || end > 65535 || start > 65535) throw invalid(spec, `${what} ${text} is outside 1-65535`);
  if (end < start) throw invalid(spec, `${what} range ${text} ends before it starts`);
  return { start, end };
}

/**
 * Parses docker's `-p` forms: `80`, `8000:80`, `127.0.0.1:8000:80`, `127.0.0.1::80`, `8000-8001:80-81`,
 * `8000-8010:80` (one port picked from the range), each with an optional `/tcp` or `/udp`.
 */
export function parsePortSpec(spec: string): PortSpec {
  let rest = spec.trim();
  let proto: PortProto = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const p = rest.slice(slash + 1).toLowerCase();
    if (p === 'sctp') throw new EngineError('unsupported', `port spec "${spec}": sctp is not supported`);
    if (p !== 'tcp' && p !== 'udp') throw invalid(spec, `unknown protocol "${p}"`);
    proto = p;
    rest = rest.slice(0, slash);
  }
  if (rest.startsWith('['))
    throw new EngineError('unsupported', `port spec "${spec}": IPv6 host addresses are not supported`);
  const parts = rest.split(':');
  let hostIp = '';
  let hostText = '';
  let containerText: string;
  if (parts.length === 1) {
    containerText = parts[0] ?? '';
  } else if (parts.length === 2) {
    hostText = parts[0] ?? '';
    containerText = parts[1] ?? '';
    if (hostText === '') throw invalid(spec, 'empty host port');
  } else if (parts.length === 3) {
    hostIp = parts[0] ?? '';
    hostText = parts[1] ?? '';
    containerText = parts[2] ?? '';
    if (parseIpv4(hostIp) === undefined) throw invalid(spec, `"${hostIp}" is not an IPv4 address`);
    if (hostIp === '0.0.0.0') hostIp = '';
  } else {
    throw invalid(spec, 'too many ":"');
  }
  if (containerText === '') throw invalid(spec, 'missing container port');
  const containerPorts = parseRange(spec, containerText, 'container port');
  const hostPorts = hostText === '' ? undefined : parseRange(spec, hostText, 'host port');
  if (hostPorts !== undefined) {
    const hostCount = hostPorts.end - hostPorts.start;
    const containerCount = containerPorts.end - containerPorts.start;
    if (containerCount !== 0 && hostCount !== containerCount) {
      throw invalid(spec, 'host and container port ranges have different sizes');
    }
  }
  return { hostIp, hostPorts, containerPorts, proto };
}

/** One request per container port. `8000-8010:80` stays one request whose host port is picked from the range. */
export function expandPortSpec(spec: PortSpec): PortRequest[] {
  const requests: PortRequest[] = [];
  const { containerPorts, hostPorts } = spec;
  const single = containerPorts.start === containerPorts.end;
  for (let port = containerPorts.start; port <= containerPorts.end; port++) {
    const offset = port - containerPorts.start;
    const candidates =
      hostPorts === undefined
        ? undefined
        : single
          ? hostPorts
          : { start: hostPorts.start + offset, end: hostPorts.start + offset };
    requests.push({ hostIp: spec.hostIp, hostPorts: candidates, containerPort: port, proto: spec.proto });
  }
  return requests;
}

/** A socket bound on the host, from /proc/net/{tcp,tcp6,udp,udp6}. */
export interface HostSocket {
  readonly proto: PortProto;
  /** '' for a wildcard (0.0.0.0 or ::), else the IPv4 address (IPv4-mapped IPv6 is unmapped) or IPv6 hex. */
  readonly ip: string;
  readonly port: number;
  readonly inode: number;
}

function decodeIpv4Hex(hex: string): string {
  const n = parseInt(hex, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.');
}

/** Parses one /proc/net table; for tcp only listening sockets (state 0A) count, for udp every bound socket. */
export function parseProcNet(text: string, proto: PortProto, v6: boolean): HostSocket[] {
  const sockets: HostSocket[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const [addrHex, portHex] = (fields[1] ?? '').split(':');
    const state = fields[3];
    if (addrHex === undefined || portHex === undefined) continue;
    if (proto === 'tcp' && state !== '0A') continue;
    let ip: string;
    if (!v6) {
      ip = decodeIpv4Hex(addrHex);
      if (ip === '0.0.0.0') ip = '';
    } else if (/^0{32}$/.test(addrHex)) {
      ip = '';
    } else if (addrHex.slice(0, 24) === '0000000000000000FFFF0000') {
      ip = decodeIpv4Hex(addrHex.slice(24));
    } else {
      ip = `v6:${addrHex}`;
    }
    sockets.push({ proto, ip, port: parseInt(portHex, 16), inode: Number(fields[9]) });
  }
  return sockets;
}

export async function readHostSockets(): Promise<HostSocket[]> {
  const tables: [string, PortProto, boolean][] = [
    ['/proc/net/tcp', 'tcp', false],
    ['/proc/net/tcp6', 'tcp', true],
    ['/proc/net/udp', 'udp', false],
    ['/proc/net/udp6', 'udp', true],
  ];
  const all: HostSocket[] = [];
  for (const [file, proto, v6] of tables) {
    const text = await fs.readFile(file, 'utf8').catch(() => '');
    all.push(...parseProcNet(text, proto, v6));
  }
  return all;
}

/** A port published by a tsfig container of any root on this host. */
export interface PublishedByContainer extends PublishedPort {
  readonly containerId: string;
  readonly containerName: string | undefined;
  readonly rootId: string;
}

/** Who holds a host port. */
export type PortHolder =
  | { readonly kind: 'socket'; readonly socket: HostSocket }
  | { readonly kind: 'container'; readonly port: PublishedByContainer };

function ipsOverlap(a: string, b: string): boolean {
  return a === '' || b === '' || a === b;
}

/** The socket or published port that conflicts with binding proto hostIp:port, if any. Pure. */
export function findPortHolder(
  proto: PortProto,
  hostIp: string,
  port: number,
  sockets: readonly HostSocket[],
  published: readonly PublishedByContainer[],
): PortHolder | undefined {
  const p = published.find((x) => x.proto === proto && x.hostPort === port && ipsOverlap(x.hostIp, hostIp));
  if (p !== undefined) return { kind: 'container', port: p };
  const s = sockets.find((x) => x.proto === proto && x.port === port && ipsOverlap(x.ip, hostIp));
  if (s !== undefined) return { kind: 'socket', socket: s };
  return undefined;
}

/** The ephemeral range (`net.ipv4.ip_local_port_range`). */
export async function ephemeralRange(): Promise<{ start: number; end: number }> {
  const text = await fs.readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '49153 60999');
  const [start, end] = text.trim().split(/\s+/).map(Number);
  return { start: start ?? 49153, end: end ?? 60999 };
}

/** The process holding a socket inode: scans /proc/<pid>/fd for `socket:[inode]`. */
export async function socketOwner(inode: number): Promise<{ pid: number; command: string } | undefined> {
  if (inode === 0) return undefined;
  const target = `socket:[${inode}]`;
  const pids = (await fs.readdir('/proc')).filter((name) => /^\d+$/.test(name));
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = await fs.readdir(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      const link = await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (link !== target) continue;
      const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      const command = cmdline
        .split('\0')
        .filter((x) => x !== '')
        .join(' ');
      return { pid: Number(pid), command: command === '' ? '?' : command };
    }
  }
  return undefined;
}

/** Human description of a holder for the conflict message. */
export async function describeHolder(holder: PortHolder): Promise<string> {
  if (holder.kind === 'container') {
    const { port } = holder;
    const name = port.containerName ?? port.containerId.slice(0, 12);
    return `container ${name} (tsfig root ${port.rootId})`;
  }
  const owner = await socketOwner(holder.socket.inode);
  return owner === undefined ? 'another process' : `process ${owner.pid} (${owner.command})`;
}

export function formatPublished(port: PublishedPort): string {
  return `${port.hostIp === '' ? '0.0.0.0' : port.hostIp}:${port.hostPort}->${port.containerPort}/${port.proto}`;
}
