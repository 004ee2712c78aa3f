/**
 * The reconciler: desired Project + ObservedState + options → Plan (compose's reconcile, terraform's plan).
 *
 * Pure and synchronous: no I/O, no clock, no randomness; every map is iterated in sorted or dependency order, so
 * the same inputs always give the same plan, byte for byte. Orphans are warned about and removed only when asked.
 */
import type { MountSpec } from '../../engine/volumes/index.js';
import { TsfigError } from '../errors.js';
import type { Project, Service } from '../model/project.js';
import {
  DEFAULT_BRIDGE_NETWORK,
  Label,
  containerName,
  implicitDependencies,
  serviceContainerSpec,
  serviceImage,
  stopGraceSeconds,
  withComposeLabels,
  type ServiceContainer,
} from './container-spec.js';
import { HOOK_LABEL, hookSpec, hooksCanRun, preStartSpec, serviceHooks } from './hooks.js';
import { describeChanges } from './diff.js';
import { serviceConfigHash } from './hash.js';
import type { ObservedContainer, ObservedState } from './observed.js';
import {
  OpKind,
  type ContainerCreateSpec,
  type ContainerPreStartSpec,
  type Operation,
  type OpSpecs,
  type Plan,
} from './plan.js';

export interface PlanOptions {
  /** Services named on the command line; empty or undefined = every enabled service. */
  readonly services?: readonly string[];
  /** Converge only the named services, not their dependencies (`--no-deps`). @default false */
  readonly noDeps?: boolean;
  /** Recreate the selected services' containers even when unchanged (`--force-recreate`). @default false */
  readonly forceRecreate?: boolean;
  /** Never recreate; only create missing containers and start stopped ones (`--no-recreate`). @default false */
  readonly noRecreate?: boolean;
  /** Recreate a service's containers when a dependency is created or recreated (`--always-recreate-deps`). */
  readonly alwaysRecreateDeps?: boolean;
  /** Stop and remove containers of services no longer in the project (`--remove-orphans`). @default false */
  readonly removeOrphans?: boolean;
  /** Create containers but start nothing (`--no-start`). @default false */
  readonly noStart?: boolean;
  /** Give recreated containers new anonymous volumes instead of the old ones (`-V`). @default false */
  readonly renewAnonVolumes?: boolean;
  /** Replica counts overriding the project's (`--scale web=3`). */
  readonly scale?: Readonly<Record<string, number>>;
  /** Stop timeout in seconds for every stop (`-t`); default: each service's stop_grace_period. */
  readonly timeoutSeconds?: number;
  /**
   * `up --wait`: after starting, wait until every container of a service with a healthcheck is healthy (the others
   * count as ready once started). Ignored with noStart. @default false
   */
  readonly wait?: boolean;
  /** `--wait-timeout` in milliseconds for those waits; undefined = no limit. */
  readonly waitTimeoutMs?: number;
  /**
   * Images the image phase will pull or build (planImages): not an error when missing (`--dry-run`, which plans the
   * containers before the images exist).
   */
  readonly pendingImages?: readonly string[];
  /**
   * `run`: a one-off container of `service` after its networks, volumes and (unless noDeps) its dependencies,
   * which are converged as `up` would (the caller sets noRecreate, as compose's run does); the service's own
   * containers are left alone. `start`: start it in the plan too (`run -d`; an attached run starts it itself).
   */
  readonly oneOff?: { readonly spec: ContainerCreateSpec; readonly start: boolean };
}

export interface DownOptions {
  /** Also stop and remove containers of services no longer in the project. @default false */
  readonly removeOrphans?: boolean;
  /** Remove the project's named volumes and the containers' anonymous volumes (`-v`). @default false */
  readonly volumes?: boolean;
  /** Stop timeout in seconds (`-t`); default: each service's stop_grace_period (10 s for orphans). */
  readonly timeoutSeconds?: number;
  /** `--rmi`: images to remove once the containers are gone (planner/images.ts imagesToRemove). */
  readonly images?: readonly string[];
  /**
   * `down SERVICE...` (compose v2): only these services' containers (and with -v their anonymous volumes); no
   * orphans, networks or named volumes, which the other services may still use. Empty or absent: the whole project.
   */
  readonly services?: readonly string[];
  /**
   * With `volumes`: the containers (names, of any project) that use each observed volume (engine/volumes
   * volumeUsers). An anonymous volume used by a container this plan does not remove is kept, with a warning; one
   * missing here counts as unused.
   */
  readonly volumeUsers?: Readonly<Record<string, readonly string[]>>;
}

/** The label engine/volumes puts on anonymous volumes. */
const ANONYMOUS_LABEL = 'io.tsfig.anonymous';

/** Default stop timeout for containers whose service is not in the project. */
const DEFAULT_STOP_SECONDS = 10;

/** Accumulates operations with increasing ids; every dependency must already be in the list. */
class PlanBuilder {
  readonly operations: Operation[] = [];
  readonly warnings: string[] = [];

  add<K extends keyof OpSpecs>(
    kind: K,
    resource: string,
    reason: string,
    spec: OpSpecs[K],
    dependsOn: readonly number[],
    extra: { group?: string; bestEffort?: boolean } = {},
  ): number {
    const id = this.operations.length + 1;
    const deps = [...new Set(dependsOn)].sort((a, b) => a - b);
    const op = { id, kind, resource, reason, dependsOn: deps, ...extra, spec } as Operation;
    this.operations.push(op);
    return id;
  }

  warn(text: string): void {
    if (!this.warnings.includes(text)) this.warnings.push(text);
  }

  build(project: string): Plan {
    return { version: 1, project, operations: this.operations, warnings: this.warnings };
  }
}

// ---------- dependency graph ----------

export type Condition = 'service_started' | 'service_healthy' | 'service_completed_successfully';

export interface Dependency {
  readonly service: string;
  readonly condition: Condition;
  readonly required: boolean;
}

/** What a service needs first: depends_on (with its condition) plus links, volumes_from, network_mode service:X. */
export function dependenciesOf(project: Project, service: Service): Dependency[] {
  const out = new Map<string, Dependency>();
  for (const name of Object.keys(service.depends_on).sort()) {
    const dep = service.depends_on[name];
    if (dep !== undefined) out.set(name, { service: name, condition: dep.condition, required: dep.required });
  }
  for (const name of implicitDependencies(service)) {
    if (!out.has(name)) out.set(name, { service: name, condition: 'service_started', required: true });
  }
  return [...out.values()].filter((dep) => project.services[dep.service] !== undefined);
}

/**
 * Services in dependency order (dependencies first; ties by name). The loader rejects cycles; this guards anyway.
 */
export function dependencyOrder(project: Project, names: Iterable<string>): string[] {
  const wanted = new Set(names);
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: readonly string[]): void => {
    const seen = state.get(name);
    if (seen === 'done') return;
    if (seen === 'visiting') {
      const cycle = [...path.slice(path.indexOf(name)), name].join(' -> ');
      throw new TsfigError('config', `dependency cycle between services: ${cycle}`, {
        hint: 'remove one of these depends_on, links, volumes_from or network_mode references',
      });
    }
    state.set(name, 'visiting');
    const service = project.services[name];
    for (const dep of service === undefined ? [] : dependenciesOf(project, service)) {
      if (wanted.has(dep.service)) visit(dep.service, [...path, name]);
    }
    state.set(name, 'done');
    order.push(name);
  };
  for (const name of [...wanted].sort()) visit(name, []);
  return order;
}

/** The services `up` converges: the selection plus, unless noDeps, everything it depends on. */
export function servicesInScope(project: Project, options: PlanOptions): Set<string> {
  const selected = options.services ?? [];
  if (selected.length === 0) return new Set(Object.keys(project.services));
  const unknown = selected.filter((name) => project.services[name] === undefined);
  if (unknown.length > 0) {
    const known = Object.keys(project.services).sort().join(', ');
    throw new TsfigError('usage', `no such service: ${unknown.join(', ')}`, { hint: `services: ${known}` });
  }
  const scope = new Set<string>();
  const add = (name: string): void => {
    if (scope.has(name)) return;
    scope.add(name);
    const service = project.services[name];
    if (options.noDeps !== true && service !== undefined) {
      for (const dep of dependenciesOf(project, service)) add(dep.service);
    }
  };
  for (const name of selected) add(name);
  return scope;
}

/** The services that depend on each service (reverse edges). */
function dependentsOf(project: Project, names: Iterable<string>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const name of names) {
    const service = project.services[name];
    for (const dep of service === undefined ? [] : dependenciesOf(project, service)) {
      out.set(dep.service, [...(out.get(dep.service) ?? []), name]);
    }
  }
  return out;
}

// ---------- observed containers ----------

function byNumberThenAge(a: ObservedContainer, b: ObservedContainer): number {
  if (a.number !== b.number) return a.number - b.number;
  if (a.created !== b.created) return a.created < b.created ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function projectContainers(projectName: string, observed: ObservedState): ObservedContainer[] {
  return observed.containers.filter((c) => c.project === projectName).sort(byNumberThenAge);
}

function isKnownService(project: Project, name: string): boolean {
  return project.services[name] !== undefined || project.disabled_services[name] !== undefined;
}

function orphansOf(project: Project, containers: readonly ObservedContainer[], oneoffs: boolean): ObservedContainer[] {
  return containers
    .filter((c) => (oneoffs || !c.oneoff) && !isKnownService(project, c.service))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function orphanWarning(orphans: readonly ObservedContainer[]): string {
  return (
    `Found orphan containers (${orphans.map((c) => c.name).join(', ')}) for this project. If you removed or ` +
    'renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.'
  );
}

// ---------- per-slot decisions ----------

/** restart: stop and start again because a dependency with `depends_on.<dep>.restart: true` was recreated. */
type SlotAction = 'create' | 'recreate' | 'start' | 'restart' | 'noop';

interface Slot {
  readonly number: number;
  readonly action: SlotAction;
  readonly existing: ObservedContainer | undefined;
  readonly reason: string;
  /** For create and recreate. */
  readonly create: ContainerCreateSpec | undefined;
}

interface ServicePlan {
  readonly service: Service;
  readonly slots: readonly Slot[];
  /** Containers beyond scale, and duplicates of a number: stopped and removed, highest numbers first. */
  readonly extras: readonly ObservedContainer[];
  readonly scale: number;
}

interface Context {
  readonly project: Project;
  readonly observed: ObservedState;
  readonly options: PlanOptions;
  readonly selectedAll: boolean;
  readonly selected: ReadonlySet<string>;
  /** Services whose containers this plan creates or recreates, with a word for the reason. */
  readonly changed: Map<string, 'created' | 'recreated'>;
  /** Warnings found while deciding the slots (added to the plan after the services' own). */
  readonly warnings: string[];
}

function scaleOf(ctx: Context, service: Service): number {
  const scale = ctx.options.scale?.[service.name] ?? service.scale;
  if (service.container_name !== undefined && scale > 1) {
    throw new TsfigError('config', `service "${service.name}" sets container_name and cannot be scaled to ${scale}`, {
      hint: `remove services.${service.name}.container_name to run more than one container`,
    });
  }
  return scale;
}

function planService(ctx: Context, service: Service, mine: readonly ObservedContainer[]): ServicePlan {
  const scale = scaleOf(ctx, service);
  const hash = serviceConfigHash(service);
  const desiredOf = (number: number) => (): ServiceContainer =>
    serviceContainerSpec(ctx.project, service, number, { configHash: hash, images: ctx.observed.images });
  // One container per number (a duplicate is an extra). With more than the scale, compose v2 keeps the up-to-date
  // ones, lowest numbers first, and removes the obsolete ones (reconcile.go sortContainers; e2e
  // TestScaleDownNoRecreate: after a rebuild, scaling down keeps the fresh #3 and #4 rather than recreating #1, #2).
  const unique: ObservedContainer[] = [];
  const extras: ObservedContainer[] = [];
  for (const c of [...mine].sort(byNumberThenAge)) {
    if (c.number >= 1 && !unique.some((u) => u.number === c.number)) unique.push(c);
    else extras.push(c);
  }
  let kept = unique;
  if (unique.length > scale) {
    const stale = new Set(
      unique.filter((c) => whyRecreate(ctx, service, c, hash, desiredOf(c.number)) !== undefined).map((c) => c.id),
    );
    const ranked = [...unique].sort(
      (a, b) => Number(stale.has(a.id)) - Number(stale.has(b.id)) || byNumberThenAge(a, b),
    );
    kept = ranked.slice(0, scale);
    extras.push(...ranked.slice(scale));
  }
  extras.sort((a, b) => -byNumberThenAge(a, b));
  const bySlot = new Map(kept.map((c) => [c.number, c]));
  // the kept containers' numbers, then the lowest free ones for the containers to create
  const numbers = kept.map((c) => c.number);
  for (let number = 1; numbers.length < scale; number++) if (!bySlot.has(number)) numbers.push(number);
  numbers.sort((a, b) => a - b);
  const maxObserved = Math.max(0, ...mine.map((c) => c.number));
  const slots: Slot[] = [];
  for (const number of numbers) {
    const existing = bySlot.get(number);
    const desired = desiredOf(number);
    if (existing === undefined) {
      const reason =
        mine.length === 0 ? 'new service' : number > maxObserved ? `scaled up to ${scale}` : 'container missing';
      slots.push({ number, action: 'create', existing, reason, create: desired().spec });
      continue;
    }
    const recreateReason = whyRecreate(ctx, service, existing, hash, desired);
    const restartReason = whyRestart(ctx, service);
    if (recreateReason !== undefined) {
      const renew = ctx.options.renewAnonVolumes === true;
      const { spec: create, carried } = inheritAnonymousVolumes(ctx, desired().spec, existing, renew);
      warnStaleAnonymousVolumes(ctx, service, existing, carried);
      slots.push({ number, action: 'recreate', existing, reason: recreateReason, create });
    } else if (!isActive(existing) && ctx.options.noStart !== true) {
      slots.push({ number, action: 'start', existing, reason: stoppedReason(existing), create: undefined });
    } else if (restartReason !== undefined) {
      slots.push({ number, action: 'restart', existing, reason: restartReason, create: undefined });
    } else {
      slots.push({ number, action: 'noop', existing, reason: 'up to date', create: undefined });
    }
  }
  const created = slots.some((s) => s.action === 'create');
  const recreated = slots.some((s) => s.action === 'recreate');
  if (recreated) ctx.changed.set(service.name, 'recreated');
  else if (created) ctx.changed.set(service.name, 'created');
  return { service, slots, extras, scale };
}

/** Running, or between two runs of its restart policy: the monitor owns it, `up` need not start it. */
export function isActive(c: ObservedContainer): boolean {
  return c.running || c.status === 'restarting';
}

function stoppedReason(c: ObservedContainer): string {
  return c.status === 'created' ? 'created but not started' : `exited with code ${c.exitCode}`;
}

/** Why an existing container must be recreated, or undefined. The decision never depends on the spec diff. */
function whyRecreate(
  ctx: Context,
  service: Service,
  existing: ObservedContainer,
  hash: string,
  desired: () => ServiceContainer,
): string | undefined {
  if (ctx.options.noRecreate === true) return undefined;
  const reasons: string[] = [];
  if (existing.configHash !== hash) {
    const changes = existing.spec !== undefined ? describeChanges(existing.spec, desired().spec) : [];
    reasons.push(...(changes.length > 0 ? changes : ['config changed']));
  }
  const image = ctx.observed.images[serviceImage(ctx.project, service)];
  if (image !== undefined && image.id !== existing.imageId && !reasons.includes('image changed')) {
    reasons.push('image changed');
  }
  for (const parent of namespaceParents(service)) {
    const change = ctx.changed.get(parent);
    if (change !== undefined) reasons.push(`${parent} ${change} (shared namespace or volumes)`);
  }
  if (reasons.length === 0 && ctx.options.alwaysRecreateDeps === true) {
    for (const dep of dependenciesOf(ctx.project, service)) {
      const change = ctx.changed.get(dep.service);
      if (change !== undefined) reasons.push(`dependency ${dep.service} ${change}`);
    }
  }
  if (reasons.length === 0 && ctx.options.forceRecreate === true) {
    if (ctx.selectedAll || ctx.selected.has(service.name)) reasons.push('forced (--force-recreate)');
  }
  return reasons.length > 0 ? reasons.join(', ') : undefined;
}

/** compose's `depends_on.<dep>.restart: true`: a running dependent is restarted after its dependency is recreated. */
function whyRestart(ctx: Context, service: Service): string | undefined {
  if (ctx.options.noStart === true) return undefined;
  const reasons = Object.keys(service.depends_on)
    .sort()
    .filter((name) => service.depends_on[name]?.restart === true && ctx.changed.get(name) === 'recreated')
    .map((name) => `dependency ${name} recreated and depends_on.${name}.restart is true`);
  return reasons.length > 0 ? reasons.join(', ') : undefined;
}

/** Services whose containers this one joins or mounts from: recreating them breaks it (compose v5). */
function namespaceParents(service: Service): string[] {
  const out = new Set<string>();
  for (const entry of service.volumes_from) {
    if (!entry.startsWith('container:')) out.add(entry.split(':')[0] ?? entry);
  }
  if (service.network_mode?.startsWith('service:') === true) out.add(service.network_mode.slice('service:'.length));
  return [...out].sort();
}

/**
 * The replacement keeps the old container's anonymous volumes: each becomes a volume mount naming it, at the same
 * path, unless the new config mounts something else (a bind, tmpfs or named volume) there. Volumes the old container
 * had through `volumes_from` are not its own: the new one gets them from its source container again. Returns the
 * spec and the container paths carried over.
 */
function inheritAnonymousVolumes(
  ctx: Context,
  spec: ContainerCreateSpec,
  old: ObservedContainer,
  renew: boolean,
): { spec: ContainerCreateSpec; carried: string[] } {
  if (renew) return { spec, carried: [] };
  const fromSources = new Set<string>();
  for (const source of spec.volumesFrom) {
    const container = ctx.observed.containers.find((c) => c.name === source.container || c.id === source.container);
    for (const mount of container?.mounts ?? []) if (mount.volumeName !== undefined) fromSources.add(mount.volumeName);
  }
  const mounts: MountSpec[] = [...spec.mounts];
  const carried: string[] = [];
  for (const mount of [...old.mounts].sort((a, b) => (a.destination < b.destination ? -1 : 1))) {
    if (!mount.anonymous || mount.volumeName === undefined || fromSources.has(mount.volumeName)) continue;
    const index = mounts.findIndex((m) => m.target === mount.destination);
    const current = index < 0 ? undefined : mounts[index];
    if (current !== undefined && !(current.type === 'volume' && current.source === undefined)) continue;
    const inherited: MountSpec = {
      type: 'volume',
      source: mount.volumeName,
      target: mount.destination,
      readonly: current?.readonly ?? false,
      nocopy: current?.type === 'volume' ? current.nocopy : false,
      origin: `anonymous volume of ${old.name}`,
      notes: [],
    };
    if (index < 0) mounts.push(inherited);
    else mounts[index] = inherited;
    carried.push(mount.destination);
  }
  return { spec: { ...spec, mounts, inheritAnonymousFrom: old.id }, carried };
}

/**
 * The stale `node_modules` problem: a carried-over anonymous volume keeps the content the old image put there and
 * hides what the new image has at that path. The cheap reliable signal: the image id changed.
 */
function warnStaleAnonymousVolumes(
  ctx: Context,
  service: Service,
  old: ObservedContainer,
  carried: readonly string[],
): void {
  if (carried.length === 0) return;
  const image = ctx.observed.images[serviceImage(ctx.project, service)];
  if (image === undefined || image.id === old.imageId) return;
  const plural = carried.length > 1;
  ctx.warnings.push(
    `service ${service.name}: the image changed, but the anonymous volume${plural ? 's' : ''} at ` +
      `${carried.join(', ')} ${plural ? 'are' : 'is'} carried over from the old container and keep${plural ? '' : 's'} ` +
      "the old image's content there, hiding the new image's files; use -V/--renew-anon-volumes to recreate " +
      'anonymous volumes',
  );
}

// ---------- networks and volumes ----------

function planNetworks(b: PlanBuilder, ctx: Context, scope: readonly string[]): Map<string, number> {
  const keys = new Set<string>();
  for (const name of scope) for (const key of Object.keys(ctx.project.services[name]?.networks ?? {})) keys.add(key);
  const ids = new Map<string, number>();
  const missingExternal: string[] = [];
  for (const key of [...keys].sort()) {
    const network = ctx.project.networks[key];
    if (network === undefined) continue;
    const found = ctx.observed.networks.find((n) => n.name === network.name);
    if (network.external) {
      if (found === undefined) missingExternal.push(network.name);
      continue;
    }
    if (found !== undefined) {
      if (found.labels[Label.Project] !== ctx.project.name) {
        b.warn(
          `a network named ${network.name} exists but was not created for project "${ctx.project.name}": ` +
            `set networks.${key}.external: true to use an existing network`,
        );
      }
      continue;
    }
    if (network.driver !== undefined && network.driver !== 'bridge') {
      b.warn(`networks.${key}.driver "${network.driver}" is not supported yet: a bridge network is created`);
    }
    if (network.enable_ipv6 === true) b.warn(`networks.${key}.enable_ipv6 is not supported yet and is ignored`);
    if (Object.keys(network.driver_opts).length > 0) {
      b.warn(`networks.${key}.driver_opts is not supported yet and is ignored`);
    }
    const ipam = network.ipam?.config ?? [];
    if (ipam.length > 1) b.warn(`networks.${key}.ipam.config: only the first subnet is used`);
    if (ipam.some((c) => c.ip_range !== undefined || Object.keys(c.aux_addresses).length > 0)) {
      b.warn(`networks.${key}.ipam.config: ip_range and aux_addresses are not supported yet and are ignored`);
    }
    if (network.ipam?.driver !== undefined && network.ipam.driver !== 'default') {
      b.warn(`networks.${key}.ipam.driver "${network.ipam.driver}" is not supported yet and is ignored`);
    }
    const labels = withComposeLabels({ ...network.labels, [Label.Project]: ctx.project.name, [Label.Network]: key });
    const spec = { name: network.name, driver: 'bridge' as const, internal: network.internal, labels };
    const id = b.add(
      OpKind.NetworkCreate,
      `network:${key}`,
      key === 'default' ? 'default network' : 'new network',
      { ...spec, subnet: ipam[0]?.subnet, gateway: ipam[0]?.gateway },
      [],
      { group: `create:network:${key}` },
    );
    ids.set(key, id);
  }
  planDefaultBridge(b, ctx, scope, ids);
  if (missingExternal.length > 0) {
    // compose v2's words (create.go), which scripts grep for
    const what = missingExternal.map((name) => `network ${name} declared as external, but could not be found`);
    throw new TsfigError('not-found', what.join('; '), {
      hint: `create it first (tsfig network create ${missingExternal[0]}) or remove external: true`,
    });
  }
  return ids;
}

/** The key of the default bridge's create in planNetworks' map (not a compose network key: those cannot hold a ':'). */
const DEFAULT_BRIDGE_KEY = 'network_mode:bridge';

/** `network_mode: bridge`: the engine-wide bridge network is created when missing, without a project label. */
function planDefaultBridge(b: PlanBuilder, ctx: Context, scope: readonly string[], ids: Map<string, number>): void {
  if (!scope.some((name) => ctx.project.services[name]?.network_mode === 'bridge')) return;
  if (ctx.observed.networks.some((n) => n.name === DEFAULT_BRIDGE_NETWORK)) return;
  const spec = { name: DEFAULT_BRIDGE_NETWORK, driver: 'bridge' as const, internal: false, labels: {} };
  const id = b.add(
    OpKind.NetworkCreate,
    `network:${DEFAULT_BRIDGE_NETWORK}`,
    'default bridge network (network_mode: bridge)',
    { ...spec, subnet: undefined, gateway: undefined, shared: true },
    [],
    { group: `create:network:${DEFAULT_BRIDGE_KEY}` },
  );
  ids.set(DEFAULT_BRIDGE_KEY, id);
}

function volumeKeysOf(project: Project, service: Service): string[] {
  return service.volumes
    .filter((v) => v.type === 'volume' && v.source !== undefined && project.volumes[v.source] !== undefined)
    .map((v) => v.source ?? '');
}

function planVolumes(b: PlanBuilder, ctx: Context, scope: readonly string[]): Map<string, number> {
  const keys = new Set<string>();
  for (const name of scope) {
    const service = ctx.project.services[name];
    if (service !== undefined) for (const key of volumeKeysOf(ctx.project, service)) keys.add(key);
  }
  const ids = new Map<string, number>();
  const missingExternal: string[] = [];
  for (const key of [...keys].sort()) {
    const volume = ctx.project.volumes[key];
    if (volume === undefined) continue;
    const found = ctx.observed.volumes.find((v) => v.name === volume.name);
    if (volume.external) {
      if (found === undefined) missingExternal.push(volume.name);
      continue;
    }
    if (found !== undefined) {
      if (found.labels[Label.Project] !== ctx.project.name) {
        b.warn(
          `volume "${volume.name}" already exists but was not created by tsfig for project "${ctx.project.name}": ` +
            `set volumes.${key}.external: true to use an existing volume`,
        );
      }
      continue;
    }
    if (volume.driver !== undefined && volume.driver !== 'local') {
      b.warn(`volumes.${key}.driver "${volume.driver}" is not supported yet: a local volume is created`);
    }
    const labels = withComposeLabels({ ...volume.labels, [Label.Project]: ctx.project.name, [Label.Volume]: key });
    const spec = { name: volume.name, driver: volume.driver, driverOpts: { ...volume.driver_opts }, labels };
    ids.set(
      key,
      b.add(OpKind.VolumeCreate, `volume:${key}`, 'new volume', spec, [], { group: `create:volume:${key}` }),
    );
  }
  if (missingExternal.length > 0) {
    throw new TsfigError('not-found', `external volume not found: ${missingExternal.join(', ')}`, {
      hint: `create it first (tsfig volume create ${missingExternal[0]}) or remove external: true`,
    });
  }
  return ids;
}

function assertImagesPresent(ctx: Context, plans: readonly ServicePlan[]): void {
  const missing: string[] = [];
  const pending = new Set(ctx.options.pendingImages ?? []);
  for (const { service, slots } of plans) {
    if (!slots.some((s) => s.create !== undefined)) continue;
    const image = serviceImage(ctx.project, service);
    if (ctx.observed.images[image] === undefined && !pending.has(image))
      missing.push(`${image} (service "${service.name}")`);
  }
  if (missing.length === 0) return;
  throw new TsfigError('not-found', `image not found locally: ${missing.join(', ')}`, {
    hint: 'import or build the image first (tsfig image ls lists the local ones); tsfig does not pull yet',
  });
}

function assertOneOffImage(ctx: Context, name: string): void {
  const service = ctx.project.services[name];
  if (service === undefined) return;
  const image = serviceImage(ctx.project, service);
  if (ctx.observed.images[image] !== undefined || (ctx.options.pendingImages ?? []).includes(image)) return;
  throw new TsfigError('not-found', `image not found locally: ${image} (service "${name}")`, {
    hint: 'import or build the image first (tsfig image ls lists the local ones)',
  });
}

// ---------- stops and removals ----------

export function stopTimeout(ctx: { options: { timeoutSeconds?: number } }, service: Service | undefined): number {
  if (ctx.options.timeoutSeconds !== undefined) return ctx.options.timeoutSeconds;
  return service !== undefined ? stopGraceSeconds(service) : DEFAULT_STOP_SECONDS;
}

interface Removal {
  readonly container: ObservedContainer;
  readonly service: Service | undefined;
  readonly reason: string;
  readonly group: string;
  readonly removeVolumes: boolean;
}

/** A stop on its own (restart: the container is started again later). */
function addStop(
  b: PlanBuilder,
  ctx: { options: { timeoutSeconds?: number } },
  c: ObservedContainer,
  service: Service,
  reason: string,
  group: string,
  deps: readonly number[],
): number {
  const spec = { container: c.id, name: c.name, timeoutSeconds: stopTimeout(ctx, service) };
  const hooks = addPreStopHooks(b, c, service, group, deps);
  return b.add(OpKind.ContainerStop, `service:${c.service}:${c.number}`, reason, spec, hooks, { group });
}

/** The service's pre_stop hooks, one after the other, in a running container; returns what the stop waits for. */
function addPreStopHooks(
  b: PlanBuilder,
  c: ObservedContainer,
  service: Service | undefined,
  group: string,
  deps: readonly number[],
): readonly number[] {
  if (service === undefined || !hooksCanRun(c)) return deps;
  let last = deps;
  serviceHooks(service, 'pre_stop').forEach((hook, index) => {
    const spec = hookSpec(service, { container: c.id, name: c.name }, 'pre_stop', index, hook);
    const reason = `pre_stop hook #${index + 1}`;
    last = [b.add(OpKind.ContainerHook, `service:${c.service}:${c.number}`, reason, spec, last, { group })];
  });
  return last;
}

/** Stop (when running) then remove; the stop waits for `stopDeps`. Returns [stop id | undefined, remove id]. */
function addRemoval(
  b: PlanBuilder,
  ctx: { options: { timeoutSeconds?: number } },
  removal: Removal,
  stopDeps: readonly number[],
): [number | undefined, number] {
  const c = removal.container;
  const resource = `service:${c.service}:${c.number}`;
  const ref = { container: c.id, name: c.name };
  const extra = { group: removal.group };
  const stop = isActive(c)
    ? b.add(
        OpKind.ContainerStop,
        resource,
        removal.reason,
        { ...ref, timeoutSeconds: stopTimeout(ctx, removal.service) },
        addPreStopHooks(b, c, removal.service, removal.group, stopDeps),
        extra,
      )
    : undefined;
  const remove = b.add(
    OpKind.ContainerRemove,
    resource,
    removal.reason,
    { ...ref, volumes: removal.removeVolumes },
    stop !== undefined ? [stop] : stopDeps,
    extra,
  );
  return [stop, remove];
}

/**
 * Stops and removals for recreates, restarts, extras and orphans: dependents are stopped before what they depend
 * on. Returns, by container id, the op after which a replaced container is gone (its remove) or a restarted one is
 * stopped (its stop).
 */
function planRemovals(
  b: PlanBuilder,
  ctx: Context,
  plans: readonly ServicePlan[],
  orphans: readonly ObservedContainer[],
): Map<string, number> {
  for (const c of orphans) {
    const reason = `orphan: service ${c.service} is not in the project`;
    addRemoval(
      b,
      ctx,
      {
        container: c,
        service: undefined,
        reason,
        group: `remove:service:${c.service}:${c.number}`,
        removeVolumes: false,
      },
      [],
    );
  }
  const removed = new Map<string, number>();
  const stopsByService = new Map<string, number[]>();
  const dependents = dependentsOf(
    ctx.project,
    plans.map((p) => p.service.name),
  );
  for (const plan of [...plans].reverse()) {
    const name = plan.service.name;
    const stopDeps = (dependents.get(name) ?? []).flatMap((d) => stopsByService.get(d) ?? []);
    const stops: number[] = [];
    for (const slot of plan.slots) {
      if (slot.action === 'restart' && slot.existing !== undefined) {
        const stop = addStop(
          b,
          ctx,
          slot.existing,
          plan.service,
          slot.reason,
          `restart:service:${name}:${slot.number}`,
          stopDeps,
        );
        stops.push(stop);
        removed.set(slot.existing.id, stop);
        continue;
      }
      if (slot.action !== 'recreate' || slot.existing === undefined) continue;
      const [stop, remove] = addRemoval(
        b,
        ctx,
        {
          container: slot.existing,
          service: plan.service,
          reason: slot.reason,
          group: `recreate:service:${name}:${slot.number}`,
          removeVolumes: ctx.options.renewAnonVolumes === true,
        },
        stopDeps,
      );
      if (stop !== undefined) stops.push(stop);
      removed.set(slot.existing.id, remove);
    }
    for (const c of plan.extras) {
      const duplicate = plan.slots.some((slot) => slot.existing !== undefined && slot.existing.number === c.number);
      const reason = duplicate ? `duplicate of ${name} number ${c.number}` : `scaled down to ${plan.scale}`;
      const group = `remove:service:${name}:${c.number}`;
      const [stop] = addRemoval(
        b,
        ctx,
        { container: c, service: plan.service, reason, group, removeVolumes: false },
        stopDeps,
      );
      if (stop !== undefined) stops.push(stop);
    }
    stopsByService.set(name, stops);
  }
  return removed;
}

// ---------- creates, starts, waits ----------

interface Started {
  /** Start op ids per service, per container number. */
  readonly starts: Map<string, Map<number, number>>;
  /** Create op ids per service, per container number. */
  readonly creates: Map<string, Map<number, number>>;
  /** Wait ops already added, by `<kind>:<container name>:<required>` (dependents share them). */
  readonly waits: Map<string, number>;
}

function containerRefOf(ctx: Context, plan: ServicePlan | undefined, service: Service, number: number) {
  const slot = plan?.slots.find((s) => s.number === number);
  if (slot?.existing !== undefined && slot.action !== 'recreate') {
    return { container: slot.existing.id, name: slot.existing.name };
  }
  const name = containerName(ctx.project, service, number);
  return { container: name, name };
}

/** A readiness wait; an optional dependency (`required: false`) only warns when it fails. */
function addWait(
  b: PlanBuilder,
  kind: typeof OpKind.ContainerWaitHealthy | typeof OpKind.ContainerWaitCompleted,
  spec: { container: string; name: string; required: boolean },
  resource: string,
  reason: string,
  start: number | undefined,
): number {
  const deps = start !== undefined ? [start] : [];
  const extra = spec.required ? {} : { bestEffort: true };
  if (kind === OpKind.ContainerWaitHealthy) {
    return b.add(kind, resource, reason, { ...spec, timeoutMs: undefined }, deps, extra);
  }
  return b.add(kind, resource, reason, spec, deps, extra);
}

/** The ops a start of `service` waits for: its dependencies' starts, or their readiness per condition. */
function readinessDeps(
  b: PlanBuilder,
  ctx: Context,
  service: Service,
  plans: ReadonlyMap<string, ServicePlan>,
  done: Started,
): number[] {
  const deps: number[] = [];
  for (const dep of dependenciesOf(ctx.project, service)) {
    const depPlan = plans.get(dep.service);
    if (depPlan === undefined) continue;
    const starts = done.starts.get(dep.service) ?? new Map<number, number>();
    if (dep.condition === 'service_started') {
      deps.push(...starts.values());
      continue;
    }
    const kind = dep.condition === 'service_healthy' ? OpKind.ContainerWaitHealthy : OpKind.ContainerWaitCompleted;
    for (const { number } of depPlan.slots) {
      const ref = containerRefOf(ctx, depPlan, depPlan.service, number);
      const key = `${kind}:${ref.name}:${dep.required}`;
      let id = done.waits.get(key);
      if (id === undefined) {
        const start = starts.get(number);
        const resource = `service:${dep.service}:${number}`;
        const reason = `${service.name} depends on ${dep.service}: ${dep.condition}${dep.required ? '' : ', required: false'}`;
        id = addWait(b, kind, { ...ref, required: dep.required }, resource, reason, start);
        done.waits.set(key, id);
      }
      deps.push(id);
    }
  }
  return deps;
}

/** Ops a create of `service` must follow: its networks, volumes, and the containers it mounts from, links to or joins. */
function createDeps(
  ctx: Context,
  service: Service,
  networks: Map<string, number>,
  volumes: Map<string, number>,
  done: Started,
): number[] {
  const deps: number[] = [];
  const networkKeys = Object.keys(service.networks);
  if (service.network_mode === 'bridge') networkKeys.push(DEFAULT_BRIDGE_KEY);
  for (const key of networkKeys) {
    const id = networks.get(key);
    if (id !== undefined) deps.push(id);
  }
  for (const key of volumeKeysOf(ctx.project, service)) {
    const id = volumes.get(key);
    if (id !== undefined) deps.push(id);
  }
  for (const entry of service.volumes_from) {
    if (entry.startsWith('container:')) continue;
    const id = done.creates.get(entry.split(':')[0] ?? entry)?.get(1);
    if (id !== undefined) deps.push(id);
  }
  // links: the create reads the linked container (first replica): its address and environment.
  for (const link of service.links) {
    const id = done.creates.get(link.split(':')[0] ?? link)?.get(1);
    if (id !== undefined) deps.push(id);
  }
  if (service.network_mode?.startsWith('service:') === true) {
    const id = done.starts.get(service.network_mode.slice('service:'.length))?.get(1);
    if (id !== undefined) deps.push(id);
  }
  return deps;
}

function planStarts(
  b: PlanBuilder,
  ctx: Context,
  plans: readonly ServicePlan[],
  networks: Map<string, number>,
  volumes: Map<string, number>,
  removed: Map<string, number>,
): Started {
  const byName = new Map(plans.map((p) => [p.service.name, p]));
  const done: Started = { starts: new Map(), creates: new Map(), waits: new Map() };
  const noStart = ctx.options.noStart === true;
  for (const plan of plans) {
    const name = plan.service.name;
    const starts = new Map<number, number>();
    const creates = new Map<number, number>();
    const willStart = !noStart && plan.slots.some((s) => s.action !== 'noop');
    const ready = willStart ? readinessDeps(b, ctx, plan.service, byName, done) : [];
    // pre_start: once per service, when none of its containers runs (compose 5.3), after the first one exists
    const preStart =
      willStart && plan.slots.every((s) => s.action !== 'noop') ? serviceHooks(plan.service, 'pre_start') : [];
    let gate: readonly number[] = [];
    const baseCreateDeps = createDeps(ctx, plan.service, networks, volumes, done);
    for (const slot of plan.slots) {
      if (slot.action === 'noop') continue;
      const resource = `service:${name}:${slot.number}`;
      const group = `${slot.action}:${resource}`;
      let created: number | undefined;
      if (slot.create !== undefined) {
        const replaced = slot.existing !== undefined ? removed.get(slot.existing.id) : undefined;
        const deps = replaced !== undefined ? [...baseCreateDeps, replaced] : baseCreateDeps;
        created = b.add(OpKind.ContainerCreate, resource, slot.reason, slot.create, deps, { group });
        creates.set(slot.number, created);
      }
      if (noStart) continue;
      const ref = containerRefOf(ctx, plan, plan.service, slot.number);
      const stopped =
        slot.action === 'restart' && slot.existing !== undefined ? removed.get(slot.existing.id) : undefined;
      const first = created ?? stopped;
      let deps = first !== undefined ? [first, ...ready] : ready;
      if (preStart.length > 0 && gate.length === 0) {
        preStart.forEach((hook, index) => {
          const spec = preStartSpec(ctx.project, plan.service, index, hook, ref, ctx.observed.images);
          const reason = `pre_start hook #${index + 1}`;
          const after = removeLeftoverPreStart(b, ctx, spec, resource, group, deps);
          deps = [b.add(OpKind.ContainerPreStart, resource, reason, spec, after, { group })];
        });
        gate = deps;
      }
      let last = b.add(OpKind.ContainerStart, resource, slot.reason, ref, [...new Set([...deps, ...gate])], { group });
      serviceHooks(plan.service, 'post_start').forEach((hook, index) => {
        const spec = hookSpec(plan.service, ref, 'post_start', index, hook);
        last = b.add(OpKind.ContainerHook, resource, `post_start hook #${index + 1}`, spec, [last], { group });
      });
      starts.set(slot.number, last);
    }
    done.starts.set(name, starts);
    done.creates.set(name, creates);
  }
  if (ctx.options.wait === true && !noStart) planWaitForAll(b, ctx, plans, done);
  return done;
}

/**
 * A pre_start hook's container that a killed command left (the hook's container is removed when it has run, so one
 * that is still there is a leftover): removed, with its anonymous volumes, before the hook runs again under its
 * name. Only the project's own hook container is removed: a foreign container of that name makes the create fail.
 */
function removeLeftoverPreStart(
  b: PlanBuilder,
  ctx: Context,
  spec: ContainerPreStartSpec,
  resource: string,
  group: string,
  deps: readonly number[],
): readonly number[] {
  const leftover = ctx.observed.containers.find(
    (c) => c.name === spec.create.name && c.oneoff && c.labels[HOOK_LABEL] === 'pre_start',
  );
  if (leftover === undefined) return deps;
  const reason = `leftover of an interrupted pre_start hook #${spec.index + 1}`;
  const ref = { container: leftover.id, name: leftover.name, volumes: true };
  return [b.add(OpKind.ContainerRemove, resource, reason, ref, deps, { group })];
}

/** `run`: the one-off container after its networks, volumes and dependencies (started, healthy, completed). */
function planOneOff(
  b: PlanBuilder,
  ctx: Context,
  plans: readonly ServicePlan[],
  networks: Map<string, number>,
  volumes: Map<string, number>,
  done: Started,
): void {
  const oneOff = ctx.options.oneOff;
  if (oneOff === undefined) return;
  const service = ctx.project.services[oneOff.spec.service];
  if (service === undefined) throw new TsfigError('usage', `no such service: ${oneOff.spec.service}`);
  const byName = new Map(plans.map((p) => [p.service.name, p]));
  const ready = readinessDeps(b, ctx, service, byName, done);
  const deps = [...createDeps(ctx, service, networks, volumes, done), ...ready];
  const resource = `service:${service.name}:run`;
  const ref = { container: oneOff.spec.name, name: oneOff.spec.name };
  const create = b.add(OpKind.ContainerCreate, resource, 'one-off container (run)', oneOff.spec, deps, {
    group: `create:${resource}`,
  });
  if (oneOff.start) {
    b.add(OpKind.ContainerStart, resource, 'one-off container (run -d)', ref, [create], { group: `start:${resource}` });
  }
}

/** The services a one-off container needs first: its dependencies and theirs (none with noDeps). */
function oneOffScope(project: Project, service: string, options: PlanOptions): Set<string> {
  const definition = project.services[service];
  if (definition === undefined || options.noDeps === true) return new Set();
  const direct = dependenciesOf(project, definition).map((dep) => dep.service);
  return direct.length === 0 ? new Set() : servicesInScope(project, { services: direct });
}

/** The service has a healthcheck that runs (not disabled, not NONE): `--wait` waits for it to be healthy. */
export function hasHealthcheck(service: Service): boolean {
  const check = service.healthcheck;
  return check !== undefined && !check.disable && check.test?.[0] !== 'NONE';
}

/**
 * `up --wait`: after its start, each container of a service with a healthcheck is waited for until healthy, the
 * others until running (or exited 0, as a one-shot service does).
 */
function planWaitForAll(b: PlanBuilder, ctx: Context, plans: readonly ServicePlan[], done: Started): void {
  for (const plan of plans) {
    const healthy = hasHealthcheck(plan.service);
    for (const { number } of plan.slots) {
      const ref = containerRefOf(ctx, plan, plan.service, number);
      const start = done.starts.get(plan.service.name)?.get(number);
      const resource = `service:${plan.service.name}:${number}`;
      const deps = start !== undefined ? [start] : [];
      const timeoutMs = ctx.options.waitTimeoutMs;
      if (healthy) {
        b.add(OpKind.ContainerWaitHealthy, resource, 'up --wait', { ...ref, timeoutMs, required: true }, deps);
      } else {
        b.add(OpKind.ContainerWaitRunning, resource, 'up --wait', { ...ref, timeoutMs }, deps);
      }
    }
  }
}

/**
 * Two services of the plan's scope that set the same container_name cannot both have their container (compose v2
 * fails such an `up` on the daemon's name conflict). Checked here, not at load, so `down`, `ps` or an `up` of one of
 * them still work. A service scaled to 0 creates nothing and takes no name.
 */
function assertUniqueContainerNames(project: Project, options: PlanOptions, scope: readonly string[]): void {
  const owners = new Map<string, string>();
  for (const name of scope) {
    const service = project.services[name];
    if (service?.container_name === undefined) continue;
    if ((options.scale?.[name] ?? service.scale) === 0) continue;
    const other = owners.get(service.container_name);
    if (other === undefined) {
      owners.set(service.container_name, name);
      continue;
    }
    throw new TsfigError(
      'conflict',
      `services "${other}" and "${name}" both set container_name "${service.container_name}": only one of them can have its container`,
      {
        hint: `give services.${other}.container_name and services.${name}.container_name different values, or start one of the services at a time (up ${other})`,
      },
    );
  }
}

/**
 * A service that takes volumes (`volumes_from: [db]`) or the network namespace (`network_mode: service:db`) of
 * another needs a container of it: one this plan converges (the donor is in scope) or one that exists already,
 * running or not. With `--no-deps`, or a donor behind a disabled profile, neither may hold: compose v2 refuses
 * ("cannot share volume with service db: container missing") rather than keep or start the user without it.
 */
function assertDonorsPresent(project: Project, observed: ObservedState, services: readonly string[]): void {
  const inScope = new Set(services);
  const hasContainer = new Set(
    projectContainers(project.name, observed)
      .filter((c) => !c.oneoff)
      .map((c) => c.service),
  );
  for (const name of services) {
    const service = project.services[name];
    if (service === undefined) continue;
    const donors: [string, string][] = [];
    for (const entry of service.volumes_from) {
      if (!entry.startsWith('container:')) donors.push([entry.split(':')[0] ?? entry, 'volume']);
    }
    if (service.network_mode?.startsWith('service:') === true) {
      donors.push([service.network_mode.slice('service:'.length), 'network namespace']);
    }
    for (const [donor, what] of donors) {
      if (inScope.has(donor) || hasContainer.has(donor)) continue;
      throw new TsfigError('not-found', `cannot share ${what} with service ${donor}: container missing`, {
        hint: `service "${name}" needs a container of "${donor}": run up ${donor} (or up without --no-deps) first`,
      });
    }
  }
}

// ---------- entry points ----------

/** Decides what `up` (and `create`, `start`-like commands) must do. Throws TsfigError on impossible requests. */
export function plan(project: Project, observed: ObservedState, options: PlanOptions = {}): Plan {
  if (options.forceRecreate === true && options.noRecreate === true) {
    throw new TsfigError('usage', '--force-recreate and --no-recreate cannot be combined');
  }
  if (options.alwaysRecreateDeps === true && options.noRecreate === true) {
    throw new TsfigError('usage', '--always-recreate-deps and --no-recreate cannot be combined');
  }
  for (const [name, count] of Object.entries(options.scale ?? {})) {
    if (project.services[name] === undefined) throw new TsfigError('usage', `--scale: no such service: ${name}`);
    if (!Number.isInteger(count) || count < 0) {
      throw new TsfigError('usage', `--scale ${name}=${count}: the number of containers must be a whole number >= 0`);
    }
  }
  const b = new PlanBuilder();
  const oneOff = options.oneOff?.spec.service;
  const scope = dependencyOrder(
    project,
    oneOff === undefined ? servicesInScope(project, options) : oneOffScope(project, oneOff, options),
  );
  assertUniqueContainerNames(project, options, scope);
  assertDonorsPresent(project, observed, oneOff === undefined ? scope : [...scope, oneOff]);
  const selected = new Set(options.services ?? []);
  const ctx: Context = {
    project,
    observed,
    options,
    selectedAll: selected.size === 0,
    selected,
    changed: new Map(),
    warnings: [],
  };
  const containers = projectContainers(project.name, observed);
  const plans = scope.map((name) => {
    const service = project.services[name] as Service;
    return planService(
      ctx,
      service,
      containers.filter((c) => !c.oneoff && c.service === name),
    );
  });
  assertImagesPresent(ctx, plans);
  for (const name of scope) {
    const service = project.services[name] as Service;
    // Warnings do not depend on the hash or the replica number.
    for (const warning of serviceContainerSpec(project, service, 1, { configHash: '' }).warnings) b.warn(warning);
  }
  for (const warning of ctx.warnings) b.warn(warning);
  const orphans = orphansOf(project, containers, false);
  if (orphans.length > 0 && options.removeOrphans !== true) b.warn(orphanWarning(orphans));
  const infrastructure = oneOff === undefined ? scope : [...scope, oneOff];
  if (oneOff !== undefined) assertOneOffImage(ctx, oneOff);
  const networks = planNetworks(b, ctx, infrastructure);
  const volumes = planVolumes(b, ctx, infrastructure);
  const removed = planRemovals(b, ctx, plans, options.removeOrphans === true ? orphans : []);
  const done = planStarts(b, ctx, plans, networks, volumes, removed);
  planOneOff(b, ctx, plans, networks, volumes, done);
  return b.build(project.name);
}

/** Decides what `down` must do: containers in reverse dependency order, then networks, then (-v) volumes. */
export function planDown(project: Project, observed: ObservedState, options: DownOptions = {}): Plan {
  const b = new PlanBuilder();
  const ctx = { options };
  const scoped = options.services !== undefined && options.services.length > 0;
  const containers = projectContainers(project.name, observed).filter(
    (c) => !scoped || options.services.includes(c.service),
  );
  const orphans = scoped ? [] : orphansOf(project, containers, true);
  if (orphans.length > 0 && options.removeOrphans !== true) b.warn(orphanWarning(orphans));
  const allServices = { ...project.disabled_services, ...project.services };
  const order = dependencyOrder({ ...project, services: allServices }, Object.keys(allServices));
  const dependents = dependentsOf({ ...project, services: allServices }, order);
  const removes: number[] = [];
  const stopsByService = new Map<string, number[]>();
  const removeVolumes = options.volumes === true;
  // With -v the anonymous volumes are swept once every container is gone (below): two containers sharing one and
  // removed in parallel would each see the other still using it.
  const ctxVolumes = false;
  const reason = 'project down';
  if (options.removeOrphans === true) {
    for (const c of orphans) {
      const group = `remove:service:${c.service}:${c.number}`;
      const orphanReason = `orphan: service ${c.service} is not in the project`;
      removes.push(
        addRemoval(
          b,
          ctx,
          { container: c, service: undefined, reason: orphanReason, group, removeVolumes: ctxVolumes },
          [],
        )[1],
      );
    }
  }
  for (const name of [...order].reverse()) {
    const stopDeps = (dependents.get(name) ?? []).flatMap((d) => stopsByService.get(d) ?? []);
    const stops: number[] = [];
    const mine = containers.filter((c) => c.service === name).sort((a, b2) => -byNumberThenAge(a, b2));
    for (const c of mine) {
      const group = `remove:service:${name}:${c.oneoff ? c.name : c.number}`;
      const [stop, remove] = addRemoval(
        b,
        ctx,
        { container: c, service: allServices[name], reason, group, removeVolumes: ctxVolumes },
        stopDeps,
      );
      if (stop !== undefined) stops.push(stop);
      removes.push(remove);
    }
    stopsByService.set(name, stops);
  }
  if (!scoped) {
    const kept = options.removeOrphans === true ? [] : orphans;
    planDownNetworks(b, project, observed, removes, kept);
  }
  if (removeVolumes) {
    for (const key of scoped ? [] : Object.keys(project.volumes).sort()) {
      const volume = project.volumes[key];
      if (volume === undefined || volume.external) continue;
      if (!observed.volumes.some((v) => v.name === volume.name)) continue;
      b.add(OpKind.VolumeRemove, `volume:${key}`, reason, { name: volume.name }, removes, {
        group: `remove:volume:${key}`,
      });
    }
    const ofProject = scoped ? containers : undefined;
    planDownAnonymousVolumes(
      b,
      project,
      observed,
      containers,
      options.removeOrphans === true ? [] : orphans,
      removes,
      options.volumeUsers ?? {},
      ofProject,
    );
  }
  for (const image of options.images ?? []) {
    b.add(OpKind.ImageRemove, `image:${image}`, 'down --rmi', { image }, removes, { group: `remove:image:${image}` });
  }
  return b.build(project.name);
}

/**
 * `down -v`: the anonymous volumes of the project (labelled with it, or mounted by its removed containers) that
 * exist, once every container is gone; one still used by a container outside the plan (`users`, the whole host's) is
 * kept, with a warning naming its users.
 */
function planDownAnonymousVolumes(
  b: PlanBuilder,
  project: Project,
  observed: ObservedState,
  containers: readonly ObservedContainer[],
  kept: readonly ObservedContainer[],
  removes: readonly number[],
  users: Readonly<Record<string, readonly string[]>>,
  only?: readonly ObservedContainer[],
): void {
  const names = new Set<string>();
  for (const volume of only !== undefined ? [] : observed.volumes) {
    if (volume.labels[Label.Project] === project.name && volume.labels[ANONYMOUS_LABEL] !== undefined) {
      names.add(volume.name);
    }
  }
  const keptIds = new Set(kept.map((c) => c.id));
  for (const c of containers) {
    if (keptIds.has(c.id)) continue;
    for (const mount of c.mounts) if (mount.anonymous && mount.volumeName !== undefined) names.add(mount.volumeName);
  }
  const removed = new Set(containers.filter((c) => !keptIds.has(c.id)).flatMap((c) => [c.name, c.id]));
  const present = new Set(observed.volumes.map((volume) => volume.name));
  for (const name of [...names].sort()) {
    if (!present.has(name)) continue;
    const others = (users[name] ?? []).filter((user) => !removed.has(user));
    if (others.length > 0) {
      b.warn(`volume ${name} is kept: it is in use by ${others.join(', ')}`);
      continue;
    }
    b.add(OpKind.VolumeRemove, `volume:${name}`, 'project down: anonymous volume', { name }, removes, {
      group: `remove:volume:${name}`,
    });
  }
}

/**
 * Declared non-external networks that exist, plus networks labelled with the project (removed from the file). A
 * network a kept container (an orphan without --remove-orphans: e.g. a service of another file of the project) is
 * attached to stays, with compose v2's warning ("Resource is still in use"), instead of failing the down.
 */
function planDownNetworks(
  b: PlanBuilder,
  project: Project,
  observed: ObservedState,
  removes: readonly number[],
  kept: readonly ObservedContainer[],
): void {
  const byName = new Map<string, string>();
  for (const network of Object.values(project.networks)) {
    if (!network.external && observed.networks.some((n) => n.name === network.name))
      byName.set(network.name, network.key);
  }
  for (const network of observed.networks) {
    if (network.labels[Label.Project] === project.name && !byName.has(network.name)) {
      byName.set(network.name, network.labels[Label.Network] ?? network.name);
    }
  }
  for (const name of [...byName.keys()].sort()) {
    const key = byName.get(name) ?? name;
    const users = kept.filter((c) => c.spec?.networks?.some((attachment) => attachment.name === name));
    if (users.length > 0) {
      b.warn(`network ${name} is kept: it is still in use by ${users.map((c) => c.name).join(', ')}`);
      continue;
    }
    b.add(OpKind.NetworkRemove, `network:${key}`, 'project down', { name }, removes, {
      group: `remove:network:${key}`,
    });
  }
}
