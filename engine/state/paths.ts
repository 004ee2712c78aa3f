import { createHash } from 'node:crypto';
import path from 'node:path';

/** Every location the engine uses, derived from one state root. Host-wide names carry `tsf` and the root id. */
export interface EnginePaths {
  /** Persistent state root. @default /var/lib/tsfig (TSFIG_ROOT overrides) */
  readonly root: string;
  /** 8 hex chars identifying the root on this host, so two roots never collide on host-wide objects. */
  readonly rootId: string;
  /** Runtime (tmpfs) dir of this root. @default /run/tsfig/<rootId> (TSFIG_RUN_ROOT overrides) */
  readonly runRoot: string;
  readonly blobs: string;
  readonly layers: string;
  readonly images: string;
  readonly refsFile: string;
  readonly containers: string;
  readonly volumes: string;
  readonly networks: string;
  /** Runtime dirs of containers (sockets). */
  readonly runContainers: string;
  /** Netns bind mounts. */
  readonly netns: string;
  /** cgroup path (relative to each hierarchy) under which this root's containers live. */
  readonly cgroupParent: string;
  /** Prefix of host-wide names (interfaces, nft tables) of this root: `tsf` + 4 hex chars. */
  readonly hostPrefix: string;
}

export const DEFAULT_ROOT = '/var/lib/tsfig';
export const DEFAULT_RUN_BASE = '/run/tsfig';

export function rootIdOf(root: string): string {
  return createHash('sha256').update(path.resolve(root)).digest('hex').slice(0, 8);
}

export function enginePaths(root?: string, env: NodeJS.ProcessEnv = process.env): EnginePaths {
  const resolvedRoot = path.resolve(root ?? env.TSFIG_ROOT ?? DEFAULT_ROOT);
  const rootId = rootIdOf(resolvedRoot);
  const runRoot = path.resolve(env.TSFIG_RUN_ROOT ?? path.join(DEFAULT_RUN_BASE, rootId));
  return {
    root: resolvedRoot,
    rootId,
    runRoot,
    blobs: path.join(resolvedRoot, 'blobs', 'sha256'),
    layers: path.join(resolvedRoot, 'layers'),
    images: path.join(resolvedRoot, 'images'),
    refsFile: path.join(resolvedRoot, 'refs.json'),
    containers: path.join(resolvedRoot, 'containers'),
    volumes: path.join(resolvedRoot, 'volumes'),
    networks: path.join(resolvedRoot, 'networks'),
    runContainers: path.join(runRoot, 'containers'),
    netns: path.join(runRoot, 'netns'),
    cgroupParent: `tsf-${rootId}`,
    hostPrefix: `tsf${rootId.slice(0, 4)}`,
  };
}
