/** CPU and memory use of a container, read from its cgroup (v1 memory/cpuacct controllers, or v2). */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { shortId } from '../../../engine/state/index.js';

export interface CgroupStats {
  /** Cumulative CPU time in ns. */
  readonly cpuUsageNs: number | undefined;
  readonly memoryBytes: number | undefined;
}

async function readNumber(file: string): Promise<number | undefined> {
  try {
    const value = Number((await readFile(file, 'utf8')).trim());
    return Number.isFinite(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

async function readV2Cpu(file: string): Promise<number | undefined> {
  try {
    const match = /^usage_usec (\d+)$/m.exec(await readFile(file, 'utf8'));
    return match?.[1] === undefined ? undefined : Number(match[1]) * 1000;
  } catch {
    return undefined;
  }
}

/** Reads the stats of container `id` under the engine's `cgroupParent`; fields are undefined when unreadable. */
export async function readCgroupStats(cgroupParent: string, id: string, root = '/sys/fs/cgroup'): Promise<CgroupStats> {
  const leaf = path.join(cgroupParent, shortId(id));
  const v1Memory = await readNumber(path.join(root, 'memory', leaf, 'memory.usage_in_bytes'));
  if (v1Memory !== undefined) {
    return { memoryBytes: v1Memory, cpuUsageNs: await readNumber(path.join(root, 'cpuacct', leaf, 'cpuacct.usage')) };
  }
  return {
    memoryBytes: await readNumber(path.join(root, leaf, 'memory.current')),
    cpuUsageNs: await readV2Cpu(path.join(root, leaf, 'cpu.stat')),
  };
}
