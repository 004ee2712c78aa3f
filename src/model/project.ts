/**
 * The desired state the planner reads: one immutable, normalised project built by src/config from the user's files.
 *
 * Field names are the Compose Specification's keys (snake_case), so `tsfig config` output, error messages and the
 * planner's "not supported yet" warnings all use the names users wrote. Every key of the spec is kept, including
 * those the engine does not act on yet. Units: durations are milliseconds, sizes are bytes, paths are absolute.
 */

import type { FileContent } from '../../engine/volumes/index.js';

/** A mapping of strings; a null value means "declared without a value" (e.g. `environment: [FOO]` with FOO unset). */
export type StringMap = Readonly<Record<string, string | null>>;

/** `x-*` extension fields, kept as written. */
export type Extensions = Readonly<Record<string, unknown>>;

export interface Project {
  /** Normalised project name: lowercase, `[a-z0-9_-]`, starting with a letter or digit. */
  readonly name: string;
  /** Absolute directory that relative paths were resolved against. */
  readonly project_directory: string;
  /** Absolute paths of the files that were loaded, in merge order (includes and extends not listed). */
  readonly config_files: readonly string[];
  /** Enabled services, by name. */
  readonly services: Readonly<Record<string, Service>>;
  /** Services switched off by profiles, by name (kept so `--profile` can be suggested). */
  readonly disabled_services: Readonly<Record<string, Service>>;
  readonly networks: Readonly<Record<string, Network>>;
  readonly volumes: Readonly<Record<string, Volume>>;
  readonly secrets: Readonly<Record<string, SecretOrConfig>>;
  readonly configs: Readonly<Record<string, SecretOrConfig>>;
  /** Top-level `models` (AI models), kept as written. */
  readonly models: Readonly<Record<string, unknown>>;
  /** Profiles enabled for this load (from --profile, COMPOSE_PROFILES and services named on the command line). */
  readonly profiles: readonly string[];
  readonly extensions: Extensions;
}

export interface PortMapping {
  /** Container port. */
  readonly target: number;
  /** Host port or range (`"8080"`, `"8000-8010"`); undefined = not published to a fixed port. */
  readonly published: string | undefined;
  /** Host IP to bind; undefined = all addresses. */
  readonly host_ip: string | undefined;
  /** @default "tcp" */
  readonly protocol: string;
  /** @default "ingress" */
  readonly mode: string;
  readonly name: string | undefined;
  readonly app_protocol: string | undefined;
}

export interface ServiceVolume {
  readonly type: 'bind' | 'volume' | 'tmpfs' | 'npipe' | 'image' | 'cluster';
  /** Absolute host path (bind), volume name (volume; undefined = anonymous), image reference (image). */
  readonly source: string | undefined;
  /** Absolute path in the container. */
  readonly target: string;
  /** @default false */
  readonly read_only: boolean;
  readonly consistency: string | undefined;
  readonly bind:
    | {
        readonly propagation: string | undefined;
        /** @default true for the short syntax, false for the long one (compose). */
        readonly create_host_path: boolean;
        readonly selinux: 'z' | 'Z' | undefined;
        readonly recursive: string | undefined;
      }
    | undefined;
  readonly volume: { readonly nocopy: boolean; readonly subpath: string | undefined } | undefined;
  readonly tmpfs: { readonly size: number | undefined; readonly mode: number | undefined } | undefined;
  readonly image: { readonly subpath: string | undefined } | undefined;
}

export interface DependsOn {
  /** @default "service_started" */
  readonly condition: 'service_started' | 'service_healthy' | 'service_completed_successfully';
  /** @default true */
  readonly required: boolean;
  /** @default false */
  readonly restart: boolean;
}

export interface Healthcheck {
  /** `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", "..."]`; undefined = the image's test. */
  readonly test: readonly string[] | undefined;
  /** Milliseconds; undefined = engine default (30 s). */
  readonly interval: number | undefined;
  readonly timeout: number | undefined;
  readonly retries: number | undefined;
  readonly start_period: number | undefined;
  readonly start_interval: number | undefined;
  /** @default false */
  readonly disable: boolean;
}

export interface Build {
  /** Absolute directory, or a URL (git, http). */
  readonly context: string;
  /** @default "Dockerfile" */
  readonly dockerfile: string;
  readonly dockerfile_inline: string | undefined;
  readonly args: StringMap;
  readonly target: string | undefined;
  readonly labels: StringMap;
  readonly cache_from: readonly string[];
  readonly cache_to: readonly string[];
  readonly no_cache: boolean;
  readonly pull: boolean;
  readonly network: string | undefined;
  /** Bytes. */
  readonly shm_size: number | undefined;
  readonly extra_hosts: Readonly<Record<string, readonly string[]>>;
  readonly ssh: readonly string[];
  readonly secrets: readonly ServiceSecret[];
  readonly tags: readonly string[];
  readonly platforms: readonly string[];
  readonly additional_contexts: StringMap;
  readonly isolation: string | undefined;
  readonly privileged: boolean;
  readonly ulimits: Readonly<Record<string, Ulimit>>;
  readonly entitlements: readonly string[];
  readonly extensions: Extensions;
}

export interface Ulimit {
  readonly soft: number;
  readonly hard: number;
}

export interface ServiceNetwork {
  readonly aliases: readonly string[];
  readonly ipv4_address: string | undefined;
  readonly ipv6_address: string | undefined;
  readonly link_local_ips: readonly string[];
  readonly mac_address: string | undefined;
  readonly driver_opts: Readonly<Record<string, string>>;
  /** @default 0 */
  readonly priority: number;
  readonly gw_priority: number | undefined;
  readonly interface_name: string | undefined;
}

export interface ServiceSecret {
  readonly source: string;
  /**
   * Absolute: for secrets `/run/secrets/<target or source>`, for configs `/<source>` by default. For a build secret,
   * the id a Dockerfile's `RUN --mount=type=secret,id=` names (default: the source).
   */
  readonly target: string;
  /** Numeric. */
  readonly uid: string | undefined;
  readonly gid: string | undefined;
  readonly mode: number | undefined;
}

export interface EnvFile {
  /** Absolute path. */
  readonly path: string;
  /** @default true */
  readonly required: boolean;
  readonly format: string | undefined;
}

export interface Logging {
  readonly driver: string | undefined;
  readonly options: Readonly<Record<string, string>>;
}

export interface Deploy {
  readonly mode: string | undefined;
  readonly replicas: number | undefined;
  readonly labels: StringMap;
  readonly resources: {
    readonly limits: ResourceLimits | undefined;
    readonly reservations: (ResourceLimits & { readonly devices: readonly unknown[] }) | undefined;
  };
  readonly restart_policy:
    | {
        readonly condition: string | undefined;
        /** Milliseconds. */
        readonly delay: number | undefined;
        readonly max_attempts: number | undefined;
        /** Milliseconds. */
        readonly window: number | undefined;
      }
    | undefined;
  /** Other deploy keys (placement, update_config, rollback_config, endpoint_mode), kept as written. */
  readonly other: Readonly<Record<string, unknown>>;
}

export interface ResourceLimits {
  readonly cpus: number | undefined;
  /** Bytes. */
  readonly memory: number | undefined;
  readonly pids: number | undefined;
}

export interface Service {
  readonly name: string;
  readonly image: string | undefined;
  readonly build: Build | undefined;
  /** Exec form; a string command is split like a shell would (no expansion). undefined = image default. */
  readonly command: readonly string[] | undefined;
  readonly entrypoint: readonly string[] | undefined;
  /** Final container environment: env_file values overridden by `environment`. */
  readonly environment: StringMap;
  readonly env_file: readonly EnvFile[];
  readonly ports: readonly PortMapping[];
  readonly expose: readonly string[];
  readonly volumes: readonly ServiceVolume[];
  readonly volumes_from: readonly string[];
  readonly depends_on: Readonly<Record<string, DependsOn>>;
  readonly links: readonly string[];
  readonly external_links: readonly string[];
  readonly healthcheck: Healthcheck | undefined;
  /** `no`, `always`, `on-failure[:N]`, `unless-stopped`. @default "no" */
  readonly restart: string;
  readonly container_name: string | undefined;
  readonly hostname: string | undefined;
  readonly domainname: string | undefined;
  readonly working_dir: string | undefined;
  readonly user: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly profiles: readonly string[];
  /** Number of containers: `scale`, else `deploy.replicas`, else 1. */
  readonly scale: number;
  /** Milliseconds. @default 10000 */
  readonly stop_grace_period: number;
  readonly stop_signal: string | undefined;
  readonly tty: boolean;
  readonly stdin_open: boolean;
  readonly privileged: boolean;
  readonly read_only: boolean;
  /** `auto`: a user namespace with subordinate ids of its own; `host`: the host's ids. Unset: TSFIG_USERNS, else host. */
  readonly userns_mode: 'host' | 'auto' | undefined;
  readonly init: boolean | undefined;
  readonly cap_add: readonly string[];
  readonly cap_drop: readonly string[];
  readonly dns: readonly string[];
  readonly dns_search: readonly string[];
  readonly dns_opt: readonly string[];
  /** Host name → addresses. */
  readonly extra_hosts: Readonly<Record<string, readonly string[]>>;
  readonly tmpfs: readonly string[];
  readonly ulimits: Readonly<Record<string, Ulimit>>;
  readonly sysctls: Readonly<Record<string, string>>;
  /** Networks joined, by project-level key; `default` when none is given and network_mode is unset. */
  readonly networks: Readonly<Record<string, ServiceNetwork>>;
  /** `bridge`, `host`, `none`, `service:NAME`, `container:NAME`. */
  readonly network_mode: string | undefined;
  readonly logging: Logging | undefined;
  /** Bytes. */
  readonly mem_limit: number | undefined;
  readonly mem_reservation: number | undefined;
  readonly memswap_limit: number | undefined;
  readonly shm_size: number | undefined;
  readonly cpus: number | undefined;
  readonly pids_limit: number | undefined;
  /** @default "missing" */
  readonly pull_policy: string;
  readonly platform: string | undefined;
  readonly secrets: readonly ServiceSecret[];
  readonly configs: readonly ServiceSecret[];
  readonly deploy: Deploy | undefined;
  readonly devices: readonly { readonly source: string; readonly target: string; readonly permissions: string }[];
  /**
   * Every other key of the spec that was set (cpu_shares, ipc, pid, develop, post_start, security_opt, ...), with
   * booleans and numbers coerced from strings and sizes/durations converted; the planner warns about each by name.
   */
  readonly other: Readonly<Record<string, unknown>>;
  readonly extensions: Extensions;
  /**
   * The keys holding tsfig's default because the files do not set them: `tsfig config` leaves them out, as compose
   * prints only what was written. Not part of the config hash. Absent = none (or a service not made by the loader).
   */
  readonly implicit?: readonly ImplicitKey[];
}

/** Service keys the loader fills with a default when the files leave them out. */
export type ImplicitKey = 'restart' | 'scale' | 'stop_grace_period' | 'pull_policy';

export interface Network {
  /** Key under `networks:`. */
  readonly key: string;
  /** Name on the host: `name:` or `<project>_<key>`. */
  readonly name: string;
  /** @default "bridge" */
  readonly driver: string | undefined;
  readonly driver_opts: Readonly<Record<string, string>>;
  readonly external: boolean;
  readonly internal: boolean;
  readonly attachable: boolean;
  readonly enable_ipv4: boolean | undefined;
  readonly enable_ipv6: boolean | undefined;
  readonly ipam:
    | {
        readonly driver: string | undefined;
        readonly config: readonly {
          readonly subnet: string | undefined;
          readonly ip_range: string | undefined;
          readonly gateway: string | undefined;
          readonly aux_addresses: Readonly<Record<string, string>>;
        }[];
        readonly options: Readonly<Record<string, string>>;
      }
    | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly extensions: Extensions;
}

export interface Volume {
  readonly key: string;
  /** Name on the host: `name:` or `<project>_<key>`. */
  readonly name: string;
  readonly driver: string | undefined;
  readonly driver_opts: Readonly<Record<string, string>>;
  readonly external: boolean;
  readonly labels: Readonly<Record<string, string>>;
  readonly extensions: Extensions;
}

export interface SecretOrConfig {
  readonly key: string;
  readonly name: string;
  /** Absolute path. */
  readonly file: string | undefined;
  /** The name of the variable that holds the value (its value is in `value`). */
  readonly environment: string | undefined;
  readonly content: string | undefined;
  /**
   * What a container gets for an `environment` source (the variable's value from the shell or .env; undefined when
   * unset) or a `content` one. Never printed: `tsfig config`, plans and JSON show nothing or a digest of it.
   */
  readonly value: FileContent | undefined;
  readonly external: boolean;
  readonly labels: Readonly<Record<string, string>>;
  readonly driver: string | undefined;
  readonly template_driver: string | undefined;
  readonly extensions: Extensions;
}
