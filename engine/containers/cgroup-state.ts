/**
 * Reading a running container's cgroup from outside the ContainerManager: its processes and whether its freezer
 * has it paused (cgroup v1 controllers or the v2 unified tree). Used by `container pause|unpause|top|cp`. Where
 * containers have no cgroups (rootless on cgroup v1), its processes are its pid namespace's and it is never paused.
 */
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import type { EnginePaths } from '../state/paths.js';
import { EngineError } from '../errors.js';
import { shortId } from '../state/ids.js';
import { cgroupsAvailable } from '../system/rootless.js';
import { isSameProcess } from './liveness.js';

const CGROUP_ROOT = '/sys/fs/cgroup';

function leaf(paths: EnginePaths, id: string): string {
  return path.join(paths.cgroupParent, shortId(id));
}

/**
 * A small file of cgroupfs, procfs or the state, or undefined when it cannot be read. Synchronously, as readJson
 * (engine/state/atomic.ts): fs.promises.readFile makes four thread-pool round trips for a few bytes, and `ps` of 50
 * reads each container's freezer state (issue 18: 100 small async reads cost 34 ms, synchronous ones 5 ms).
 */
function readText(file: string): Promise<string | undefined> {
  try {
    return Promise.resolve(readFileSync(file, 'utf8'));
  } catch {
    return Promise.resolve(undefined);
  }
}

/**
 * The container's PID 1 from its monitor's status.json: only while that monitor still runs and is its parent, so a
 * pid the kernel gave to another process since is never taken for the container's.
 */
async function initPid(paths: EnginePaths, id: string): Promise<number | undefined> {
  let status: { state?: string; pid?: number; monitor?: number; monitorStart?: number };
  try {
    status = JSON.parse((await readText(path.join(paths.containers, id, 'status.json'))) ?? 'null') as typeof status;
  } catch {
    return undefined;
  }
  const { pid, monitor, monitorStart } = status ?? {};
  if (status?.state !== 'running' || pid === undefined || pid <= 0 || monitor === undefined) return undefined;
  if (monitorStart === undefined || !(await isSameProcess(monitor, monitorStart))) return undefined;
  const parent = /^PPid:\s*(\d+)$/m.exec((await readText(`/proc/${pid}/status`)) ?? '');
  return Number(parent?.[1]) === monitor ? pid : undefined;
}

async function pidNamespace(pid: number | 'self'): Promise<string | undefined> {
  return fs.readlink(`/proc/${pid}/ns/pid`).catch(() => undefined);
}

/**
 * Every process in the pid namespace whose init is `pid`, found by scanning /proc (what a cgroup's cgroup.procs
 * gives where there is no cgroup): its processes and the ones exec'd into it. Empty when `pid` is in this process's
 * own pid namespace (then it is not a container's init).
 */
export async function pidNamespaceMembers(pid: number): Promise<number[]> {
  const ns = await pidNamespace(pid);
  if (ns === undefined || ns === (await pidNamespace('self'))) return [];
  const entries = (await fs.readdir('/proc')).filter((entry) => /^\d+$/.test(entry)).map(Number);
  const spaces = await Promise.all(entries.map((entry) => pidNamespace(entry)));
  return entries.filter((_, index) => spaces[index] === ns).sort((a, b) => a - b);
}

/** The state letter of /proc/<pid>/stat (`R`, `S`, `T`...), undefined when the process is gone. */
function processState(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
  } catch {
    return undefined;
  }
}

/**
 * The freezer's stand-in where a container has no cgroup (rootless on cgroup v1): SIGSTOP to every process of the
 * pid namespace whose init is `init`, scanning again until a scan finds every process stopped (a child forked meanwhile
 * is found by the next scan; a stopped process forks nothing). Processes that were stopped already (job control) are
 * left as they are. Resolves with a function that sends SIGCONT to exactly the processes it stopped. Fails (nothing
 * left stopped) when the container has gone or keeps forking faster than it can be stopped.
 */
export async function stopPidNamespace(init: number, what: string): Promise<() => void> {
  const stopped = new Set<number>();
  let watch: NodeJS.Timeout | undefined;
  const resume = (): void => {
    clearInterval(watch);
    watch = undefined; // a scan still running stops nothing more (checked before each SIGSTOP)
    for (const pid of stopped) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
  };
  try {
    for (let round = 0; round < 200; round++) {
      const members = await pidNamespaceMembers(init);
      if (!members.includes(init)) throw new EngineError('conflict', `${what} stopped`, { hint: 'try again' });
      let settled = true;
      for (const pid of members) {
        const state = processState(pid);
        if (state === undefined || state === 'Z' || state === 'X') continue;
        if (!stopped.has(pid) && (state === 'T' || state === 't')) continue; // stopped by someone else: stays so
        if (!stopped.has(pid)) {
          process.kill(pid, 'SIGSTOP');
          stopped.add(pid);
        }
        if (state !== 'T' && state !== 't') settled = false; // sent, not stopped yet: look again
      }
      if (settled) {
        // until resumed, a process that joins the namespace (an exec, a health probe decided just before) is stopped
        // too; the monitor starts no probe while PID 1 is stopped (native/src/health.c)
        let scanning = false;
        watch = setInterval(() => {
          if (scanning) return;
          scanning = true;
          void pidNamespaceMembers(init)
            .then((members) => {
              for (const pid of members) {
                if (stopped.has(pid) || watch === undefined) continue;
                const state = processState(pid);
                if (state === undefined || state === 'Z' || state === 'X' || state === 'T' || state === 't') continue;
                process.kill(pid, 'SIGSTOP');
                stopped.add(pid);
              }
            })
            .catch(() => undefined)
            .finally(() => (scanning = false));
        }, 5);
        watch.unref();
        return resume;
      }
      await new Promise((resolve) => setTimeout(resolve, round < 10 ? 1 : 10));
    }
    throw new EngineError('conflict', `${what} could not be stopped: its processes keep forking`, {
      hint: 'stop the container to copy, or try again',
    });
  } catch (error) {
    resume();
    throw error;
  }
}

/**
 * The pids of a running container (empty when it is not running): its cgroup's, or, where containers have no
 * cgroups (rootless on cgroup v1), its pid namespace's.
 */
export async function containerPids(paths: EnginePaths, id: string): Promise<number[]> {
  if (!cgroupsAvailable()) {
    const init = await initPid(paths, id);
    return init === undefined ? [] : pidNamespaceMembers(init);
  }
  const text =
    (await readText(path.join(CGROUP_ROOT, 'pids', leaf(paths, id), 'cgroup.procs'))) ??
    (await readText(path.join(CGROUP_ROOT, leaf(paths, id), 'cgroup.procs'))) ??
    '';
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map(Number)
    .filter((pid) => Number.isInteger(pid) && pid > 0);
}

/** Whether the container's freezer cgroup has it frozen (`pause`); never without cgroups. */
export async function isFrozen(paths: EnginePaths, id: string): Promise<boolean> {
  if (!cgroupsAvailable()) return false;
  const v1 = await readText(path.join(CGROUP_ROOT, 'freezer', leaf(paths, id), 'freezer.state'));
  if (v1 !== undefined) return v1.trim() !== 'THAWED';
  const v2 = await readText(path.join(CGROUP_ROOT, leaf(paths, id), 'cgroup.freeze'));
  return v2 !== undefined && v2.trim() === '1';
}

/**
 * The number of tasks in the container's pids cgroup (`pids.current`), undefined when unreadable; without cgroups,
 * the number of processes in its pid namespace.
 */
export async function pidsCurrent(paths: EnginePaths, id: string): Promise<number | undefined> {
  if (!cgroupsAvailable()) return (await containerPids(paths, id)).length;
  const text =
    (await readText(path.join(CGROUP_ROOT, 'pids', leaf(paths, id), 'pids.current'))) ??
    (await readText(path.join(CGROUP_ROOT, leaf(paths, id), 'pids.current')));
  const value = Number(text?.trim());
  return text === undefined || !Number.isFinite(value) ? undefined : value;
}

/**
 * Bytes read and written by the container's processes (v1 blkio or v2 io.stat), undefined when unreadable or the
 * container has no cgroup.
 */
export async function blockIo(paths: EnginePaths, id: string): Promise<{ read: number; write: number } | undefined> {
  if (!cgroupsAvailable()) return undefined;
  const v1 = await readText(path.join(CGROUP_ROOT, 'blkio', leaf(paths, id), 'blkio.throttle.io_service_bytes'));
  if (v1 !== undefined) {
    let read = 0;
    let write = 0;
    for (const line of v1.split('\n')) {
      const match = /^\S+ (Read|Write) (\d+)$/.exec(line.trim());
      if (match?.[1] === 'Read') read += Number(match[2]);
      else if (match?.[1] === 'Write') write += Number(match[2]);
    }
    return { read, write };
  }
  const v2 = await readText(path.join(CGROUP_ROOT, leaf(paths, id), 'io.stat'));
  if (v2 === undefined) return undefined;
  let read = 0;
  let write = 0;
  for (const match of v2.matchAll(/rbytes=(\d+) wbytes=(\d+)/g)) {
    read += Number(match[1]);
    write += Number(match[2]);
  }
  return { read, write };
}
