/**
 * Reading a running container's cgroup from outside the ContainerManager: its processes and whether its freezer
 * has it paused (cgroup v1 controllers or the v2 unified tree). Used by `container pause|unpause|top|cp`.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { EnginePaths } from '../state/paths.js';
import { shortId } from '../state/ids.js';

const CGROUP_ROOT = '/sys/fs/cgroup';

function leaf(paths: EnginePaths, id: string): string {
  return path.join(paths.cgroupParent, shortId(id));
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** The pids in the container's cgroup (empty when it has none or is not running). */
export async function containerPids(paths: EnginePaths, id: string): Promise<number[]> {
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

/** Whether the container's freezer cgroup has it frozen (`pause`). */
export async function isFrozen(paths: EnginePaths, id: string): Promise<boolean> {
  const v1 = await readText(path.join(CGROUP_ROOT, 'freezer', leaf(paths, id), 'freezer.state'));
  if (v1 !== undefined) return v1.trim() !== 'THAWED';
  const v2 = await readText(path.join(CGROUP_ROOT, leaf(paths, id), 'cgroup.freeze'));
  return v2 !== undefined && v2.trim() === '1';
}

/** The number of tasks in the container's pids cgroup (`pids.current`), undefined when unreadable. */
export async function pidsCurrent(paths: EnginePaths, id: string): Promise<number | undefined> {
  const text =
    (await readText(path.join(CGROUP_ROOT, 'pids', leaf(paths, id), 'pids.current'))) ??
    (await readText(path.join(CGROUP_ROOT, leaf(paths, id), 'pids.current')));
  const value = Number(text?.trim());
  return text === undefined || !Number.isFinite(value) ? undefined : value;
}

/** Bytes read and written by the container's processes (v1 blkio or v2 io.stat), undefined when unreadable. */
export async function blockIo(paths: EnginePaths, id: string): Promise<{ read: number; write: number } | undefined> {
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
