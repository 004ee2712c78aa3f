import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isErrno } from '../errors.js';
import type { EnginePaths } from '../state/paths.js';
import type { UsersOf } from './store.js';

interface RecordLike {
  readonly id?: unknown;
  readonly name?: unknown;
  readonly mounts?: unknown;
}

/**
 * Volume users read from the container records (`<root>/containers/<id>/container.json`, `mounts[].volumeName`).
 * Tolerant: no containers dir means no users. A record that cannot be parsed counts as a user when its text names the
 * volume (better to refuse a removal than to delete a database).
 */
export function containerRecordUsers(paths: EnginePaths): UsersOf {
  return async (volumeName: string) => {
    let ids: string[];
    try {
      ids = await fs.readdir(paths.containers);
    } catch (error) {
      if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return [];
      throw error;
    }
    const users: string[] = [];
    for (const id of ids.sort()) {
      let text: string;
      try {
        text = await fs.readFile(path.join(paths.containers, id, 'container.json'), 'utf8');
      } catch (error) {
        if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) continue;
        throw error;
      }
      let record: RecordLike;
      try {
        record = JSON.parse(text) as RecordLike;
      } catch {
        if (text.includes(JSON.stringify(volumeName))) users.push(id);
        continue;
      }
      const mounts = Array.isArray(record.mounts) ? (record.mounts as unknown[]) : [];
      const uses = mounts.some(
        (mount) =>
          typeof mount === 'object' && mount !== null && (mount as { volumeName?: unknown }).volumeName === volumeName,
      );
      if (uses) users.push(typeof record.name === 'string' && record.name !== '' ? record.name : id);
    }
    return users;
  };
}
