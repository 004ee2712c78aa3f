/**
 * Plan types: what `plan`/`planDown` decide and `executePlan` carries out (terraform's plan/apply split, compose's
 * Plan DAG). Types and tiny accessors only; planning is in reconcile.ts, rendering in render.ts.
 *
 * Invariant: an operation carries, in `spec`, everything its engine call needs. `reason` and `group` are for humans
 * and renderers only; the executor must never read them.
 */
import type { ContainerSpec } from '../../engine/containers/index.js';
import type { PortSpec } from '../../engine/network/index.js';
import type { FileContent, MountSpec } from '../../engine/volumes/index.js';

/** Each value maps to one engine call (one ExecutorPort method). Values are explicit strings, never positions. */
export const OpKind = {
  NetworkCreate: 'network.create',
  NetworkRemove: 'network.remove',
  VolumeCreate: 'volume.create',
  VolumeRemove: 'volume.remove',
  ContainerCreate: 'container.create',
  ContainerStart: 'container.start',
  ContainerStop: 'container.stop',
  ContainerRemove: 'container.remove',
  /** Wait until the container's healthcheck reports healthy (depends_on `service_healthy`). */
  ContainerWaitHealthy: 'container.wait-healthy',
  /** Wait until the container exits; fails unless it exited 0 (depends_on `service_completed_successfully`). */
  ContainerWaitCompleted: 'container.wait-completed',
  /** `up --wait` for a service without a healthcheck: running, or exited 0; fails when it exited otherwise. */
  ContainerWaitRunning: 'container.wait-running',
  /** Send a signal (`kill -s`). */
  ContainerKill: 'container.kill',
  /** Freeze / thaw the container's processes (`pause`, `unpause`). */
  ContainerPause: 'container.pause',
  ContainerUnpause: 'container.unpause',
  /** Pull an image from its registry (pull_policy, `--pull`). */
  ImagePull: 'image.pull',
  /** Build a service's image (`build:`). */
  ImageBuild: 'image.build',
  /** Remove an image (`down --rmi`). */
  ImageRemove: 'image.remove',
  /** Push a local image to its registry (`push`). */
  ImagePush: 'image.push',
  /** Push the project's files as an OCI artifact (`publish`). */
  ArtifactPush: 'artifact.push',
  /** Create an image from a container's changes (`commit`). */
  ImageCommit: 'image.commit',
  /** A `post_start` or `pre_stop` hook: one exec in the running container; a non-zero exit fails the op. */
  ContainerHook: 'container.hook',
  /** A `pre_start` hook: a one-off container sharing the first replica's volumes, run to completion (exit 0). */
  ContainerPreStart: 'container.pre-start',
  /** `develop.watch` sync: changed host files written into the running container (sh scripts run by an exec). */
  ContainerSync: 'container.sync',
  /** `develop.watch` sync+exec: the rule's command, one exec in the running container; a non-zero exit fails it. */
  ContainerExec: 'container.exec',
} as const;
export type OpKind = (typeof OpKind)[keyof typeof OpKind];

/** `service:web:1`, `network:default`, `volume:data` (compose's resource ids; keys, not host names). */
export type ResourceId = string;

export interface NetworkCreateSpec {
  /** Host name of the network (`<project>_default`, `name:`). */
  readonly name: string;
  /** The only driver the engine has. */
  readonly driver: 'bridge';
  readonly internal: boolean;
  /** First `ipam.config[].subnet`, when given. */
  readonly subnet: string | undefined;
  readonly gateway: string | undefined;
  /** `io.tsfig.project`, `io.tsfig.network` and the user's labels. */
  readonly labels: Readonly<Record<string, string>>;
  /** Engine-wide (the default `bridge`): one another project created meanwhile is the same network, not a conflict. */
  readonly shared?: boolean;
}

export interface NetworkRemoveSpec {
  readonly name: string;
}

export interface VolumeCreateSpec {
  /** Host name of the volume (`<project>_<key>`, `name:`). */
  readonly name: string;
  /** undefined = local. */
  readonly driver: string | undefined;
  readonly driverOpts: Readonly<Record<string, string>>;
  /** `io.tsfig.project`, `io.tsfig.volume` and the user's labels. */
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * Removes the volume. `down -v` plans it for an anonymous volume only when no container outside the plan uses it
 * (DownOptions.volumeUsers; otherwise a warning says it is kept); the engine still refuses a volume in use.
 */
export interface VolumeRemoveSpec {
  readonly name: string;
}

export interface ImagePullSpec {
  /** The reference to pull (`redis:7`). */
  readonly image: string;
  /** The services that use it (for messages). */
  readonly services: readonly string[];
}

export interface ImageBuildSpec {
  readonly service: string;
  /** The service's image name the result is tagged with (`image:` or `<project>-<service>`), then `tags`. */
  readonly image: string;
  readonly tags: readonly string[];
  /** Absolute build context directory. */
  readonly context: string;
  /** Absolute Dockerfile path (unused with dockerfileInline). */
  readonly dockerfile: string;
  readonly dockerfileInline: string | undefined;
  /** Build arguments, resolved (a key without a value took the environment's, or was left out). */
  readonly args: Readonly<Record<string, string>>;
  readonly target: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly noCache: boolean;
  readonly pull: boolean;
  /** `build.secrets` by the id a Dockerfile mounts them with (JSON shows a file path or a digest, never a value). */
  readonly secrets: Readonly<Record<string, FileContent>>;
  /**
   * `build.additional_contexts` by name: an image (`docker-image://REF`, or `service:NAME`'s image, built first) or
   * an absolute host directory.
   */
  readonly contexts: Readonly<Record<string, { readonly image: string } | { readonly dir: string }>>;
}

export interface ImageRemoveSpec {
  /** The reference to untag / remove. */
  readonly image: string;
}

export interface ImagePushSpec {
  /** The local reference to push (`image:` or one of `build.tags`), a NAME[:TAG]. */
  readonly image: string;
  /** The services whose image or tag it is (for messages). */
  readonly services: readonly string[];
}

/** One file of a published project (a compose file, an `extends` parent or an env file). */
export interface ArtifactLayerSpec {
  readonly mediaType: string;
  /** The bytes (JSON shows their sha256, never the content: an env file may hold secrets). */
  readonly data: FileContent;
  /** Their length (for messages). */
  readonly size: number;
  readonly annotations: Readonly<Record<string, string>>;
}

/** `publish`: the project as an OCI artifact in docker compose's format (src/compose/publish.ts reads it). */
export interface ArtifactPushSpec {
  /** REPOSITORY[:TAG] to push to. */
  readonly reference: string;
  /** The OCI 1.1 `artifactType`, and the config media type of an OCI 1.0 push. */
  readonly artifactType: string;
  readonly legacyConfigMediaType: string;
  readonly layers: readonly ArtifactLayerSpec[];
  /** Manifest annotations (the creation time is one: taken from the verb's clock). */
  readonly annotations: Readonly<Record<string, string>>;
  /** `auto`: 1.1, then 1.0 when the registry refuses the manifest. */
  readonly ociVersion: '1.0' | '1.1' | 'auto';
}

/** `commit`: a new image of the container's image plus its changes (its writable layer). */
export interface ImageCommitSpec extends ContainerRef {
  readonly service: string;
  /** REPOSITORY[:TAG] the image is tagged with; undefined: untagged. */
  readonly reference: string | undefined;
  /** Dockerfile instructions applied to the image's config (`-c`). */
  readonly changes: readonly string[];
  readonly message: string | undefined;
  readonly author: string | undefined;
}

/** One network to join, in attach order (priority, then key). */
export interface NetworkAttachmentSpec {
  /** Host name of the network. */
  readonly network: string;
  /** Network-scoped DNS aliases: the service name first, then `networks.<key>.aliases`. */
  readonly aliases: readonly string[];
  readonly ipv4Address: string | undefined;
  readonly macAddress: string | undefined;
}

/** How the container gets its network namespace. */
export type NetworkModeSpec =
  /** Own namespace joined to `networks` (empty: loopback only). Ports are published on the first network. */
  | { readonly mode: 'networks'; readonly networks: readonly NetworkAttachmentSpec[] }
  | { readonly mode: 'host' }
  | { readonly mode: 'none' }
  /** Share another container's namespace (`network_mode: service:X` gives X's first container's name). */
  | { readonly mode: 'container'; readonly container: string };

/** `volumes_from`: another container whose mounts are inherited. */
export interface VolumesFromSpec {
  /** Name of the source container (the first container of a service, or `container:NAME`). */
  readonly container: string;
  readonly mode: 'ro' | 'rw';
}

/** The restart policy, as compose writes it, for the container's monitor. */
export interface RestartPolicySpec {
  readonly name: 'no' | 'always' | 'on-failure' | 'unless-stopped';
  /** on-failure:N; undefined = unlimited. */
  readonly maxRetries: number | undefined;
}

/** The healthcheck for the container's monitor; undefined fields mean the image's or the engine's defaults. */
export interface HealthcheckSpec {
  /** `["NONE"]`, `["CMD", ...]`, `["CMD-SHELL", "..."]`; undefined = the image's test. */
  readonly test: readonly string[] | undefined;
  readonly intervalMs: number | undefined;
  readonly timeoutMs: number | undefined;
  readonly retries: number | undefined;
  readonly startPeriodMs: number | undefined;
  readonly startIntervalMs: number | undefined;
}

export interface LinkSpec {
  /** Name of the linked container. */
  readonly container: string;
  /** The name it is known by in this container. */
  readonly alias: string;
  /**
   * The networks (engine names) both containers join, in this container's order: the linked container's address on
   * the first it is attached to goes into the link's host entry and variables. Empty: it cannot be reached, no link.
   */
  readonly networks: readonly string[];
  /**
   * The ports Docker's link variables list (`5432/tcp`): the linked service's image's exposed ports (observed), then
   * its `expose` and `ports` targets.
   */
  readonly exposedPorts?: readonly string[];
}

export interface ContainerCreateSpec {
  /** Deterministic name (`<project>-<service>-<n>` or `container_name`); later ops of the plan refer to it. */
  readonly name: string;
  readonly service: string;
  readonly number: number;
  /** The engine's container spec without `mounts`, `network` and the network's hosts lines (the port adds them). */
  readonly container: ContainerSpec;
  /** Service volumes and tmpfs, to resolve with engine/volumes `resolveMounts`. */
  readonly mounts: readonly MountSpec[];
  readonly volumesFrom: readonly VolumesFromSpec[];
  /** Labels for volumes that resolving the mounts creates (anonymous volumes). */
  readonly volumeLabels: Readonly<Record<string, string>>;
  readonly network: NetworkModeSpec;
  /** Published ports (already split per compose entry; ranges kept as ranges). */
  readonly ports: readonly PortSpec[];
  /**
   * Set on recreate: the id of the replaced container whose anonymous volumes this one takes over. The planner has
   * already turned them into `mounts` entries naming those volumes; this is for events and inspection.
   */
  readonly inheritAnonymousFrom: string | undefined;
  readonly restart: RestartPolicySpec;
  /** undefined = none configured (or `disable: true`): the image's own healthcheck, if any, is not run either. */
  readonly healthcheck: HealthcheckSpec | undefined;
  /**
   * Fig/Docker links (`links: [db:database]`): the linked container (first replica of the service) and the alias under
   * which this container sees it, as `/etc/hosts` names and `<ALIAS>_PORT_...` variables. Absent when there are none.
   */
  readonly links?: readonly LinkSpec[];
}

/** A container an op refers to: its id when it existed before the plan, its name when the plan creates it. */
export interface ContainerRef {
  /** Id or name, as the engine's container calls take. */
  readonly container: string;
  /** Name, for messages. */
  readonly name: string;
}

export type ContainerStartSpec = ContainerRef;

export interface ContainerStopSpec extends ContainerRef {
  /** Seconds between the stop signal and SIGKILL (`-t`, else stop_grace_period). */
  readonly timeoutSeconds: number;
}

export interface ContainerRemoveSpec extends ContainerRef {
  /** Also remove the container's anonymous volumes (`down -v`, `--renew-anon-volumes`). */
  readonly volumes: boolean;
}

export interface ContainerWaitHealthySpec extends ContainerRef {
  /** undefined = no limit (compose waits for dependencies without one). */
  readonly timeoutMs: number | undefined;
  /** depends_on `required`; false: the op is bestEffort and a failure is a warning. */
  readonly required: boolean;
}

export interface ContainerWaitCompletedSpec extends ContainerRef {
  readonly required: boolean;
}

export interface ContainerWaitRunningSpec extends ContainerRef {
  /** undefined = no limit. */
  readonly timeoutMs: number | undefined;
}

export interface ContainerKillSpec extends ContainerRef {
  /** `SIGKILL`, `SIGHUP`, `9`... as given. */
  readonly signal: string;
}

export type ContainerPauseSpec = ContainerRef;

export interface ContainerHookSpec extends ContainerRef {
  readonly service: string;
  readonly phase: 'post_start' | 'pre_stop';
  /** Position of the hook in its list (for messages). */
  readonly index: number;
  readonly command: readonly string[];
  readonly user: string | undefined;
  readonly workingDir: string | undefined;
  readonly environment: readonly string[];
  /** `privileged: true`: the exec gets every capability (docker exec --privileged). */
  readonly privileged: boolean;
}

export interface ContainerPreStartSpec {
  readonly service: string;
  readonly index: number;
  /** The one-off container: the service's image or the hook's, its command, env, user, working dir. */
  readonly create: ContainerCreateSpec;
  /** The service container whose volumes the hook shares (it exists, not started, when the op runs). */
  readonly volumesFrom: ContainerRef;
}

/**
 * A `develop.watch` sync into one running container: `scripts` are POSIX sh scripts (src/watch/sync.ts
 * `syncScripts`: printf to a temporary name, then an atomic rename), each run with `sh -c` in the container, as its
 * user, so that paths resolve in its own root; the first that fails fails the op.
 */
export interface ContainerSyncSpec extends ContainerRef {
  readonly service: string;
  /** The rule's `target` (for messages). */
  readonly target: string;
  /** The paths the scripts write, make or remove in the container (for messages). */
  readonly paths: readonly string[];
  readonly scripts: readonly string[];
}

/** A `develop.watch` sync+exec command: one exec in the running container; a non-zero exit fails the op. */
export interface ContainerExecSpec extends ContainerRef {
  readonly service: string;
  readonly command: readonly string[];
  readonly user: string | undefined;
  readonly workingDir: string | undefined;
  readonly environment: readonly string[];
}

/** The spec type of each op kind. */
export interface OpSpecs {
  'network.create': NetworkCreateSpec;
  'network.remove': NetworkRemoveSpec;
  'volume.create': VolumeCreateSpec;
  'volume.remove': VolumeRemoveSpec;
  'container.create': ContainerCreateSpec;
  'container.start': ContainerStartSpec;
  'container.stop': ContainerStopSpec;
  'container.remove': ContainerRemoveSpec;
  'container.wait-healthy': ContainerWaitHealthySpec;
  'container.wait-completed': ContainerWaitCompletedSpec;
  'container.wait-running': ContainerWaitRunningSpec;
  'container.kill': ContainerKillSpec;
  'container.pause': ContainerPauseSpec;
  'container.unpause': ContainerPauseSpec;
  'image.pull': ImagePullSpec;
  'image.build': ImageBuildSpec;
  'image.remove': ImageRemoveSpec;
  'image.push': ImagePushSpec;
  'artifact.push': ArtifactPushSpec;
  'image.commit': ImageCommitSpec;
  'container.hook': ContainerHookSpec;
  'container.pre-start': ContainerPreStartSpec;
  'container.sync': ContainerSyncSpec;
  'container.exec': ContainerExecSpec;
}

interface OperationBase {
  /** 1-based, unique in the plan; operations are stored in increasing id order. */
  readonly id: number;
  readonly resource: ResourceId;
  /** Why this op is needed. For humans only: the executor must never read it. */
  readonly reason: string;
  /** Ids of the ops that must finish first; all smaller than `id` (the plan is in topological order). */
  readonly dependsOn: readonly number[];
  /** A failure of this op is reported but does not abort the plan; its dependents still run. @default false */
  readonly bestEffort?: boolean;
  /**
   * Ops that form one user-visible change, `<action>:<resource>` (`recreate:service:web:1`); renderers show a group
   * as one line. Never read by the executor.
   */
  readonly group?: string;
}

/** One step of a plan, discriminated by `kind`. */
export type Operation = {
  [K in OpKind]: OperationBase & { readonly kind: K; readonly spec: OpSpecs[K] };
}[OpKind];

/** The operation of one kind. */
export type OperationOf<K extends OpKind> = Extract<Operation, { kind: K }>;

export interface Plan {
  readonly version: 1;
  readonly project: string;
  /** Topological order: every op comes after all of its `dependsOn`. */
  readonly operations: readonly Operation[];
  /** For the user: orphans, keys not supported yet, existing resources not created by tsfig. */
  readonly warnings: readonly string[];
}

/** The user-visible action a group stands for (renderers only). */
export type PlanAction =
  | 'create'
  | 'recreate'
  | 'start'
  | 'restart'
  | 'stop'
  | 'remove'
  | 'wait'
  | 'kill'
  | 'pause'
  | 'unpause'
  | 'pull'
  | 'build'
  | 'sync'
  | 'exec'
  | 'push'
  | 'commit';

const ACTIONS: readonly string[] = [
  'create',
  'recreate',
  'start',
  'restart',
  'stop',
  'remove',
  'wait',
  'kill',
  'pause',
  'unpause',
  'pull',
  'build',
  'sync',
  'exec',
  'push',
  'commit',
] satisfies PlanAction[];

/**
 * Two plans run one after the other, as one plan: `second`'s ids are shifted past `first`'s and its roots wait for
 * every op of `first` (an image phase, then the containers; infrastructure and dependencies, then a one-off's start).
 */
export function sequencePlans(first: Plan, second: Plan): Plan {
  const offset = first.operations.length;
  const all = first.operations.map((op) => op.id);
  const shifted = second.operations.map((op) => ({
    ...op,
    id: op.id + offset,
    dependsOn: op.dependsOn.length === 0 ? all : op.dependsOn.map((dep) => dep + offset),
  }));
  const warnings = [...first.warnings, ...second.warnings.filter((w) => !first.warnings.includes(w))];
  return { version: 1, project: first.project, operations: [...first.operations, ...shifted], warnings };
}

/** Splits `group` into its action; undefined for ops outside a group. */
export function groupAction(op: Operation): PlanAction | undefined {
  const action = op.group?.split(':', 1)[0];
  return action !== undefined && ACTIONS.includes(action) ? (action as PlanAction) : undefined;
}
