/**
 * The two intermediate forms of a container dir under `<root>/containers/`, and how a later command tells whether the
 * process that left one is still working on it:
 *
 * - `<id>.creating`: staged by create(), which holds the container's creating lock from before the dir exists until it
 *   is renamed into place or removed. Lock free: its creator died (`kill -9`, power loss); the stage is rolled back.
 * - `<id>.removing`: renamed by remove() under the container's lock once the container's cgroup, run dir and sandbox
 *   are gone: only the files are left to delete. Lock free: its remover died; the removal is finished.
 *
 * Locks are listening sockets (engine/state/lock.ts): the kernel closes them with their process, so a probe never
 * mistakes a dead process for a live one (pids are reused, a zombie still has a /proc entry; a socket has neither).
 * Neither form is a container: it is never listed, named, or counted as a user of a volume, image or network.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isEngineError } from '../errors.js';
import { shortId } from '../state/ids.js';
import { withLock } from '../state/lock.js';
import type { EnginePaths } from '../state/paths.js';
import { destroyCgroup } from './liveness.js';

export const CREATING = '.creating';
export const REMOVING = '.removing';

const STAGED = /^([0-9a-f]{64})\.creating$/;
const DOOMED = /^([0-9a-f]{64})\.removing$/;

/** The lock start/stop/remove take on a container (ContainerManager.withContainerLock). */
export function containerLockName(paths: EnginePaths, id: string): string {
  return `${paths.rootId}:container:${id}`;
}

/** The lock create() holds while `<id>.creating` exists. */
export function creatingLockName(paths: EnginePaths, id: string): string {
  return `${paths.rootId}:creating:${id}`;
}

/**
 * Runs fn holding the named lock if it is free right now; `held` when another holder (of any process, this one
 * included) has it. The probe of a dead process's lock always succeeds.
 */
export async function ifLockFree<T>(
  name: string,
  fn: () => Promise<T>,
): Promise<{ held: true } | { held: false; value: T }> {
  let entered = false;
  try {
    const value = await withLock(
      name,
      () => {
        entered = true;
        return fn();
      },
      { timeoutMs: 0 },
    );
    return { held: false, value };
  } catch (error) {
    if (!entered && isEngineError(error, 'conflict')) return { held: true };
    throw error;
  }
}

/** True while the process creating container `id` (staged as `<id>.creating`) is still at it. */
export async function creatorAlive(paths: EnginePaths, id: string): Promise<boolean> {
  return (await ifLockFree(creatingLockName(paths, id), () => Promise.resolve())).held;
}

async function entries(paths: EnginePaths): Promise<string[]> {
  return fs.readdir(paths.containers).catch(() => [] as string[]);
}

/**
 * Container dir entries that stand for a container or a container being created by a live process: `<id>` and the
 * `<id>.creating` of a live creator. What users of volumes and images read.
 */
export async function liveContainerEntries(paths: EnginePaths): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await entries(paths)) {
    if (/^[0-9a-f]{64}$/.test(entry)) found.push(entry);
    const staged = STAGED.exec(entry);
    if (staged?.[1] !== undefined && (await creatorAlive(paths, staged[1]))) found.push(entry);
  }
  return found;
}

export interface SweepReport {
  /** Staged containers of dead creators that were rolled back (ids). */
  readonly rolledBack: string[];
  /** Removals of dead removers that were finished (ids). */
  readonly finished: string[];
  /** Ids of containers staged by a live creator (left alone). */
  readonly creating: Set<string>;
}

/**
 * Rolls back the staged containers of dead creators and finishes the removals of dead removers; what a live process
 * is working on is left to it. A staged container's network sandbox is dropped by the next network repair (its id
 * is not live); a half-removed one has none left.
 */
export async function sweepContainerDebris(paths: EnginePaths): Promise<SweepReport> {
  const listed = await entries(paths);
  const report: SweepReport = { rolledBack: [], finished: await finishRemovals(paths, listed), creating: new Set() };
  for (const entry of listed) {
    const staged = STAGED.exec(entry)?.[1];
    if (staged === undefined) continue;
    const probe = await ifLockFree(creatingLockName(paths, staged), () =>
      removeTree(path.join(paths.containers, entry)),
    );
    if (probe.held) report.creating.add(staged);
    else if (probe.value) report.rolledBack.push(staged);
  }
  return report;
}

/**
 * Finishes the removals (`<id>.removing`) whose remover died; `listed` is a listing of the containers dir when the
 * caller has one. Returns the ids finished. Cheap when there are none: no lock is probed.
 */
export async function finishRemovals(paths: EnginePaths, listed?: readonly string[]): Promise<string[]> {
  const finished: string[] = [];
  for (const entry of listed ?? (await entries(paths))) {
    const doomed = DOOMED.exec(entry)?.[1];
    if (doomed === undefined) continue;
    const probe = await ifLockFree(containerLockName(paths, doomed), async () => {
      // The remover destroyed these before the rename; after a power loss the cgroup and the run dir (tmpfs) are
      // gone with the boot. Idempotent and cheap: done again in case.
      await destroyCgroup(`${paths.cgroupParent}/${shortId(doomed)}`);
      await fs.rm(path.join(paths.runContainers, shortId(doomed)), { recursive: true, force: true });
      return removeTree(path.join(paths.containers, entry));
    });
    if (!probe.held && probe.value) finished.push(doomed);
  }
  return finished;
}

/** Deletes dir (no error when it is gone already); true when it was there. */
async function removeTree(dir: string): Promise<boolean> {
  const there = await fs.lstat(dir).then(
    () => true,
    () => false,
  );
  if (there) await fs.rm(dir, { recursive: true, force: true, maxRetries: 3 });
  return there;
}
