/**
 * The plan of a `develop.watch` sync action (pure, like lifecycle.ts): `sync` writes the changed files into each
 * running container of the service, `sync+exec` then runs the rule's command in each of them, `sync+restart` then
 * restarts the service (`planRestart`). src/watch reads the host files and makes the scripts (`syncScripts`); the
 * `restart` and `rebuild` actions are the `restart` and `up` verbs' plans.
 */
import type { Project } from '../model/project.js';
import { planRestart, selectedContainers } from './lifecycle.js';
import type { ObservedState } from './observed.js';
import { OpKind, sequencePlans, type Operation, type Plan } from './plan.js';

/** What a sync action does, as src/watch/actions.ts prepared it from a rule and the changed paths. */
/** A `sync+exec` rule's command, run in each synced container (`develop.watch[].exec`). */
export interface WatchExec {
  readonly command: readonly string[];
  readonly user: string | undefined;
  readonly workingDir: string | undefined;
  readonly environment: readonly string[];
}

export interface WatchSyncRequest {
  readonly service: string;
  readonly action: 'sync' | 'sync+restart' | 'sync+exec';
  /** The rule's target in the container. */
  readonly target: string;
  /** The paths written, made or removed in the container. */
  readonly paths: readonly string[];
  /** The sh scripts that do it (empty: nothing to sync, e.g. every path skipped). */
  readonly scripts: readonly string[];
  /** `sync+exec`: the rule's `exec`. */
  readonly exec?: WatchExec | undefined;
}

/**
 * One `container.sync` per running container of the service (dependency order, then number), with `sync+exec` a
 * `container.exec` after each container's sync, with `sync+restart` the restart plan of the service after every
 * sync. A container that is not running is left alone (its next start has the image's or the volume's files).
 */
export function planWatchSync(project: Project, observed: ObservedState, request: WatchSyncRequest): Plan {
  const operations: Operation[] = [];
  const containers = selectedContainers(project, observed, [request.service]).filter((c) => c.running);
  for (const c of containers) {
    const resource = `service:${c.service}:${c.number}`;
    const ref = { container: c.id, name: c.name };
    let last: number[] = [];
    if (request.scripts.length > 0) {
      const id = operations.length + 1;
      operations.push({
        id,
        kind: OpKind.ContainerSync,
        resource,
        reason: `develop.watch: ${request.paths.length} path(s) to ${request.target}`,
        dependsOn: [],
        group: `sync:${resource}`,
        spec: { ...ref, service: c.service, target: request.target, paths: request.paths, scripts: request.scripts },
      });
      last = [id];
    }
    const exec = request.exec;
    if (request.action === 'sync+exec' && exec !== undefined) {
      operations.push({
        id: operations.length + 1,
        kind: OpKind.ContainerExec,
        resource,
        reason: `develop.watch exec: ${exec.command.join(' ')}`,
        dependsOn: last,
        group: `exec:${resource}`,
        spec: { ...ref, service: c.service, ...exec },
      });
    }
  }
  const syncs: Plan = { version: 1, project: project.name, operations, warnings: [] };
  if (request.action !== 'sync+restart') return syncs;
  return sequencePlans(syncs, planRestart(project, observed, { services: [request.service] }));
}
