/**
 * What a build or a pull leaves behind when its process is killed outright (`kill -9`, a second Ctrl-C): RUN
 * containers whose monitor keeps running, private copies for `RUN --mount=type=bind`, pull downloads. Each is marked
 * with the process that made it (pid, start time, boot id), so any later build or pull can tell debris from the
 * work of a process that still runs and remove only the debris.
 */
import path from 'node:path';
import type { ContainerManager } from '../containers/manager.js';
import { isEngineError } from '../errors.js';
import { isAlive, sweepTmpDirs, thisProcess, type Owner } from '../layers/tmpdir.js';

/** The label every RUN container carries. */
export const BUILD_LABEL = 'io.tsfig.build';
/** The label naming the process that made a RUN container: `<boot id>/<pid>/<start time>`. */
export const BUILD_CREATOR_LABEL = 'io.tsfig.build.creator';

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

/** What a sweep removed. */
export interface BuildDebris {
  /** Ids of RUN containers whose build process is gone. */
  readonly containers: readonly string[];
  /** Temp dirs (names under `<root>/tmp`) of builds whose process is gone. */
  readonly tmpDirs: readonly string[];
}

/** Temp dirs the builder makes: bind mounts' private copies, merged roots for COPY --from. */
export const BUILD_TMP_PREFIXES = ['bind', 'from', 'add'] as const;

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
