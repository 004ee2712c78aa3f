import { inRootlessSession, rootlessNetns, rootlessRuntimeDir } from '../rootless/env.js';
import { syncHostForwards } from '../rootless/ports.js';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { EngineError, isErrno } from '../errors.js';
import { readJson, writeJsonAtomic } from '../state/atomic.js';
import { newId } from '../state/ids.js';
import { acquireLock, withLock } from '../state/lock.js';
import { DEFAULT_RUN_BASE, type EnginePaths } from '../state/paths.js';
import { dnsLockName, renderResolvConf } from './dns.js';
import { execCommand, ipBatch, ipJson, setNetSysctl } from './exec.js';
import { Batcher, type Settled } from './batch.js';
import { runtimeBinary } from '../runtime/binary.js';
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
  /** Whether the firewall was re-applied, or left as the host already had it. */
  firewall: 'applied' | 'unchanged';
}

/** One attach() call waiting for its batch. */
interface AttachRequest {
  readonly containerId: string;
  readonly networkName: string;
  readonly options: AttachOptions;
  readonly requests: readonly PortRequest[];
  readonly sandbox: string;
}

/** What applyHost() last applied (run dir: gone with a reboot, as the firewall is). */
interface HostFingerprint {
  /** sha256 of the rendered nft transaction. */
  readonly ruleset: string;
  /** Which iptables filter tables existed, and the subnets synced into them. */
  readonly iptables: string;
}

/** One connect() call waiting for its batch: a sandbox and its attachments, in order. */
interface ConnectRequest {
  readonly containerId: string;
  readonly requests: readonly AttachRequest[];
}

/** A veth pair to make: the endpoint's host end on the network's bridge, its container end in the sandbox. */
interface PlumbJob {
  readonly network: NetworkState;
  readonly ep: EndpointState;
  readonly defaultRoute: boolean;
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
  /** The resolver start under way in this process (ensureDns). */
  private dnsStart: Promise<void> | undefined;
  private readonly sandboxBatch = new Batcher<string, string>((ids) => this.createSandboxes(ids));
  private readonly attachBatch = new Batcher<AttachRequest, Attachment>((items) => this.attachAll(items));
  private readonly removalBatch = new Batcher<string, void>((ids) => this.removeSandboxes(ids));
  private readonly connectBatch = new Batcher<ConnectRequest, Attachment[]>((items) => this.connectAll(items));

  constructor(paths: EnginePaths, options: NetworkManagerOptions = {}) {
    this.paths = paths;
    // rootless: what the user's roots share is the session's (its namespace has their bridges)
    this.hostRunDir =
      options.hostRunDir ?? (inRootlessSession() ? rootlessRuntimeDir() : undefined) ?? DEFAULT_RUN_BASE;
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

  /** True when the container's sandbox is there (its netns file mounted). */
  async hasSandbox(containerId: string): Promise<boolean> {
    return (await mountedPaths(this.paths.netns)).has(this.sandboxPath(containerId));
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
    return this.sandboxBatch.submit(containerId);
  }

  /**
   * The sandboxes of a batch of createSandbox() calls: one `tsfig-runtime netns create` for all of them. Under the
   * root lock so reconcile() never takes a half-made sandbox (file without mount) for debris, and the netns dir
   * (removed only under this lock, with the last network) exists until the files are made.
   */
  private async createSandboxes(ids: readonly string[]): Promise<Settled<string>[]> {
    return withLock(this.rootLock, () => this.makeSandboxes(ids));
  }

  /** createSandboxes() under the root lock, which the caller holds. */
  private async makeSandboxes(ids: readonly string[]): Promise<Settled<string>[]> {
    await ensureRunDir(this.paths.netns, 0o711);
    const mounted = await mountedPaths(this.paths.netns);
    const files = [...new Set(ids.map((id) => this.sandboxPath(id)))].filter((file) => !mounted.has(file));
    const failed = new Map<string, EngineError>();
    if (files.length > 0) {
      await Promise.all(files.map((file) => fs.writeFile(file, '', { mode: 0o444 })));
      const outcome = await runtimeBatch(['netns', 'create', ...files], '', files.length, 'create sandbox');
      for (const [index, file] of files.entries()) {
        const error = outcome[index];
        if (error === undefined) continue;
        failed.set(file, error);
        await fs.rm(file, { force: true });
      }
    }
    return ids.map((id): Settled<string> => {
      const file = this.sandboxPath(id);
      const error = failed.get(file);
      return error === undefined ? { ok: true, value: file } : { ok: false, error };
    });
  }

  /**
   * Detaches the container from every network (releasing addresses and published ports), then unmounts and
   * removes its netns. Idempotent.
   */
  async removeSandbox(containerId: string): Promise<void> {
    checkContainerId(containerId);
    await this.removalBatch.submit(containerId);
  }

  /**
   * The removals of a batch of removeSandbox() calls: the state (and firewall) change once under the lock; the
   * containers' veths (one `ip -batch`) and netns (one `umount`) go after it, outside the lock (their names are the
   * containers' own: nothing else creates them once the endpoints are gone).
   */
  private async removeSandboxes(ids: readonly string[]): Promise<Settled<void>[]> {
    const leaving = new Set(ids);
    const veths = await withLock(this.rootLock, async () => this.dropContainers(await this.list(), leaving));
    // Unmounting the netns lets the kernel destroy it (no process of a removed container holds it), and every veth
    // with an end in it, in one batched cleanup: deleting the veths one by one costs an RCU grace period each
    // (~18 ms per veth here). Veths still there after a while (a process still holds the namespace) are deleted.
    await removeNetns([...leaving].map((id) => this.sandboxPath(id)));
    await deleteLinks(await linksRemaining(veths, 1000));
    return ids.map(() => ({ ok: true, value: undefined }));
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
    return this.attachBatch.submit({ containerId, networkName, options, requests, sandbox });
  }

  /**
   * The attachments of a batch of attach() calls, under one root lock: addresses and ports are chosen and the
   * state written item by item (an item that fails validation fails alone), then every veth is made by one host
   * `ip -batch` and configured in its sandbox by one `tsfig-runtime netns config`, and the firewall is applied once.
   */
  private async attachAll(items: readonly AttachRequest[]): Promise<Settled<Attachment>[]> {
    return withLock(this.rootLock, () => this.attachLocked(items));
  }

  /** attachAll() under the root lock, which the caller holds. */
  private async attachLocked(items: readonly AttachRequest[]): Promise<Settled<Attachment>[]> {
    let all = await this.list();
    const results: Settled<Attachment>[] = [];
    const plumbing: { index: number; job: PlumbJob; ports: boolean }[] = [];
    const unsaved = new Set<string>();
    for (const [index, item] of items.entries()) {
      try {
        const prepared = await this.prepareEndpoint(all, item, unsaved);
        all = prepared.all;
        plumbing.push({ index, job: prepared.job, ports: item.requests.length > 0 });
      } catch (error) {
        results[index] = { ok: false, error };
      }
    }
    // State first (reconcile converges the host to it after a crash), then the host objects.
    for (const id of unsaved) {
      const network = all.find((n) => n.id === id);
      if (network !== undefined) await writeJsonAtomic(this.stateFile(id), network);
    }
    const errors = await this.plumbMany(
      plumbing.map((p) => p.job),
      all,
    );
    const failed = plumbing.filter((_, i) => errors[i] !== undefined);
    let firewallError: unknown;
    if (plumbing.some((p, i) => p.ports && errors[i] === undefined)) {
      await this.applyFirewall(all).catch((error: unknown) => (firewallError = error));
    }
    const dropped = [
      ...failed.map((p) => ({ p, error: errors[plumbing.indexOf(p)] })),
      ...(firewallError === undefined ? [] : plumbing.filter((p, i) => p.ports && errors[i] === undefined)).map(
        (p) => ({ p, error: firewallError }),
      ),
    ];
    for (const { p } of dropped) {
      await this.dropEndpoints(await this.list(), p.job.ep.containerId, [p.job.network.id]).catch(() => undefined);
    }
    for (const { p, error } of dropped) results[p.index] = { ok: false, error };
    for (const p of plumbing) {
      if (results[p.index] !== undefined) continue;
      const { network, ep } = p.job;
      const subnet = parseCidr(network.subnet);
      results[p.index] = {
        ok: true,
        value: {
          ip: ep.ip,
          gateway: network.gateway,
          prefixLen: subnet?.prefixLen ?? 16,
          mac: ep.mac,
          interfaceName: ep.ifname,
          ports: ep.ports,
        },
      };
    }
    return results;
  }

  /**
   * Validates one attach request against the current state and adds its endpoint: address, interface name, host
   * ports (chosen and recorded under the host lock, so another root never picks the same port). A network whose new
   * state is not written yet is added to `unsaved`.
   */
  private async prepareEndpoint(
    networks: readonly NetworkState[],
    item: AttachRequest,
    unsaved: Set<string>,
  ): Promise<{ all: NetworkState[]; job: PlumbJob }> {
    const { containerId, options, requests } = item;
    const network = findNetwork(networks, item.networkName);
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
    let endpoint: EndpointState = {
      containerId,
      containerName: options.containerName,
      hostname: options.hostname,
      aliases: [...(options.aliases ?? [])],
      ip: formatIpv4(ip),
      mac: (options.macAddress ?? macForIp(ip)).toLowerCase(),
      hostVeth: vethName(this.paths.hostPrefix, containerId, network.id),
      ifname: nextIfname(mine.map((x) => x.ep?.ifname ?? '')),
      sandbox: item.sandbox,
      ports: [],
    };
    let all = networks.map((n) => (n.id === network.id ? withEndpoint(network, endpoint) : n));
    if (requests.length > 0) {
      await this.allocatePorts(all, requests, async (ports) => {
        endpoint = { ...endpoint, ports };
        all = networks.map((n) => (n.id === network.id ? withEndpoint(network, endpoint) : n));
        const updated = all.find((n) => n.id === network.id) ?? network;
        await this.saveState(updated, all);
        unsaved.delete(network.id);
      });
    } else {
      unsaved.add(network.id);
    }
    const defaultRoute = !network.internal && !mine.some((x) => !x.n.internal);
    return { all, job: { network, ep: endpoint, defaultRoute } };
  }

  /**
   * createSandbox() and attach() to each network in order, as one operation: concurrent connects share one root
   * lock, one `netns create`, one host `ip -batch` and one `netns config`. On any failure the container is left
   * with no sandbox and no endpoint. Returns the attachments in the order asked.
   */
  async connect(
    containerId: string,
    attachments: readonly { readonly network: string; readonly options?: AttachOptions }[],
  ): Promise<Attachment[]> {
    checkContainerId(containerId);
    const requests = attachments.map(({ network, options = {} }): AttachRequest => {
      if (options.macAddress !== undefined && !isValidMac(options.macAddress)) {
        throw new EngineError('invalid', `invalid mac address "${options.macAddress}"`);
      }
      const ports = (options.ports ?? []).flatMap((spec) => expandPortSpec(parsePortSpec(spec)));
      return { containerId, networkName: network, options, requests: ports, sandbox: this.sandboxPath(containerId) };
    });
    return this.connectBatch.submit({ containerId, requests });
  }

  /** The connects of a batch, under one root lock. */
  private async connectAll(items: readonly ConnectRequest[]): Promise<Settled<Attachment[]>[]> {
    return withLock(this.rootLock, async () => {
      const sandboxes = await this.makeSandboxes(items.map((item) => item.containerId));
      const results: Settled<Attachment[]>[] = items.map((_, index) => {
        const sandbox = sandboxes[index];
        return sandbox?.ok === false ? sandbox : { ok: true, value: [] };
      });
      const flat = items.flatMap((item, index) =>
        results[index]?.ok === true ? item.requests.map((request) => ({ index, request })) : [],
      );
      const attached = await this.attachLocked(flat.map((x) => x.request));
      for (const [position, { index }] of flat.entries()) {
        const result = results[index];
        const outcome = attached[position];
        if (result?.ok !== true || outcome === undefined) continue;
        if (outcome.ok) result.value.push(outcome.value);
        else results[index] = outcome;
      }
      // A container whose sandbox or any attachment failed keeps nothing: its other endpoints and its sandbox go.
      const failed = new Set(items.filter((_, index) => results[index]?.ok !== true).map((item) => item.containerId));
      if (failed.size > 0) {
        const veths = await this.dropContainers(await this.list(), failed);
        await deleteLinks(veths);
        await removeNetns([...failed].map((id) => this.sandboxPath(id)));
      }
      return results;
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
      // The default route went with the endpoint if it was the container's first external one: it moves to the next
      // external network, as Docker's sandbox does (resolvConf() likewise names the next network's resolver).
      const holder = (list: readonly NetworkState[]) => defaultRouteHolder(list, containerId);
      const before = holder(networks);
      if (before?.n.id !== network.id) return;
      const next = holder(networks.filter((n) => n.id !== network.id));
      if (next === undefined) return;
      await ipBatch(
        [`route replace default via ${next.n.gateway} dev ${next.ep.ifname}`],
        `move the default route of container ${containerId.slice(0, 12)} to network "${next.n.name}"`,
        next.ep.sandbox,
      );
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
    return renderRuleset(this.tableName, networks.map(firewallNetwork), { rootless: inRootlessSession() });
  }

  /** Replaces this root's nft table from the state (deletes it when there are no networks). */
  async applyFirewall(networks?: readonly NetworkState[]): Promise<void> {
    const all = networks ?? (await this.list());
    const text = this.renderFirewall(all);
    await applyRuleset(text);
    if (inRootlessSession()) {
      // the host side of the published ports: slirp4netns's forwards into the session's namespace
      const forwards = ownPorts(all, this.paths.rootId).map((p) => ({
        proto: p.proto,
        hostIp: p.hostIp,
        hostPort: p.hostPort,
      }));
      await syncHostForwards(this.paths.runRoot, forwards);
    }
    // Keeps reconcile's fingerprint current (the iptables part depends on the networks only, not on endpoints).
    const fingerprint = await readJson<HostFingerprint>(this.fingerprintFile);
    if (fingerprint !== undefined) {
      await this.writeFingerprint(all, { ...fingerprint, ruleset: createHash('sha256').update(text).digest('hex') });
    }
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
      let networks = await this.list();
      networks = await this.dropDeadEndpoints(networks, mounted, live, report);
      const tables = listNftTables();
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
          await this.plumbOne({ network: n, ep, defaultRoute: !n.internal && first?.id === n.id });
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
      if (!changed && (await this.hostMatches(networks, await tables))) {
        report.firewall = 'unchanged';
      } else {
        await withLock(HOST_LOCK, () => writeRootEntry(this.hostRunDir, this.paths.rootId, this.rootEntry(networks)));
        report.iptables.push(...(await this.applyHost(networks)));
      }
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

  /**
   * Starts the resolver unless it runs; does not wait for it (it binds each gateway as soon as it can). One resolver
   * per command: networks created in parallel (up of a project with two) each get here before the first
   * resolver is ready; a second one would lose the resolver's lock and exit, its pid left in dns.pid. Concurrent calls
   * share one start, later ones see the child this command started (alive: starting or running).
   */
  ensureDns(): Promise<void> {
    this.dnsStart ??= this.startDns().finally(() => (this.dnsStart = undefined));
    return this.dnsStart;
  }

  private async startDns(): Promise<void> {
    if (this.dns === false || this.dnsChildren.size > 0 || (await this.dnsRunning())) return;
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
      // rootless: the resolver listens on the bridges' gateways, in the session's network namespace
      const netns = rootlessNetns();
      const child =
        netns === undefined
          ? spawn(process.execPath, args, { detached: true, stdio: ['ignore', log.fd, log.fd] })
          : spawn('nsenter', [`--net=${netns}`, '--', process.execPath, ...args], {
              detached: true,
              stdio: ['ignore', log.fd, log.fd],
            });
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

  /**
   * Stops the resolver (SIGTERM) and waits until it is gone. Its processes are found by their command line, not only
   * by dns.pid: two commands that start a resolver at the same moment both write the file, and the one that loses the
   * lock (and exits) may write last, leaving the running resolver unnamed.
   */
  async stopDns(): Promise<void> {
    const pids = new Set([...this.dnsChildren, ...(await resolverPids(this.paths.root))]);
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
      removed.push(name);
    }
    await removeNetns(removed.map((name) => path.join(this.paths.netns, name)));
    return removed;
  }

  /** Firewall, iptables coexistence rules and ip_forward for the given set of networks. */
  private async applyHost(networks: readonly NetworkState[]): Promise<string[]> {
    if (networks.length > 0) await enableForwarding();
    await this.applyFirewall(networks);
    const subnets = networks.map((n) => n.subnet);
    const changes = await syncIptables(this.paths.rootId, subnets);
    const filters = await filterTables(await listNftTables());
    await this.writeFingerprint(networks, {
      ruleset: this.rulesetDigest(networks),
      iptables: `${filters} ${subnets.join(',')}`,
    });
    return changes;
  }

  /** Whether the host has what applyHost() last applied for these networks (see reconcile). */
  private async hostMatches(networks: readonly NetworkState[], tables: string | undefined): Promise<boolean> {
    if (tables === undefined) return false;
    const present = new RegExp(`^table ip ${this.tableName}$`, 'm').test(tables);
    if (present !== networks.length > 0) return false;
    const filters = await filterTables(tables);
    // No network, no table and no iptables filter table (where a crash could have left rules): nothing to apply.
    if (networks.length === 0 && filters === 'nft=false legacy=false') return true;
    const fingerprint = await readJson<HostFingerprint>(this.fingerprintFile);
    if (fingerprint === undefined) return false;
    const iptables = `${filters} ${networks.map((n) => n.subnet).join(',')}`;
    return fingerprint.ruleset === this.rulesetDigest(networks) && fingerprint.iptables === iptables;
  }

  private get fingerprintFile(): string {
    return path.join(this.paths.runRoot, 'firewall.json');
  }

  private rulesetDigest(networks: readonly NetworkState[]): string {
    return createHash('sha256').update(this.renderFirewall(networks)).digest('hex');
  }

  /** Records what was applied; with no network left there is nothing to record (an idle root leaves no run dir). */
  private async writeFingerprint(networks: readonly NetworkState[], fingerprint: HostFingerprint): Promise<void> {
    if (networks.length === 0) {
      await fs.rm(this.fingerprintFile, { force: true });
      return;
    }
    await ensureRunDir(this.paths.runRoot, 0o711);
    await writeJsonAtomic(this.fingerprintFile, fingerprint);
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
      ],
      `create bridge ${br} of network "${network.name}"`,
    );
    // Networks are IPv4 only. Before the bridge is up: it must never take an address or a default route from router
    // advertisements that a container (it has NET_RAW) sends onto it (CVE-2020-13401 class).
    await noIpv6([br]);
    // Needed to DNAT locally generated traffic for 127.0.0.1 to a container; the nft table guards it.
    await setNetSysctl(`/proc/sys/net/ipv4/conf/${br}/route_localnet`, '1');
    await ipBatch([`link set ${br} up`], `bring up bridge ${br} of network "${network.name}"`);
  }

  /**
   * Makes and configures the veths of the jobs: one host `ip -batch` for every pair (the container ends go straight
   * into their sandboxes), then one `tsfig-runtime netns config` for the container ends. Returns one error (or
   * undefined) per job. When the host batch fails (it stops at its first failing line: a missing bridge after a
   * reboot wiped /run, say), each job is undone and retried alone, repairing the bridge if that is what failed.
   */
  private async plumbMany(jobs: readonly PlumbJob[], all: readonly NetworkState[]): Promise<unknown[]> {
    if (jobs.length === 0) return [];
    const mtu = await this.hostMtu();
    const alias = linkAlias(this.paths.rootId);
    const hostLines = jobs.flatMap(({ network, ep }) => [
      `link add ${ep.hostVeth} mtu ${mtu} type veth peer name ${ep.ifname} mtu ${mtu} address ${ep.mac} netns ${ep.sandbox}`,
      `link set ${ep.hostVeth} alias ${alias}`,
      `link set ${ep.hostVeth} master ${network.bridge} up`,
      // Hairpin: with br_netfilter a DNATed frame may go back out the port it came in (a container reaching its
      // own published port), which a bridge only does with hairpin mode on (Docker sets it too).
      `link set ${ep.hostVeth} type bridge_slave hairpin on`,
    ]);
    const what =
      jobs.length === 1
        ? `connect container ${jobs[0]?.ep.containerId.slice(0, 12) ?? ''} to network "${jobs[0]?.network.name ?? ''}"`
        : `connect ${jobs.length} containers to their networks`;
    try {
      await ipBatch(hostLines, what);
      await noIpv6(jobs.map((job) => job.ep.hostVeth));
    } catch {
      await deleteLinks(jobs.map((job) => job.ep.hostVeth));
      const errors: unknown[] = [];
      for (const job of jobs) {
        errors.push(
          await this.plumbRepairing(job, all).then(
            () => undefined,
            (error: unknown) => error,
          ),
        );
      }
      return errors;
    }
    return this.configureSandboxes(jobs);
  }

  /** The container ends of made veths: address, up, default route; one error (or undefined) per job. */
  private async configureSandboxes(jobs: readonly PlumbJob[]): Promise<(EngineError | undefined)[]> {
    const lines = jobs.map(({ network, ep, defaultRoute }) => {
      const prefixLen = parseCidr(network.subnet)?.prefixLen ?? 16;
      return `${ep.sandbox} ${ep.ifname} ${ep.ip} ${prefixLen} ${defaultRoute ? network.gateway : '-'}\n`;
    });
    return runtimeBatch(['netns', 'config'], lines.join(''), jobs.length, 'configure container interface');
  }

  /** One job alone: host side, then sandbox side; an error throws. */
  private async plumbOne(job: PlumbJob): Promise<void> {
    const { network, ep } = job;
    await ipBatch(
      [
        `link add ${ep.hostVeth} mtu ${await this.hostMtu()} type veth peer name ${ep.ifname} mtu ${await this.hostMtu()} address ${ep.mac} netns ${ep.sandbox}`,
        `link set ${ep.hostVeth} alias ${linkAlias(this.paths.rootId)}`,
        `link set ${ep.hostVeth} master ${network.bridge} up`,
        `link set ${ep.hostVeth} type bridge_slave hairpin on`,
      ],
      `connect container ${ep.containerId.slice(0, 12)} to network "${network.name}"`,
    );
    await noIpv6([ep.hostVeth]);
    const [error] = await this.configureSandboxes([job]);
    if (error !== undefined) {
      await deleteLinks([ep.hostVeth]);
      throw error;
    }
  }

  /**
   * plumbOne(), and when it fails because the bridge is gone (a reboot wiped /run and the links, the state survived;
   * or someone deleted it), recreates the bridge and the firewall and tries once more.
   */
  private async plumbRepairing(job: PlumbJob, all: readonly NetworkState[]): Promise<void> {
    const { network, ep } = job;
    try {
      await this.plumbOne(job);
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
    await this.plumbOne(job);
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

  /**
   * Removes every endpoint of the leaving containers: each changed network's state written once, then the registry
   * and firewall once if ports went with them. Returns the host veths, for the caller to delete after the lock.
   */
  private async dropContainers(networks: readonly NetworkState[], leaving: ReadonlySet<string>): Promise<string[]> {
    const veths: string[] = [];
    let portsChanged = false;
    const all = networks.map((network) => {
      const gone = Object.values(network.endpoints).filter((ep) => leaving.has(ep.containerId));
      if (gone.length === 0) return network;
      veths.push(...gone.map((ep) => ep.hostVeth));
      if (gone.some((ep) => ep.ports.length > 0)) portsChanged = true;
      const endpoints = Object.fromEntries(Object.entries(network.endpoints).filter(([id]) => !leaving.has(id)));
      return { ...network, endpoints };
    });
    await Promise.all(all.filter((n, i) => n !== networks[i]).map((n) => writeJsonAtomic(this.stateFile(n.id), n)));
    if (portsChanged) {
      await withLock(HOST_LOCK, () => writeRootEntry(this.hostRunDir, this.paths.rootId, this.rootEntry(all)));
      await this.applyFirewall(all);
    }
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

/** The container's endpoint that carries its default route: on its external network with the lowest interface. */
function defaultRouteHolder(
  networks: readonly NetworkState[],
  containerId: string,
): { n: NetworkState; ep: EndpointState } | undefined {
  return networks
    .flatMap((n) => {
      const ep = n.endpoints[containerId];
      return ep !== undefined && !n.internal ? [{ n, ep }] : [];
    })
    .sort((a, b) => a.ep.ifname.localeCompare(b.ep.ifname, 'en', { numeric: true }))[0];
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
  // rootless: this process is in the host's network namespace, ip (through the spawner) in the session's
  const local = inRootlessSession()
    ? new Set(Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address)))
    : new Set(
        (await ipJson<HostAddress[]>(['-4', 'addr', 'show'])).flatMap((l) => (l.addr_info ?? []).map((a) => a.local)),
      );
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

/** Unmounts (lazily: a container process may still hold one) and deletes sandbox files; absent ones are fine. */
async function removeNetns(files: readonly string[]): Promise<void> {
  if (files.length === 0) return;
  const mounted = await mountedPaths(path.dirname(files[0] ?? '/'));
  const targets = files.filter((file) => mounted.has(file));
  if (targets.length > 0) {
    const result = await execCommand('umount', ['--lazy', ...targets]);
    if (result.code !== 0 && !/not mounted|no mount point|not found/i.test(result.stderr)) {
      throw new EngineError('runtime', `unmount sandbox: ${result.stderr.trim()}`);
    }
  }
  await Promise.all(files.map((file) => fs.rm(file, { force: true })));
}

/**
 * Runs a batch subcommand of the native runtime (`netns create|config`), which prints one line per item: `ok` or
 * `error <message>`. Returns one EngineError (or undefined) per item; a runtime that cannot run fails every item.
 */
async function runtimeBatch(
  args: readonly string[],
  input: string,
  count: number,
  what: string,
): Promise<(EngineError | undefined)[]> {
  const result = await execCommand(runtimeBinary(), args, input);
  const lines = result.stdout.split('\n');
  return Array.from({ length: count }, (_, index) => {
    const line = lines[index] ?? '';
    if (line === 'ok') return undefined;
    const detail = line.startsWith('error ')
      ? line.slice('error '.length)
      : result.stderr.trim() || `exit code ${result.code}`;
    return new EngineError('runtime', `${what}: ${detail}`);
  });
}

async function deleteLinks(names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  // -force: keep going past links that are already gone (their sandbox was destroyed with them).
  await execCommand('ip', ['-force', '-batch', '-'], `${names.map((n) => `link del ${n}`).join('\n')}\n`);
}

/** The links of names that still exist after waiting up to timeoutMs for them to go (sysfs: no process per check). */
async function linksRemaining(names: readonly string[], timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let left = [...names];
  for (let pause = 2; left.length > 0; pause = Math.min(pause * 2, 50)) {
    const exists = await Promise.all(
      left.map((name) =>
        fs.access(`/sys/class/net/${name}`).then(
          () => true,
          () => false,
        ),
      ),
    );
    left = left.filter((_, index) => exists[index]);
    if (left.length === 0 || Date.now() >= deadline) break;
    await sleep(pause);
  }
  return left;
}

/** `nft list tables ip`, or undefined when it cannot be listed. */
async function listNftTables(): Promise<string | undefined> {
  const result = await execCommand('nft', ['list', 'tables', 'ip']).catch(() => undefined);
  return result?.code === 0 ? result.stdout : undefined;
}

/** Which iptables filter tables exist (nft-backed and legacy): what decides the coexistence rules. */
async function filterTables(nftTables: string | undefined): Promise<string> {
  const nft = /^table ip filter$/m.test(nftTables ?? '');
  const legacy = /^filter$/m.test(await fs.readFile('/proc/net/ip_tables_names', 'utf8').catch(() => ''));
  return `nft=${nft} legacy=${legacy}`;
}

async function enableForwarding(): Promise<void> {
  await setNetSysctl('/proc/sys/net/ipv4/ip_forward', '1');
}

/**
 * Turns IPv6 off on host interfaces of a network (its bridge, the host ends of its veths): `disable_ipv6=1` and
 * `accept_ra=0`. A kernel without IPv6 has no such files: nothing to turn off then.
 */
async function noIpv6(ifnames: readonly string[]): Promise<void> {
  await Promise.all(
    ifnames.flatMap((name) =>
      [
        ['accept_ra', '0'],
        ['disable_ipv6', '1'],
      ].map(([key, value]) => setNetSysctl(`/proc/sys/net/ipv6/conf/${name}/${key ?? ''}`, value ?? '')),
    ),
  );
}

/** The resolver processes of the engine root `root`: `node [loader] …/dns-server.{js,ts} <root> …`. */
async function resolverPids(root: string): Promise<number[]> {
  const entries = await fs.readdir('/proc').catch(() => [] as string[]);
  const found: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = (await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    const at = argv.findIndex((a) => /[/\\]dns-server\.[cm]?[jt]s$/.test(a));
    if (at >= 0 && argv[at + 1] === root) found.push(Number(entry));
  }
  return found;
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
