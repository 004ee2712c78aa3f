/**
 * The canonical form `docker compose config` (v2/v5) prints, applied to tsfig's printable project (renderProject):
 * keys in compose-go's field order (types.Project, types.ServiceConfig, types.BuildConfig, ...), not sorted; values
 * compose leaves out because they are Go zero values (`false`) or were not written (keys the loader defaulted); a
 * service network entry with nothing set printed as `null`. The result still loads back to the same project.
 */
import type { ImplicitKey } from '../../model/project.js';

/** How one kind of object is printed: its keys in order, what it drops, and the kinds of its children. */
interface Shape {
  readonly order: readonly string[];
  /** Keys dropped when they hold this value (compose's omitempty on a Go zero value, or tsfig's default). */
  readonly drop?: Readonly<Record<string, unknown>>;
  /** Child key -> kind of the child: an object (`build`), each item of a list (`[port]`), each value of a map. */
  readonly children?: Readonly<Record<string, Child>>;
}

type Child = { readonly one: Kind } | { readonly each: Kind } | { readonly values: Kind };

type Kind =
  | 'project'
  | 'service'
  | 'build'
  | 'port'
  | 'serviceVolume'
  | 'serviceNetwork'
  | 'dependsOn'
  | 'healthcheck'
  | 'serviceSecret'
  | 'envFile'
  | 'device'
  | 'deploy'
  | 'network'
  | 'ipam'
  | 'ipamPool'
  | 'volume'
  | 'secret';

/** compose-go v2 types.go, types/build.go, types/healthcheck.go: the yaml field order of each struct. */
const SHAPES: Readonly<Record<Kind, Shape>> = {
  project: {
    order: ['name', 'services', 'networks', 'volumes', 'secrets', 'configs', 'models'],
    children: {
      services: { values: 'service' },
      networks: { values: 'network' },
      volumes: { values: 'volume' },
      secrets: { values: 'secret' },
      configs: { values: 'secret' },
    },
  },
  service: {
    order: (
      'profiles annotations attach build develop blkio_config cap_add cap_drop cgroup_parent cgroup cpu_count ' +
      'cpu_percent cpu_period cpu_quota cpu_rt_period cpu_rt_runtime cpus cpuset cpu_shares command configs ' +
      'container_name credential_spec depends_on deploy device_cgroup_rules devices dns dns_opt dns_search ' +
      'dockerfile domainname entrypoint provider environment env_file expose extends external_links extra_hosts ' +
      'group_add gpus hostname healthcheck image init ipc isolation labels label_file links logging log_driver ' +
      'log_opt mem_limit mem_reservation memswap_limit mem_swappiness mac_address models net network_mode networks ' +
      'oom_kill_disable oom_score_adj pid pids_limit platform ports privileged pull_policy read_only restart ' +
      'runtime scale secrets security_opt shm_size stdin_open stop_grace_period stop_signal storage_opt sysctls ' +
      'tmpfs tty ulimits use_api_socket user userns_mode uts volume_driver volumes volumes_from working_dir ' +
      'pre_start post_start pre_stop'
    ).split(' '),
    drop: { tty: false, stdin_open: false, privileged: false, read_only: false },
    children: {
      build: { one: 'build' },
      ports: { each: 'port' },
      volumes: { each: 'serviceVolume' },
      networks: { values: 'serviceNetwork' },
      depends_on: { values: 'dependsOn' },
      healthcheck: { one: 'healthcheck' },
      secrets: { each: 'serviceSecret' },
      configs: { each: 'serviceSecret' },
      env_file: { each: 'envFile' },
      devices: { each: 'device' },
      deploy: { one: 'deploy' },
    },
  },
  build: {
    order: (
      'context dockerfile dockerfile_inline entitlements args provenance sbom ssh labels cache_from cache_to ' +
      'no_cache no_cache_filter additional_contexts pull extra_hosts isolation network target secrets shm_size tags ' +
      'ulimits platforms privileged'
    ).split(' '),
    drop: { no_cache: false, pull: false, privileged: false },
    children: { secrets: { each: 'serviceSecret' } },
  },
  port: { order: ['name', 'mode', 'host_ip', 'target', 'published', 'protocol', 'app_protocol'] },
  serviceVolume: {
    order: ['type', 'source', 'target', 'read_only', 'consistency', 'bind', 'volume', 'tmpfs', 'image'],
    drop: { read_only: false },
  },
  serviceNetwork: {
    order: [
      'aliases',
      'driver_opts',
      'gw_priority',
      'interface_name',
      'ipv4_address',
      'ipv6_address',
      'link_local_ips',
      'mac_address',
      'priority',
    ],
    drop: { priority: 0 },
  },
  dependsOn: { order: ['condition', 'restart', 'required'], drop: { restart: false } },
  healthcheck: {
    order: ['test', 'timeout', 'interval', 'retries', 'start_period', 'start_interval', 'disable'],
    drop: { disable: false },
  },
  serviceSecret: { order: ['source', 'target', 'uid', 'gid', 'mode'] },
  envFile: { order: ['path', 'required', 'format'] },
  device: { order: ['source', 'target', 'permissions'] },
  deploy: {
    order: [
      'mode',
      'replicas',
      'labels',
      'update_config',
      'rollback_config',
      'resources',
      'restart_policy',
      'placement',
      'endpoint_mode',
    ],
  },
  network: {
    order: [
      'name',
      'driver',
      'driver_opts',
      'ipam',
      'external',
      'internal',
      'attachable',
      'labels',
      'enable_ipv4',
      'enable_ipv6',
    ],
    drop: { external: false, internal: false, attachable: false },
    children: { ipam: { one: 'ipam' } },
  },
  ipam: { order: ['driver', 'config', 'options'], children: { config: { each: 'ipamPool' } } },
  ipamPool: { order: ['subnet', 'gateway', 'ip_range', 'aux_addresses'] },
  volume: { order: ['name', 'driver', 'driver_opts', 'external', 'labels'], drop: { external: false } },
  secret: {
    order: ['name', 'file', 'environment', 'content', 'external', 'labels', 'driver', 'driver_opts', 'template_driver'],
    drop: { external: false },
  },
};

const isMap = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/** Keys in the shape's order, then the others (tsfig-only keys, then `x-` extensions, as compose inlines them last). */
function orderedKeys(keys: readonly string[], order: readonly string[]): string[] {
  const rank = (key: string) => {
    const index = order.indexOf(key);
    return index >= 0 ? index : key.startsWith('x-') ? order.length + 1 : order.length;
  };
  return [...keys].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

function shaped(value: unknown, kind: Kind, implicit: readonly string[] = []): unknown {
  if (!isMap(value)) return value;
  const shape = SHAPES[kind];
  const out: Record<string, unknown> = {};
  for (const key of orderedKeys(Object.keys(value), shape.order)) {
    const item = value[key];
    if (implicit.includes(key)) continue;
    if (shape.drop !== undefined && key in shape.drop && shape.drop[key] === item) continue;
    const child = shape.children?.[key];
    if (child === undefined) out[key] = item;
    else if ('one' in child) out[key] = shaped(item, child.one);
    else if ('each' in child) out[key] = Array.isArray(item) ? item.map((entry) => shaped(entry, child.each)) : item;
    else out[key] = isMap(item) ? mapValues(item, child.values) : item;
  }
  return out;
}

function mapValues(map: Record<string, unknown>, kind: Kind): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, item] of Object.entries(map)) {
    const value = shaped(item, kind);
    // a service network with nothing set is `default: null` (compose-go's nil *ServiceNetworkConfig)
    out[name] = kind === 'serviceNetwork' && isMap(value) && Object.keys(value).length === 0 ? null : value;
  }
  return out;
}

/**
 * The canonical form of a printable project (renderProject's output), given each service's implicit keys. For JSON,
 * compose marshals the top level as a Go map (keys sorted) and prints `command` and `entrypoint` as null when unset.
 */
export function canonicalProject(
  rendered: Readonly<Record<string, unknown>>,
  implicit: Readonly<Record<string, readonly ImplicitKey[] | undefined>>,
  format: 'yaml' | 'json',
): Record<string, unknown> {
  const project = shaped(rendered, 'project') as Record<string, unknown>;
  if (isMap(project.services)) {
    const services: Record<string, unknown> = {};
    for (const [name, service] of Object.entries(rendered.services as Record<string, unknown>)) {
      const one = shaped(service, 'service', implicit[name] ?? []) as Record<string, unknown>;
      services[name] =
        format === 'json'
          ? shaped({ command: null, entrypoint: null, ...one }, 'service') // JSON: no omitempty on these two
          : one;
    }
    project.services = services;
  }
  if (format === 'yaml') return project;
  return Object.fromEntries(
    Object.keys(project)
      .sort()
      .map((key) => [key, project[key]]),
  );
}
