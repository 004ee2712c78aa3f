import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { EnginePaths } from './paths.js';

/**
 * Removes this root's runtime dir (/run/tsfig/<root-id>) once nothing lives in it any more: rmdir only succeeds on
 * empty directories, so a running container's sockets or a sandbox keep it. Called after the last container or
 * network of the root is removed, so an idle root leaves nothing under /run.
 */
/**
 * mkdir -p that survives a concurrent removeEmptyRunRoot() deleting a parent between two of its steps.
 */
export async function ensureRunDir(dir: string, mode: number): Promise<void> {
  // Root only, whatever the caller asks and whatever the umask: sockets, netns files and pid files live here.
  const narrowed = mode & 0o700;
  for (let attempt = 0; ; attempt++) {
    try {
      const first = await fs.mkdir(dir, { recursive: true, mode: narrowed });
      for (let created = first === undefined ? undefined : dir; created !== undefined;) {
        await fs.chmod(created, narrowed);
        created = first !== undefined && created !== first ? path.dirname(created) : undefined;
      }
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 5) throw error;
    }
  }
}

export async function removeEmptyRunRoot(paths: EnginePaths, options: { netns?: boolean } = {}): Promise<void> {
  // The netns dir is removed only by the network manager under its root lock, which createSandbox also holds.
  for (const dir of [paths.runContainers, ...(options.netns === true ? [paths.netns] : []), paths.runRoot]) {
    await fs.rmdir(dir).catch(() => undefined);
  }
}
