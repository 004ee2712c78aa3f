/**
 * Sandboxes and attachments of one root: each container's network namespace (bind-mounted at
 * `<runRoot>/netns/<id>`), its endpoints on the networks (address, veth pair, published ports) and the host links
 * they hang on (bridges, veths), made in batches (batch.ts) under the root lock. Part of NetworkManager (manager.ts).
 */
import { promises as fs, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { EngineError, isErrno } from '../errors.js';
import { rootlessNetns } from '../rootless/env.js';
import { withLock } from '../state/lock.js';
import type { EnginePaths } from '../state/paths.js';
import { ensureRunDir } from '../state/run-root.js';
import { runtimeBinary } from '../runtime/binary.js';
import { Batcher, type Settled } from './batch.js';
import type { DnsProcess } from './dns-process.js';
import { execCommand, ipBatch, ipJson, setNetSysctl } from './exec.js';
import type { Firewall } from './firewall.js';
import { allocateAddress, formatIpv4, parseCidr, parseIpv4, type HostRoute } from './ipam.js';
import { isValidMac, linkAlias, macForIp, vethName } from './names.js';
import { expandPortSpec, parsePortSpec, type PortRequest, type PublishedPort } from './ports.js';
import { defaultRouteHolder, findNetwork, withEndpoint, type NetworkRecords } from './records.js';
import { readRegistry } from './registry.js';
import type { AttachOptions, Attachment, EndpointState, NetworkState } from './types.js';

/** One attach() call waiting for its batch. */
interface AttachRequest {
  readonly containerId: string;
  readonly networkName: string;
  readonly options: AttachOptions;
  readonly requests: readonly PortRequest[];
  readonly sandbox: string;
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

/** How removeSandbox() ends. */
export interface RemoveSandboxOptions {
  /**
   * Called with the promise of the container's veths being gone (the kernel destroys a namespace in a work queue,
   * 100 ms and more after its umount; a veth still there after a second is deleted), instead of waiting for it:
   * the caller awaits it later, once for a whole batch of removals (ContainerManager.flushHosts).
   */
  readonly whenGone?: (gone: Promise<void>) => void;
}

export class Sandboxes {
  private readonly paths: EnginePaths;
  private readonly records: NetworkRecords;
  private readonly firewall: Firewall;
  private readonly dns: DnsProcess;
  /** The root's network lock (NetworkManager's): every mutation of the root's networks runs under it. */
  private readonly rootLock: string;
  private mtu: number | undefined;
  private readonly sandboxBatch = new Batcher<string, string>((ids) => this.createSandboxes(ids));
  private readonly attachBatch = new Batcher<AttachRequest, Attachment>((items) => this.attachAll(items));
  private readonly removalBatch = new Batcher<string, { readonly gone: Promise<void> }>((ids) =>
    this.removeSandboxes(ids),
  );
  private readonly connectBatch = new Batcher<ConnectRequest, Attachment[]>((items) => this.connectAll(items));

  constructor(paths: EnginePaths, records: NetworkRecords, firewall: Firewall, dns: DnsProcess, rootLock: string) {
    this.paths = paths;
    this.records = records;
    this.firewall = firewall;
    this.dns = dns;
    this.rootLock = rootLock;
  }

  /** Path of a container's netns bind mount (what the runtime joins with `netns <path>`). */
  sandboxPath(containerId: string): string {
    return path.join(this.paths.netns, containerId);
  }

  /** True when the container's sandbox is there (its netns file mounted). */
  hasSandbox(containerId: string): Promise<boolean> {
    return Promise.resolve(isMountPoint(this.sandboxPath(containerId)));
  }

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
  async removeSandbox(containerId: string, options: RemoveSandboxOptions = {}): Promise<void> {
    checkContainerId(containerId);
    const { gone } = await this.removalBatch.submit(containerId);
    if (options.whenGone !== undefined) options.whenGone(gone);
    else await gone;
  }

  /**
   * The removals of a batch of removeSandbox() calls: the state (and firewall) change once under the lock; the
   * containers' veths (one `ip -batch`) and netns (one `umount`) go after it, outside the lock (their names are the
   * containers' own: nothing else creates them once the endpoints are gone). Each caller then waits for its batch's
   * veths to be gone (`gone`), but the next batch does not: the kernel destroys namespaces in a work queue, 100 ms
   * and more after the umount, and a `down` of 50 containers waited for that once per batch, one batch after the
   * other (issue 18).
   */
  private async removeSandboxes(ids: readonly string[]): Promise<Settled<{ readonly gone: Promise<void> }>[]> {
    const leaving = new Set(ids);
    const veths = await withLock(this.rootLock, async () => this.dropContainers(await this.records.list(), leaving));
    // Unmounting the netns lets the kernel destroy it (no process of a removed container holds it), and every veth
    // with an end in it, in one batched cleanup: deleting the veths one by one costs an RCU grace period each
    // (~18 ms per veth here). Veths still there after a while (a process still holds the namespace) are deleted.
    await removeNetns([...leaving].map((id) => this.sandboxPath(id)));
    const gone = linksRemaining(veths, 1000).then((left) => deleteLinks(left));
    // every caller awaits it; this keeps an early failure from being an unhandled rejection meanwhile
    gone.catch(() => undefined);
    return ids.map(() => ({ ok: true, value: { gone } }));
  }

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
    if (!isMountPoint(sandbox)) {
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
    let all = await this.records.list();
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
      if (network !== undefined) await this.records.write(network);
    }
    const errors = await this.plumbMany(
      plumbing.map((p) => p.job),
      all,
    );
    const failed = plumbing.filter((_, i) => errors[i] !== undefined);
    let firewallError: unknown;
    if (plumbing.some((p, i) => p.ports && errors[i] === undefined)) {
      await this.firewall.apply(all).catch((error: unknown) => (firewallError = error));
    }
    const dropped = [
      ...failed.map((p) => ({ p, error: errors[plumbing.indexOf(p)] })),
      ...(firewallError === undefined ? [] : plumbing.filter((p, i) => p.ports && errors[i] === undefined)).map(
        (p) => ({ p, error: firewallError }),
      ),
    ];
    for (const { p } of dropped) {
      await this.dropEndpoints(await this.records.list(), p.job.ep.containerId, [p.job.network.id]).catch(
        () => undefined,
      );
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
      await this.firewall.allocatePorts(all, requests, async (ports) => {
        endpoint = { ...endpoint, ports };
        all = networks.map((n) => (n.id === network.id ? withEndpoint(network, endpoint) : n));
        const updated = all.find((n) => n.id === network.id) ?? network;
        await this.records.save(updated, all);
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
        const veths = await this.dropContainers(await this.records.list(), failed);
        await deleteLinks(veths);
        await removeNetns([...failed].map((id) => this.sandboxPath(id)));
      }
      return results;
    });
  }

  /** Disconnects a container from a network, releasing its address and published ports. */
  async detach(containerId: string, networkName: string): Promise<void> {
    await withLock(this.rootLock, async () => {
      const networks = await this.records.list();
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
      const networks = await this.records.list();
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
      await this.firewall.allocatePorts(networks, requests, async (added) => {
        ports = [...endpoint.ports, ...added];
        const updated = withEndpoint(network, { ...endpoint, ports });
        all = networks.map((n) => (n.id === network.id ? updated : n));
        await this.records.save(updated, all);
      });
      await this.firewall.apply(all);
      return ports;
    });
  }

  async setupBridge(network: NetworkState): Promise<void> {
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
  async plumbOne(job: PlumbJob): Promise<void> {
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
    await this.firewall.applyHost(all);
    await this.dns.ensureDns();
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
      await this.records.write(updated);
      veths.push(ep.hostVeth);
      if (ep.ports.length > 0) portsChanged = true;
    }
    if (portsChanged) {
      await this.records.writeRoot(all);
      await this.firewall.apply(all);
    }
    // deferLinks: the caller deletes them (its host veths) once it has released the lock.
    if (options.deferLinks !== true) await deleteLinks(veths);
    return veths;
  }

  /**
   * Removes every endpoint of the leaving containers: each changed network's state written once, then the registry
   * and firewall once if ports went with them. Returns the host veths, for the caller to delete after the lock.
   */
  async dropContainers(networks: readonly NetworkState[], leaving: ReadonlySet<string>): Promise<string[]> {
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
    await Promise.all(all.filter((n, i) => n !== networks[i]).map((n) => this.records.write(n)));
    if (portsChanged) {
      await this.records.writeRoot(all);
      await this.firewall.apply(all);
    }
    return veths;
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
  async ownLinks(): Promise<LinkInfo[]> {
    const alias = linkAlias(this.paths.rootId);
    const prefixed =
      (rootlessNetns() === undefined ? linksFromSysfs(this.paths.hostPrefix) : undefined) ??
      (await ipJson<LinkInfo[]>(['-d', 'link', 'show'])).filter((l) => l.ifname.startsWith(this.paths.hostPrefix));
    if (prefixed.every((l) => l.ifalias === alias)) return prefixed;
    const registry = await readRegistry(this.records.hostRunDir);
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

const SYS_NET = '/sys/class/net';

/**
 * The links of this process's network namespace whose names start with prefix (name, alias, master), read from sysfs:
 * what `ip -j -d link show` gives of them without starting a process, on every command that repairs the host (issue
 * 18). Undefined, for `ip` to answer, when the names under /sys/class/net are not those of /proc/self/net/dev (sysfs
 * mounted in another network namespace than this process's) or sysfs cannot be read. A link removed while it is read
 * is left out, as it would be a moment later.
 */
export function linksFromSysfs(prefix: string): LinkInfo[] | undefined {
  let names: string[];
  let devices: string;
  try {
    names = readdirSync(SYS_NET);
    devices = readFileSync('/proc/self/net/dev', 'utf8');
  } catch {
    return undefined;
  }
  const inNamespace = devices
    .split('\n')
    .slice(2)
    .map((line) => line.split(':')[0]?.trim() ?? '')
    .filter((name) => name !== '');
  if (inNamespace.length !== names.length || !inNamespace.every((name) => names.includes(name))) return undefined;
  const links: LinkInfo[] = [];
  for (const ifname of names) {
    if (!ifname.startsWith(prefix)) continue;
    try {
      const alias = readFileSync(path.join(SYS_NET, ifname, 'ifalias'), 'utf8').replace(/\n$/, '');
      let master: string | undefined;
      try {
        master = path.basename(readlinkSync(path.join(SYS_NET, ifname, 'master')));
      } catch (error) {
        if (!isErrno(error, 'ENOENT')) throw error;
      }
      links.push({
        ifname,
        ...(alias === '' ? {} : { ifalias: alias }),
        ...(master === undefined ? {} : { master }),
      });
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) return undefined;
    }
  }
  return links;
}

function nextIfname(used: readonly string[]): string {
  for (let i = 0; ; i++) if (!used.includes(`eth${i}`)) return `eth${i}`;
}

export function checkContainerId(containerId: string): void {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/.test(containerId)) {
    throw new EngineError('invalid', `invalid container id "${containerId}"`);
  }
}

/**
 * Whether file has something mounted on it (a sandbox: its network namespace bind-mounted from nsfs): its device is
 * not its directory's. One stat each, where mountedPaths reads the whole mount table, which grows with the containers:
 * each container start asked, O(n) per start in an `up` of n (issue 18).
 */
export function isMountPoint(file: string): boolean {
  try {
    return statSync(file).dev !== statSync(path.dirname(file)).dev;
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return false;
    throw error;
  }
}

/** The netns files mounted under dir. */
export async function mountedPaths(dir: string): Promise<Set<string>> {
  const text = await fs.readFile('/proc/self/mountinfo', 'utf8');
  const result = new Set<string>();
  for (const line of text.split('\n')) {
    const mountPoint = line.split(' ')[4];
    if (mountPoint !== undefined && mountPoint.startsWith(`${dir}/`)) result.add(mountPoint.replace(/\\040/g, ' '));
  }
  return result;
}

/** Unmounts (lazily: a container process may still hold one) and deletes sandbox files; absent ones are fine. */
export async function removeNetns(files: readonly string[]): Promise<void> {
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

export async function deleteLinks(names: readonly string[]): Promise<void> {
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
