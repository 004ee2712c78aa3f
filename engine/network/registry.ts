import { promises as fs } from 'node:fs';
import path from 'node:path';
import { pathExists, readJson, removeStaleTemps, writeJsonAtomic } from '../state/atomic.js';
import { execCommand, ipJson } from './exec.js';
import { syncIptables } from './iptables.js';
import { firewallTable } from './names.js';
import type { PublishedByContainer } from './ports.js';

/**
 * Host-wide registry of every tsfig root's networks and published ports (`/run/tsfig/net-registry.json`), so roots
 * never pick overlapping subnets or the same host port. Read and written only under the host-wide network lock.
 * It lives on tmpfs: a reboot wipes it together with the bridges and rules it describes.
 */
export interface HostRegistry {
  readonly version: 1;
  readonly roots: Readonly<Record<string, RootEntry>>;
}

export interface RootEntry {
  /** State root; an entry whose root no longer has a networks dir is stale: dropped and its host objects removed. */
  readonly root: string;
  /** Run root (netns mounts); absent in entries written by older versions. */
  readonly runRoot?: string;
  readonly networks: readonly {
    readonly id: string;
    readonly name: string;
    readonly subnet: string;
    /** Absent in registries written before the embedded resolver existed. */
    readonly gateway?: string;
    readonly bridge: string;
  }[];
  readonly ports: readonly Omit<PublishedByContainer, 'rootId'>[];
}

export const HOST_LOCK = 'tsfig-net-host';

export function registryFile(hostRunDir: string): string {
  return path.join(hostRunDir, 'net-registry.json');
}

/** Reads the registry, leaving out entries of roots that are gone (deleted test roots, for example). */
export async function readRegistry(hostRunDir: string): Promise<HostRegistry> {
  return (await readRegistryAndStale(hostRunDir)).registry;
}

async function readRegistryAndStale(
  hostRunDir: string,
): Promise<{ registry: HostRegistry; stale: [string, RootEntry][] }> {
  const registry = (await readJson<HostRegistry>(registryFile(hostRunDir))) ?? { version: 1, roots: {} };
  const roots: Record<string, RootEntry> = {};
  const stale: [string, RootEntry][] = [];
  for (const [rootId, entry] of Object.entries(registry.roots)) {
    if (await pathExists(path.join(entry.root, 'networks'))) roots[rootId] = entry;
    else stale.push([rootId, entry]);
  }
  return { registry: { version: 1, roots }, stale };
}

/**
 * Removes what a root whose directory was deleted without removing its networks left on the host: veths on its
 * bridges, the bridges, its nft table, its iptables rules and netns
 * mounts. Its resolver exits by itself once its networks dir is gone. Best effort; runs under the host lock.
 */
export async function cleanupStaleRoot(rootId: string, entry: RootEntry): Promise<void> {
  const bridges = new Set(entry.networks.map((n) => n.bridge));
  const links = await ipJson<{ ifname: string; master?: string }[]>(['link', 'show']).catch(() => []);
  const doomed = links.filter((l) => bridges.has(l.ifname) || (l.master !== undefined && bridges.has(l.master)));
  if (doomed.length > 0) {
    await execCommand('ip', ['-force', '-batch', '-'], doomed.map((l) => `link del ${l.ifname}\n`).join(''));
  }
  await execCommand('nft', ['delete', 'table', 'ip', firewallTable(rootId)]).catch(() => undefined);
  await syncIptables(rootId, []).catch(() => []);
  if (entry.runRoot !== undefined) {
    const mountinfo = await fs.readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
    const under = `${path.join(entry.runRoot, 'netns')}/`;
    for (const line of mountinfo.split('\n')) {
      const mountPoint = line.split(' ')[4];
      if (mountPoint?.startsWith(under) === true) await execCommand('umount', ['--lazy', mountPoint]);
    }
  }
}

/** Replaces (or with undefined removes) one root's entry; cleans up after roots that are gone. The caller holds HOST_LOCK. */
export async function writeRootEntry(hostRunDir: string, rootId: string, entry: RootEntry | undefined): Promise<void> {
  const { registry, stale } = await readRegistryAndStale(hostRunDir);
  for (const [staleId, staleEntry] of stale) {
    if (staleId !== rootId) await cleanupStaleRoot(staleId, staleEntry);
  }
  const roots: Record<string, RootEntry> = { ...registry.roots };
  if (entry === undefined || (entry.networks.length === 0 && entry.ports.length === 0)) delete roots[rootId];
  else roots[rootId] = entry;
  await fs.mkdir(hostRunDir, { recursive: true, mode: 0o711 });
  // under the host lock, which every writer of the registry holds: a temporary file there is a killed writer's
  await removeStaleTemps(registryFile(hostRunDir));
  if (Object.keys(roots).length === 0) {
    await fs.rm(registryFile(hostRunDir), { force: true });
    return;
  }
  await writeJsonAtomic(registryFile(hostRunDir), { version: 1, roots });
}
