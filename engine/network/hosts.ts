import type { NetworkState } from './types.js';
import { compareNatural } from '../state/compare.js';

const DEFAULTS = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];

/** /etc/hosts of a container before it joins networks: the usual loopback lines, then `extra` (`--add-host`). */
export function renderStaticHosts(extra: readonly string[]): string {
  return [...DEFAULTS, ...extra, ''].join('\n');
}

function unique(names: readonly (string | undefined)[]): string[] {
  return [...new Set(names.filter((n): n is string => n !== undefined && n !== ''))];
}

/**
 * /etc/hosts of a container (pure): the usual loopback lines, the container's own addresses with its hostname,
 * name and aliases, then every other container on its networks with their names and network aliases. A snapshot:
 * containers started later are not in it (that is what the embedded DNS is for).
 */
export function renderHostsFile(containerId: string, networks: readonly NetworkState[]): string {
  const lines = [...DEFAULTS];
  const mine = networks.filter((n) => n.endpoints[containerId] !== undefined);
  for (const n of mine) {
    const ep = n.endpoints[containerId];
    if (ep === undefined) continue;
    const names = unique([ep.hostname, ep.containerName, ...ep.aliases]);
    lines.push(`${ep.ip}\t${(names.length > 0 ? names : [containerId.slice(0, 12)]).join(' ')}`);
  }
  const seen = new Set<string>();
  for (const n of mine) {
    const others = Object.values(n.endpoints)
      .filter((ep) => ep.containerId !== containerId)
      .sort((a, b) => compareNatural(a.ip, b.ip));
    for (const ep of others) {
      const names = unique([ep.containerName, ep.hostname, ...ep.aliases]);
      const line = `${ep.ip}\t${(names.length > 0 ? names : [ep.containerId.slice(0, 12)]).join(' ')}`;
      if (seen.has(line)) continue;
      seen.add(line);
      lines.push(line);
    }
  }
  return `${lines.join('\n')}\n`;
}
