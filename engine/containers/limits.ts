/** Resource limits a container spec asks for, and what happens to them where containers have no cgroups. */
import { cgroupsAvailable, noCgroupsReason } from '../system/rootless.js';
import type { ContainerSpec } from './types.js';

/** The limits the spec sets, by docker's flag names (`memory`, `cpus`...), in a fixed order. */
export function requestedLimits(spec: ContainerSpec): string[] {
  const asked: Array<[string, number | undefined]> = [
    ['memory', spec.memory],
    ['memory-swap', spec.memorySwap],
    ['cpus', spec.nanoCpus],
    ['cpu-shares', spec.cpuShares],
    ['pids-limit', spec.pidsLimit],
  ];
  return asked.filter(([, value]) => value !== undefined && value !== 0).map(([name]) => name);
}

/**
 * The warning a create gives when its limits cannot be applied (podman rootless on cgroup v1: "Resource limits are
 * not supported and ignored"): the container runs without them, never silently, never failing. Undefined when
 * nothing is ignored.
 */
export function ignoredLimitsWarning(spec: ContainerSpec, available = cgroupsAvailable()): string | undefined {
  if (available || requestedLimits(spec).length === 0) return undefined;
  // the same text for every container, so that a command creating many gives it once
  return (
    `resource limits (memory, cpus, cpu-shares, pids-limit) are ignored: rootless containers run without cgroups ` +
    `on this host (${noCgroupsReason()})`
  );
}
