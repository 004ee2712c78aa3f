/** engine/state: what the orchestrator (src/) uses of it; src/ imports this module, not its files. */
export { shortId } from './ids.js';
export { enginePaths } from './paths.js';
export type { EnginePaths } from './paths.js';
export { acquireLock } from './lock.js';
export { compareNatural, compareText } from './compare.js';
