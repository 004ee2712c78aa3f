import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { isErrno } from '../errors.js';
import { cgroupsAvailable } from '../system/rootless.js';

let bootIdCache: string | undefined;

export function currentBootId(): string {
  bootIdCache ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return bootIdCache;
}

/**
 * Field 22 (starttime) of /proc/<pid>/stat, or undefined when the process is gone (or a zombie). Read synchronously:
 * one small procfs read is cheaper than fs.promises.readFile's thread-pool round trips (every container listing reads
 * one per running container).
 */
export function processStartTime(pid: number): Promise<number | undefined> {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT') || isErrno(error, 'ESRCH')) return Promise.resolve(undefined);
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
  // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // A zombie (Z) or dying (X) process has exited: it only waits for its parent (here often the host's init, which
  // may reap it seconds later) to collect its status. It counts as gone.
  if (rest[0] === 'Z' || rest[0] === 'X') return Promise.resolve(undefined);
  const startTime = rest[19];
  return Promise.resolve(startTime === undefined ? undefined : Number(startTime));
}

/** True when pid is alive and is the same process that started at startTime (pids get reused). */
export async function isSameProcess(pid: number, startTime: number): Promise<boolean> {
  if (pid <= 0) return false;
  return (await processStartTime(pid)) === startTime;
}

const CGROUP_V1_ROOT = '/sys/fs/cgroup';

/**
 * The cgroup directories of a container on this host (v1: one per hierarchy; v2: one; none where containers have
 * no cgroups, rootless on cgroup v1).
 */
export async function cgroupDirs(cgroup: string): Promise<string[]> {
  if (!cgroupsAvailable()) return [];
  let entries: string[];
  try {
    await fs.access(path.join(CGROUP_V1_ROOT, 'cgroup.controllers'));
    return [path.join(CGROUP_V1_ROOT, cgroup)];
  } catch {
    entries = await fs.readdir(CGROUP_V1_ROOT);
  }
  return entries.map((entry) => path.join(CGROUP_V1_ROOT, entry, cgroup));
}

/**
 * Kills every process left in a container's cgroups and removes the directories. Idempotent. Without cgroups there
 * is nothing to do: the container's processes die with its pid namespace's init, which dies with its monitor
 * (native: the parent-death signal of a container without a cgroup).
 */
export async function destroyCgroup(cgroup: string): Promise<void> {
  const dirs = await cgroupDirs(cgroup);
  for (let attempt = 0; attempt < 50; attempt++) {
    let remaining = 0;
    for (const dir of dirs) {
      let procs: string;
      try {
        procs = await fs.readFile(path.join(dir, 'cgroup.procs'), 'utf8');
      } catch {
        continue;
      }
      for (const pid of procs.split('\n').filter(Boolean)) {
        remaining++;
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    if (remaining === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  for (const dir of dirs) {
    await fs.rmdir(dir).catch(() => undefined);
  }
}

/** Removes a root's parent cgroup dirs when no container is left in them (rmdir only succeeds when empty). */
export async function removeEmptyCgroupParent(parent: string): Promise<void> {
  for (const dir of await cgroupDirs(parent)) await fs.rmdir(dir).catch(() => undefined);
}
