import type { UsernsRange } from './userns.js';
import type { ContainerFile } from '../volumes/files.js';

/** A mount as the runtime receives it (engine/volumes resolves user specs into these). */
export interface ContainerMount {
  readonly destination: string;
  readonly type: 'bind' | 'tmpfs' | 'overlay';
  /** Host path for binds; ignored for tmpfs; the `lowerdir=` value for overlay (an image mounted read-only). */
  readonly source: string;
  readonly options: readonly string[];
  /** Populate an empty source from the image content at destination on first use (Docker's volume copy-up). */
  readonly copy?: boolean;
  /** Only this relative path inside the source is mounted (runtime.conf `mount.subpath`). */
  readonly subpath?: string;
  /** The named or anonymous volume behind this mount, if any. */
  readonly volumeName?: string;
  readonly anonymous?: boolean;
  /** The image behind an overlay or image bind mount (compose `type: image`). */
  readonly imageId?: string;
}

export interface Ulimit {
  readonly name: string;
  readonly soft: number;
  readonly hard: number;
}

/** What a caller asks for when creating a container (docker create's options). */
export interface ContainerSpec {
  /** Unique name; a random one (docker-style) when omitted. */
  readonly name?: string;
  /** Image reference, resolved at create time; the container keeps the image id. */
  readonly image: string;
  /** Replaces the image's Cmd. */
  readonly cmd?: readonly string[];
  /** Replaces the image's Entrypoint (and then the image's Cmd is dropped unless cmd is given). [] clears it. */
  readonly entrypoint?: readonly string[];
  /** KEY=VALUE entries applied over the image's Env. */
  readonly env?: readonly string[];
  readonly workingDir?: string;
  readonly user?: string;
  readonly groupAdd?: readonly string[];
  readonly hostname?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly tty?: boolean;
  readonly openStdin?: boolean;
  /** Run the runtime's minimal init as PID 1. */
  readonly init?: boolean;
  readonly readonlyRootfs?: boolean;
  readonly privileged?: boolean;
  readonly capAdd?: readonly string[];
  readonly capDrop?: readonly string[];
  readonly noNewPrivileges?: boolean;
  readonly seccomp?: 'default' | 'unconfined';
  /** Memory limit in bytes. */
  readonly memory?: number;
  /** Memory + swap limit in bytes (-1 unlimited). */
  readonly memorySwap?: number;
  readonly pidsLimit?: number;
  /** Size of the /dev/shm tmpfs in bytes (docker's ShmSize); default 64 MiB. */
  readonly shmSize?: number;
  /** CPUs in billionths (docker's NanoCpus): --cpus 1.5 = 1.5e9. */
  readonly nanoCpus?: number;
  readonly cpuShares?: number;
  readonly ulimits?: readonly Ulimit[];
  readonly sysctls?: Readonly<Record<string, string>>;
  /**
   * `auto`: a user namespace with a range of subordinate ids of its own (engine/containers/userns.ts), root in the
   * container is not root on the host; `host` (default): the host's ids, as Docker without userns-remap.
   */
  readonly userns?: 'host' | 'auto';
  readonly mounts?: readonly ContainerMount[];
  /**
   * Files the engine writes (root-only, in the container's dir) and binds read-only into the container: compose's
   * secrets and configs. The record keeps their digest, never their content.
   */
  readonly files?: readonly ContainerFile[];
  /**
   * `none` (own netns with lo only), `host`, `container:<name|id>` (join another container's network namespace), or
   * ignored when networks is given. @default none
   */
  readonly network?: string;
  /** Networks to attach (the container gets its own sandbox netns); the first one carries the published ports. */
  readonly networks?: readonly NetworkAttachment[];
  /** docker `-p` specs, published on the first network. */
  readonly ports?: readonly string[];
  /**
   * Ports the container exposes, `PORT/proto` (docker's Config.ExposedPorts: `--expose`, compose `expose:`/`ports:`
   * targets); create adds the image's. Listed by `ps` when not published, as docker does.
   */
  readonly exposedPorts?: readonly string[];
  /** Extra /etc/hosts content lines (the network layer provides them). */
  readonly extraHosts?: readonly string[];
  readonly stopSignal?: string;
  /** Seconds between the stop signal and SIGKILL. @default 10 */
  readonly stopTimeout?: number;
  /** json-file log rotation. */
  readonly logMaxSize?: number;
  readonly logMaxFiles?: number;
  /** Restart policy, enforced by the container's monitor (docker --restart). @default no */
  readonly restart?: RestartPolicy;
  /**
   * Remove the container (and its anonymous volumes) once it has exited (docker --rm, HostConfig.AutoRemove): its
   * monitor runs `autoRemoveCommand` after the exit, so it works with no CLI around. Refused with a restart policy
   * other than `no`, and without `autoRemoveCommand`.
   */
  readonly autoRemove?: boolean;
  /**
   * With autoRemove: the command that removes the container, which its monitor starts (detached) once it has exited
   * for good (conmon's --exit-command), with the container's id appended and TSFIG_ROOT/TSFIG_RUN_ROOT set to this
   * engine's. The caller gives it (tsfig's CLI: `<node> <its bin/tsfig.js> container cleanup --rm`, which calls
   * removeIfExited): the engine does not know who runs it. argv[0] is an absolute path.
   */
  readonly autoRemoveCommand?: readonly string[];
  /** Healthcheck run by the container's monitor; undefined or test `["NONE"]` = none. */
  readonly healthcheck?: Healthcheck;
}

export interface RestartPolicy {
  readonly name: 'no' | 'always' | 'on-failure' | 'unless-stopped';
  /** on-failure:N; undefined or 0 = unlimited. */
  readonly maxRetries?: number | undefined;
}

/** docker's HealthConfig; undefined durations take docker's defaults (30 s, 30 s, 3, 0, 5 s). */
export interface Healthcheck {
  /** `["CMD", arg...]`, `["CMD-SHELL", "command"]` or `["NONE"]`. */
  readonly test: readonly string[];
  readonly intervalMs?: number | undefined;
  readonly timeoutMs?: number | undefined;
  readonly retries?: number | undefined;
  readonly startPeriodMs?: number | undefined;
  readonly startIntervalMs?: number | undefined;
}

/** The health part of status.json. */
export interface HealthStatus {
  readonly status: 'starting' | 'healthy' | 'unhealthy';
  readonly failingStreak: number;
  readonly log: readonly { start: string; end: string; exitCode: number; output: string }[];
}

export interface NetworkAttachment {
  readonly name: string;
  readonly aliases?: readonly string[];
  /** Fixed IPv4 address in the network's subnet. */
  readonly ip?: string;
}

/** The container's resolved process, decided once at create time. */
export interface ContainerProcess {
  readonly argv: readonly string[];
  readonly env: readonly string[];
  readonly cwd: string;
  readonly user: string;
}

/** On-disk record of a container (`<root>/containers/<id>/container.json`). */
export interface ContainerRecord {
  readonly v: 1;
  readonly id: string;
  readonly name: string;
  readonly created: string;
  readonly imageId: string;
  readonly imageRef: string;
  readonly spec: ContainerSpec;
  readonly process: ContainerProcess;
  readonly hostname: string;
  readonly capabilities: readonly string[];
  readonly stopSignal: number;
  readonly stopTimeout: number;
  readonly mounts: readonly ContainerMount[];
  readonly labels: Readonly<Record<string, string>>;
  /** With `userns: auto`: the host ids of its range, kept until the container is removed. */
  readonly userns?: UsernsRange;
}

/** status.json as the monitor writes it (native/PROTOCOL.md). */
export interface MonitorStatus {
  readonly v: 1;
  /** restarting: waiting for the restart policy's back-off. */
  readonly state: 'running' | 'restarting' | 'exited';
  readonly pid: number;
  readonly monitor: number;
  readonly monitorStart: number;
  readonly startedAt: string;
  readonly finishedAt?: string;
  readonly exitCode?: number;
  readonly signal?: number;
  readonly oomKilled?: boolean;
  readonly bootId: string;
  /** Restarts made by the restart policy. */
  readonly restartCount?: number;
  /** Only with a healthcheck. */
  readonly health?: HealthStatus;
  /** Set by the engine when it repaired the state of a container whose monitor died. */
  readonly error?: string;
}

export type ContainerStateName = 'created' | 'running' | 'restarting' | 'exited';

export interface ContainerState {
  readonly status: ContainerStateName;
  readonly running: boolean;
  readonly pid: number;
  readonly exitCode: number;
  readonly oomKilled: boolean;
  readonly error: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly restartCount: number;
  /** Only with a healthcheck. */
  readonly health?: { readonly status: HealthStatus['status']; readonly failingStreak: number };
}

export interface ContainerSummary {
  readonly id: string;
  readonly name: string;
  readonly image: string;
  readonly imageId: string;
  readonly command: string;
  readonly created: string;
  readonly state: ContainerState;
  readonly labels: Readonly<Record<string, string>>;
}

export interface LogEntry {
  readonly stream: 'stdout' | 'stderr';
  readonly text: string;
  readonly time: string;
}
