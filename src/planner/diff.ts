/**
 * Human reasons for a recreate ("environment.FOO changed"), from the spec an existing container was created with and
 * the spec it would get now (pure). Only for display: the recreate decision is the config hash.
 */
import type { ContainerSpec } from '../../engine/containers/index.js';
import { toEngineContainerSpec } from './container-spec.js';
import { canonicalJson } from './hash.js';
import type { ContainerCreateSpec } from './plan.js';

/** Engine spec fields, with the compose key users know them by (mounts are not compared: they are resolved). */
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
  ['network', 'network_mode'],
  ['ports', 'ports'],
  ['restart', 'restart'],
  ['healthcheck', 'healthcheck'],
];

/** At most this many named changes; the rest are counted. */
const MAX_NAMED = 3;

/** Equal as data: key order and undefined fields do not matter (records are read back from JSON). */
function same(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
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
  // tsfig's labels and their compose mirrors (withComposeLabels) are not the user's
  return new Map(
    Object.entries(labels ?? {}).filter(
      ([key]) => !key.startsWith('io.tsfig.') && !key.startsWith('com.docker.compose.'),
    ),
  );
}

/** Network attachments by network name: added, removed, or changed aliases/address. */
function networkChanges(before: ContainerSpec, after: ContainerSpec): string[] {
  const old = new Map((before.networks ?? []).map((n) => [n.name, n]));
  const now = new Map((after.networks ?? []).map((n) => [n.name, n]));
  const changes: string[] = [];
  for (const name of [...new Set([...old.keys(), ...now.keys()])].sort()) {
    const a = old.get(name);
    const b = now.get(name);
    if (a === undefined) changes.push(`network ${name} added`);
    else if (b === undefined) changes.push(`network ${name} removed`);
    else if (
      !same({ ...a, aliases: [...(a.aliases ?? [])].sort() }, { ...b, aliases: [...(b.aliases ?? [])].sort() })
    ) {
      changes.push(`network ${name} changed`);
    }
  }
  return changes;
}

/**
 * What differs between the spec a container was created with and the one the service now asks for, in compose's
 * words ("environment.FOO changed", "image changed", "network tsfig_back added"); [] when nothing visible differs.
 */
export function describeChanges(before: ContainerSpec, desired: ContainerCreateSpec): string[] {
  const after = toEngineContainerSpec(desired);
  const changes: string[] = [];
  for (const [field, key] of FIELDS) {
    if (!same(before[field], after[field]) && !changes.includes(`${key} changed`)) changes.push(`${key} changed`);
  }
  changes.push(...mapChanges('environment', envMap(before.env), envMap(after.env)));
  changes.push(...mapChanges('labels', userLabels(before.labels), userLabels(after.labels)));
  changes.push(...networkChanges(before, after));
  if (changes.length <= MAX_NAMED) return changes;
  return [...changes.slice(0, MAX_NAMED), `${changes.length - MAX_NAMED} more`];
}
