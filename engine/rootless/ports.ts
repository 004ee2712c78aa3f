/**
 * Published ports in rootless mode. The projects' bridges are in the session's network namespace, which the host
 * reaches only through slirp4netns (engine/rootless/session.ts): slirp4netns listens on the host port (as the user,
 * on the address asked for) and forwards each connection to 10.0.2.100:<host port> in the namespace, where the
 * root's nftables DNAT leads it to the container. This module keeps slirp4netns's forwards of one engine root equal
 * to the root's published ports, through its API socket (one JSON request per connection). The forwards a root made
 * are recorded in `<run root>/forwards.json`, so roots sharing the session never remove each other's.
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { EngineError, isErrno } from '../errors.js';
import { ROOTLESS_PORTS_ENV } from './env.js';

export interface HostForward {
  readonly proto: 'tcp' | 'udp';
  /** '' = every address. */
  readonly hostIp: string;
  readonly hostPort: number;
}

interface SlirpEntry {
  readonly id: number;
  readonly proto: string;
  readonly host_addr: string;
  readonly host_port: number;
  readonly guest_port: number;
}

/** One request to slirp4netns's API socket; rejects with its error text. */
async function request<T>(socket: string, body: object): Promise<T> {
  const text = await new Promise<string>((resolve, reject) => {
    const client = net.connect(socket);
    let reply = '';
    client.setEncoding('utf8');
    client.on('data', (chunk: string) => (reply += chunk));
    client.once('error', reject);
    client.once('end', () => resolve(reply));
    client.once('connect', () => client.end(JSON.stringify(body)));
  });
  // add_hostfwd answers {"return": {...}}, list_hostfwd {"entries": [...]}, failures {"error": {"desc": ...}}
  const parsed = JSON.parse(text) as { return?: T; error?: { desc?: string } };
  if (parsed.error !== undefined) throw new Error(parsed.error.desc ?? JSON.stringify(parsed.error));
  return parsed.return ?? (parsed as T);
}

const keyOf = (f: { proto: string; hostIp?: string; host_addr?: string; hostPort?: number; host_port?: number }) =>
  `${f.proto}/${f.hostIp ?? (f.host_addr === '0.0.0.0' ? '' : (f.host_addr ?? ''))}:${f.hostPort ?? f.host_port ?? 0}`;

/**
 * Makes slirp4netns forward exactly `wanted` for this root (runRoot): removes the root's forwards no longer wanted,
 * adds the missing ones. A host port that cannot be bound (in use, below net.ipv4.ip_unprivileged_port_start) is
 * an error naming it; the forwards added before it stay recorded, so the next sync removes them if unwanted.
 */
export async function syncHostForwards(
  runRoot: string,
  wanted: readonly HostForward[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const socket = env[ROOTLESS_PORTS_ENV];
  const file = path.join(runRoot, 'forwards.json');
  const recorded = await fs
    .readFile(file, 'utf8')
    .then((text) => JSON.parse(text) as Record<string, number>)
    .catch((error: unknown) => {
      if (isErrno(error, 'ENOENT') || error instanceof SyntaxError) return {};
      throw error;
    });
  if (socket === undefined) {
    if (wanted.length === 0) return;
    throw new EngineError('unsupported', 'rootless mode cannot publish ports: slirp4netns is not running', {
      hint: env.TSFIG_ROOTLESS_NO_SLIRP ?? 'install slirp4netns',
    });
  }
  const entries = await request<{ entries: SlirpEntry[] }>(socket, { execute: 'list_hostfwd' }).then((r) => r.entries);
  const live = new Map(entries.map((e) => [e.id, e]));
  const want = new Map(wanted.map((f) => [keyOf(f), f]));
  const kept: Record<string, number> = {};
  const save = async () => {
    await fs.mkdir(runRoot, { recursive: true, mode: 0o700 });
    await fs.writeFile(`${file}.tmp`, `${JSON.stringify(kept)}\n`);
    await fs.rename(`${file}.tmp`, file);
  };
  for (const [key, id] of Object.entries(recorded)) {
    const entry = live.get(id);
    if (entry === undefined || keyOf(entry) !== key) continue; // gone (slirp4netns restarted) or not ours
    if (want.has(key)) {
      kept[key] = id;
      continue;
    }
    await request(socket, { execute: 'remove_hostfwd', arguments: { id } });
  }
  // read in the host's network namespace, where this process is and where slirp4netns binds
  const unprivileged = Number(
    (await fs.readFile('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').catch(() => '1024')).trim(),
  );
  try {
    for (const [key, forward] of want) {
      if (kept[key] !== undefined) continue;
      if (forward.hostPort < unprivileged) {
        throw new EngineError(
          'permission',
          `cannot publish host port ${forward.hostPort} rootless: ports below ${unprivileged} (sysctl net.ipv4.ip_unprivileged_port_start) need root`,
          {
            hint: `use a host port from ${unprivileged} up (e.g. "${forward.hostPort + 8000}:..."), or as root: sysctl net.ipv4.ip_unprivileged_port_start=${forward.hostPort}`,
          },
        );
      }
      const added = await request<{ id: number }>(socket, {
        execute: 'add_hostfwd',
        arguments: {
          proto: forward.proto,
          host_addr: forward.hostIp === '' ? '0.0.0.0' : forward.hostIp,
          host_port: forward.hostPort,
          guest_port: forward.hostPort,
        },
      }).catch((error: unknown) => {
        throw new EngineError(
          'conflict',
          `cannot publish ${forward.hostIp || '0.0.0.0'}:${forward.hostPort}/${forward.proto} on the host: ${(error as Error).message}`,
          {
            hint: 'another program (or another user) may be using that port: pick another host port',
          },
        );
      });
      kept[key] = added.id;
    }
  } finally {
    await save();
  }
}
