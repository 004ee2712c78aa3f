/** engine/rootless: an ordinary user's session of namespaces (session.ts); src/ imports this module, not its files. */
export { ensureSession, joinArgs, rootlessDirs, sessionEnv, stopSession } from './session.js';
export { inRootlessSession, rootlessNetns, ROOTLESS_ENV } from './env.js';
export type { RootlessDirs, RootlessSession } from './session.js';
export { modeInfo } from './info.js';
export type { ModeInfo } from './info.js';
