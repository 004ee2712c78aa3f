/** What tells a command it runs in the user's rootless session (engine/rootless/session.ts), without its code. */

/** Set in the environment of a command that runs inside the user's namespaces. */
export const ROOTLESS_ENV = 'TSFIG_ROOTLESS';
/** The holder's network namespace (`/proc/<pid>/ns/net`), for what must run there. */
export const ROOTLESS_NETNS_ENV = 'TSFIG_ROOTLESS_NETNS';
/** slirp4netns's API socket, when it runs (published ports). */
export const ROOTLESS_PORTS_ENV = 'TSFIG_ROOTLESS_PORTS';

/** Whether this command is tsfig's rootless mode (inside the user's namespaces). */
export function inRootlessSession(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[ROOTLESS_ENV] === '1';
}

/** The rootless network namespace to fork network work into, when rootless. */
export function rootlessNetns(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return inRootlessSession(env) ? env[ROOTLESS_NETNS_ENV] : undefined;
}

/** The session's runtime dir (what the user's engine roots share), when rootless. */
export function rootlessRuntimeDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return inRootlessSession(env) ? env.TSFIG_ROOTLESS_RUNTIME : undefined;
}
