/**
 * The image phase of `up`, `create` and `run` (pure): which images to pull (compose's pull_policy, `--pull`) and which
 * services to build, as plan operations with reasons. It runs before the container plan is made, because whether a
 * container is recreated depends on the image a build produces; `--dry-run` shows both phases as one plan.
 */
import { TsfigError } from '../errors.js';
import type { FileContent } from '../../engine/volumes/index.js';
import type { Project, Service } from '../model/project.js';
import { serviceImage } from './container-spec.js';
import type { ObservedState } from './observed.js';
import { OpKind, type ImageBuildSpec, type Operation, type Plan } from './plan.js';
import { dependencyOrder, servicesInScope } from './reconcile.js';

export type PullDecision = 'pull' | 'skip' | 'build' | 'missing-never';

const UNIT_MS: Record<string, number> = { w: 7 * 86_400_000, d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 };

/** `every_1d12h` → ms; undefined for anything else. */
export function policyInterval(policy: string): number | undefined {
  if (policy === 'daily') return UNIT_MS.d;
  if (policy === 'weekly') return UNIT_MS.w;
  const match = /^every_((?:[0-9]+[wdhms])+)$/.exec(policy);
  if (match === null) return undefined;
  let total = 0;
  for (const part of (match[1] ?? '').matchAll(/([0-9]+)([wdhms])/g)) {
    total += Number(part[1]) * (UNIT_MS[part[2] ?? 's'] ?? 0);
  }
  return total;
}

/**
 * What to do for a service's image under policy (compose's pull_policy): `always` pulls, `never` uses what is
 * there (missing-never when absent), `missing`/`if_not_present` pulls when absent, `build` builds, `daily`/
 * `weekly`/`every_<duration>` pull when absent or when the last pull is older; `refresh` is treated as always.
 * `now` is the caller's clock (ms since the epoch).
 */
export function pullDecision(
  policy: string,
  state: { present: boolean; hasBuild: boolean; lastPulledMs?: number | undefined; now: number },
): PullDecision {
  switch (policy) {
    case 'always':
    case 'refresh':
      return 'pull';
    case 'never':
      return state.present ? 'skip' : 'missing-never';
    case 'build':
      return 'build';
    case 'missing':
    case 'if_not_present':
    case '':
      return state.present ? 'skip' : state.hasBuild ? 'build' : 'pull';
    default: {
      const interval = policyInterval(policy);
      if (interval === undefined) {
        throw new TsfigError('config', `unknown pull_policy "${policy}"`, {
          hint: 'use always, never, missing, build, daily, weekly or every_<duration> (e.g. every_12h)',
        });
      }
      if (!state.present) return state.hasBuild ? 'build' : 'pull';
      const last = state.lastPulledMs;
      return last === undefined || state.now - last >= interval ? 'pull' : 'skip';
    }
  }
}

export interface ImagePlanOptions {
  /** The services whose images are needed (the container plan's scope); all when empty. */
  readonly services?: readonly string[];
  /** `--pull`: overrides every service's pull_policy. */
  readonly pull?: string | undefined;
  /**
   * true (`up`): build every service with `build:` (the layer cache makes an unchanged one cheap); `missing`
   * (`run`): only those whose image is not there yet; false (`--no-build`): none. @default true
   */
  readonly build?: boolean | 'missing';
  /** The environment build args without a value are taken from (compose's rule). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The clock for interval pull policies (ms since the epoch). */
  readonly now: number;
  /** When each image was last pulled (ms), for interval policies; from observe. */
  readonly lastPulled?: Readonly<Record<string, number | undefined>>;
}

/** `build.args` with compose's rule for a key without a value: take it from the environment, else leave it out. */
export function resolveBuildArgs(
  service: Service,
  env: Readonly<Record<string, string | undefined>>,
  extra: readonly string[] = [],
): Record<string, string> {
  const args: Record<string, string> = {};
  for (const [key, value] of Object.entries(service.build?.args ?? {})) {
    const resolved = value ?? env[key];
    if (resolved !== undefined) args[key] = resolved;
  }
  for (const entry of extra) {
    const index = entry.indexOf('=');
    const key = index < 0 ? entry : entry.slice(0, index);
    const value = index < 0 ? env[key] : entry.slice(index + 1);
    if (value !== undefined) args[key] = value;
  }
  return args;
}

/**
 * `build.secrets` of a service by id (the long syntax's `target`, else the source), from the top-level `secrets:`
 * (`file:` read when the RUN that mounts it starts, `environment:` the variable's value); an external secret or an
 * unset variable fails the plan, as for a service's secrets.
 */
export function buildSecretsOf(project: Project, service: Service): Record<string, FileContent> {
  const secrets: Record<string, FileContent> = {};
  (service.build?.secrets ?? []).forEach((ref, index) => {
    const declared = project.secrets[ref.source];
    if (declared === undefined) return; // the loader reported it
    const where = `secrets.${ref.source}`;
    if (declared.external) {
      throw new TsfigError('config', `${where}: external secrets live in a swarm cluster, which tsfig does not run`, {
        hint: `declare it with file: or environment: instead (used by service "${service.name}" build.secrets[${index}])`,
      });
    }
    if (declared.value === undefined) {
      throw new TsfigError(
        'config',
        `environment variable "${declared.environment ?? ''}" required by secret "${ref.source}" is not set`,
        { hint: `set it in the shell or in the project's .env file (used by service "${service.name}" build.secrets)` },
      );
    }
    secrets[ref.target] = declared.value;
  });
  return secrets;
}

/** The services whose images a service's build uses as named contexts (`additional_contexts: {x: service:NAME}`). */
export function contextServicesOf(service: Service | undefined): string[] {
  return Object.values(service?.build?.additional_contexts ?? {}).flatMap((value) =>
    value?.startsWith('service:') === true ? [value.slice('service:'.length)] : [],
  );
}

/** `build.additional_contexts` as the builder takes them (the loader made directories absolute). */
export function namedContextsOf(project: Project, service: Service): ImageBuildSpec['contexts'] {
  const contexts: Record<string, { image: string } | { dir: string }> = {};
  for (const [name, value] of Object.entries(service.build?.additional_contexts ?? {})) {
    if (value === null) continue;
    if (value.startsWith('service:')) {
      const target = project.services[value.slice('service:'.length)];
      if (target !== undefined) contexts[name] = { image: serviceImage(project, target) };
    } else if (value.startsWith('docker-image://')) {
      contexts[name] = { image: value.slice('docker-image://'.length) };
    } else {
      contexts[name] = { dir: value };
    }
  }
  return contexts;
}

/**
 * The order builds run in: `names` in dependency order, each preceded by the services its build uses as named
 * contexts (transitively), which are added when not named: compose builds those on demand (addBuildDependencies).
 * The loader rejects cycles between them.
 */
export function buildOrder(project: Project, names: readonly string[]): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string): void => {
    if (seen.has(name)) return;
    seen.add(name);
    for (const dep of contextServicesOf(project.services[name])) visit(dep);
    order.push(name);
  };
  for (const name of dependencyOrder(project, names)) visit(name);
  return order;
}

/** The build operation's spec for a service with `build:`. */
export function buildSpecOf(
  project: Project,
  service: Service,
  env: Readonly<Record<string, string | undefined>>,
  overrides: { noCache?: boolean; pull?: boolean; buildArgs?: readonly string[] } = {},
): ImageBuildSpec {
  const build = service.build;
  if (build === undefined) throw new TsfigError('internal', `service ${service.name} has no build section`);
  const dockerfile = build.dockerfile.startsWith('/') ? build.dockerfile : `${build.context}/${build.dockerfile}`;
  return {
    service: service.name,
    image: serviceImage(project, service),
    tags: [...build.tags],
    context: build.context,
    dockerfile,
    dockerfileInline: build.dockerfile_inline,
    args: resolveBuildArgs(service, env, overrides.buildArgs ?? []),
    target: build.target,
    labels: Object.fromEntries(
      Object.entries(build.labels).flatMap(([key, value]) => (value === null ? [] : [[key, value]])),
    ),
    noCache: overrides.noCache === true || build.no_cache,
    pull: overrides.pull === true || build.pull,
    secrets: buildSecretsOf(project, service),
    contexts: namedContextsOf(project, service),
  };
}

/**
 * Pulls (one per image, for every service that uses it) then builds (one after the other, dependencies first).
 * A pull for an image a service can also build is best effort: the build follows anyway.
 */
export function planImages(project: Project, observed: ObservedState, options: ImagePlanOptions): Plan {
  const selected = options.services ?? [];
  const names = dependencyOrder(project, selected.length > 0 ? selected : Object.keys(project.services));
  const operations: Operation[] = [];
  const pulls = new Map<string, { services: string[]; reason: string; bestEffort: boolean }>();
  // An image another service of the project builds is that build's, not a registry's (compose's
  // isServiceImageToBuild): it is never pulled, and a missing one is built by that service.
  const builders = new Map<string, string>();
  for (const service of Object.values(project.services)) {
    const image = serviceImage(project, service);
    if (service.build !== undefined && !builders.has(image)) builders.set(image, service.name);
  }
  const extraBuilds = new Set<string>();
  for (const name of names) {
    const service = project.services[name];
    if (service === undefined) continue;
    const image = serviceImage(project, service);
    const present = observed.images[image] !== undefined;
    const builder = service.build === undefined ? builders.get(image) : undefined;
    if (builder !== undefined) {
      if (!present) extraBuilds.add(builder);
      continue;
    }
    const policy = options.pull ?? service.pull_policy;
    const decision = pullDecision(policy, {
      present,
      hasBuild: service.build !== undefined,
      lastPulledMs: options.lastPulled?.[image],
      now: options.now,
    });
    if (decision === 'missing-never') {
      throw new TsfigError(
        'not-found',
        `image ${image} of service ${name} is not present and its pull_policy is never`,
        {
          hint: `get it in first: tsfig image pull ${image}, tsfig image import FILE ${image}, or build it`,
        },
      );
    }
    if (decision !== 'pull') continue;
    const entry = pulls.get(image);
    const why = present ? `pull_policy ${policy === '' ? 'missing' : policy}` : 'not present locally';
    if (entry === undefined) {
      pulls.set(image, { services: [name], reason: why, bestEffort: service.build !== undefined });
    } else {
      entry.services.push(name);
      entry.bestEffort &&= service.build !== undefined;
    }
  }
  for (const [image, { services, reason, bestEffort }] of pulls) {
    operations.push({
      id: operations.length + 1,
      kind: OpKind.ImagePull,
      resource: `image:${image}`,
      reason: `${reason} (${services.join(', ')})`,
      dependsOn: [],
      group: `pull:image:${image}`,
      ...(bestEffort ? { bestEffort: true } : {}),
      spec: { image, services },
    });
  }
  if (options.build !== false) {
    const pullIds = operations.map((op) => op.id);
    let previous: number | undefined;
    const buildNames = buildOrder(project, [...new Set([...names, ...extraBuilds])]);
    // a service whose image a selected build uses as a named context is built as if selected
    const selectedNames = new Set(names.flatMap((name) => buildOrder(project, [name])));
    for (const name of buildNames) {
      const service = project.services[name];
      if (service?.build === undefined) continue;
      const spec = buildSpecOf(project, service, options.env ?? {});
      const id = operations.length + 1;
      const present = observed.images[spec.image] !== undefined;
      // pull_policy: build builds on every up, as in compose
      if (present && options.build === 'missing' && service.pull_policy !== 'build') continue;
      // a service outside the selection is built only because a selected one runs its image
      if (!selectedNames.has(name) && present) continue;
      operations.push({
        id,
        kind: OpKind.ImageBuild,
        resource: `service:${name}`,
        reason: present ? 'build: (the layer cache keeps unchanged steps)' : 'build: (image not built yet)',
        dependsOn: previous === undefined ? pullIds : [previous],
        group: `build:image:${spec.image}`,
        spec,
      });
      previous = id;
    }
  }
  const warnings = operations.flatMap((op) =>
    op.kind === OpKind.ImageBuild ? ignoredBuildKeys(project.services[op.spec.service]) : [],
  );
  return { version: 1, project: project.name, operations, warnings };
}

export interface BuildPlanOptions {
  /** The services named (`tsfig build web`); all when empty. */
  readonly services: readonly string[];
  /** `--no-cache`. */
  readonly noCache?: boolean;
  /** `--pull`: pull the FROM images again. */
  readonly pull?: boolean;
  /** `--build-arg KEY=VALUE` entries, over the file's `build.args`. */
  readonly buildArgs?: readonly string[];
  /** The environment build args without a value are taken from. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * `tsfig build`: a build of every named service that has `build:` (all when none is named), whether its image is
 * there or not (the layer cache keeps unchanged steps), one after the other in `buildOrder` (dependencies, and the
 * services whose images a build uses as named contexts, first). Services without `build:` are left out.
 */
export function planBuild(project: Project, options: BuildPlanOptions): Plan {
  const names = options.services.length > 0 ? options.services : Object.keys(project.services);
  const operations: Operation[] = [];
  for (const name of buildOrder(project, names)) {
    const service = project.services[name];
    if (service?.build === undefined) continue;
    const spec = buildSpecOf(project, service, options.env, {
      noCache: options.noCache === true,
      pull: options.pull === true,
      buildArgs: options.buildArgs ?? [],
    });
    const previous = operations.at(-1)?.id;
    operations.push({
      id: operations.length + 1,
      kind: OpKind.ImageBuild,
      resource: `service:${name}`,
      reason: 'tsfig build',
      dependsOn: previous === undefined ? [] : [previous],
      group: `build:image:${spec.image}`,
      spec,
    });
  }
  const warnings = operations.flatMap((op) =>
    op.kind === OpKind.ImageBuild ? ignoredBuildKeys(project.services[op.spec.service]) : [],
  );
  return { version: 1, project: project.name, operations, warnings };
}

export interface PullPlanOptions {
  /** The services named (`tsfig pull web`); all when empty. */
  readonly services: readonly string[];
  /** `--include-deps`: the named services' dependencies too. */
  readonly includeDeps?: boolean;
  /** `--policy`: `always` pulls every image, `missing` only those not present. @default 'always' */
  readonly policy?: 'always' | 'missing';
  /** `--ignore-pull-failures`: every pull is best effort. */
  readonly ignoreFailures?: boolean;
}

/**
 * The services a `pull` or `push` acts on, in name order: those named (all when none), with `includeDeps` what they
 * depend on; a name the project does not have is a usage error.
 */
function namedServices(
  project: Project,
  options: { readonly services: readonly string[]; readonly includeDeps?: boolean },
): [string, Service][] {
  const named = options.services;
  const scope =
    named.length === 0
      ? Object.keys(project.services)
      : options.includeDeps === true
        ? [...servicesInScope(project, { services: named })]
        : [...named];
  return [...new Set(scope)].sort().map((name) => {
    const service = project.services[name];
    if (service === undefined) {
      const known = Object.keys(project.services).sort().join(', ');
      throw new TsfigError('usage', `no such service: ${name}`, { hint: `services: ${known}` });
    }
    return [name, service];
  });
}

/**
 * `tsfig pull`: one `image.pull` per image of the services named (all when none; `includeDeps` adds what they
 * depend on), listing its services in name order. Services whose pull_policy is `build` or `never` are not pulled
 * (compose), nor, under `--policy missing`, an image that is present or that a service of it can build. A pull is
 * best effort with `ignoreFailures`, or when one of its services has `build:` (it can be built instead).
 */
export function planPull(project: Project, observed: ObservedState, options: PullPlanOptions): Plan {
  const pulls = new Map<string, { services: string[]; present: boolean; bestEffort: boolean }>();
  for (const [name, service] of namedServices(project, options)) {
    // compose: services to build (pull_policy build) and `never` are not pulled
    if (service.pull_policy === 'build' || service.pull_policy === 'never') continue;
    const image = serviceImage(project, service);
    const present = observed.images[image] !== undefined;
    const hasBuild = service.build !== undefined;
    const decision = pullDecision(options.policy ?? 'always', { present, hasBuild, now: 0 });
    if (decision !== 'pull') continue;
    const entry = pulls.get(image);
    const bestEffort = options.ignoreFailures === true || hasBuild;
    if (entry === undefined) pulls.set(image, { services: [name], present, bestEffort });
    else {
      entry.services.push(name);
      entry.bestEffort ||= bestEffort;
    }
  }
  const operations: Operation[] = [...pulls].map(([image, { services, present, bestEffort }], index) => ({
    id: index + 1,
    kind: OpKind.ImagePull,
    resource: `image:${image}`,
    reason: `${present ? 'present, pulled again (--policy always)' : 'not present locally'} (${services.join(', ')})`,
    dependsOn: [],
    group: `pull:image:${image}`,
    ...(bestEffort ? { bestEffort: true } : {}),
    spec: { image, services },
  }));
  return { version: 1, project: project.name, operations, warnings: [] };
}

export interface PushPlanOptions {
  /** The services named (`tsfig push web`); all when empty. */
  readonly services: readonly string[];
  /** `--include-deps`: the named services' dependencies too. */
  readonly includeDeps?: boolean;
  /** `--ignore-push-failures`: every push is best effort, and an image not built yet is left out with a warning. */
  readonly ignoreFailures?: boolean;
}

/**
 * `tsfig push`: one `image.push` per reference of the services named (all when none; `includeDeps` adds what they
 * depend on) that have both `image:` and `build:` (compose pushes only those: the others are someone else's
 * images), their `build.tags` too, each reference once, listing its services. An image that is not present is
 * refused before anything is pushed (build it first), unless failures are ignored: then it is left out, with a
 * warning. Every push is best effort with `ignoreFailures`.
 */
export function planPush(project: Project, observed: ObservedState, options: PushPlanOptions): Plan {
  const pushes = new Map<string, { services: string[]; tag: boolean }>();
  const warnings: string[] = [];
  for (const [name, service] of namedServices(project, options)) {
    if (service.image === undefined || service.build === undefined) continue;
    if (observed.images[service.image] === undefined) {
      if (options.ignoreFailures === true) {
        warnings.push(`image ${service.image} of service ${name} is not built yet: not pushed`);
        continue;
      }
      throw new TsfigError('not-found', `image ${service.image} of service ${name} is not built yet`, {
        hint: `build it first: tsfig build ${name} (nothing was pushed)`,
      });
    }
    for (const [index, reference] of [service.image, ...service.build.tags].entries()) {
      const entry = pushes.get(reference);
      if (entry === undefined) pushes.set(reference, { services: [name], tag: index > 0 });
      else if (!entry.services.includes(name)) entry.services.push(name);
    }
  }
  const operations: Operation[] = [...pushes].map(([image, { services, tag }], index) => ({
    id: index + 1,
    kind: OpKind.ImagePush,
    resource: `image:${image}`,
    reason: `${tag ? 'build.tags' : 'image: and build:'} (${services.join(', ')})`,
    dependsOn: [],
    group: `push:image:${image}`,
    ...(options.ignoreFailures === true ? { bestEffort: true } : {}),
    spec: { image, services },
  }));
  return { version: 1, project: project.name, operations, warnings };
}

export interface CommitPlanOptions {
  readonly service: string;
  /** `--index`: the service's container number. @default 1 */
  readonly index?: number;
  /** REPOSITORY[:TAG]; undefined: an untagged image. */
  readonly reference?: string | undefined;
  /** `-c` Dockerfile instructions. */
  readonly changes?: readonly string[];
  /** `-m`, `-a`. */
  readonly message?: string | undefined;
  readonly author?: string | undefined;
}

/**
 * `tsfig commit SERVICE [REFERENCE]`: one `image.commit` of the service's container number `index` (compose's
 * `--index`, not a one-off). A service without that container is refused (nothing is made).
 */
export function planCommit(project: Project, observed: ObservedState, options: CommitPlanOptions): Plan {
  const index = options.index ?? 1;
  const container = observed.containers.find(
    (candidate) => !candidate.oneoff && candidate.service === options.service && candidate.number === index,
  );
  if (container === undefined) {
    throw new TsfigError('not-found', `service "${options.service}" has no container number ${index}`, {
      hint: 'create it with: tsfig up -d (see the containers with: tsfig ps -a)',
    });
  }
  const into = options.reference === undefined ? 'an untagged image' : options.reference;
  const operation: Operation = {
    id: 1,
    kind: OpKind.ImageCommit,
    resource: `service:${options.service}:${index}`,
    reason: `tsfig commit: its changes as ${into}`,
    dependsOn: [],
    group: `commit:service:${options.service}:${index}`,
    spec: {
      container: container.id,
      name: container.name,
      service: options.service,
      reference: options.reference,
      changes: [...(options.changes ?? [])],
      message: options.message,
      author: options.author,
    },
  };
  return { version: 1, project: project.name, operations: [operation], warnings: [] };
}

/**
 * The `build:` keys the builder does not do yet (docs/compatibility.md), one warning each when a service that is
 * built sets them: the build goes on without them.
 */
export function ignoredBuildKeys(service: Service | undefined): string[] {
  const build = service?.build;
  if (service === undefined || build === undefined) return [];
  const set: [string, boolean][] = [
    ['ssh', build.ssh.length > 0],
    ['cache_from', build.cache_from.length > 0],
    ['cache_to', build.cache_to.length > 0],
    ['platforms', build.platforms.length > 0],
    ['network', build.network !== undefined],
    ['shm_size', build.shm_size !== undefined],
    ['extra_hosts', Object.keys(build.extra_hosts).length > 0],
    ['isolation', build.isolation !== undefined],
    ['privileged', build.privileged],
    ['ulimits', Object.keys(build.ulimits).length > 0],
    ['entitlements', build.entitlements.length > 0],
  ];
  return set
    .filter(([, present]) => present)
    .map(([key]) => `services.${service.name}.build.${key} is not supported yet and is ignored`);
}

/** The images an image plan will produce (pulled or built): the container plan may assume they are there. */
export function imagesProduced(images: Plan): string[] {
  return images.operations.flatMap((op) =>
    op.kind === OpKind.ImagePull || op.kind === OpKind.ImageBuild ? [op.spec.image] : [],
  );
}

/**
 * `down --rmi`: `local` removes the images compose built under their default name (services with `build:` and no
 * `image:`), `all` every image the services use. Only images present are planned; each once.
 */
export function imagesToRemove(project: Project, observed: ObservedState, mode: 'local' | 'all'): string[] {
  const out = new Set<string>();
  const services = [...Object.values(project.services), ...Object.values(project.disabled_services)];
  for (const service of services.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (mode === 'local' && service.image !== undefined) continue;
    const image = serviceImage(project, service);
    if (observed.images[image] !== undefined) out.add(image);
  }
  return [...out];
}
