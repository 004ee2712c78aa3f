/**
 * Plans of the verbs that act on existing containers (pure, like reconcile.ts): `start`, `stop`, `restart`, `kill`,
 * `rm`, `pause`, `unpause`. Each takes the project's service containers (no one-offs) of the named services (all
 * when none) and orders them by the dependency graph: starts dependencies first, stops dependents first.
 */
import { TsfigError } from '../errors.js';
import type { Project, Service } from '../model/project.js';
import { hookSpec, hooksCanRun, serviceHooks } from './hooks.js';
import type { ObservedContainer, ObservedState } from './observed.js';
import { OpKind, type Operation, type OpSpecs, type Plan } from './plan.js';
import { dependenciesOf, dependencyOrder, hasHealthcheck, isActive, stopTimeout } from './reconcile.js';

export interface LifecycleOptions {
  /** Services named on the command line; empty = every service that has containers. */
  readonly services?: readonly string[];
  /** `-t`: stop timeout in seconds; default each service's stop_grace_period. */
  readonly timeoutSeconds?: number;
}

export interface StartOptions extends LifecycleOptions {
  /**
   * `start --wait` (compose 5.0): then wait until every container of the selection runs, healthy when its service
   * has a healthcheck (exited 0 counts as done for one without), as `up --wait` does.
   */
  readonly wait?: boolean;
  /** `--wait-timeout` in milliseconds; undefined = no limit. */
  readonly waitTimeoutMs?: number;
}

class Builder {
  readonly operations: Operation[] = [];

  add<K extends keyof OpSpecs>(
    kind: K,
    c: ObservedContainer,
    reason: string,
    spec: OpSpecs[K],
    dependsOn: readonly number[],
    action: string,
  ): number {
    const id = this.operations.length + 1;
    const resource = `service:${c.service}:${c.number}`;
    const deps = [...new Set(dependsOn)].sort((a, b) => a - b);
    this.operations.push({
      id,
      kind,
      resource,
      reason,
      dependsOn: deps,
      group: `${action}:${resource}`,
      spec,
    } as Operation);
    return id;
  }

  build(project: string): Plan {
    return { version: 1, project, operations: this.operations, warnings: [] };
  }
}

/**
 * The service containers of the selection, by service (dependency order), then number. No services named: those of
 * the project's services (compose v2's `project.ServiceNames()`), so an orphan, or a service of another file of the
 * project, is left alone (e2e TestStartStopMultipleFiles).
 */
export function selectedContainers(
  project: Project,
  observed: ObservedState,
  services: readonly string[] = [],
): ObservedContainer[] {
  const containers = observed.containers.filter(
    (c) =>
      !c.oneoff && (services.length === 0 ? project.services[c.service] !== undefined : services.includes(c.service)),
  );
  const order = dependencyOrder(
    { ...project, services: { ...project.disabled_services, ...project.services } },
    [...new Set(containers.map((c) => c.service))].filter((name) => serviceOf(project, name) !== undefined),
  );
  const rank = (service: string) => {
    const index = order.indexOf(service);
    return index < 0 ? order.length : index;
  };
  return [...containers].sort(
    (a, b) => rank(a.service) - rank(b.service) || a.number - b.number || (a.name < b.name ? -1 : 1),
  );
}

function serviceOf(project: Project, name: string): Service | undefined {
  return project.services[name] ?? project.disabled_services[name];
}

/** Services that depend on `name` (reverse edges), among those present. */
function dependents(project: Project, name: string, present: ReadonlySet<string>): string[] {
  return [...present].filter((other) => {
    const service = serviceOf(project, other);
    return service !== undefined && dependenciesOf(project, service).some((dep) => dep.service === name);
  });
}

function ref(c: ObservedContainer) {
  return { container: c.id, name: c.name };
}

/** The service's pre_stop hooks (one after the other) before the stop of `c`; returns what the stop waits for. */
function addPreStopHooks(
  b: Builder,
  project: Project,
  c: ObservedContainer,
  deps: readonly number[],
  action: string,
): readonly number[] {
  const service = serviceOf(project, c.service);
  if (service === undefined || !hooksCanRun(c)) return deps;
  let last = deps;
  serviceHooks(service, 'pre_stop').forEach((hook, index) => {
    const spec = hookSpec(service, ref(c), 'pre_stop', index, hook);
    last = [b.add(OpKind.ContainerHook, c, `pre_stop hook #${index + 1}`, spec, last, action)];
  });
  return last;
}

/** The service's post_start hooks after the start op `start` of `c`; returns the last op (the start when none). */
function addPostStartHooks(b: Builder, project: Project, c: ObservedContainer, start: number, action: string): number {
  const service = serviceOf(project, c.service);
  if (service === undefined) return start;
  let last = start;
  serviceHooks(service, 'post_start').forEach((hook, index) => {
    const spec = hookSpec(service, ref(c), 'post_start', index, hook);
    last = b.add(OpKind.ContainerHook, c, `post_start hook #${index + 1}`, spec, [last], action);
  });
  return last;
}

/**
 * Stops of the running containers, dependents first: a container's stop waits for the stops of the services that
 * depend on it. Returns the stop op of each container id.
 */
function addStops(
  b: Builder,
  project: Project,
  containers: readonly ObservedContainer[],
  options: LifecycleOptions,
  reason: string,
  action: string,
): Map<string, number> {
  const present = new Set(containers.map((c) => c.service));
  const byService = new Map<string, number[]>();
  const ids = new Map<string, number>();
  for (const c of [...containers].reverse()) {
    if (!isActive(c)) continue;
    const after = dependents(project, c.service, present).flatMap((name) => byService.get(name) ?? []);
    const spec = { ...ref(c), timeoutSeconds: stopTimeout({ options }, serviceOf(project, c.service)) };
    const id = b.add(OpKind.ContainerStop, c, reason, spec, addPreStopHooks(b, project, c, after, action), action);
    byService.set(c.service, [...(byService.get(c.service) ?? []), id]);
    ids.set(c.id, id);
  }
  return ids;
}

/**
 * Starts, dependencies first: a container's start waits for the starts of the services it depends on (their
 * post_start hooks included), and for its own stop in `after` (restart). Returns the last op of each container id.
 */
function addStarts(
  b: Builder,
  project: Project,
  containers: readonly ObservedContainer[],
  reason: (c: ObservedContainer) => string,
  action: string,
  after: ReadonlyMap<string, number> = new Map(),
  healthyFirst: (service: Service) => readonly string[] = () => [],
): Map<string, number> {
  const ids = new Map<string, number>();
  const byService = new Map<string, number[]>();
  const containersOf = new Map<string, ObservedContainer[]>();
  for (const c of containers) containersOf.set(c.service, [...(containersOf.get(c.service) ?? []), c]);
  const waits = new Map<string, number>();
  /** A wait until `d` (started in this plan) is healthy, once per container. */
  const healthy = (d: ObservedContainer): number[] => {
    const start = ids.get(d.id);
    const dService = serviceOf(project, d.service);
    if (start === undefined || dService === undefined || !hasHealthcheck(dService))
      return start === undefined ? [] : [start];
    let wait = waits.get(d.id);
    if (wait === undefined) {
      const spec = { ...ref(d), timeoutMs: undefined, required: true };
      wait = b.add(OpKind.ContainerWaitHealthy, d, `${action}: a dependent waits for it`, spec, [start], action);
      waits.set(d.id, wait);
    }
    return [wait];
  };
  for (const c of containers) {
    const service = serviceOf(project, c.service);
    const deps = service === undefined ? [] : dependenciesOf(project, service).map((dep) => dep.service);
    const gated = new Set(service === undefined ? [] : healthyFirst(service));
    const first = deps.flatMap((name) =>
      gated.has(name) ? (containersOf.get(name) ?? []).flatMap(healthy) : (byService.get(name) ?? []),
    );
    const stop = after.get(c.id);
    const start = b.add(
      OpKind.ContainerStart,
      c,
      reason(c),
      ref(c),
      stop === undefined ? first : [...first, stop],
      action,
    );
    const id = addPostStartHooks(b, project, c, start, action);
    byService.set(c.service, [...(byService.get(c.service) ?? []), id]);
    ids.set(c.id, id);
  }
  return ids;
}

/** `start`: the stopped containers, dependencies first; with `wait`, every selected container is then waited for. */
export function planStart(project: Project, observed: ObservedState, options: StartOptions = {}): Plan {
  const b = new Builder();
  const selected = selectedContainers(project, observed, options.services);
  const stopped = selected.filter((c) => !isActive(c));
  const starts = addStarts(
    b,
    project,
    stopped,
    (c) => (c.status === 'created' ? 'created, not started' : 'stopped'),
    'start',
  );
  if (options.wait === true) {
    const timeoutMs = options.waitTimeoutMs;
    for (const c of selected) {
      const service = serviceOf(project, c.service);
      const start = starts.get(c.id);
      const deps = start === undefined ? [] : [start];
      if (service !== undefined && hasHealthcheck(service)) {
        b.add(OpKind.ContainerWaitHealthy, c, 'start --wait', { ...ref(c), timeoutMs, required: true }, deps, 'wait');
      } else {
        b.add(OpKind.ContainerWaitRunning, c, 'start --wait', { ...ref(c), timeoutMs }, deps, 'wait');
      }
    }
  }
  return b.build(project.name);
}

/** `stop`: the running containers, dependents first. */
export function planStop(project: Project, observed: ObservedState, options: LifecycleOptions = {}): Plan {
  const b = new Builder();
  addStops(b, project, selectedContainers(project, observed, options.services), options, 'stop', 'stop');
  return b.build(project.name);
}

/**
 * `restart`: every container of the selection (running ones are stopped first), then started in order. Named
 * services bring along, transitively, the services that depend on them with `depends_on.<dep>.restart: true`; such
 * a dependent starts again once its dependency is healthy (`condition: service_healthy`), as compose v2's restart
 * does (e2e TestRestartWithDependencies).
 */
export function planRestart(project: Project, observed: ObservedState, options: LifecycleOptions = {}): Plan {
  const b = new Builder();
  const named = options.services ?? [];
  const restartEdge = (service: Service, dep: string): boolean => service.depends_on[dep]?.restart === true;
  const scope = new Set(named);
  for (let grew = named.length > 0; grew;) {
    grew = false;
    for (const service of Object.values(project.services)) {
      if (scope.has(service.name) || ![...scope].some((dep) => restartEdge(service, dep))) continue;
      scope.add(service.name);
      grew = true;
    }
  }
  const containers = selectedContainers(project, observed, [...scope]);
  const stops = addStops(b, project, containers, options, 'restart', 'restart');
  addStarts(
    b,
    project,
    containers,
    () => 'restart',
    'restart',
    stops,
    (service) =>
      Object.keys(service.depends_on).filter(
        (dep) => restartEdge(service, dep) && service.depends_on[dep]?.condition === 'service_healthy',
      ),
  );
  return b.build(project.name);
}

/** `kill -s SIGNAL`: the running containers, all at once. */
export function planKill(
  project: Project,
  observed: ObservedState,
  options: LifecycleOptions & { readonly signal: string },
): Plan {
  const b = new Builder();
  for (const c of [...selectedContainers(project, observed, options.services)].reverse()) {
    if (!c.running) continue;
    b.add(OpKind.ContainerKill, c, `kill -s ${options.signal}`, { ...ref(c), signal: options.signal }, [], 'kill');
  }
  return b.build(project.name);
}

/**
 * `pause`: the running containers, all at once; one already paused refuses the whole plan, as compose v2's pause
 * fails ("already paused"). `unpause`: the paused ones (nothing to do for the others).
 */
export function planPause(
  project: Project,
  observed: ObservedState,
  options: LifecycleOptions & { readonly paused: boolean },
): Plan {
  const b = new Builder();
  const kind = options.paused ? OpKind.ContainerPause : OpKind.ContainerUnpause;
  const action = options.paused ? 'pause' : 'unpause';
  const selected = selectedContainers(project, observed, options.services).filter((c) => c.running);
  const already = options.paused ? selected.filter((c) => c.paused) : [];
  if (already.length > 0) {
    const names = already.map((c) => c.name).join(', ');
    throw new TsfigError('conflict', `container ${names} ${already.length === 1 ? 'is' : 'are'} already paused`, {
      hint: `unpause first: tsfig unpause ${[...new Set(already.map((c) => c.service))].join(' ')}`,
    });
  }
  for (const c of selected) {
    if (!options.paused && !c.paused) continue;
    b.add(kind, c, action, ref(c), [], action);
  }
  return b.build(project.name);
}

export interface RmOptions extends LifecycleOptions {
  /** `-s`: stop running containers first (otherwise only stopped ones are removed). */
  readonly stop?: boolean;
  /** `-v`: remove their anonymous volumes too. */
  readonly volumes?: boolean;
}

/** The containers `rm` would remove (stopped ones; all with `--stop`), dependents first. */
export function removableContainers(
  project: Project,
  observed: ObservedState,
  options: RmOptions = {},
): ObservedContainer[] {
  return [...selectedContainers(project, observed, options.services)]
    .reverse()
    .filter((c) => options.stop === true || !isActive(c));
}

/** `rm`: stopped containers (with `--stop`, running ones after their stop), and with `-v` their anonymous volumes. */
export function planRm(project: Project, observed: ObservedState, options: RmOptions = {}): Plan {
  const b = new Builder();
  const removable = removableContainers(project, observed, options);
  const stops =
    options.stop === true
      ? addStops(b, project, [...removable].reverse(), options, 'rm --stop', 'remove')
      : new Map<string, number>();
  for (const c of removable) {
    const stop = stops.get(c.id);
    b.add(
      OpKind.ContainerRemove,
      c,
      c.running ? 'rm --stop' : `stopped (exit ${c.exitCode})`,
      { ...ref(c), volumes: options.volumes === true },
      stop === undefined ? [] : [stop],
      'remove',
    );
  }
  return b.build(project.name);
}
