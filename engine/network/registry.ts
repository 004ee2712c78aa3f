import { promises as fs } from 'node:fs';
import path from 'node:path';
import { pathExists, readJson, writeJsonAtomic } from '../state/atomic.js';
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
  /** State root; an entry whose root no longer has a networks dir is stale and dropped. */
  readonly root: string;
  readonly networks: readonly {
    readonly id: string;
    readonly name: string;
    readonly subnet: string;
    readonly bridge: string;
  }[];
  readonly ports: readonly Omit<PublishedByContainer, 'rootId'>[];
}

export const HOST_LOCK = 'tsfig-net-host';

export function registryFile(hostRunDir: string): string {
  return path.join(hostRunDir, 'net-registry.json');
}

/** Reads the registry, dropping entries of roots that are gone (deleted test roots, for example). */
export async function readRegistry(hostRunDir: string): Promise<HostRegistry> {
  const registry = (await readJson<HostRegistry>(registryFile(hostRunDir))) ?? { version: 1, roots: {} };
  const roots: Record<string, RootEntry> = {};
  for (const [rootId, entry] of Object.entries(registry.roots)) {
    if (await pathExists(path.join(entry.root, 'networks'))) roots[rootId] = entry;
  }
  return { version: 1, roots };
}

/** Replaces (or with undefined removes) one root's entry. */
export async function writeRootEntry(hostRunDir: string, rootId: string, entry: RootEntry | undefined): Promise<void> {
  const registry = await readRegistry(hostRunDir);
  const roots: Record<string, RootEntry> = { ...registry.roots };
  if (entry === undefined || (entry.networks.length === 0 && entry.ports.length === 0)) delete roots[rootId];
  else roots[rootId] = entry;
  await fs.mkdir(hostRunDir, { recursive: true, mode: 0o711 });
  if (Object.keys(roots).length === 0) {
    await fs.rm(registryFile(hostRunDir), { force: true });
    return;
  }
  await writeJsonAtomic(registryFile(hostRunDir), { version: 1, roots });
}
