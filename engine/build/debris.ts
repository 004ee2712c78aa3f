/**
 * What a build or a pull leaves behind when its process is killed outright (`kill -9`, a second Ctrl-C): RUN
 * containers whose monitor keeps running, private copies for `RUN --mount=type=bind`, pull downloads. Each is marked
 * with the process that made it (pid, start time, boot id), so any later build or pull can tell debris from the
 * work of a process that still runs and remove only the debris.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { currentBootId, isSameProcess, processStartTime } from '../containers/liveness.js';
import type { ContainerManager } from '../containers/manager.js';
import { isEngineError, isErrno } from '../errors.js';

/** The label every RUN container carries. */
export const BUILD_LABEL = 'io.tsfig.build';
/** The label naming the process that made a RUN container: `<boot id>/<pid>/<start time>`. */
export const BUILD_CREATOR_LABEL = 'io.tsfig.build.creator';

/** A process on this boot: who made a container or a temp dir. */
interface Owner {
  readonly pid: number;
  readonly start: number;
  readonly bootId: string;
}

let self: Owner | undefined;

async function thisProcess(): Promise<Owner> {
  self ??= { pid: process.pid, start: (await processStartTime(process.pid)) ?? 0, bootId: currentBootId() };
  return self;
}

async function isAlive(owner: Owner): Promise<boolean> {
  return owner.bootId === currentBootId() && (await isSameProcess(owner.pid, owner.start));
}

/** The value of BUILD_CREATOR_LABEL for a container this process makes. */
export async function creatorLabel(): Promise<string> {
  const owner = await thisProcess();
  return `${owner.bootId}/${owner.pid}/${owner.start}`;
}

function parseCreator(value: string): Owner | undefined {
  const match = /^([0-9a-f-]+)\/(\d+)\/(\d+)$/.exec(value);
  if (match === null) return undefined;
  return { bootId: match[1] ?? '', pid: Number(match[2]), start: Number(match[3]) };
}

/**
 * A temp dir under dir named after this process (`<prefix>-<pid>.<start>-XXXXXX`), so that sweepTmpDirs can remove it
 * once this process is gone. The caller removes it when done.
 */
export async function ownedTmpDir(dir: string, prefix: string): Promise<string> {
  const owner = await thisProcess();
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  return fs.mkdtemp(path.join(dir, `${prefix}-${owner.pid}.${owner.start}-`));
}

/**
 * Removes the temp dirs under dir with one of prefixes whose process is gone (on this boot: the pid is checked with
 * its start time, since pids are reused). Dirs of another naming are left to `image prune`. Returns what it removed.
 */
export async function sweepTmpDirs(dir: string, prefixes: readonly string[]): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return [];
    throw error;
  }
  const removed: string[] = [];
  for (const name of names) {
    const match = /^([a-z]+)-(\d+)\.(\d+)-[^/]+$/.exec(name);
    if (match === null || !prefixes.includes(match[1] ?? '')) continue;
    if (await isSameProcess(Number(match[2]), Number(match[3]))) continue;
    await fs.rm(path.join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/** What a sweep removed. */
export interface BuildDebris {
  /** Ids of RUN containers whose build process is gone. */
  readonly containers: readonly string[];
  /** Temp dirs (names under `<root>/tmp`) of builds whose process is gone. */
  readonly tmpDirs: readonly string[];
}

/** Temp dirs the builder makes: bind mounts' private copies, merged roots for COPY --from. */
export const BUILD_TMP_PREFIXES = ['bind', 'from'] as const;

/**
 * Removes the RUN containers (label io.tsfig.build) whose build process died, with their monitor, cgroup, mounts
 * and upper dir (the container manager's forced removal), and the builder's temp dirs of dead processes. A RUN
 * container without a creator label (made before builds recorded it) is removed once it has exited. Containers of
 * builds that still run, in this process or another, are left alone.
 */
export async function sweepBuildDebris(engine: {
  readonly containers: ContainerManager;
  readonly paths: { readonly root: string };
}): Promise<BuildDebris> {
  const containers: string[] = [];
  // A RUN container whose build was killed while creating it is still staged: not a record yet.
  await engine.containers.sweepStaged();
  for (const { record, state } of await engine.containers.listRecords({ [BUILD_LABEL]: 'true' })) {
    const value = record.labels[BUILD_CREATOR_LABEL];
    const creator = value !== undefined ? parseCreator(value) : undefined;
    const orphan = creator !== undefined ? !(await isAlive(creator)) : value === undefined && !state.running;
    if (!orphan) continue;
    try {
      await engine.containers.remove(record.id, { force: true });
      containers.push(record.id);
    } catch (error) {
      if (!isEngineError(error, 'not-found')) throw error; // removed meanwhile by another sweep
    }
  }
  const tmpDirs = await sweepTmpDirs(path.join(engine.paths.root, 'tmp'), BUILD_TMP_PREFIXES);
  return { containers, tmpDirs };
}

/** source, ending with the signal's reason as soon as it is aborted (between chunks): a layer being packed stops. */
export async function* abortable<T>(source: AsyncIterable<T>, signal: AbortSignal | undefined): AsyncGenerator<T> {
  signal?.throwIfAborted();
  for await (const chunk of source) {
    signal?.throwIfAborted();
    yield chunk;
  }
}
