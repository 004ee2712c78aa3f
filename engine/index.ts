/**
 * The engine's public API: the orchestrator (src/) and the CLI use these classes only. The engine knows nothing of
 * compose; it never prints and never imports src/.
 */
import { ContainerManager } from './containers/manager.js';
import { ImageStore } from './images/store.js';
import { NetworkManager } from './network/index.js';
import { enginePaths, type EnginePaths } from './state/paths.js';
import { VolumeStore } from './volumes/index.js';
import { secureStateRoot } from './state/permissions.js';

export interface Engine {
  readonly paths: EnginePaths;
  readonly images: ImageStore;
  readonly containers: ContainerManager;
  readonly volumes: VolumeStore;
  readonly networks: NetworkManager;
}

export interface EngineOptions {
  /** State root. @default TSFIG_ROOT or /var/lib/tsfig */
  readonly root?: string;
  readonly env?: NodeJS.ProcessEnv;
  /**
   * The embedded DNS resolver of the networks. Names that are not containers are forwarded to the host's resolvers
   * unless `forward: false` (or TSFIG_DNS_FORWARD=0), which answers NXDOMAIN: tests never look up outside names.
   */
  readonly dns?: false | { forward?: boolean; upstreams?: readonly string[] };
  /**
   * Create the state root when it is missing. `false` for commands that only act on what exists: a container's exit
   * command (auto-remove cleanup) may run after its root was removed (a test's temp root, a `rm -rf` of the state),
   * and re-creating the root there would leave an empty directory nobody owns; with the root gone there is nothing
   * to clean. @default true
   */
  readonly createRoot?: boolean;
}

export function createEngine(options: EngineOptions = {}): Engine {
  const paths = enginePaths(options.root, options.env ?? process.env);
  secureStateRoot(paths, { create: options.createRoot !== false });
  const images = new ImageStore(paths);
  const env = options.env ?? process.env;
  const forward = !['0', 'false', 'no'].includes((env.TSFIG_DNS_FORWARD ?? '').toLowerCase());
  // TSFIG_DNS_UPSTREAMS (IP:PORT,...): the resolvers names are forwarded to instead of the host's (tests use a local one)
  const upstreams = (env.TSFIG_DNS_UPSTREAMS ?? '').split(',').filter((entry) => entry !== '');
  const networks = new NetworkManager(paths, { dns: options.dns ?? { forward, upstreams } });
  // TSFIG_MONITOR_TIMEOUT_MS: how long a container's monitor may take to answer a control command (default 10 s)
  const controlTimeoutMs = Number(env.TSFIG_MONITOR_TIMEOUT_MS ?? '');
  const containers = new ContainerManager(paths, images, networks, {
    ...(Number.isInteger(controlTimeoutMs) && controlTimeoutMs > 0 ? { controlTimeoutMs } : {}),
  });
  const volumes = new VolumeStore(paths);
  return { paths, images, containers, volumes, networks };
}

export { EngineError, isEngineError } from './errors.js';
export { compareNatural, compareText } from './state/compare.js';
export type { EnginePaths } from './state/paths.js';
export { isFrozen } from './containers/cgroup-state.js';
export { cgroupsAvailable, isRootless } from './system/rootless.js';
export { copyFromContainer, copyToContainer } from './containers/copy.js';
