/**
 * Human reasons for a recreate ("environment.FOO changed"), from the spec an existing container was created with and
 * the spec it would get now (pure). Only for display: the recreate decision is the config hash.
 */
import type { ContainerSpec } from '../../engine/containers/types.js';

/** Engine spec fields, with the compose key users know them by. Mounts, networks and ports are not in the spec. */
const FIELDS: readonly (readonly [keyof ContainerSpec, string])[] = [
  ['image', 'image'],
  ['cmd', 'command'],
  ['entrypoint', 'entrypoint'],
  ['workingDir', 'working_dir'],
  ['user', 'user'],
  ['groupAdd', 'group_add'],
  ['hostname', 'hostname'],
  ['tty', 'tty'],
  ['openStdin', 'stdin_open'],
  ['init', 'init'],
  ['readonlyRootfs', 'read_only'],
  ['privileged', 'privileged'],
  ['capAdd', 'cap_add'],
  ['capDrop', 'cap_drop'],
  ['noNewPrivileges', 'security_opt'],
  ['seccomp', 'security_opt'],
  ['memory', 'mem_limit'],
  ['memorySwap', 'memswap_limit'],
  ['pidsLimit', 'pids_limit'],
  ['nanoCpus', 'cpus'],
  ['cpuShares', 'cpu_shares'],
  ['ulimits', 'ulimits'],
  ['sysctls', 'sysctls'],
  ['extraHosts', 'extra_hosts'],
  ['stopSignal', 'stop_signal'],
  ['stopTimeout', 'stop_grace_period'],
  ['logMaxSize', 'logging'],
  ['logMaxFiles', 'logging'],
];

/** At most this many named changes; the rest are counted. */
const MAX_NAMED = 3;

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function envMap(entries: readonly string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of entries ?? []) {
    const index = entry.indexOf('=');
    if (index > 0) out.set(entry.slice(0, index), entry.slice(index + 1));
  }
  return out;
}

function mapChanges(prefix: string, before: Map<string, string>, after: Map<string, string>): string[] {
  const keys = [...new Set([...before.keys(), ...after.keys()])].sort();
  const out: string[] = [];
  for (const key of keys) {
    if (!before.has(key)) out.push(`${prefix}.${key} added`);
    else if (!after.has(key)) out.push(`${prefix}.${key} removed`);
    else if (before.get(key) !== after.get(key)) out.push(`${prefix}.${key} changed`);
  }
  return out;
}

function userLabels(labels: Readonly<Record<string, string>> | undefined): Map<string, string> {
  return new Map(Object.entries(labels ?? {}).filter(([key]) => !key.startsWith('io.tsfig.')));
}

/** What differs between two container specs, in compose's words; [] when nothing visible differs. */
export function describeChanges(before: ContainerSpec, after: ContainerSpec): string[] {
  const changes: string[] = [];
  for (const [field, key] of FIELDS) {
    if (!same(before[field], after[field]) && !changes.includes(`${key} changed`)) changes.push(`${key} changed`);
  }
  changes.push(...mapChanges('environment', envMap(before.env), envMap(after.env)));
  changes.push(...mapChanges('labels', userLabels(before.labels), userLabels(after.labels)));
  if (changes.length <= MAX_NAMED) return changes;
  return [...changes.slice(0, MAX_NAMED), `${changes.length - MAX_NAMED} more`];
}
