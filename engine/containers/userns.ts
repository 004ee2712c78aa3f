import { promises as fs } from 'node:fs';
import path from 'node:path';
import { EngineError } from '../errors.js';
import { readJson, writeJsonAtomic } from '../state/atomic.js';
import { withLock } from '../state/lock.js';
import type { EnginePaths } from '../state/paths.js';
import { isRootless } from '../system/rootless.js';

/**
 * User namespaces of a root engine (`--userns auto`, compose `userns_mode: auto`): each container gets its own range
 * of the host's subordinate ids, from the entries of one user in /etc/subuid and /etc/subgid, as podman's
 * `--userns=auto` does (its user `containers`, podman's `root-auto-userns-user`). The ranges are kept in
 * `<root>/userns.json` under the root's `userns` lock, so two containers of one root never share an id; a range is
 * released when its container is removed, and `system check` lists the ranges whose container is gone (a create or
 * rm killed in between) and releases them with --repair.
 */

/** The user whose subordinate ids are handed out (podman's default). TSFIG_USERNS_USER overrides. */
export const DEFAULT_USERNS_USER = 'containers';
/** Ids per container: every 16-bit id of an image maps (podman sizes it from the image, at least 1024). */
export const USERNS_SIZE = 65536;

/** A container's range: container ids 0..size-1 are the host's uid.. and gid... */
export interface UsernsRange {
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
}

interface UsernsFile {
  readonly v: 1;
  /** container id → its range */
  readonly ranges: Record<string, UsernsRange>;
}

export interface SubordinateRange {
  readonly start: number;
  readonly count: number;
}

/** The ranges of `user` (name, or uid as text) in the text of /etc/subuid or /etc/subgid (`name:start:count`). */
export function parseSubordinate(text: string, user: string, uid?: number): SubordinateRange[] {
  const out: SubordinateRange[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [name, start, count] = line.split(':');
    if (name !== user && (uid === undefined || name !== String(uid))) continue;
    const s = Number(start);
    const c = Number(count);
    if (!Number.isSafeInteger(s) || !Number.isSafeInteger(c) || s <= 0 || c <= 0 || s + c > 4294967295) continue;
    out.push({ start: s, count: c });
  }
  return out;
}

/**
 * The first block of `size` ids inside `available` that overlaps none of `taken` (aligned on size from each range's
 * start), or undefined.
 */
export function firstFree(
  available: readonly SubordinateRange[],
  taken: readonly SubordinateRange[],
  size: number,
): number | undefined {
  for (const range of available) {
    for (let start = range.start; start + size <= range.start + range.count; start += size) {
      const clash = taken.some((t) => start < t.start + t.count && t.start < start + size);
      if (!clash) return start;
    }
  }
  return undefined;
}

export const SUBUID_FILE = '/etc/subuid';
export const SUBGID_FILE = '/etc/subgid';

function usernsFile(paths: EnginePaths): string {
  return path.join(paths.root, 'userns.json');
}

function lockName(paths: EnginePaths): string {
  return `${paths.rootId}:userns`;
}

async function readRanges(paths: EnginePaths): Promise<Record<string, UsernsRange>> {
  const file = await readJson<UsernsFile>(usernsFile(paths));
  return { ...(file?.ranges ?? {}) };
}

async function writeRanges(paths: EnginePaths, ranges: Record<string, UsernsRange>): Promise<void> {
  if (Object.keys(ranges).length === 0) {
    await fs.rm(usernsFile(paths), { force: true });
    return;
  }
  await writeJsonAtomic(usernsFile(paths), { v: 1, ranges } satisfies UsernsFile, 0o600);
}

async function subordinateOf(file: string, user: string): Promise<SubordinateRange[]> {
  const text = await fs.readFile(file, 'utf8').catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  });
  return parseSubordinate(text, user);
}

/** The user whose subordinate ids containers get (TSFIG_USERNS_USER, or podman's `containers`). */
export function usernsUser(env: NodeJS.ProcessEnv = process.env): string {
  const user = env.TSFIG_USERNS_USER;
  return user !== undefined && user !== '' ? user : DEFAULT_USERNS_USER;
}

/**
 * Whether `auto` can be given here, before anything is made for a container (create, compose's preflight): a root
 * engine (rootless containers already run in the user's own namespace), and a range of at least USERNS_SIZE ids of
 * the user in /etc/subuid and /etc/subgid. Refused with an error naming the file otherwise.
 */
export async function checkUserns(
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ subuid: SubordinateRange[]; subgid: SubordinateRange[] }> {
  if (isRootless()) {
    throw new EngineError(
      'unsupported',
      'userns auto is for a root engine: rootless containers already run in your user namespace',
      { hint: 'drop --userns auto (userns_mode: auto, TSFIG_USERNS=auto), or run tsfig as root' },
    );
  }
  const user = usernsUser(env);
  const [subuid, subgid] = await Promise.all([subordinateOf(SUBUID_FILE, user), subordinateOf(SUBGID_FILE, user)]);
  for (const [file, ranges] of [
    [SUBUID_FILE, subuid],
    [SUBGID_FILE, subgid],
  ] as const) {
    if (!ranges.some((range) => range.count >= USERNS_SIZE)) {
      throw new EngineError(
        'invalid',
        `userns auto needs a subordinate id range of at least ${USERNS_SIZE} ids for ${user} in ${file}`,
        {
          hint: `as root: useradd --system --no-create-home ${user}; usermod --add-subuids 2147483647-4294967294 --add-subgids 2147483647-4294967294 ${user} (podman's range for its user containers), or --userns host`,
        },
      );
    }
  }
  return { subuid, subgid };
}

/**
 * Allocates a range for container `id`: refused, changing nothing, when checkUserns refuses or every block of the
 * user's ids is taken.
 */
export async function allocateUserns(
  paths: EnginePaths,
  id: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<UsernsRange> {
  const user = usernsUser(env);
  const { subuid, subgid } = await checkUserns(env);
  return withLock(lockName(paths), async () => {
    const ranges = await readRanges(paths);
    const all = Object.values(ranges);
    const uid = firstFree(
      subuid,
      all.map((r) => ({ start: r.uid, count: r.size })),
      USERNS_SIZE,
    );
    const gid = firstFree(
      subgid,
      all.map((r) => ({ start: r.gid, count: r.size })),
      USERNS_SIZE,
    );
    if (uid === undefined || gid === undefined) {
      throw new EngineError(
        'conflict',
        `userns auto: every range of ${USERNS_SIZE} ids of ${user} in ${uid === undefined ? SUBUID_FILE : SUBGID_FILE} is in use (${all.length} containers)`,
        { hint: `remove containers, give ${user} more subordinate ids, or run tsfig system check --repair` },
      );
    }
    const range: UsernsRange = { uid, gid, size: USERNS_SIZE };
    ranges[id] = range;
    await writeRanges(paths, ranges);
    return range;
  });
}

/** Releases the range of container `id` (nothing when it has none). */
export async function releaseUserns(paths: EnginePaths, id: string): Promise<void> {
  await withLock(lockName(paths), async () => {
    const ranges = await readRanges(paths);
    if (ranges[id] === undefined) return;
    delete ranges[id];
    await writeRanges(paths, ranges);
  });
}

/** Every allocated range, by container id. */
export async function listUserns(paths: EnginePaths): Promise<Record<string, UsernsRange>> {
  return readRanges(paths);
}
