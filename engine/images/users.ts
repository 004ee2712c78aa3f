import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isErrno } from '../errors.js';
import type { EnginePaths } from '../state/paths.js';
import type { IsInUse } from './store.js';
import { liveContainerEntries } from '../containers/staging.js';

/**
 * Image users read from the container records (`<root>/containers/<dir>/container.json`, `imageId`), including
 * containers still being created by a live process (`<id>.creating`); never a stage of a dead creator or a half-removed
 * container (`<id>.removing`: engine/containers/staging.ts). A record that cannot be parsed counts as a user when its text
 * names the image: better to refuse a removal than to pull layers from under a container.
 */
export function containerImageUsers(paths: EnginePaths): IsInUse {
  return async (imageId: string) => {
    const dirs = await liveContainerEntries(paths);
    const users: string[] = [];
    for (const dir of dirs.sort()) {
      let text: string;
      try {
        text = await fs.readFile(path.join(paths.containers, dir, 'container.json'), 'utf8');
      } catch (error) {
        if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) continue;
        throw error;
      }
      let record: { name?: unknown; imageId?: unknown; mounts?: { imageId?: unknown }[] };
      try {
        record = JSON.parse(text) as typeof record;
      } catch {
        if (text.includes(imageId)) users.push(dir);
        continue;
      }
      // Its own image, or an image it mounts (compose `type: image`).
      if (record.imageId === imageId || (record.mounts ?? []).some((mount) => mount.imageId === imageId))
        users.push(typeof record.name === 'string' && record.name !== '' ? record.name : dir);
    }
    return users;
  };
}
