import { inRootlessSession, rootlessRuntimeDir } from '../rootless/env.js';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { EngineError } from '../errors.js';
import { newId } from '../state/ids.js';
import { withLock } from '../state/lock.js';
import { DEFAULT_RUN_BASE, type EnginePaths } from '../state/paths.js';
import { removeEmptyRunRoot } from '../state/run-root.js';
import { DnsProcess } from './dns-process.js';
import { ipBatch } from './exec.js';
import { Firewall, listNftTables } from './firewall.js';
import { renderHostsFile } from './hosts.js';
import { chooseGateway, chooseSubnet, defaultPool, findOverlap, formatCidr, formatIpv4, parseSubnet } from './ipam.js';
import { bridgeName } from './names.js';
import type { PublishedByContainer, PublishedPort } from './ports.js';
import { findNetwork, NetworkRecords, ownPorts } from './records.js';
import { HOST_LOCK } from './registry.js';
import { deleteLinks, mountedPaths, removeNetns, Sandboxes, type RemoveSandboxOptions } from './sandboxes.js';
import type { AttachOptions, Attachment, CreateNetworkOptions, NetworkState } from './types.js';

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export interface NetworkManagerOptions {
  /** Host-wide run dir holding the registry shared by every root. @default /run/tsfig */
  hostRunDir?: string;
  /**
   * The embedded resolver (engine/network/dns-server.ts), started with the first network and stopped with the
   * last. `false` disables it; `forward: false` answers NXDOMAIN for names that are not containers (tests).
   * `upstreams` (`IP` or `IP:PORT`) replace the host's resolv.conf nameservers.
   * @default { forward: true }
   */
  dns?: false | { forward?: boolean; upstreams?: readonly string[] };
}

/** What reconcile() changed. */
export interface ReconcileReport {
  readonly createdBridges: string[];
  readonly removedLinks: string[];
  readonly replumbed: string[];
  readonly droppedEndpoints: string[];
  readonly removedSandboxes: string[];
  readonly iptables: string[];
  /** Whether the firewall was re-applied, or left as the host already had it. */
  firewall: 'applied' | 'unchanged';
}

/**
 * Networks, sandboxes (netns), attachments and published ports of one engine root. Every mutation happens under
 * the root's network lock; subnet and host-port choices additionally under the host-wide lock, in that order.
 * State is written first and host objects follow it, so reconcile() can always converge the host to the state.
 */
export class NetworkManager {
  readonly paths: EnginePaths;
  readonly hostRunDir: string;
  /** `<root>/networks/*.json` and this root's registry entry, IPAM (records.ts). */
  private readonly records: NetworkRecords;
  /** The nft table, iptables rules and host ports (firewall.ts). */
  private readonly firewall: Firewall;
  /** The embedded resolver's process (dns-process.ts). */
  private readonly dns: DnsProcess;
  /** Netns sandboxes, endpoints, bridges and veths (sandboxes.ts). */
  private readonly sandboxes: Sandboxes;

  constructor(paths: EnginePaths, options: NetworkManagerOptions = {}) {
    this.paths = paths;
    // rootless: what the user's roots share is the session's (its namespace has their bridges)
    this.hostRunDir =
      options.hostRunDir ?? (inRootlessSession() ? rootlessRuntimeDir() : undefined) ?? DEFAULT_RUN_BASE;
    this.records = new NetworkRecords(paths, this.hostRunDir);
    this.firewall = new Firewall(paths, this.records);
    this.dns = new DnsProcess(
      paths,
      options.dns === false
        ? false
        : { forward: options.dns?.forward ?? true, upstreams: options.dns?.upstreams ?? [] },
    );
    this.sandboxes = new Sandboxes(paths, this.records, this.firewall, this.dns, this.rootLock);
  }

  /** This root's nft table (`table ip <tableName>`). */
  get tableName(): string {
    return this.firewall.tableName;
  }

  private get rootLock(): string {
    return `tsfig-net-${this.paths.rootId}`;
  }

  /** Path of a container's netns bind mount (what the runtime joins with `netns <path>`). */
  sandboxPath(containerId: string): string {
    return this.sandboxes.sandboxPath(containerId);
  }

  /** True when the container's sandbox is there (its netns file mounted). */
  hasSandbox(containerId: string): Promise<boolean> {
    return this.sandboxes.hasSandbox(containerId);
  }

  // ---------------------------------------------------------------- networks

  /** Every network of this root, sorted by name. */
  list(): Promise<NetworkState[]> {
    return this.records.list();
  }

  /** A network by name, full id or unique id prefix. */
  inspect(nameOrId: string): Promise<NetworkState> {
    return this.records.inspect(nameOrId);
  }

  async create(name: string, options: CreateNetworkOptions = {}): Promise<NetworkState> {
    if (!NAME_RE.test(name)) {
      throw new EngineError('invalid', `invalid network name "${name}": use letters, digits, "_", "." and "-"`);
    }
    if (options.driver !== undefined && options.driver !== 'bridge') {
      throw new EngineError('unsupported', `network driver "${String(options.driver)}" is not supported`, {
        hint: 'tsfig only has the bridge driver',
      });
    }
    const requested = options.subnet === undefined ? undefined : parseSubnet(options.subnet);
    if (requested !== undefined) chooseGateway(requested, options.gateway);
    else if (options.gateway !== undefined) {
      throw new EngineError('invalid', 'a --gateway needs a --subnet');
    }
    return withLock(this.rootLock, async () => {
      const networks = await this.records.list();
      if (networks.some((n) => n.name === name)) {
        throw new EngineError('conflict', `network "${name}" already exists`);
      }
      await fs.mkdir(this.paths.networks, { recursive: true });
      const id = newId();
      const state = await withLock(HOST_LOCK, async () => {
        const taken = await this.records.takenPrefixes(networks);
        let subnet = requested;
        if (subnet !== undefined) {
          const overlap = findOverlap(subnet, taken);
          if (overlap !== undefined) {
            throw new EngineError('conflict', `subnet ${formatCidr(subnet)} overlaps ${overlap.holder}`, {
              hint: 'choose another --subnet or leave it out to get a free one',
            });
          }
        } else {
          subnet = chooseSubnet(defaultPool(), taken);
          if (subnet === undefined) {
            throw new EngineError(
              'conflict',
              'no free subnet left in the private pool (172.17-31.0.0/16, 192.168.0.0/20)',
              {
                hint: 'remove unused networks (tsfig network prune) or pass --subnet',
              },
            );
          }
        }
        const created: NetworkState = {
          version: 1,
          id,
          name,
          driver: 'bridge',
          created: new Date().toISOString(),
          subnet: formatCidr(subnet),
          gateway: formatIpv4(chooseGateway(subnet, options.gateway)),
          bridge: bridgeName(this.paths.hostPrefix, id),
          internal: options.internal ?? false,
          labels: { ...(options.labels ?? {}) },
          endpoints: {},
        };
        await this.records.write(created);
        await this.records.writeRootLocked([...networks, created]);
        return created;
      });
      try {
        await this.sandboxes.setupBridge(state);
        await this.firewall.applyHost([...networks, state]);
        await this.ensureDns();
      } catch (error) {
        await this.removeNetworkObjects(state, networks).catch(() => undefined);
        throw error;
      }
      return state;
    });
  }

  /** Removes a network; refuses while containers are attached, naming them. */
  async remove(nameOrId: string): Promise<NetworkState> {
    return withLock(this.rootLock, async () => {
      const networks = await this.list();
      const network = findNetwork(networks, nameOrId);
      const attached = Object.values(network.endpoints);
      if (attached.length > 0) {
        const names = attached.map((ep) => ep.containerName ?? ep.containerId.slice(0, 12)).join(', ');
        throw new EngineError('conflict', `network "${network.name}" has active endpoints: ${names}`, {
          hint: 'stop and remove those containers first, or detach them from the network',
        });
      }
      await this.removeNetworkObjects(
        network,
        networks.filter((n) => n.id !== network.id),
      );
      return network;
    });
  }

  /** Removes every network without endpoints; returns their names. */
  async prune(filter: (network: NetworkState) => boolean = () => true): Promise<string[]> {
    const removed: string[] = [];
    for (const network of await this.list()) {
      if (Object.keys(network.endpoints).length > 0 || !filter(network)) continue;
      try {
        await this.remove(network.id);
        removed.push(network.name);
      } catch (error) {
        if (!(error instanceof EngineError && (error.kind === 'conflict' || error.kind === 'not-found'))) throw error;
      }
    }
    return removed;
  }

  private async removeNetworkObjects(network: NetworkState, remaining: readonly NetworkState[]): Promise<void> {
    await this.records.delete(network.id);
    await this.records.writeRoot(remaining);
    await deleteLinks([network.bridge]);
    await this.firewall.applyHost(remaining);
    if (remaining.length === 0) {
      await this.stopDns();
      await fs.rm(path.join(this.paths.runRoot, 'dns.log'), { force: true });
      await removeEmptyRunRoot(this.paths, { netns: true });
    }
  }

  // ---------------------------------------------------------------- sandboxes and endpoints (sandboxes.ts)

  /**
   * Makes the container's network namespace, bind-mounted at sandboxPath(containerId), with `lo` up. Idempotent:
   * an existing sandbox is kept.
   */
  createSandbox(containerId: string): Promise<string> {
    return this.sandboxes.createSandbox(containerId);
  }

  /**
   * Detaches the container from every network (releasing addresses and published ports), then unmounts and
   * removes its netns. Idempotent.
   */
  removeSandbox(containerId: string, options: RemoveSandboxOptions = {}): Promise<void> {
    return this.sandboxes.removeSandbox(containerId, options);
  }

  /**
   * Connects a container's sandbox to a network: allocates an address (or validates the fixed one), creates a veth
   * pair whose container end becomes eth0, eth1..., and publishes the given ports on that address.
   */
  attach(containerId: string, networkName: string, options: AttachOptions = {}): Promise<Attachment> {
    return this.sandboxes.attach(containerId, networkName, options);
  }

  /**
   * createSandbox() and attach() to each network in order, as one operation: concurrent connects share one root
   * lock, one `netns create`, one host `ip -batch` and one `netns config`. On any failure the container is left
   * with no sandbox and no endpoint. Returns the attachments in the order asked.
   */
  connect(
    containerId: string,
    attachments: readonly { readonly network: string; readonly options?: AttachOptions }[],
  ): Promise<Attachment[]> {
    return this.sandboxes.connect(containerId, attachments);
  }

  /** Disconnects a container from a network, releasing its address and published ports. */
  detach(containerId: string, networkName: string): Promise<void> {
    return this.sandboxes.detach(containerId, networkName);
  }

  /** Publishes more ports on an existing attachment; returns every port of the endpoint. */
  publish(containerId: string, networkName: string, specs: readonly string[]): Promise<PublishedPort[]> {
    return this.sandboxes.publish(containerId, networkName, specs);
  }

  /** /etc/hosts content for a container: its own names, then the other containers on its networks. */
  async hostsFile(containerId: string): Promise<string> {
    return renderHostsFile(containerId, await this.list());
  }

  /** Every published port of this root, with the container it leads to. */
  async publishedPorts(): Promise<PublishedByContainer[]> {
    return ownPorts(await this.list(), this.paths.rootId);
  }

  // ---------------------------------------------------------------- firewall (firewall.ts) and repair

  /** The nft transaction for the given networks (what applyFirewall sends). */
  renderFirewall(networks: readonly NetworkState[]): string {
    return this.firewall.render(networks);
  }

  /** Replaces this root's nft table from the state (deletes it when there are no networks). */
  applyFirewall(networks?: readonly NetworkState[]): Promise<void> {
    return this.firewall.apply(networks);
  }

  /**
   * Converges the host to the state after a crash (kill -9 mid-command) or drift: drops endpoints whose sandbox is
   * gone (or whose container is not in liveContainers, when given), recreates missing bridges and veths, deletes
   * this root's links, netns files and iptables rules nothing refers to, and re-applies the nft table.
   * Endpoints of `busy` containers (being attached by another command right now) are kept as they are: their
   * veths may not exist yet, and their creator plumbs them.
   */
  async reconcile(
    options: { liveContainers?: ReadonlySet<string>; busy?: ReadonlySet<string> } = {},
  ): Promise<ReconcileReport> {
    const report: ReconcileReport = {
      createdBridges: [],
      removedLinks: [],
      replumbed: [],
      droppedEndpoints: [],
      removedSandboxes: [],
      iptables: [],
      firewall: 'applied',
    };
    await withLock(this.rootLock, async () => {
      const live = options.liveContainers;
      const mounted = await mountedPaths(this.paths.netns);
      let networks = await this.records.list();
      networks = await this.dropDeadEndpoints(networks, mounted, live, report);
      const tables = listNftTables();
      const links = await this.sandboxes.ownLinks();
      const byName = new Map(links.map((l) => [l.ifname, l]));
      for (const n of networks) {
        if (!byName.has(n.bridge)) {
          await this.sandboxes.setupBridge(n);
          report.createdBridges.push(n.bridge);
        }
      }
      const wanted = new Set(
        networks.flatMap((n) => [n.bridge, ...Object.values(n.endpoints).map((ep) => ep.hostVeth)]),
      );
      const orphans = links.filter((l) => !wanted.has(l.ifname)).map((l) => l.ifname);
      await deleteLinks(orphans);
      report.removedLinks.push(...orphans);
      for (const n of networks) {
        const external = networks.filter((x) => !x.internal);
        for (const ep of Object.values(n.endpoints)) {
          const link = byName.get(ep.hostVeth);
          if (link !== undefined && link.master === n.bridge) continue;
          if (options.busy?.has(ep.containerId) === true) continue;
          await deleteLinks([ep.hostVeth]);
          await ipBatch([`link del ${ep.ifname}`], 'cleanup', ep.sandbox).catch(() => undefined);
          const first = external.find((x) => x.endpoints[ep.containerId] !== undefined);
          await this.sandboxes.plumbOne({ network: n, ep, defaultRoute: !n.internal && first?.id === n.id });
          report.replumbed.push(ep.hostVeth);
        }
      }
      report.removedSandboxes.push(...(await this.removeDeadSandboxes(mounted, networks, live)));
      const changed =
        report.droppedEndpoints.length +
          report.createdBridges.length +
          report.removedLinks.length +
          report.replumbed.length +
          report.removedSandboxes.length >
        0;
      // Nothing to repair and the host's firewall is what this state last applied (our table present, the same
      // ruleset, the same iptables filter tables and subnets): skip the re-apply, the costliest part of a command
      // that changes nothing. Drift inside the table is not detected; a missing table (a flushed ruleset) is.
      if (!changed && (await this.firewall.hostMatches(networks, await tables))) {
        report.firewall = 'unchanged';
      } else {
        await this.records.writeRoot(networks);
        report.iptables.push(...(await this.firewall.applyHost(networks)));
      }
      if (networks.length > 0) await this.ensureDns();
      else await this.stopDns();
    });
    return report;
  }

  // ---------------------------------------------------------------- embedded DNS (dns-process.ts)

  /** resolv.conf of a container: the resolver on the gateway of its first network (eth0), host search domains. */
  async resolvConf(containerId: string): Promise<string | undefined> {
    return this.dns.resolvConf(containerId, await this.list());
  }

  /** True when this root's resolver process runs (it holds its lock). */
  dnsRunning(): Promise<boolean> {
    return this.dns.dnsRunning();
  }

  /** Starts the resolver unless it runs; does not wait for it (one start per command: DnsProcess.ensureDns). */
  ensureDns(): Promise<void> {
    return this.dns.ensureDns();
  }

  /** Stops the resolver (SIGTERM) and waits until it is gone. */
  stopDns(): Promise<void> {
    return this.dns.stopDns();
  }

  // ---------------------------------------------------------------- internals

  private async dropDeadEndpoints(
    networks: NetworkState[],
    mounted: ReadonlySet<string>,
    live: ReadonlySet<string> | undefined,
    report: ReconcileReport,
  ): Promise<NetworkState[]> {
    const result: NetworkState[] = [];
    for (const n of networks) {
      const keep = Object.values(n.endpoints).filter(
        (ep) => mounted.has(ep.sandbox) && (live === undefined || live.has(ep.containerId)),
      );
      if (keep.length === Object.keys(n.endpoints).length) {
        result.push(n);
        continue;
      }
      const updated: NetworkState = { ...n, endpoints: Object.fromEntries(keep.map((ep) => [ep.containerId, ep])) };
      await this.records.write(updated);
      for (const ep of Object.values(n.endpoints)) {
        if (!keep.includes(ep))
          report.droppedEndpoints.push(`${n.name}/${ep.containerName ?? ep.containerId.slice(0, 12)}`);
      }
      result.push(updated);
    }
    return result;
  }

  private async removeDeadSandboxes(
    mounted: ReadonlySet<string>,
    networks: readonly NetworkState[],
    live: ReadonlySet<string> | undefined,
  ): Promise<string[]> {
    const removed: string[] = [];
    const files = await fs.readdir(this.paths.netns).catch(() => [] as string[]);
    const inUse = new Set(networks.flatMap((n) => Object.values(n.endpoints).map((ep) => ep.sandbox)));
    for (const name of files) {
      const file = path.join(this.paths.netns, name);
      const dead = !mounted.has(file) || (live !== undefined && !live.has(name) && !inUse.has(file));
      if (!dead) continue;
      removed.push(name);
    }
    await removeNetns(removed.map((name) => path.join(this.paths.netns, name)));
    return removed;
  }
}
