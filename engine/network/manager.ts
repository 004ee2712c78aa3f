import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { EngineError, isErrno } from '../errors.js';
import { readJson, writeJsonAtomic } from '../state/atomic.js';
import { newId } from '../state/ids.js';
import { acquireLock, withLock } from '../state/lock.js';
import { DEFAULT_RUN_BASE, type EnginePaths } from '../state/paths.js';
import { dnsLockName, renderResolvConf } from './dns.js';
import { execCommand, ipBatch, ipJson, run, startIpBatch } from './exec.js';
import { renderHostsFile } from './hosts.js';
import { syncIptables } from './iptables.js';
import {
  allocateAddress,
  chooseGateway,
  chooseSubnet,
  defaultPool,
  findOverlap,
  formatCidr,
  formatIpv4,
  parseCidr,
  parseIpv4,
  parseSubnet,
  takenFromHost,
  type HostAddress,
  type HostRoute,
  type TakenPrefix,
} from './ipam.js';
import { bridgeName, firewallTable, isValidMac, linkAlias, macForIp, vethName } from './names.js';
import { applyRuleset, renderRuleset, type FirewallNetwork } from './nft.js';
import {
  describeHolder,
  ephemeralRange,
  expandPortSpec,
  findPortHolder,
  parsePortSpec,
  readHostSockets,
  type HostSocket,
  type PortRequest,
  type PublishedByContainer,
  type PublishedPort,
} from './ports.js';
import { HOST_LOCK, readRegistry, writeRootEntry, type RootEntry } from './registry.js';
import type { AttachOptions, Attachment, CreateNetworkOptions, EndpointState, NetworkState } from './types.js';
import { ensureRunDir, removeEmptyRunRoot } from '../state/run-root.js';

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
}

interface LinkInfo {
  readonly ifname: string;
  readonly ifalias?: string;
  readonly master?: string;
  readonly operstate?: string;
  readonly linkinfo?: { readonly info_kind?: string };
}

/**
 * Networks, sandboxes (netns), attachments and published ports of one engine root. Every mutation happens under
 * the root's network lock; subnet and host-port choices additionally under the host-wide lock, in that order.
 * State is written first and host objects follow it, so reconcile() can always converge the host to the state.
 */
export class NetworkManager {
  readonly paths: EnginePaths;
  readonly hostRunDir: string;
  private mtu: number | undefined;
  private readonly dns: false | { forward: boolean; upstreams: readonly string[] };
  /** Resolver processes this instance started (killed by stopDns even before they wrote their pid file). */
  private readonly dnsChildren = new Set<number>();

  constructor(paths: EnginePaths, options: NetworkManagerOptions = {}) {
    this.paths = paths;
    this.hostRunDir = options.hostRunDir ?? DEFAULT_RUN_BASE;
    this.dns =
      options.dns === false
        ? false
        : { forward: options.dns?.forward ?? true, upstreams: options.dns?.upstreams ?? [] };
  }

  /** This root's nft table (`table ip <tableName>`). */
  get tableName(): string {
    return firewallTable(this.paths.rootId);
  }

  private get rootLock(): string {
    return `tsfig-net-${this.paths.rootId}`;
  }

  private stateFile(id: string): string {
    return path.join(this.paths.networks, `${id}.json`);
  }

  /** Path of a container's netns bind mount (what the runtime joins with `netns <path>`). */
  sandboxPath(containerId: string): string {
    return path.join(this.paths.netns, containerId);
  }

  // ---------------------------------------------------------------- networks

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
      const state = await readJson<NetworkState>(path.join(this.paths.networks, file));
      if (state !== undefined) networks.push(state);
    }
    return networks.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** A network by name, full id or unique id prefix. */
  async inspect(nameOrId: string): Promise<NetworkState> {
    return findNetwork(await this.list(), nameOrId);
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
      const networks = await this.list();
      if (networks.some((n) => n.name === name)) {
        throw new EngineError('conflict', `network "${name}" already exists`);
      }
      await fs.mkdir(this.paths.networks, { recursive: true });
      const id = newId();
      const state = await withLock(HOST_LOCK, async () => {
        const taken = await this.takenPrefixes(networks);
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
        await writeJsonAtomic(this.stateFile(id), created);
        await writeRootEntry(this.hostRunDir, this.paths.rootId, this.rootEntry([...networks, created]));
        return created;
      });
      try {
        await this.setupBridge(state);
        await this.applyHost([...networks, state]);
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
    await fs.rm(this.stateFile(network.id), { force: true });
    await withLock(HOST_LOCK, () => writeRootEntry(this.hostRunDir, this.paths.rootId, this.rootEntry(remaining)));
    await deleteLinks([network.bridge]);
    await this.applyHost(remaining);
    if (remaining.length === 0) {
      await this.stopDns();
      await fs.rm(path.join(this.paths.runRoot, 'dns.log'), { force: true });
      await removeEmptyRunRoot(this.paths, { netns: true });
    }
  }

  // ---------------------------------------------------------------- sandboxes

  /**
   * Makes the container's network namespace, bind-mounted at sandboxPath(containerId), with `lo` up. Idempotent:
   * an existing sandbox is kept.
   */
  async createSandbox(containerId: string): Promise<string> {
    checkContainerId(containerId);
    const file = this.sandboxPath(containerId);
    // Under the root lock so reconcile() never takes a half-made sandbox (file without mount) for debris, and the
    // netns dir (removed only under this lock, with the last network) exists until the file is made.
    return withLock(this.rootLock, async () => {
      await ensureRunDir(this.paths.netns, 0o711);
      if ((await mountedPaths(this.paths.netns)).has(file)) return file;
      await fs.writeFile(file, '', { mode: 0o444 });
      try {
        await run('unshare', [`--net=${file}`, 'ip', 'link', 'set', 'lo', 'up'], undefined, `create sandbox ${file}`);
      } catch (error) {
        await fs.rm(file, { force: true });
        throw error;
      }
      return file;
    });
  }

  /**
   * Detaches the container from every network (releasing addresses and published ports), then unmounts and
   * removes its netns. Idempotent.
   */
  async removeSandbox(containerId: string): Promise<void> {
    checkContainerId(containerId);
    // The state (and firewall) change under the lock; the container's veths go with its netns after it, outside
    // the lock (their names are the container's own: nothing else creates them once the endpoints are gone).
    const veths = await withLock(this.rootLock, async () => {
      const networks = await this.list();
      const attached = networks.filter((n) => n.endpoints[containerId] !== undefined);
      if (attached.length === 0) return [];
      return this.dropEndpoints(
        networks,
        containerId,
        attached.map((n) => n.id),
        { deferLinks: true },
      );
    });
    await deleteLinks(veths);
    await removeNetns(this.sandboxPath(containerId));
  }

  // ---------------------------------------------------------------- endpoints

  /**
   * Connects a container's sandbox to a network: allocates an address (or validates the fixed one), creates a veth
   * pair whose container end becomes eth0, eth1..., and publishes the given ports on that address.
   */
  async attach(containerId: string, networkName: string, options: AttachOptions = {}): Promise<Attachment> {
    checkContainerId(containerId);
    if (options.macAddress !== undefined && !isValidMac(options.macAddress)) {
      throw new EngineError('invalid', `invalid mac address "${options.macAddress}"`);
    }
    const requests = (options.ports ?? []).flatMap((spec) => expandPortSpec(parsePortSpec(spec)));
    const sandbox = this.sandboxPath(containerId);
    if (!(await mountedPaths(this.paths.netns)).has(sandbox)) {
      throw new EngineError('not-found', `container ${containerId.slice(0, 12)} has no network sandbox`, {
        hint: 'create it first with createSandbox()',
      });
    }
    return withLock(this.rootLock, async () => {
      const networks = await this.list();
      const network = findNetwork(networks, networkName);
      if (network.endpoints[containerId] !== undefined) {
        throw new EngineError(
          'conflict',
          `container ${containerId.slice(0, 12)} is already attached to network "${network.name}"`,
        );
      }
      if (requests.length > 0 && network.internal) {
        throw new EngineError('invalid', `cannot publish ports on internal network "${network.name}"`);
      }
      const subnet = parseCidr(network.subnet);
      const gateway = parseIpv4(network.gateway);
      if (subnet === undefined || gateway === undefined)
        throw new EngineError('internal', `corrupt state of network "${network.name}"`);
      const used = new Set(Object.values(network.endpoints).map((ep) => parseIpv4(ep.ip) ?? 0));
      const ip = allocateAddress(subnet, gateway, used, options.ip);
      const mine = networks.flatMap((n) =>
        n.endpoints[containerId] !== undefined ? [{ n, ep: n.endpoints[containerId] }] : [],
      );
      const endpoint: EndpointState = {
        containerId,
        containerName: options.containerName,
        hostname: options.hostname,
        aliases: [...(options.aliases ?? [])],
        ip: formatIpv4(ip),
        mac: (options.macAddress ?? macForIp(ip)).toLowerCase(),
        hostVeth: vethName(this.paths.hostPrefix, containerId, network.id),
        ifname: nextIfname(mine.map((x) => x.ep?.ifname ?? '')),
        sandbox,
        ports: [],
      };
      let updated = withEndpoint(network, endpoint);
      const all = networks.map((n) => (n.id === network.id ? updated : n));
      if (requests.length > 0) {
        // Chosen and recorded under one host lock, so another root never picks the same host port.
        await this.allocatePorts(all, requests, async (ports) => {
          updated = withEndpoint(network, { ...endpoint, ports });
          all.splice(
            all.findIndex((n) => n.id === network.id),
            1,
            updated,
          );
          await this.saveState(updated, all);
        });
      } else {
        await writeJsonAtomic(this.stateFile(network.id), updated);
      }
      const defaultRoute = !network.internal && !mine.some((x) => !x.n.internal);
      try {
        await this.plumbRepairing(updated, updated.endpoints[containerId] ?? endpoint, defaultRoute, all);
        if (requests.length > 0) await this.applyFirewall(all);
      } catch (error) {
        await this.dropEndpoints(all, containerId, [network.id]).catch(() => undefined);
        throw error;
      }
      const final = updated.endpoints[containerId] ?? endpoint;
      return {
        ip: final.ip,
        gateway: network.gateway,
        prefixLen: subnet.prefixLen,
        mac: final.mac,
        interfaceName: final.ifname,
        ports: final.ports,
      };
    });
  }

  /** Disconnects a container from a network, releasing its address and published ports. */
  async detach(containerId: string, networkName: string): Promise<void> {
    await withLock(this.rootLock, async () => {
      const networks = await this.list();
      const network = findNetwork(networks, networkName);
      if (network.endpoints[containerId] === undefined) {
        throw new EngineError(
          'not-found',
          `container ${containerId.slice(0, 12)} is not attached to network "${network.name}"`,
        );
      }
      await this.dropEndpoints(networks, containerId, [network.id]);
    });
  }

  /** Publishes more ports on an existing attachment; returns every port of the endpoint. */
  async publish(containerId: string, networkName: string, specs: readonly string[]): Promise<PublishedPort[]> {
    const requests = specs.flatMap((spec) => expandPortSpec(parsePortSpec(spec)));
    return withLock(this.rootLock, async () => {
      const networks = await this.list();
      const network = findNetwork(networks, networkName);
      const endpoint = network.endpoints[containerId];
      if (endpoint === undefined) {
        throw new EngineError(
          'not-found',
          `container ${containerId.slice(0, 12)} is not attached to network "${network.name}"`,
        );
      }
      if (network.internal)
        throw new EngineError('invalid', `cannot publish ports on internal network "${network.name}"`);
      let all = networks;
      let ports: PublishedPort[] = [];
      await this.allocatePorts(networks, requests, async (added) => {
        ports = [...endpoint.ports, ...added];
        const updated = withEndpoint(network, { ...endpoint, ports });
        all = networks.map((n) => (n.id === network.id ? updated : n));
        await this.saveState(updated, all);
      });
      await this.applyFirewall(all);
      return ports;
    });
  }

  /** /etc/hosts content for a container: its own names, then the other containers on its networks. */
  async hostsFile(containerId: string): Promise<string> {
    return renderHostsFile(containerId, await this.list());
  }

  /** Every published port of this root, with the container it leads to. */
  async publishedPorts(): Promise<PublishedByContainer[]> {
    return ownPorts(await this.list(), this.paths.rootId);
  }

  // ---------------------------------------------------------------- firewall and repair

  /** The nft transaction for the given networks (what applyFirewall sends). */
  renderFirewall(networks: readonly NetworkState[]): string {
    return renderRuleset(this.tableName, networks.map(firewallNetwork));
  }

  /** Replaces this root's nft table from the state (deletes it when there are no networks). */
  async applyFirewall(networks?: readonly NetworkState[]): Promise<void> {
    await applyRuleset(this.renderFirewall(networks ?? (await this.list())));
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
    };
    await withLock(this.rootLock, async () => {
      const live = options.liveContainers;
      const mounted = await mountedPaths(this.paths.netns);
      let networks = await this.list();
      networks = await this.dropDeadEndpoints(networks, mounted, live, report);
      const links = await this.ownLinks();
      const byName = new Map(links.map((l) => [l.ifname, l]));
      for (const n of networks) {
        if (!byName.has(n.bridge)) {
          await this.setupBridge(n);
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
          await this.plumb(n, ep, !n.internal && first?.id === n.id);
          report.replumbed.push(ep.hostVeth);
        }
      }
      report.removedSandboxes.push(...(await this.removeDeadSandboxes(mounted, networks, live)));
      await withLock(HOST_LOCK, () => writeRootEntry(this.hostRunDir, this.paths.rootId, this.rootEntry(networks)));
      report.iptables.push(...(await this.applyHost(networks)));
      if (networks.length > 0) await this.ensureDns();
      else await this.stopDns();
    });
    return report;
  }

  // ---------------------------------------------------------------- embedded DNS

  /** resolv.conf of a container: the resolver on the gateway of its first network (eth0), host search domains. */
  async resolvConf(containerId: string): Promise<string | undefined> {
    const host = await fs.readFile('/etc/resolv.conf', 'utf8').catch(() => '');
    const first = (await this.list())
      .flatMap((n) => (n.endpoints[containerId] !== undefined ? [{ n, ep: n.endpoints[containerId] }] : []))
      .sort((a, b) => (a.ep?.ifname ?? '').localeCompare(b.ep?.ifname ?? '', 'en', { numeric: true }))[0];
    if (first === undefined || this.dns === false) return undefined;
    return renderResolvConf(first.n.gateway, host);
  }

  /** True when this root's resolver process runs (it holds its lock). */
  async dnsRunning(): Promise<boolean> {
    try {
      const lock = await acquireLock(dnsLockName(this.paths.rootId), { timeoutMs: 0 });
      await lock.release();
      return false;
    } catch {
      return true;
    }
  }

  /** Starts the resolver unless it runs; does not wait for it (it binds each gateway as soon as it can). */
  async ensureDns(): Promise<void> {
    if (this.dns === false || (await this.dnsRunning())) return;
    const here = fileURLToPath(import.meta.url);
    const ext = path.extname(here);
    const server = path.join(path.dirname(here), `dns-server${ext}`);
    // From the sources (tsx) the resolver needs the same loader; from dist/ it is plain JS.
    const loader = ext === '.ts' ? ['--import', import.meta.resolve('tsx')] : [];
    await ensureRunDir(this.paths.runRoot, 0o711);
    const log = await fs.open(path.join(this.paths.runRoot, 'dns.log'), 'a');
    try {
      const args = [
        ...loader,
        server,
        this.paths.root,
        this.paths.runRoot,
        ...(this.dns.forward ? [] : ['--no-forward']),
        ...this.dns.upstreams.map((u) => `--upstream=${u}`),
      ];
      const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log.fd, log.fd] });
      child.on('error', () => undefined);
      if (child.pid !== undefined) {
        const pid = child.pid;
        this.dnsChildren.add(pid);
        child.once('exit', () => this.dnsChildren.delete(pid));
        // Recorded at once (the resolver rewrites it when ready), so a command in another process that removes the
        // last network right after this one created it can still find the resolver and stop it.
        await fs.writeFile(path.join(this.paths.runRoot, 'dns.pid'), `${pid}\n`);
      }
      child.unref();
    } finally {
      await log.close();
    }
  }

  /** Stops the resolver (SIGTERM) and waits until it is gone. */
  async stopDns(): Promise<void> {
    const pids = new Set(this.dnsChildren);
    const text = await fs.readFile(path.join(this.paths.runRoot, 'dns.pid'), 'utf8').catch(() => '');
    const fromFile = Number(text.trim());
    if (Number.isInteger(fromFile) && fromFile > 0) {
      const cmdline = await fs.readFile(`/proc/${fromFile}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.includes('dns-server') && cmdline.includes(this.paths.root)) pids.add(fromFile);
    }
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    for (let i = 0; i < 100 && pids.size > 0; i++) {
      for (const pid of pids) if (!(await isAlive(pid))) pids.delete(pid);
      if (pids.size > 0) await sleep(10);
    }
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
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
      await writeJsonAtomic(this.stateFile(n.id), updated);
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
      await removeNetns(file);
      removed.push(name);
    }
    return removed;
  }

  /** Firewall, iptables coexistence rules and ip_forward for the given set of networks. */
  private async applyHost(networks: readonly NetworkState[]): Promise<string[]> {
    if (networks.length > 0) await enableForwarding();
    await this.applyFirewall(networks);
    return syncIptables(
      this.paths.rootId,
      networks.map((n) => n.subnet),
    );
  }

  private async setupBridge(network: NetworkState): Promise<void> {
    const gateway = parseIpv4(network.gateway) ?? 0;
    const prefixLen = parseCidr(network.subnet)?.prefixLen ?? 16;
    const br = network.bridge;
    await ipBatch(
      [
        `link add ${br} address ${macForIp(gateway)} type bridge`,
        `link set ${br} alias ${linkAlias(this.paths.rootId)}`,
        `addr replace ${network.gateway}/${prefixLen} dev ${br}`,
        `link set ${br} up`,
      ],
      `create bridge ${br} of network "${network.name}"`,
    );
    // Needed to DNAT locally generated traffic for 127.0.0.1 to a container; the nft table guards it.
    await fs.writeFile(`/proc/sys/net/ipv4/conf/${br}/route_localnet`, '1');
  }

  private async plumb(network: NetworkState, ep: EndpointState, defaultRoute: boolean): Promise<void> {
    const mtu = await this.hostMtu();
    const prefixLen = parseCidr(network.subnet)?.prefixLen ?? 16;
    const id = ep.containerId.slice(0, 12);
    // Both processes start now; the one in the sandbox gets its lines once the veth exists there.
    const inSandbox = startIpBatch(`configure ${ep.ifname} of container ${id}`, ep.sandbox);
    const onHost = startIpBatch(`connect container ${id} to network "${network.name}"`);
    try {
      await onHost.run(
        [
          `link add ${ep.hostVeth} mtu ${mtu} type veth peer name ${ep.ifname} mtu ${mtu} address ${ep.mac} netns ${ep.sandbox}`,
          `link set ${ep.hostVeth} alias ${linkAlias(this.paths.rootId)}`,
          `link set ${ep.hostVeth} master ${network.bridge} up`,
          // Hairpin: with br_netfilter a DNATed frame may go back out the port it came in (a container reaching
          // its own published port), which a bridge only does with hairpin mode on (Docker sets it too).
          `link set ${ep.hostVeth} type bridge_slave hairpin on`,
          '',
        ].join('\n'),
      );
    } catch (error) {
      inSandbox.abort();
      throw error;
    }
    await inSandbox.run(
      [
        `addr add ${ep.ip}/${prefixLen} dev ${ep.ifname}`,
        `link set ${ep.ifname} up`,
        ...(defaultRoute ? [`route replace default via ${network.gateway} dev ${ep.ifname}`] : []),
        '',
      ].join('\n'),
    );
  }

  /**
   * plumb(), and when it fails because the bridge is gone (a reboot wiped /run and the links, the state survived;
   * or someone deleted it), recreates the bridge and the firewall and tries once more.
   */
  private async plumbRepairing(
    network: NetworkState,
    ep: EndpointState,
    defaultRoute: boolean,
    all: readonly NetworkState[],
  ): Promise<void> {
    try {
      await this.plumb(network, ep, defaultRoute);
      return;
    } catch (error) {
      const result = await execCommand('ip', ['link', 'show', 'dev', network.bridge]);
      if (result.code === 0) throw error;
    }
    await deleteLinks([ep.hostVeth]);
    await this.setupBridge(network);
    // Veths of the other endpoints survived the bridge (unless their sandbox went too): put them back on it.
    const others = Object.values(network.endpoints).filter((x) => x.containerId !== ep.containerId);
    if (others.length > 0) {
      const lines = others
        .map(
          (x) =>
            `link set ${x.hostVeth} master ${network.bridge} up\nlink set ${x.hostVeth} type bridge_slave hairpin on\n`,
        )
        .join('');
      await execCommand('ip', ['-force', '-batch', '-'], lines);
    }
    await this.applyHost(all);
    await this.ensureDns();
    await this.plumb(network, ep, defaultRoute);
  }

  /**
   * Removes a container's endpoints on the given networks: state first, then registry, firewall and veths. Returns
   * the host veths.
   */
  private async dropEndpoints(
    networks: readonly NetworkState[],
    containerId: string,
    ids: readonly string[],
    options: { deferLinks?: boolean } = {},
  ): Promise<string[]> {
    let portsChanged = false;
    const veths: string[] = [];
    const all = [...networks];
    for (const id of ids) {
      const index = all.findIndex((n) => n.id === id);
      const network = all[index];
      const ep = network?.endpoints[containerId];
      if (network === undefined || ep === undefined) continue;
      const endpoints = { ...network.endpoints };
      delete endpoints[containerId];
      const updated = { ...network, endpoints };
      all[index] = updated;
      await writeJsonAtomic(this.stateFile(id), updated);
      veths.push(ep.hostVeth);
      if (ep.ports.length > 0) portsChanged = true;
    }
    if (portsChanged) {
      await withLock(HOST_LOCK, () => writeRootEntry(this.hostRunDir, this.paths.rootId, this.rootEntry(all)));
      await this.applyFirewall(all);
    }
    // deferLinks: the caller deletes them (its host veths) once it has released the lock.
    if (options.deferLinks !== true) await deleteLinks(veths);
    return veths;
  }

  /** Writes a network's state and this root's registry entry; the caller holds the host lock. */
  private async saveState(network: NetworkState, all: readonly NetworkState[]): Promise<void> {
    await writeJsonAtomic(this.stateFile(network.id), network);
    await writeRootEntry(this.hostRunDir, this.paths.rootId, this.rootEntry(all));
  }

  /** Resolves host ports for the requests, failing on the first conflict before anything changes. */
  private async allocatePorts(
    networks: readonly NetworkState[],
    requests: readonly PortRequest[],
    persist: (ports: PublishedPort[]) => Promise<void>,
  ): Promise<void> {
    await withLock(HOST_LOCK, async () => {
      const registry = await readRegistry(this.hostRunDir);
      const taken: PublishedByContainer[] = ownPorts(networks, this.paths.rootId);
      for (const [rootId, entry] of Object.entries(registry.roots)) {
        if (rootId !== this.paths.rootId) taken.push(...entry.ports.map((p) => ({ ...p, rootId })));
      }
      // The embedded resolvers listen on gateway:53; traffic from containers to them is exempt from DNAT, so they
      // hold no host port.
      const gateways = new Set([
        ...networks.map((n) => n.gateway),
        ...Object.values(registry.roots).flatMap((e) => e.networks.map((n) => n.gateway ?? '')),
      ]);
      const sockets = (await readHostSockets()).filter((s) => !(s.port === 53 && gateways.has(s.ip)));
      const ephemeral = await ephemeralRange();
      await checkHostAddresses(requests);
      const result: PublishedPort[] = [];
      for (const req of requests) {
        const port = await pickPort(req, sockets, taken, ephemeral);
        const published: PublishedPort = {
          proto: req.proto,
          hostIp: req.hostIp,
          hostPort: port,
          containerPort: req.containerPort,
        };
        result.push(published);
        taken.push({ ...published, containerId: '', containerName: 'this container', rootId: this.paths.rootId });
      }
      await persist(result);
    });
  }

  private rootEntry(networks: readonly NetworkState[]): RootEntry {
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

  private async takenPrefixes(own: readonly NetworkState[]): Promise<TakenPrefix[]> {
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

  private async hostMtu(): Promise<number> {
    if (this.mtu !== undefined) return this.mtu;
    let mtu = 1500;
    try {
      const routes = await ipJson<HostRoute[]>(['-4', 'route', 'show', 'default']);
      const dev = routes[0]?.dev;
      if (dev !== undefined) {
        const links = await ipJson<{ mtu?: number }[]>(['link', 'show', 'dev', dev]);
        mtu = links[0]?.mtu ?? 1500;
      }
    } catch {
      mtu = 1500;
    }
    this.mtu = mtu;
    return mtu;
  }

  /**
   * Links of this root: the host prefix and this root's alias. A prefixed link without an alias (a crash between
   * `link add` and `alias` of one batch) counts as ours unless it is a bridge, or a port of a bridge, of another
   * root in the registry: two roots may share the 4-hex prefix, and one must never delete the other's links.
   */
  private async ownLinks(): Promise<LinkInfo[]> {
    const links = await ipJson<LinkInfo[]>(['-d', 'link', 'show']);
    const alias = linkAlias(this.paths.rootId);
    const prefixed = links.filter((l) => l.ifname.startsWith(this.paths.hostPrefix));
    if (prefixed.every((l) => l.ifalias === alias)) return prefixed;
    const registry = await readRegistry(this.hostRunDir);
    const foreign = new Set(
      Object.entries(registry.roots)
        .filter(([rootId]) => rootId !== this.paths.rootId)
        .flatMap(([, entry]) => entry.networks.map((n) => n.bridge)),
    );
    return prefixed.filter(
      (l) =>
        l.ifalias === alias ||
        (l.ifalias === undefined && !foreign.has(l.ifname) && (l.master === undefined || !foreign.has(l.master))),
    );
  }
}

function findNetwork(networks: readonly NetworkState[], nameOrId: string): NetworkState {
  const exact = networks.find((n) => n.name === nameOrId || n.id === nameOrId);
  if (exact !== undefined) return exact;
  const byPrefix = nameOrId.length >= 3 ? networks.filter((n) => n.id.startsWith(nameOrId)) : [];
  if (byPrefix.length === 1 && byPrefix[0] !== undefined) return byPrefix[0];
  throw new EngineError('not-found', `network "${nameOrId}" not found`, {
    hint: 'list networks with: tsfig network ls',
  });
}

function withEndpoint(network: NetworkState, ep: EndpointState): NetworkState {
  return { ...network, endpoints: { ...network.endpoints, [ep.containerId]: ep } };
}

function nextIfname(used: readonly string[]): string {
  for (let i = 0; ; i++) if (!used.includes(`eth${i}`)) return `eth${i}`;
}

function checkContainerId(containerId: string): void {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/.test(containerId)) {
    throw new EngineError('invalid', `invalid container id "${containerId}"`);
  }
}

function firewallNetwork(n: NetworkState): FirewallNetwork {
  return {
    bridge: n.bridge,
    subnet: n.subnet,
    gateway: n.gateway,
    internal: n.internal,
    endpoints: Object.values(n.endpoints),
  };
}

function ownPorts(networks: readonly NetworkState[], rootId: string): PublishedByContainer[] {
  return networks.flatMap((n) =>
    Object.values(n.endpoints).flatMap((ep) =>
      ep.ports.map((p) => ({ ...p, containerId: ep.containerId, containerName: ep.containerName, rootId })),
    ),
  );
}

async function pickPort(
  req: PortRequest,
  sockets: readonly HostSocket[],
  taken: readonly PublishedByContainer[],
  ephemeral: { start: number; end: number },
): Promise<number> {
  const free = (port: number): boolean => findPortHolder(req.proto, req.hostIp, port, sockets, taken) === undefined;
  const range = req.hostPorts ?? ephemeral;
  for (let port = range.start; port <= range.end; port++) if (free(port)) return port;
  const ip = req.hostIp === '' ? '0.0.0.0' : req.hostIp;
  let suggestion: number | undefined;
  for (let port = ephemeral.start; port <= ephemeral.end && suggestion === undefined; port++)
    if (free(port)) suggestion = port;
  const hint =
    suggestion === undefined
      ? 'free a port or publish without a host port'
      : `use a free port, e.g. -p ${suggestion}:${req.containerPort}/${req.proto}`;
  if (req.hostPorts === undefined) {
    throw new EngineError('conflict', `no free ephemeral port left for ${ip}/${req.proto}`, { hint });
  }
  const holder = findPortHolder(req.proto, req.hostIp, range.start, sockets, taken);
  const what = range.start === range.end ? `port ${range.start}` : `ports ${range.start}-${range.end}`;
  const by = holder === undefined ? '' : ` by ${await describeHolder(holder)}`;
  throw new EngineError('conflict', `host ${what} (${ip}/${req.proto}) already in use${by}`, { hint });
}

/** A port bound to a specific host address needs that address on the host (Docker fails to bind otherwise). */
async function checkHostAddresses(requests: readonly PortRequest[]): Promise<void> {
  const specific = requests.filter((r) => r.hostIp !== '' && !r.hostIp.startsWith('127.'));
  if (specific.length === 0) return;
  const links = await ipJson<HostAddress[]>(['-4', 'addr', 'show']);
  const local = new Set(links.flatMap((l) => (l.addr_info ?? []).map((a) => a.local)));
  const missing = specific.find((r) => !local.has(r.hostIp));
  if (missing !== undefined) {
    throw new EngineError('invalid', `cannot publish on ${missing.hostIp}: not an address of this host`, {
      hint: 'use one of the addresses `ip -4 addr` lists, 127.0.0.1, or leave the address out',
    });
  }
}

async function mountedPaths(dir: string): Promise<Set<string>> {
  const text = await fs.readFile('/proc/self/mountinfo', 'utf8');
  const result = new Set<string>();
  for (const line of text.split('\n')) {
    const mountPoint = line.split(' ')[4];
    if (mountPoint !== undefined && mountPoint.startsWith(`${dir}/`)) result.add(mountPoint.replace(/\\040/g, ' '));
  }
  return result;
}

async function removeNetns(file: string): Promise<void> {
  const result = await execCommand('umount', ['--lazy', file]);
  if (result.code !== 0 && !/not mounted|no mount point|not found/i.test(result.stderr)) {
    throw new EngineError('runtime', `unmount sandbox ${file}: ${result.stderr.trim()}`);
  }
  await fs.rm(file, { force: true });
}

async function deleteLinks(names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  // -force: keep going past links that are already gone (their sandbox was destroyed with them).
  await execCommand('ip', ['-force', '-batch', '-'], `${names.map((n) => `link del ${n}`).join('\n')}\n`);
}

async function enableForwarding(): Promise<void> {
  const file = '/proc/sys/net/ipv4/ip_forward';
  if ((await fs.readFile(file, 'utf8')).trim() !== '1') await fs.writeFile(file, '1');
}

/**
 * True while pid runs. A zombie counts as gone: the resolver is detached, so the host's init reaps it, and on some
 * hosts only a second or two later.
 */
async function isAlive(pid: number): Promise<boolean> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (stat === '') return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}
