/**
 * The firewall and published ports of one root: its nft table (rendered by nft.ts from the records), the iptables
 * coexistence rules, ip_forward, the fingerprint of what was last applied (`firewall.json` in the run dir, so that
 * reconcile skips re-applying an unchanged one), rootless forwards, and the choice of host ports (under the host
 * lock, against the host's sockets and every root's published ports). Part of NetworkManager (manager.ts).
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EngineError } from '../errors.js';
import { inRootlessSession } from '../rootless/env.js';
import { syncHostForwards } from '../rootless/ports.js';
import { readJson, writeJsonAtomic } from '../state/atomic.js';
import { withLock } from '../state/lock.js';
import type { EnginePaths } from '../state/paths.js';
import { ensureRunDir } from '../state/run-root.js';
import { execCommand, ipJson, setNetSysctl } from './exec.js';
import { syncIptables } from './iptables.js';
import type { HostAddress } from './ipam.js';
import { firewallTable } from './names.js';
import { applyRuleset, renderRuleset, type FirewallNetwork } from './nft.js';
import {
  describeHolder,
  ephemeralRange,
  findPortHolder,
  readHostSockets,
  type HostSocket,
  type PortRequest,
  type PublishedByContainer,
  type PublishedPort,
} from './ports.js';
import { ownPorts, type NetworkRecords } from './records.js';
import { HOST_LOCK, readRegistry } from './registry.js';
import type { NetworkState } from './types.js';

interface HostFingerprint {
  /** sha256 of the rendered nft transaction. */
  readonly ruleset: string;
  /** Which iptables filter tables existed, and the subnets synced into them. */
  readonly iptables: string;
}

export class Firewall {
  private readonly paths: EnginePaths;
  private readonly records: NetworkRecords;

  constructor(paths: EnginePaths, records: NetworkRecords) {
    this.paths = paths;
    this.records = records;
  }

  /** This root's nft table (`table ip <tableName>`). */
  get tableName(): string {
    return firewallTable(this.paths.rootId);
  }

  /** The nft transaction for the given networks (what applyFirewall sends). */
  render(networks: readonly NetworkState[]): string {
    return renderRuleset(this.tableName, networks.map(firewallNetwork), { rootless: inRootlessSession() });
  }

  /** Replaces this root's nft table from the state (deletes it when there are no networks). */
  async apply(networks?: readonly NetworkState[]): Promise<void> {
    const all = networks ?? (await this.records.list());
    const text = this.render(all);
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

  /** Firewall, iptables coexistence rules and ip_forward for the given set of networks. */
  async applyHost(networks: readonly NetworkState[]): Promise<string[]> {
    if (networks.length > 0) await enableForwarding();
    await this.apply(networks);
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
  async hostMatches(networks: readonly NetworkState[], tables: string | undefined): Promise<boolean> {
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
    return createHash('sha256').update(this.render(networks)).digest('hex');
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

  /** Resolves host ports for the requests, failing on the first conflict before anything changes. */
  async allocatePorts(
    networks: readonly NetworkState[],
    requests: readonly PortRequest[],
    persist: (ports: PublishedPort[]) => Promise<void>,
  ): Promise<void> {
    await withLock(HOST_LOCK, async () => {
      const registry = await readRegistry(this.records.hostRunDir);
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

/** `nft list tables ip`, or undefined when it cannot be listed. */
export async function listNftTables(): Promise<string | undefined> {
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
