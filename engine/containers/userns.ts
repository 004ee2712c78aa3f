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
 * `<root>/userns.json`, and host-wide in a registry (REGISTRY_DIR, root-only) where each range names its state root
 * and container, both written under one host-wide lock: two containers on one host never share an id, whichever
 * state roots (engines) they belong to. A range is released when its container is removed, and `system check` lists
 * the ranges whose container is gone (a create or rm killed in between) and the registry's entries of its root that
 * the root does not hold (a kill between the two files), and releases them with --repair. The entries of a state root
 * that no longer exists (deleted with its containers) are dropped by the next allocation.
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

/** The host-wide registry's directory: root's, 0700, outside every state root; it lasts across reboots. */
export const REGISTRY_DIR = '/var/lib/tsfig-userns';
const REGISTRY_FILE = 'ranges.json';
/** One host-wide lock for every state root's allocations (lock names are host-wide: engine/state/lock.ts). */
const LOCK_NAME = 'userns-host';

/** A range in the host-wide registry: whose it is. */
export interface RegistryEntry extends UsernsRange {
  /** The state root (its absolute path) whose userns.json holds the range. */
  readonly root: string;
  readonly container: string;
}

interface RegistryFile {
  readonly v: 1;
  readonly entries: readonly RegistryEntry[];
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

function unsafeRegistry(why: string): EngineError {
  return new EngineError('permission', `refusing the userns registry ${REGISTRY_DIR}: ${why}`, {
    hint: 'another user could hand out the ids of your containers; remove it (as root) and run the command again',
  });
}

/**
 * The registry's directory, checked: a real directory of root's, 0700, in a parent only root writes; made when
 * `create` (an allocation), else undefined when there is none (nothing was ever allocated on this host).
 */
async function registryDir(create: boolean): Promise<string | undefined> {
  if (
    !create &&
    !(await fs.lstat(REGISTRY_DIR).then(
      () => true,
      () => false,
    ))
  )
    return undefined;
  const parent = await fs.lstat(path.dirname(REGISTRY_DIR));
  if (!parent.isDirectory() || parent.uid !== 0 || (parent.mode & 0o022) !== 0) {
    throw unsafeRegistry(`${path.dirname(REGISTRY_DIR)} is not a directory only root can write`);
  }
  await fs.mkdir(REGISTRY_DIR, { mode: 0o700 }).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  });
  const st = await fs.lstat(REGISTRY_DIR);
  if (!st.isDirectory()) throw unsafeRegistry('it is not a directory');
  if (st.uid !== 0) throw unsafeRegistry(`it belongs to uid ${st.uid}`);
  if ((st.mode & 0o077) !== 0) await fs.chmod(REGISTRY_DIR, 0o700);
  return REGISTRY_DIR;
}

async function readRegistry(create = true): Promise<RegistryEntry[]> {
  const dir = await registryDir(create);
  if (dir === undefined) return [];
  const file = await readJson<RegistryFile>(path.join(dir, REGISTRY_FILE));
  return [...(file?.entries ?? [])];
}

async function writeRegistry(entries: readonly RegistryEntry[]): Promise<void> {
  const dir = (await registryDir(true)) ?? REGISTRY_DIR;
  if (entries.length === 0) {
    // no range on this host: neither file nor directory is left (made again by the next allocation)
    await fs.rm(path.join(dir, REGISTRY_FILE), { force: true });
    await fs.rmdir(dir).catch(() => undefined);
    return;
  }
  await writeJsonAtomic(path.join(dir, REGISTRY_FILE), { v: 1, entries } satisfies RegistryFile, 0o600);
}

/** Whether this engine can have a registry at all (a root engine; rootless, userns auto is refused). */
function hostEngine(): boolean {
  return (process.geteuid?.() ?? 0) === 0 && !isRootless();
}

/** The registry with this root's own ranges in it (a root's userns.json from before the registry): all taken. */
function withOwn(entries: readonly RegistryEntry[], root: string, own: Record<string, UsernsRange>): RegistryEntry[] {
  const out = [...entries];
  for (const [container, range] of Object.entries(own)) {
    if (!out.some((entry) => entry.root === root && entry.container === container)) {
      out.push({ root, container, uid: range.uid, gid: range.gid, size: range.size });
    }
  }
  return out;
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
  return withLock(LOCK_NAME, async () => {
    const ranges = await readRanges(paths);
    // a state root that is gone took its containers with it: its entries are dropped here
    const live: RegistryEntry[] = [];
    for (const entry of await readRegistry()) {
      if (
        await fs.lstat(entry.root).then(
          () => true,
          () => false,
        )
      )
        live.push(entry);
    }
    const all = withOwn(live, paths.root, ranges);
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
        `userns auto: every range of ${USERNS_SIZE} ids of ${user} in ${uid === undefined ? SUBUID_FILE : SUBGID_FILE} is in use (${all.length} containers on this host)`,
        { hint: `remove containers, give ${user} more subordinate ids, or run tsfig system check --repair` },
      );
    }
    const range: UsernsRange = { uid, gid, size: USERNS_SIZE };
    ranges[id] = range;
    // the registry first: a kill in between leaves an entry that system check finds, never a range only one root knows
    await writeRegistry([...all, { root: paths.root, container: id, ...range }]);
    await writeRanges(paths, ranges);
    return range;
  });
}

/** Releases the range of container `id` (nothing when it has none). */
export async function releaseUserns(paths: EnginePaths, id: string): Promise<void> {
  await withLock(LOCK_NAME, async () => {
    const ranges = await readRanges(paths);
    if (ranges[id] !== undefined) {
      delete ranges[id];
      await writeRanges(paths, ranges);
    }
    const entries = await readRegistry(false);
    const kept = entries.filter((entry) => entry.root !== paths.root || entry.container !== id);
    if (kept.length !== entries.length) await writeRegistry(kept);
  });
}

/** The entries of the registry of state root `root` that the root's userns.json does not hold. */
async function strayIn(entries: readonly RegistryEntry[], root: string): Promise<RegistryEntry[]> {
  const mine = entries.filter((entry) => entry.root === root);
  if (mine.length === 0) return [];
  const file = await readJson<UsernsFile>(path.join(root, 'userns.json')).catch(() => undefined);
  return mine.filter((entry) => {
    const held = file?.ranges[entry.container];
    return held?.uid !== entry.uid || held.gid !== entry.gid;
  });
}

/**
 * The registry's entries of this state root that the root does not hold (a kill between the registry and the root's
 * file). Read under the lock, so no allocation is half done.
 */
export async function strayRegistryEntries(paths: EnginePaths): Promise<RegistryEntry[]> {
  if (!hostEngine() || (await registryDir(false)) === undefined) return [];
  return withLock(LOCK_NAME, async () => strayIn(await readRegistry(false), paths.root));
}

/** Removes those entries (the ones still stray under the lock); returns them. */
export async function releaseStrayRegistryEntries(paths: EnginePaths): Promise<RegistryEntry[]> {
  if (!hostEngine() || (await registryDir(false)) === undefined) return [];
  return withLock(LOCK_NAME, async () => {
    const entries = await readRegistry(false);
    const stray = new Set(await strayIn(entries, paths.root));
    if (stray.size > 0) await writeRegistry(entries.filter((entry) => !stray.has(entry)));
    return [...stray];
  });
}

/** Every allocated range, by container id. */
export async function listUserns(paths: EnginePaths): Promise<Record<string, UsernsRange>> {
  return readRanges(paths);
}
