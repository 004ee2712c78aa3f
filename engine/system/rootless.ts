/**
 * Rootless mode: tsfig runs as uid 0 of a user namespace that is not the host's (the rootless bootstrap's, or any
 * `unshare --user --map-root-user`). Its ids are the invoking user's and their subordinate ids; it cannot make device
 * nodes, and it can create cgroups only where the host delegated a writable part of the hierarchy to the user.
 * Decided once per process: a process never changes user namespace, and the host's cgroup layout does not change
 * under it.
 */
import { accessSync, constants, readFileSync } from 'node:fs';

const CGROUP_ROOT = '/sys/fs/cgroup';

/**
 * True unless the text of a /proc/<pid>/uid_map is the initial user namespace's: one line mapping every id onto
 * itself (`0 0 4294967295`). A missing or empty map (a process the kernel did not map yet) counts as rootless.
 */
export function isUserNamespaceMap(uidMap: string): boolean {
  const lines = uidMap
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields.length === 3);
  if (lines.length !== 1) return true;
  const [inside, outside, count] = lines[0] ?? [];
  return !(inside === '0' && outside === '0' && count === '4294967295');
}

let rootless: boolean | undefined;

/** Whether this process runs rootless (in a user namespace other than the host's); cached. */
export function isRootless(): boolean {
  if (rootless === undefined) {
    let map = '';
    try {
      map = readFileSync('/proc/self/uid_map', 'utf8');
    } catch {
      // no /proc/self/uid_map: a kernel without user namespaces, so the host's
      map = '0 0 4294967295';
    }
    rootless = isUserNamespaceMap(map);
  }
  return rootless;
}

/** cgroup v2 (the unified hierarchy) or v1 (one hierarchy per controller). */
export function cgroupVersion(): 1 | 2 {
  try {
    accessSync(`${CGROUP_ROOT}/cgroup.controllers`);
    return 2;
  } catch {
    return 1;
  }
}

let cgroups: boolean | undefined;

/**
 * Whether containers get cgroups (limits, freezer, per-container accounting). As root, always. Rootless, only when
 * this process may create tsfig's cgroup parent where the engine puts it, at the top of the hierarchy (v2) or of the
 * pids hierarchy (v1): on cgroup v1 the host never delegates that to a user, and on v2 systemd delegates the user's
 * own subtree, not the root. Without them containers run with no cgroup at all (runtime.conf `cgroup none`):
 * `pause` is refused, resource limits are ignored with a warning, `stats` has no CPU or memory figures, and the
 * container's processes are found and killed through its pid namespace.
 */
export function cgroupsAvailable(): boolean {
  if (cgroups === undefined) {
    const top = cgroupVersion() === 2 ? CGROUP_ROOT : `${CGROUP_ROOT}/pids`;
    let writable = true;
    if (isRootless()) {
      try {
        accessSync(top, constants.W_OK);
      } catch {
        writable = false;
      }
    }
    cgroups = writable;
  }
  return cgroups;
}

/** Why containers have no cgroups here, for messages: `cgroup v1` or `cgroup v2 without delegation`. */
export function noCgroupsReason(): string {
  return cgroupVersion() === 2 ? 'cgroup v2 without delegation' : 'cgroup v1';
}

/**
 * The oom_score_adj containers get: 0 as root (Docker's); rootless, never below this process's own, which the
 * monitor and the container inherit: a user session often starts above 0 (systemd gives user services 100), and
 * going below the floor a privileged writer set (oom_score_adj_min) needs CAP_SYS_RESOURCE in the host's user
 * namespace, which a rootless container never has. podman rootless clamps the same way (maybeClampOOMScoreAdj).
 */
export function containerOomScoreAdj(): number {
  if (!isRootless()) return 0;
  try {
    const own = Number(readFileSync('/proc/self/oom_score_adj', 'utf8').trim());
    return Number.isInteger(own) && own > 0 ? own : 0;
  } catch {
    return 0;
  }
}

/**
 * The xattr prefix of overlayfs's own attributes in upper and layer dirs: `trusted.overlay.` as root, `user.overlay.`
 * rootless, where the runtime mounts overlay with `userxattr` (trusted.* needs the host's CAP_SYS_ADMIN).
 * native/src/util.c tsfig_overlay_xattr_prefix decides the same way.
 */
export function overlayXattrPrefix(): 'trusted.overlay.' | 'user.overlay.' {
  return isRootless() ? 'user.overlay.' : 'trusted.overlay.';
}
