/**
 * Records and IPAM of one root's networks: `<root>/networks/<id>.json` (a network and its endpoints: the truth that
 * host objects follow), this root's entry in the host registry (`/run/tsfig/net-registry.json`: subnets and
 * published ports of every root), and the prefixes a new subnet must avoid. Part of NetworkManager (manager.ts).
 */
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { EngineError, isErrno } from '../errors.js';
import { writeJsonAtomic } from '../state/atomic.js';
import { withLock } from '../state/lock.js';
import type { EnginePaths } from '../state/paths.js';
import { ipJson } from './exec.js';
import { parseCidr, takenFromHost, type HostAddress, type HostRoute, type TakenPrefix } from './ipam.js';
import type { PublishedByContainer } from './ports.js';
import { HOST_LOCK, readRegistry, writeRootEntry, type RootEntry } from './registry.js';
import type { EndpointState, NetworkState } from './types.js';
import { compareNatural, compareText } from '../state/compare.js';

export class NetworkRecords {
  readonly paths: EnginePaths;
  readonly hostRunDir: string;

  constructor(paths: EnginePaths, hostRunDir: string) {
    this.paths = paths;
    this.hostRunDir = hostRunDir;
  }

  private file(id: string): string {
    return path.join(this.paths.networks, `${id}.json`);
  }

  /** Every network of this root, sorted by name. */
  async list(): Promise<NetworkState[]> {
    let files: string[];
    try {
      files = await fs.readdir(this.paths.networks);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return [];
      throw error;
    }
    const networks: NetworkState[] = [];
    for (const file of files) {
      if (file.startsWith('.') || !file.endsWith('.json')) continue;
      const state = this.read(path.join(this.paths.networks, file));
      if (state !== undefined) networks.push(state);
    }
    return networks.sort((a, b) => compareText(a.name, b.name));
  }

  /**
   * The last parse of each state file, with the bytes it was parsed from: a file read again unchanged (compared byte
   * for byte) is not parsed again. list() runs at every attach and every /etc/hosts write, and the state of a network
   * of n endpoints is O(n) to parse: an `up` of 500 containers spent 2.2 s of its CPU parsing the same states (issue
   * 18). The states are frozen, since every caller gets the same objects.
   */
  private readonly parsed = new Map<string, { bytes: Buffer; state: NetworkState }>();

  private read(file: string): NetworkState | undefined {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return undefined;
      throw error;
    }
    const hit = this.parsed.get(file);
    if (hit !== undefined && hit.bytes.equals(bytes)) return hit.state;
    const state = deepFreeze(JSON.parse(bytes.toString('utf8')) as NetworkState);
    this.parsed.set(file, { bytes, state });
    return state;
  }

  /** A network by name, full id or unique id prefix. */
  async inspect(nameOrId: string): Promise<NetworkState> {
    return findNetwork(await this.list(), nameOrId);
  }

  /** Writes a network's state (atomically); the caller holds the root lock. */
  async write(network: NetworkState): Promise<void> {
    await writeJsonAtomic(this.file(network.id), network);
  }

  /** Deletes a network's state. */
  async delete(id: string): Promise<void> {
    await fs.rm(this.file(id), { force: true });
  }

  /** Writes a network's state and this root's registry entry; the caller holds the host lock. */
  async save(network: NetworkState, all: readonly NetworkState[]): Promise<void> {
    await this.write(network);
    await this.writeRootLocked(all);
  }

  /** This root's registry entry for these networks, written under the host lock. */
  async writeRoot(networks: readonly NetworkState[]): Promise<void> {
    await withLock(HOST_LOCK, () => this.writeRootLocked(networks));
  }

  /** This root's registry entry for these networks; the caller holds the host lock. */
  async writeRootLocked(networks: readonly NetworkState[]): Promise<void> {
    await writeRootEntry(this.hostRunDir, this.paths.rootId, this.rootEntry(networks));
  }

  rootEntry(networks: readonly NetworkState[]): RootEntry {
    return {
      root: this.paths.root,
      runRoot: this.paths.runRoot,
      networks: networks.map((n) => ({
        id: n.id,
        name: n.name,
        subnet: n.subnet,
        gateway: n.gateway,
        bridge: n.bridge,
      })),
      ports: ownPorts(networks, this.paths.rootId).map(({ rootId: _rootId, ...p }) => p),
    };
  }

  /** What a new subnet must not overlap: this root's networks, other roots' (registry), host routes and addresses. */
  async takenPrefixes(own: readonly NetworkState[]): Promise<TakenPrefix[]> {
    const [routes, addresses, resolv, registry] = await Promise.all([
      ipJson<HostRoute[]>(['-4', 'route', 'show']),
      ipJson<HostAddress[]>(['-4', 'addr', 'show']),
      fs.readFile('/etc/resolv.conf', 'utf8').catch(() => ''),
      readRegistry(this.hostRunDir),
    ]);
    const nameservers = [...resolv.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1] ?? '');
    // tsfig networks first, so an overlap names the network rather than its bridge's route.
    const taken: TakenPrefix[] = [];
    for (const n of own) {
      const cidr = parseCidr(n.subnet);
      if (cidr !== undefined) taken.push({ cidr, holder: `network "${n.name}"` });
    }
    for (const [rootId, entry] of Object.entries(registry.roots)) {
      if (rootId === this.paths.rootId) continue;
      for (const n of entry.networks) {
        const cidr = parseCidr(n.subnet);
        if (cidr !== undefined) taken.push({ cidr, holder: `network "${n.name}" of tsfig root ${entry.root}` });
      }
    }
    taken.push(...takenFromHost(routes, addresses, nameservers));
    return taken;
  }
}

export function findNetwork(networks: readonly NetworkState[], nameOrId: string): NetworkState {
  const exact = networks.find((n) => n.name === nameOrId || n.id === nameOrId);
  if (exact !== undefined) return exact;
  const byPrefix = nameOrId.length >= 3 ? networks.filter((n) => n.id.startsWith(nameOrId)) : [];
  if (byPrefix.length === 1 && byPrefix[0] !== undefined) return byPrefix[0];
  throw new EngineError('not-found', `network "${nameOrId}" not found`, {
    hint: 'list networks with: tsfig network ls',
  });
}

/** The container's endpoint that carries its default route: on its external network with the lowest interface. */
export function defaultRouteHolder(
  networks: readonly NetworkState[],
  containerId: string,
): { n: NetworkState; ep: EndpointState } | undefined {
  return networks
    .flatMap((n) => {
      const ep = n.endpoints[containerId];
      return ep !== undefined && !n.internal ? [{ n, ep }] : [];
    })
    .sort((a, b) => compareNatural(a.ep.ifname, b.ep.ifname))[0];
}

export function withEndpoint(network: NetworkState, ep: EndpointState): NetworkState {
  return { ...network, endpoints: { ...network.endpoints, [ep.containerId]: ep } };
}

/** Every published port of these networks, with the container it leads to. */
export function ownPorts(networks: readonly NetworkState[], rootId: string): PublishedByContainer[] {
  return networks.flatMap((n) =>
    Object.values(n.endpoints).flatMap((ep) =>
      ep.ports.map((p) => ({ ...p, containerId: ep.containerId, containerName: ep.containerName, rootId })),
    ),
  );
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
