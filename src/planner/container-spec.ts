/**
 * Compose service → engine container spec (pure). Also the names and labels tsfig gives what it creates, so that
 * observation and planning agree on them.
 */
import type { ContainerSpec, Ulimit } from '../../engine/containers/index.js';
import type { PortSpec } from '../../engine/network/index.js';
import type { ContainerFile } from '../../engine/volumes/index.js';
import type { MountSpec, Propagation, TmpfsMountSpec } from '../../engine/volumes/index.js';
import { TsfigError } from '../errors.js';
import type { Project, Service, ServiceVolume } from '../model/project.js';
import type {
  ContainerCreateSpec,
  HealthcheckSpec,
  NetworkAttachmentSpec,
  NetworkModeSpec,
  RestartPolicySpec,
  VolumesFromSpec,
  LinkSpec,
} from './plan.js';

/** Labels tsfig puts on what it creates (compose v2's set with `io.tsfig`). */
export const Label = {
  Project: 'io.tsfig.project',
  Service: 'io.tsfig.service',
  ContainerNumber: 'io.tsfig.container-number',
  ConfigHash: 'io.tsfig.config-hash',
  Oneoff: 'io.tsfig.oneoff',
  ConfigFiles: 'io.tsfig.project.config_files',
  WorkingDir: 'io.tsfig.project.working_dir',
  DependsOn: 'io.tsfig.depends_on',
  Network: 'io.tsfig.network',
  Volume: 'io.tsfig.volume',
} as const;

/**
 * labels plus compose's own name for each of tsfig's (`io.tsfig.X` → `com.docker.compose.X`): scripts written for
 * compose select a project's containers, networks and volumes by `label=com.docker.compose.project=NAME`. tsfig
 * reads only its own.
 */
export function withComposeLabels(labels: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = { ...labels };
  for (const [key, value] of Object.entries(labels)) {
    if (key.startsWith('io.tsfig.')) out[`com.docker.compose.${key.slice('io.tsfig.'.length)}`] = value;
  }
  return out;
}

/** `<project>-<service>-<n>`, or `container_name`. */
export function containerName(project: Project, service: Service, number: number): string {
  return service.container_name ?? `${project.name}-${service.name}-${number}`;
}

/** The name of a service's first container: what `volumes_from: svc` and `network_mode: service:svc` refer to. */
export function firstContainerName(project: Project, serviceName: string): string {
  const service = project.services[serviceName] ?? project.disabled_services[serviceName];
  return service !== undefined ? containerName(project, service, 1) : `${project.name}-${serviceName}-1`;
}

/** The host names of the networks a service's containers join, in its order (the default bridge for network_mode: bridge). */
function networkNames(project: Project, service: Service): string[] {
  if (service.network_mode === 'bridge') return [DEFAULT_BRIDGE_NETWORK];
  if (service.network_mode !== undefined) return [];
  return networkKeys(service).map((key) => project.networks[key]?.name ?? `${project.name}_${key}`);
}

/** `links: [svc, svc:alias]` → the linked containers and their aliases (only when there are links). */
function linkSpecs(project: Project, service: Service, images: ImagePorts): { links?: LinkSpec[] } {
  if (service.links.length === 0) return {};
  return {
    // compose v2 links each under its alias, `<service>-<n>` and `<project>-<service>-<n>` (convergence.go getLinks)
    links: service.links.flatMap((link) => {
      const [target = link, alias] = link.split(':');
      const linked = project.services[target] ?? project.disabled_services[target];
      // Docker's link variables list the linked image's exposed ports, then the service's expose and ports targets
      const exposedPorts =
        linked === undefined
          ? []
          : [
              ...new Set([
                ...(images?.[serviceImage(project, linked)]?.exposedPorts ?? []),
                ...serviceExposedPorts(linked),
              ]),
            ];
      const container = firstContainerName(project, target);
      const aliases = [...new Set([alias ?? target, `${target}-1`, `${project.name}-${target}-1`])];
      // where the linked container is reached: the networks both services join, in this one's order (none: no link)
      const theirs = linked === undefined ? [] : networkNames(project, linked);
      const networks = networkNames(project, service).filter((name) => theirs.includes(name));
      return aliases.map((name) => ({
        container,
        alias: name,
        networks,
        ...(exposedPorts.length > 0 ? { exposedPorts } : {}),
      }));
    }),
  };
}

/** A service's `expose` (ranges expanded) and `ports` targets as `PORT/proto`, as Docker's container config has them. */
export function serviceExposedPorts(service: Service): string[] {
  const out = new Set<string>();
  for (const entry of service.expose) {
    const [range = '', proto = 'tcp'] = entry.split('/');
    const [first = NaN, last = first] = range.split('-').map(Number);
    for (let port = first; Number.isInteger(port) && port <= last && port - first < 65536; port++) {
      out.add(`${port}/${proto}`);
    }
  }
  for (const port of service.ports) out.add(`${port.target}/${port.protocol}`);
  return [...out];
}

/** A service's `stop_grace_period` in whole seconds (rounded up), what the engine and the stop ops take. */
export function stopGraceSeconds(service: Service): number {
  return Math.ceil(service.stop_grace_period / 1000);
}

/** The image a service's containers run: `image`, else the name a build would have tagged (`<project>-<service>`). */
export function serviceImage(project: Project, service: Service): string {
  return service.image ?? `${project.name}-${service.name}`;
}

/** The observed images (ObservedState.images) as far as links need them: each one's exposed ports. */
type ImagePorts = Readonly<Record<string, { readonly exposedPorts?: readonly string[] } | undefined>> | undefined;

export interface ServiceContainerOptions {
  /** Value of the `io.tsfig.config-hash` label (hash.ts `serviceConfigHash`). */
  readonly configHash: string;
  /** The observed images: a linked service's image's exposed ports go into the link (LinkSpec.exposedPorts). */
  readonly images?: ImagePorts;
}

export interface ServiceContainer {
  readonly spec: ContainerCreateSpec;
  /** Keys the engine cannot honour yet, one sentence each. */
  readonly warnings: readonly string[];
}

/** Builds what `container.create` needs for replica `number` of `service`. */
export function serviceContainerSpec(
  project: Project,
  service: Service,
  number: number,
  options: ServiceContainerOptions,
): ServiceContainer {
  const warn = new Warnings(service.name);
  const name = containerName(project, service, number);
  const mounts = mountSpecs(project, service, warn);
  const files = secretFiles(project, service, mounts, warn);
  const container: ContainerSpec = {
    name,
    image: serviceImage(project, service),
    labels: containerLabels(project, service, number, options.configHash),
    ...processFields(service, warn),
    ...resourceFields(service, warn),
    ...securityFields(service, warn),
    ...logFields(service, warn),
    ...(files.length > 0 ? { files } : {}),
  };
  const spec: ContainerCreateSpec = {
    name,
    service: service.name,
    number,
    container,
    mounts,
    volumesFrom: volumesFromSpecs(project, service),
    volumeLabels: withComposeLabels({ [Label.Project]: project.name }),
    network: networkMode(project, service, warn),
    ports: portSpecs(service, warn),
    inheritAnonymousFrom: undefined,
    restart: restartPolicy(service, warn),
    healthcheck: healthcheckSpec(service),
    ...linkSpecs(project, service, options.images),
  };
  warnUnsupported(service, warn);
  return { spec, warnings: warn.list };
}

class Warnings {
  readonly list: string[] = [];
  readonly #service: string;

  constructor(service: string) {
    this.#service = service;
  }

  /** `services.<name>.<key> is not supported yet and is ignored`, or a custom sentence after the key. */
  key(key: string, sentence = 'is not supported yet and is ignored'): void {
    const text = `services.${this.#service}.${key} ${sentence}`;
    if (!this.list.includes(text)) this.list.push(text);
  }
}

// ---------- labels ----------

/** compose's `depends_on` label: `svc:condition:restart` for depends_on, links, volumes_from and network_mode. */
export function dependsOnLabel(service: Service): string {
  const entries = new Map<string, string>();
  for (const [name, dep] of Object.entries(service.depends_on)) entries.set(name, `${dep.condition}:${dep.restart}`);
  for (const name of implicitDependencies(service)) {
    if (!entries.has(name)) entries.set(name, 'service_started:false');
  }
  return [...entries.keys()]
    .sort()
    .map((name) => `${name}:${entries.get(name)}`)
    .join(',');
}

/** Services a service needs besides depends_on: links, volumes_from, network_mode/ipc/pid `service:X`. */
export function implicitDependencies(service: Service): string[] {
  const out = new Set<string>();
  for (const link of service.links) out.add(link.split(':')[0] ?? link);
  for (const entry of service.volumes_from) {
    if (!entry.startsWith('container:')) out.add(entry.split(':')[0] ?? entry);
  }
  for (const mode of [service.network_mode, service.other.ipc, service.other.pid]) {
    if (typeof mode === 'string' && mode.startsWith('service:')) out.add(mode.slice('service:'.length));
  }
  return [...out].sort();
}

function containerLabels(project: Project, service: Service, number: number, hash: string): Record<string, string> {
  return withComposeLabels({
    ...service.labels,
    [Label.Project]: project.name,
    [Label.Service]: service.name,
    [Label.ContainerNumber]: String(number),
    [Label.ConfigHash]: hash,
    [Label.Oneoff]: 'False',
    [Label.ConfigFiles]: project.config_files.join(','),
    [Label.WorkingDir]: project.project_directory,
    [Label.DependsOn]: dependsOnLabel(service),
  });
}

// ---------- process, resources, security, logging ----------

function processFields(service: Service, warn: Warnings): Partial<ContainerSpec> {
  // a variable declared without a value and not set (`environment: [KEY]`) is passed bare: the engine then removes
  // the image's KEY, as compose v2 and dockerd do
  const env = Object.entries(service.environment).map(([key, value]) => (value === null ? key : `${key}=${value}`));
  const exposedPorts = serviceExposedPorts(service);
  return {
    ...(exposedPorts.length > 0 ? { exposedPorts } : {}),
    ...(service.command !== undefined ? { cmd: [...service.command] } : {}),
    ...(service.entrypoint !== undefined ? { entrypoint: [...service.entrypoint] } : {}),
    ...(env.length > 0 ? { env } : {}),
    ...(service.working_dir !== undefined ? { workingDir: service.working_dir } : {}),
    ...(service.user !== undefined ? { user: service.user } : {}),
    ...(service.hostname !== undefined ? { hostname: service.hostname } : {}),
    ...(service.tty ? { tty: true } : {}),
    ...(service.stdin_open ? { openStdin: true } : {}),
    ...(service.init !== undefined ? { init: service.init } : {}),
    ...(service.stop_signal !== undefined ? { stopSignal: service.stop_signal } : {}),
    stopTimeout: stopGraceSeconds(service),
    ...extraHostsField(service, warn),
  };
}

function extraHostsField(service: Service, warn: Warnings): Partial<ContainerSpec> {
  const lines: string[] = [];
  for (const host of Object.keys(service.extra_hosts).sort()) {
    for (const address of service.extra_hosts[host] ?? []) {
      if (address === 'host-gateway')
        warn.key('extra_hosts', `"${host}:host-gateway" is not supported yet and is ignored`);
      else lines.push(`${address}\t${host}`);
    }
  }
  return lines.length > 0 ? { extraHosts: lines } : {};
}

function resourceFields(service: Service, warn: Warnings): Partial<ContainerSpec> {
  const limits = service.deploy?.resources.limits;
  const memory = service.mem_limit ?? limits?.memory;
  const cpus = service.cpus ?? limits?.cpus;
  const pids = service.pids_limit ?? limits?.pids;
  const ulimits: Ulimit[] = Object.keys(service.ulimits)
    .sort()
    .map((name) => ({ name, soft: service.ulimits[name]?.soft ?? 0, hard: service.ulimits[name]?.hard ?? 0 }));
  const cpuShares = numberOf(service.other.cpu_shares);
  if (service.mem_reservation !== undefined) warn.key('mem_reservation');
  if (service.deploy?.resources.reservations !== undefined) warn.key('deploy.resources.reservations');
  return {
    ...(memory !== undefined ? { memory } : {}),
    ...(service.memswap_limit !== undefined ? { memorySwap: service.memswap_limit } : {}),
    ...(cpus !== undefined ? { nanoCpus: Math.round(cpus * 1e9) } : {}),
    ...(cpuShares !== undefined ? { cpuShares } : {}),
    ...(pids !== undefined ? { pidsLimit: pids } : {}),
    ...(service.shm_size !== undefined ? { shmSize: service.shm_size } : {}),
    ...(ulimits.length > 0 ? { ulimits } : {}),
    ...(Object.keys(service.sysctls).length > 0 ? { sysctls: { ...service.sysctls } } : {}),
  };
}

function securityFields(service: Service, warn: Warnings): Partial<ContainerSpec> {
  const out: { -readonly [K in keyof ContainerSpec]?: ContainerSpec[K] } = {};
  if (service.privileged) out.privileged = true;
  if (service.read_only) out.readonlyRootfs = true;
  if (service.userns_mode !== undefined) out.userns = service.userns_mode;
  if (service.cap_add.length > 0) out.capAdd = [...service.cap_add];
  if (service.cap_drop.length > 0) out.capDrop = [...service.cap_drop];
  const groups = service.other.group_add;
  if (Array.isArray(groups)) out.groupAdd = groups.map(String);
  const securityOpt = service.other.security_opt;
  for (const option of Array.isArray(securityOpt) ? securityOpt.map(String) : []) {
    if (/^no-new-privileges(?:[:=]true)?$/.test(option)) out.noNewPrivileges = true;
    else if (/^seccomp[:=]unconfined$/.test(option)) out.seccomp = 'unconfined';
    else warn.key('security_opt', `"${option}" is not supported yet and is ignored`);
  }
  return out;
}

function logFields(service: Service, warn: Warnings): Partial<ContainerSpec> {
  const logging = service.logging;
  if (logging === undefined) return {};
  if (logging.driver !== undefined && logging.driver !== 'json-file' && logging.driver !== 'local') {
    warn.key('logging.driver', `"${logging.driver}" is not supported yet: json-file is used`);
  }
  const out: { logMaxSize?: number; logMaxFiles?: number } = {};
  for (const key of Object.keys(logging.options).sort()) {
    const value = logging.options[key] ?? '';
    if (key === 'max-size' && sizeInBytes(value) !== undefined) out.logMaxSize = sizeInBytes(value);
    else if (key === 'max-file' && /^\d+$/.test(value)) out.logMaxFiles = Number(value);
    else warn.key(`logging.options.${key}`);
  }
  return out;
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

function sizeInBytes(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([bkmg]?)b?$/i.exec(text.trim());
  if (match === null) return undefined;
  return Math.round(Number(match[1]) * (SIZE_UNITS[(match[2] ?? '').toLowerCase()] ?? 1));
}

function numberOf(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

// ---------- mounts ----------

function mountSpecs(project: Project, service: Service, warn: Warnings): MountSpec[] {
  const out: MountSpec[] = [];
  service.volumes.forEach((volume, index) => {
    const spec = serviceMount(project, service, volume, `service "${service.name}" volumes[${index}]`, warn);
    if (spec !== undefined) out.push(spec);
  });
  service.tmpfs.forEach((entry, index) =>
    out.push(tmpfsFromString(entry, `service "${service.name}" tmpfs[${index}]`)),
  );
  return out;
}

function serviceMount(
  project: Project,
  service: Service,
  volume: ServiceVolume,
  origin: string,
  warn: Warnings,
): MountSpec | undefined {
  const base = { target: volume.target, readonly: volume.read_only, origin };
  switch (volume.type) {
    case 'bind': {
      const notes = volume.bind?.selinux !== undefined ? [`${origin}: SELinux relabelling is ignored`] : [];
      if (volume.bind?.recursive !== undefined)
        warn.key('volumes', `bind.recursive (${volume.target}) is not supported yet`);
      return {
        ...base,
        notes,
        type: 'bind',
        source: volume.source ?? '',
        propagation: propagationOf(volume.bind?.propagation),
        createHostPath: volume.bind?.create_host_path ?? true,
      };
    }
    case 'volume': {
      const nocopy = volume.volume?.nocopy ?? false;
      const subpath = volume.volume?.subpath !== undefined ? { subpath: volume.volume.subpath } : {};
      if (volume.source === undefined) return { ...base, notes: [], type: 'volume', nocopy, ...subpath };
      const declared = project.volumes[volume.source];
      return { ...base, notes: [], type: 'volume', source: declared?.name ?? volume.source, nocopy, ...subpath };
    }
    case 'tmpfs':
      return {
        ...base,
        notes: [],
        type: 'tmpfs',
        tmpfs: {
          flags: {},
          ...(volume.read_only ? { readonly: true } : {}),
          ...(volume.tmpfs?.size !== undefined ? { size: String(volume.tmpfs.size) } : {}),
          ...(volume.tmpfs?.mode !== undefined ? { mode: volume.tmpfs.mode } : {}),
          data: [],
        },
      };
    case 'image': {
      if (volume.source === undefined || volume.source === '') {
        warn.key('volumes', `type "image" (${volume.target}) names no image (source) and is ignored`);
        return undefined;
      }
      // Read-only whatever read_only says, as compose and Docker mount it.
      return {
        ...base,
        readonly: true,
        notes: [],
        type: 'image',
        source: volume.source,
        ...(volume.image?.subpath !== undefined ? { subpath: volume.image.subpath } : {}),
      };
    }
    case 'npipe':
    case 'cluster':
      warn.key('volumes', `type "${volume.type}" (${volume.target}) is not supported yet and is ignored`);
      return undefined;
  }
}

const PROPAGATIONS: readonly string[] = ['private', 'shared', 'rshared', 'slave', 'rslave', 'rprivate'];

function propagationOf(value: string | undefined): Propagation {
  return value !== undefined && PROPAGATIONS.includes(value) ? (value as Propagation) : 'rprivate';
}

/** `tmpfs: ["/run", "/tmp:size=64m,mode=1777"]`. */
function tmpfsFromString(entry: string, origin: string): TmpfsMountSpec {
  const colon = entry.indexOf(':');
  const target = colon < 0 ? entry : entry.slice(0, colon);
  const flags: Record<string, boolean> = {};
  const data: string[] = [];
  let size: string | undefined;
  let mode: number | undefined;
  let readonly = false;
  for (const word of colon < 0 ? [] : entry.slice(colon + 1).split(',')) {
    const [key = '', value] = word.split('=', 2);
    if (key === 'size' && value !== undefined) size = String(sizeInBytes(value) ?? value);
    else if (key === 'mode' && value !== undefined && /^[0-7]+$/.test(value)) mode = parseInt(value, 8);
    else if (key === 'ro') readonly = true;
    else if (['noexec', 'nosuid', 'nodev'].includes(key)) flags[key] = true;
    else if (['exec', 'suid', 'dev'].includes(key)) flags[`no${key}`] = false;
    else if (key !== '' && key !== 'rw') data.push(word);
  }
  return {
    type: 'tmpfs',
    target,
    readonly,
    origin,
    notes: [],
    tmpfs: {
      flags,
      ...(readonly ? { readonly } : {}),
      ...(size !== undefined ? { size } : {}),
      ...(mode !== undefined ? { mode } : {}),
      data,
    },
  };
}

// ---------- secrets and configs ----------

/**
 * `secrets:` and `configs:` of a service, as compose v2 gives them: a `file:` source is bound read-only from the host
 * (added to `mounts`); an `environment:` or `content:` source, or a file with uid/gid/mode (which compose ignores
 * for binds), becomes a file the engine writes root-only in the container's dir and binds read-only, owned by
 * uid:gid (default 0:0) with the mode (default 0444). A volume on the same target wins (compose).
 */
function secretFiles(project: Project, service: Service, mounts: MountSpec[], warn: Warnings): ContainerFile[] {
  const files: ContainerFile[] = [];
  const taken = new Set(mounts.map((mount) => mount.target));
  for (const kind of ['secrets', 'configs'] as const) {
    service[kind].forEach((ref, index) => {
      const origin = `service "${service.name}" ${kind}[${index}]`;
      const what = kind === 'secrets' ? 'secret' : 'config';
      const declared = project[kind][ref.source];
      if (declared === undefined) return; // the loader reported it
      const where = `${kind}.${ref.source}`;
      if (declared.external) {
        throw new TsfigError('config', `${where}: external ${kind} live in a swarm cluster, which tsfig does not run`, {
          hint: `declare it with file: or environment: instead (used by service "${service.name}")`,
        });
      }
      for (const key of ['driver', 'template_driver'] as const) {
        if (declared[key] !== undefined) {
          throw new TsfigError('config', `${where}.${key} is not supported (as in docker compose: no swarm)`);
        }
      }
      const target = ref.target;
      if (taken.has(target)) {
        warn.key(kind, `[${index}] (${target}) is hidden by a volume mounted at the same path`);
        return;
      }
      taken.add(target);
      const owned = ref.uid !== undefined || ref.gid !== undefined || ref.mode !== undefined;
      if (declared.file !== undefined && !owned) {
        mounts.push({
          type: 'bind',
          source: declared.file,
          target,
          readonly: true,
          propagation: 'rprivate',
          createHostPath: false,
          origin: `${origin} (${what} file)`,
          notes: [],
        });
        return;
      }
      const content = declared.value;
      if (content === undefined) {
        throw new TsfigError(
          'config',
          `environment variable "${declared.environment ?? ''}" required by ${what} "${ref.source}" is not set`,
          { hint: `set it in the shell or in the project's .env file (used by service "${service.name}")` },
        );
      }
      files.push({
        destination: target,
        uid: Number(ref.uid ?? 0),
        gid: Number(ref.gid ?? 0),
        mode: ref.mode ?? 0o444,
        content,
        origin,
      });
    });
  }
  return files;
}

function volumesFromSpecs(project: Project, service: Service): VolumesFromSpec[] {
  return service.volumes_from.map((entry) => {
    const parts = entry.split(':');
    const last = parts[parts.length - 1];
    const mode: 'ro' | 'rw' = last === 'ro' ? 'ro' : 'rw';
    const withoutMode = last === 'ro' || last === 'rw' ? parts.slice(0, -1) : parts;
    if (withoutMode[0] === 'container') return { container: withoutMode.slice(1).join(':'), mode };
    return { container: firstContainerName(project, withoutMode.join(':')), mode };
  });
}

// ---------- network ----------

/** The engine-wide network of `network_mode: bridge` (docker's default bridge), created on first use, never by down. */
export const DEFAULT_BRIDGE_NETWORK = 'bridge';

function networkMode(project: Project, service: Service, warn: Warnings): NetworkModeSpec {
  const mode = service.network_mode;
  if (mode === 'host') return { mode: 'host' };
  if (mode === 'none') return { mode: 'none' };
  if (mode?.startsWith('service:') === true) {
    return { mode: 'container', container: firstContainerName(project, mode.slice('service:'.length)) };
  }
  if (mode?.startsWith('container:') === true) return { mode: 'container', container: mode.slice('container:'.length) };
  if (mode === 'bridge') {
    // Docker's default bridge: one engine-wide network, no project's, no aliases (links are how its containers meet).
    const bridge = { network: DEFAULT_BRIDGE_NETWORK, aliases: [], ipv4Address: undefined, macAddress: undefined };
    return { mode: 'networks', networks: [bridge] };
  }
  if (mode !== undefined) {
    warn.key('network_mode', `"${mode}" is not supported yet: the container gets no network`);
    return { mode: 'none' };
  }
  return { mode: 'networks', networks: attachments(project, service, warn) };
}

/** The service's network keys, the default route's first: the highest gw_priority (docker 28), then priority, then the name. */
function networkKeys(service: Service): string[] {
  return Object.keys(service.networks).sort((a, b) => {
    const byGateway = (service.networks[b]?.gw_priority ?? 0) - (service.networks[a]?.gw_priority ?? 0);
    if (byGateway !== 0) return byGateway;
    const byPriority = (service.networks[b]?.priority ?? 0) - (service.networks[a]?.priority ?? 0);
    return byPriority !== 0 ? byPriority : a < b ? -1 : a > b ? 1 : 0;
  });
}

function attachments(project: Project, service: Service, warn: Warnings): NetworkAttachmentSpec[] {
  const keys = networkKeys(service);
  const serviceMac = typeof service.other.mac_address === 'string' ? service.other.mac_address : undefined;
  return keys.map((key, index) => {
    const config = service.networks[key];
    const where = `networks.${key}`;
    if (config?.ipv6_address !== undefined) warn.key(`${where}.ipv6_address`);
    if ((config?.link_local_ips.length ?? 0) > 0) warn.key(`${where}.link_local_ips`);
    if (Object.keys(config?.driver_opts ?? {}).length > 0) warn.key(`${where}.driver_opts`);
    if (config?.interface_name !== undefined) warn.key(`${where}.interface_name`);
    const aliases = [...new Set([service.name, ...(config?.aliases ?? [])])];
    const mac = config?.mac_address ?? (index === 0 ? serviceMac : undefined);
    if (mac !== undefined) warn.key(config?.mac_address !== undefined ? `${where}.mac_address` : 'mac_address');
    return {
      network: project.networks[key]?.name ?? `${project.name}_${key}`,
      aliases,
      ipv4Address: config?.ipv4_address,
      macAddress: mac,
    };
  });
}

function portSpecs(service: Service, warn: Warnings): PortSpec[] {
  const out: PortSpec[] = [];
  for (const port of service.ports) {
    if (port.protocol !== 'tcp' && port.protocol !== 'udp') {
      warn.key('ports', `protocol "${port.protocol}" (${port.target}) is not supported yet and is ignored`);
      continue;
    }
    out.push({
      hostIp: port.host_ip ?? '',
      hostPorts: hostPortRange(port.published),
      containerPorts: { start: port.target, end: port.target },
      proto: port.protocol,
    });
  }
  return out;
}

function hostPortRange(published: string | undefined): { start: number; end: number } | undefined {
  if (published === undefined || published === '') return undefined;
  const [start = '', end = start] = published.split('-', 2);
  return { start: Number(start), end: Number(end) };
}

/** docker's `-p` text of a port spec (`127.0.0.1:8080:80/tcp`), for `NetworkManager.attach({ ports })`. */
export function portSpecFlag(spec: PortSpec): string {
  const range = (r: { start: number; end: number }) => (r.start === r.end ? `${r.start}` : `${r.start}-${r.end}`);
  const host = spec.hostPorts !== undefined ? range(spec.hostPorts) : '';
  const container = `${range(spec.containerPorts)}/${spec.proto}`;
  if (spec.hostIp !== '') return `${spec.hostIp}:${host}:${container}`;
  return host !== '' ? `${host}:${container}` : container;
}

/**
 * The engine's container spec for a create op, without `mounts` (those need resolving against the volume store):
 * networks, published ports, network mode, restart policy and healthcheck in the engine's form. The port passes
 * this to the engine's create with the resolved mounts; the planner compares it with a container's recorded spec.
 */
export function toEngineContainerSpec(spec: ContainerCreateSpec): ContainerSpec {
  const network = spec.network;
  const networking: Partial<ContainerSpec> =
    network.mode === 'networks'
      ? {
          networks: network.networks.map((attachment) => ({
            name: attachment.network,
            aliases: attachment.aliases,
            ...(attachment.ipv4Address !== undefined ? { ip: attachment.ipv4Address } : {}),
          })),
          ports: spec.ports.map(portSpecFlag),
        }
      : { network: network.mode === 'container' ? `container:${network.container}` : network.mode };
  const health = spec.healthcheck;
  return {
    ...spec.container,
    name: spec.name,
    ...networking,
    ...(spec.restart.name !== 'no'
      ? { restart: { name: spec.restart.name, maxRetries: spec.restart.maxRetries } }
      : {}),
    ...(health?.test !== undefined
      ? {
          healthcheck: {
            test: [...health.test],
            intervalMs: health.intervalMs,
            timeoutMs: health.timeoutMs,
            retries: health.retries,
            startPeriodMs: health.startPeriodMs,
            startIntervalMs: health.startIntervalMs,
          },
        }
      : {}),
  };
}

// ---------- restart and health ----------

function restartPolicy(service: Service, warn: Warnings): RestartPolicySpec {
  const match = /^(no|always|unless-stopped|on-failure)(?::(\d+))?$/.exec(service.restart);
  if (match === null) {
    warn.key('restart', `"${service.restart}" is not a restart policy and is ignored`);
    return { name: 'no', maxRetries: undefined };
  }
  const name = match[1] as RestartPolicySpec['name'];
  return { name, maxRetries: name === 'on-failure' && match[2] !== undefined ? Number(match[2]) : undefined };
}

function healthcheckSpec(service: Service): HealthcheckSpec | undefined {
  const check = service.healthcheck;
  if (check === undefined || check.disable) return undefined;
  return {
    test: check.test,
    intervalMs: check.interval,
    timeoutMs: check.timeout,
    retries: check.retries,
    startPeriodMs: check.start_period,
    startIntervalMs: check.start_interval,
  };
}

// ---------- keys with no effect yet ----------

/** Keys of `other` that are mapped above, or read elsewhere (`develop`: tsfig watch and up --watch). */
const MAPPED_OTHER = new Set([
  'cpu_shares',
  'group_add',
  'security_opt',
  'mac_address',
  'develop',
  'post_start',
  'pre_stop',
  'pre_start',
]);

function warnUnsupported(service: Service, warn: Warnings): void {
  const simple: [string, boolean][] = [
    ['domainname', service.domainname !== undefined],
    ['dns', service.dns.length > 0],
    ['dns_search', service.dns_search.length > 0],
    ['dns_opt', service.dns_opt.length > 0],
    ['external_links', service.external_links.length > 0],
    ['devices', service.devices.length > 0],
    ['annotations', Object.keys(service.annotations).length > 0],
    ['platform', service.platform !== undefined],
  ];
  for (const [key, set] of simple) if (set) warn.key(key);
  const deploy = service.deploy;
  if (deploy?.mode !== undefined && deploy.mode !== 'replicated')
    warn.key('deploy.mode', `"${deploy.mode}" is not supported yet`);
  if (deploy?.restart_policy !== undefined) warn.key('deploy.restart_policy', 'is not supported yet: use restart');
  for (const key of Object.keys(deploy?.other ?? {}).sort()) warn.key(`deploy.${key}`);
  for (const key of Object.keys(service.other).sort()) if (!MAPPED_OTHER.has(key)) warn.key(key);
}
