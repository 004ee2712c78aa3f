import fs from 'node:fs';
import path from 'node:path';
import type { EnginePaths } from './paths.js';

/** The state root and every directory the engine keeps directly under it: root only, whatever the umask. */
export const STATE_DIR_MODE = 0o700;

/** Directories directly under the state root (created by whichever command needs them first). */
const STATE_DIRS = ['blobs', 'layers', 'images', 'containers', 'volumes', 'networks', 'tmp', 'cache'];

/**
 * Creates the state root 0700 if missing (unless `create: false`) and narrows it and the engine's directories under it to 0700 (never wider:
 * a container's files in a volume or a layer, setuid binaries and device nodes included, must not be reachable by
 * another local user; CVE-2021-41091). Called whenever an engine is opened, so it holds whichever command created a
 * directory first and whatever its umask was. Not root (a command that only prints help): nothing to do.
 */
export function secureStateRoot(paths: EnginePaths, options: { create?: boolean } = {}): void {
  if (process.getuid?.() !== 0) return;
  if (options.create !== false) {
    try {
      fs.mkdirSync(paths.root, { recursive: true, mode: STATE_DIR_MODE });
    } catch {
      return; // reported by the command that writes there
    }
  }
  for (const dir of [paths.root, ...STATE_DIRS.map((name) => path.join(paths.root, name))]) narrow(dir);
  for (const dir of [paths.runRoot, paths.runContainers, paths.netns]) narrow(dir);
}

/** chmod dir to 0700 when it is a directory whose group or other bits are set; a missing dir is left missing. */
function narrow(dir: string): void {
  try {
    const st = fs.lstatSync(dir);
    if (st.isDirectory() && (st.mode & 0o077) !== 0) fs.chmodSync(dir, STATE_DIR_MODE);
  } catch {
    // missing: created later by its owner with 0700, or under a root nobody else can enter
  }
}
