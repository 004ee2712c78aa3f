/**
 * Literal projects and observed states for planner tests: a Service with every field defaulted as the loader would,
 * and observed containers that match (or deliberately differ from) what the planner would create.
 */
import {
  containerName,
  serviceContainerSpec,
  serviceImage,
  toEngineContainerSpec,
} from '../../src/planner/container-spec.js';
import { serviceConfigHash } from '../../src/planner/hash.js';
import type { ObservedContainer, ObservedState } from '../../src/planner/observed.js';
import type { Network, Project, Service, Volume } from '../../src/model/project.js';

export const DEFAULT_IMAGE = 'busybox:latest';
export const DEFAULT_IMAGE_ID = 'sha256:1111111111111111111111111111111111111111111111111111111111111111';

/** A service as the loader would normalise `image: busybox:latest` plus the overrides. */
export function service(name: string, overrides: Partial<Service> = {}): Service {
  return {
    name,
    image: DEFAULT_IMAGE,
    build: undefined,
    command: undefined,
    entrypoint: undefined,
    environment: {},
    env_file: [],
    ports: [],
    expose: [],
    volumes: [],
    volumes_from: [],
    depends_on: {},
    links: [],
    external_links: [],
    healthcheck: undefined,
    restart: 'no',
    container_name: undefined,
    hostname: undefined,
    domainname: undefined,
    working_dir: undefined,
    user: undefined,
    labels: {},
    annotations: {},
    profiles: [],
    scale: 1,
    stop_grace_period: 10_000,
    stop_signal: undefined,
    tty: false,
    stdin_open: false,
    privileged: false,
    read_only: false,
    userns_mode: undefined,
    init: undefined,
    cap_add: [],
    cap_drop: [],
    dns: [],
    dns_search: [],
    dns_opt: [],
    extra_hosts: {},
    tmpfs: [],
    ulimits: {},
    sysctls: {},
    networks: overrides.network_mode !== undefined ? {} : { default: defaultServiceNetwork() },
    network_mode: undefined,
    logging: undefined,
    mem_limit: undefined,
    mem_reservation: undefined,
    memswap_limit: undefined,
    shm_size: undefined,
    cpus: undefined,
    pids_limit: undefined,
    pull_policy: 'missing',
    platform: undefined,
    secrets: [],
    configs: [],
    deploy: undefined,
    devices: [],
    other: {},
    extensions: {},
    ...overrides,
  };
}

export function defaultServiceNetwork(): Service['networks'][string] {
  return {
    aliases: [],
    ipv4_address: undefined,
    ipv6_address: undefined,
    link_local_ips: [],
    mac_address: undefined,
    driver_opts: {},
    priority: 0,
    gw_priority: undefined,
    interface_name: undefined,
  };
}

export function network(projectName: string, key: string, overrides: Partial<Network> = {}): Network {
  return {
    key,
    name: `${projectName}_${key}`,
    driver: undefined,
    driver_opts: {},
    external: false,
    internal: false,
    attachable: false,
    enable_ipv4: undefined,
    enable_ipv6: undefined,
    ipam: undefined,
    labels: {},
    extensions: {},
    ...overrides,
  };
}

export function volume(projectName: string, key: string, overrides: Partial<Volume> = {}): Volume {
  return {
    key,
    name: `${projectName}_${key}`,
    driver: undefined,
    driver_opts: {},
    external: false,
    labels: {},
    extensions: {},
    ...overrides,
  };
}

/**
 * A project named `name` (default "tsfig") with these services; `networks` gets `default` when a service joins it,
 * as the loader does. Extra networks and volumes are given by key.
 */
export function project(
  services: readonly Service[],
  extra: { name?: string; networks?: readonly string[]; volumes?: readonly string[] } = {},
): Project {
  const name = extra.name ?? 'tsfig';
  const networkKeys = new Set(extra.networks ?? []);
  if (services.some((s) => 'default' in s.networks)) networkKeys.add('default');
  return {
    name,
    project_directory: '/srv/app',
    config_files: ['/srv/app/tsfig.yaml'],
    services: Object.fromEntries(services.map((s) => [s.name, s])),
    disabled_services: {},
    networks: Object.fromEntries([...networkKeys].sort().map((key) => [key, network(name, key)])),
    volumes: Object.fromEntries((extra.volumes ?? []).map((key) => [key, volume(name, key)])),
    secrets: {},
    configs: {},
    models: {},
    profiles: [],
    extensions: {},
  };
}

/** A container exactly as `up` would have left it for `service` (running, same config hash and image). */
export function runningContainer(
  p: Project,
  s: Service,
  number = 1,
  overrides: Partial<ObservedContainer> = {},
): ObservedContainer {
  const hash = serviceConfigHash(s);
  const create = serviceContainerSpec(p, s, number, { configHash: hash }).spec;
  const spec = toEngineContainerSpec(create);
  const name = containerName(p, s, number);
  return {
    id: `id-${name}`,
    name,
    project: p.name,
    service: s.name,
    number,
    oneoff: false,
    configHash: hash,
    running: true,
    paused: false,
    status: 'running',
    exitCode: 0,
    imageId: DEFAULT_IMAGE_ID,
    labels: spec.labels ?? {},
    created: '2026-01-01T00:00:00.000Z',
    mounts: [],
    spec,
    ...overrides,
  };
}

/** An exited container of `service` (same config). */
export function stoppedContainer(p: Project, s: Service, number = 1, exitCode = 0): ObservedContainer {
  return runningContainer(p, s, number, { running: false, status: 'exited', exitCode });
}

/** Observed state: these containers, the project's networks and volumes as existing (labelled), every image present. */
export function observedUp(p: Project, containers: readonly ObservedContainer[]): ObservedState {
  return {
    containers,
    networks: Object.values(p.networks)
      .filter((n) => !n.external)
      .map((n) => ({ name: n.name, labels: { 'io.tsfig.project': p.name, 'io.tsfig.network': n.key } })),
    volumes: Object.values(p.volumes)
      .filter((v) => !v.external)
      .map((v) => ({ name: v.name, labels: { 'io.tsfig.project': p.name, 'io.tsfig.volume': v.key } })),
    images: imagesOf(p),
  };
}

/** Observed state of a fresh machine: nothing but the images. */
export function observedEmpty(p: Project): ObservedState {
  return { containers: [], networks: [], volumes: [], images: imagesOf(p) };
}

function imagesOf(p: Project): Record<string, { id: string }> {
  const out: Record<string, { id: string }> = {};
  for (const s of Object.values(p.services)) out[serviceImage(p, s)] = { id: DEFAULT_IMAGE_ID };
  return out;
}

/** db, and app depending on it (service_started); both on the default network: the compose verbs' test project. */
export function dependentPair(appOverrides: Partial<Service> = {}): Project {
  const net = { default: defaultServiceNetwork() };
  const started = { condition: 'service_started', required: true, restart: false } as const;
  return project([
    service('db', { networks: net }),
    service('app', { networks: net, depends_on: { db: started }, ...appOverrides }),
  ]);
}

/** Every service of `p` with one running container, as `up` leaves it. */
export function observedRunning(p: Project): ObservedState {
  return observedUp(
    p,
    Object.values(p.services).map((s) => runningContainer(p, s)),
  );
}

/** A `build:` section as the loader normalises `build: CONTEXT`. */
export function buildOf(context: string): NonNullable<Service['build']> {
  return {
    context,
    dockerfile: 'Dockerfile',
    dockerfile_inline: undefined,
    args: {},
    target: undefined,
    labels: {},
    cache_from: [],
    cache_to: [],
    no_cache: false,
    pull: false,
    network: undefined,
    shm_size: undefined,
    extra_hosts: {},
    ssh: [],
    secrets: [],
    tags: [],
    platforms: [],
    additional_contexts: {},
    isolation: undefined,
    privileged: false,
    ulimits: {},
    entitlements: [],
    extensions: {},
  };
}
