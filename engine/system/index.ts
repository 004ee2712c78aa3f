/** engine/system: what the orchestrator (src/) uses of it; src/ imports this module, not its files. */
export { checkSystem } from './check.js';
export type { Finding } from './check.js';
export { cgroupsAvailable, cgroupVersion, isRootless, noCgroupsReason } from './rootless.js';
