/** What `tsfig info` reports of the mode this command runs in: root or rootless, and what each part of it has. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { EnginePaths } from '../state/paths.js';
import { cgroupsAvailable, cgroupVersion } from '../system/rootless.js';
import { inRootlessSession } from './env.js';
import { readSessionFile, rootlessDirs } from './session.js';

export interface ModeInfo {
  readonly mode: 'root' | 'rootless';
  readonly stateRoot: string;
  readonly runRoot: string;
  /** The user namespace's uid map (`inside outside count`, one range per entry). */
  readonly uidMap: string[];
  /** cgroup v1 or v2, and whether this mode can make containers' cgroups (limits, stats, pause). */
  readonly cgroups: { readonly version: 1 | 2; readonly usable: boolean };
  /** Rootless: the session's holder and how published ports and outside traffic work. */
  readonly session?: {
    readonly holderPid: number;
    readonly runtimeDir: string;
    readonly network: string;
  };
}

export async function modeInfo(paths: EnginePaths, env: NodeJS.ProcessEnv = process.env): Promise<ModeInfo> {
  // the engine's own decision (containers without cgroups when it is false), not a second guess of it
  const version = cgroupVersion();
  const usable = cgroupsAvailable();
  const uidMap = (await fs.readFile('/proc/self/uid_map', 'utf8').catch(() => ''))
    .split('\n')
    .map((line) => line.trim().split(/\s+/).join(' '))
    .filter((line) => line !== '');
  const base = {
    stateRoot: paths.root,
    runRoot: paths.runRoot,
    uidMap,
    cgroups: { version, usable },
  };
  if (!inRootlessSession(env)) return { mode: 'root', ...base };
  const dirs = rootlessDirs(env);
  const session = await readSessionFile(path.join(dirs.runtimeDir, 'holder.json'));
  const network =
    session?.slirp !== undefined
      ? `slirp4netns (pid ${session.slirp.pid}): published ports and outside traffic`
      : `no slirp4netns: no published ports, no outside traffic (${session?.slirpProblem ?? 'unknown'})`;
  return {
    mode: 'rootless',
    ...base,
    session: { holderPid: session?.holderPid ?? 0, runtimeDir: dirs.runtimeDir, network },
  };
}
