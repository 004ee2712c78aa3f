/** engine/containers: what the orchestrator (src/) uses of it; src/ imports this module, not its files. */
export { removeIfExited, withAutoRemoveHold } from './cleanup.js';
export { blockIo, containerPids, isFrozen, pidsCurrent } from './cgroup-state.js';
export type {
  ContainerMount,
  ContainerRecord,
  ContainerSpec,
  ContainerState,
  ContainerStateName,
  LogEntry,
  Ulimit,
} from './types.js';
export { ContainerManager } from './manager.js';
export { userSpecProblem } from './user-spec.js';
export { copyFromContainer, copyToContainer } from './copy.js';
export { checkUserns, listUserns, releaseUserns } from './userns.js';
export type { UsernsRange } from './userns.js';
