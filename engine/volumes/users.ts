import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isErrno } from '../errors.js';
import type { EnginePaths } from '../state/paths.js';
import type { UsersOf } from './store.js';
import { finishRemovals, liveContainerEntries } from '../containers/staging.js';

interface RecordLike {
  readonly id?: unknown;
  readonly name?: unknown;
  readonly mounts?: unknown;
}

/**
 * Volume users read from the container records (`<root>/containers/<id>/container.json`, `mounts[].volumeName`).
 * Containers being created by a live process (`<id>.creating`) count: their record is written under the volumes lock,
 * before the lock is released and before their dir is renamed into place. A stage of a dead creator and a half-removed
 * container (`<id>.removing`) never count (engine/containers/staging.ts); the first call finishes such removals.
 * Tolerant: no containers dir means no users. A record that cannot be parsed counts as a user when its text names the
 * volume (better to refuse a removal than to delete a database).
 */
export function containerRecordUsers(paths: EnginePaths, options: { readonly finish?: boolean } = {}): UsersOf {
  let swept = options.finish === false;
  return async (volumeName: string) => {
    if (!swept) {
      swept = true;
      await finishRemovals(paths);
    }
    return (await readUsers(paths, [volumeName]))[volumeName] ?? [];
  };
}

/**
 * The users of each of volumeNames (as containerRecordUsers counts them), reading every record once: what
 * `down -v` plans with (an anonymous volume used by a container outside the plan is kept). Finishes half-done
 * removals first.
 */
export async function volumeUsers(
  paths: EnginePaths,
  volumeNames: readonly string[],
): Promise<Record<string, string[]>> {
  await finishRemovals(paths);
  return readUsers(paths, volumeNames);
}

async function readUsers(paths: EnginePaths, volumeNames: readonly string[]): Promise<Record<string, string[]>> {
  const users: Record<string, string[]> = Object.fromEntries(volumeNames.map((name) => [name, []]));
  const wanted = new Set(volumeNames);
  const ids = await liveContainerEntries(paths);
  for (const id of ids.sort()) {
    let text: string;
    try {
      text = await readRecordText(paths.containers, id);
    } catch (error) {
      if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) continue;
      throw error;
    }
    let record: RecordLike;
    try {
      record = JSON.parse(text) as RecordLike;
    } catch {
      for (const name of volumeNames) if (text.includes(JSON.stringify(name))) users[name]?.push(id);
      continue;
    }
    const mounts = Array.isArray(record.mounts) ? (record.mounts as unknown[]) : [];
    const user = typeof record.name === 'string' && record.name !== '' ? record.name : id;
    const used = new Set<string>();
    for (const mount of mounts) {
      const name =
        typeof mount === 'object' && mount !== null ? (mount as { volumeName?: unknown }).volumeName : undefined;
      if (typeof name === 'string' && wanted.has(name) && !used.has(name)) {
        used.add(name);
        users[name]?.push(user);
      }
    }
  }
  return users;
}

/** A record's text; a staged dir renamed into place since the listing is read at its final path. */
async function readRecordText(containers: string, entry: string): Promise<string> {
  try {
    return await fs.readFile(path.join(containers, entry, 'container.json'), 'utf8');
  } catch (error) {
    if (!entry.endsWith('.creating') || !isErrno(error, 'ENOENT')) throw error;
    return fs.readFile(path.join(containers, entry.slice(0, -'.creating'.length), 'container.json'), 'utf8');
  }
}
