/**
 * The executor's view of the engine: one method per op kind, each taking that op's spec (src/planner/plan.ts) and
 * the plan's abort signal. The lead implements it over the real engine; tests use a recording fake.
 *
 * Containers are referred to by `spec.container`: an id for containers that existed before the plan, the
 * deterministic name for containers the same plan creates.
 */
import type {
  ContainerCreateSpec,
  ContainerExecSpec,
  ContainerHookSpec,
  ContainerPreStartSpec,
  ContainerRemoveSpec,
  ContainerStartSpec,
  ContainerStopSpec,
  ContainerSyncSpec,
  ContainerWaitCompletedSpec,
  ContainerWaitHealthySpec,
  ContainerWaitRunningSpec,
  ContainerKillSpec,
  ContainerPauseSpec,
  ImageBuildSpec,
  ImagePullSpec,
  ImageRemoveSpec,
  ImagePushSpec,
  ArtifactPushSpec,
  ImageCommitSpec,
  NetworkCreateSpec,
  NetworkRemoveSpec,
  VolumeCreateSpec,
  VolumeRemoveSpec,
} from '../planner/plan.js';

export interface ExecutorPort {
  /** Creates the bridge network `spec.name` (already absent when planned). */
  createNetwork(spec: NetworkCreateSpec, signal: AbortSignal): Promise<void>;
  removeNetwork(spec: NetworkRemoveSpec, signal: AbortSignal): Promise<void>;
  /** Creates the named volume `spec.name` (already absent when planned). */
  createVolume(spec: VolumeCreateSpec, signal: AbortSignal): Promise<void>;
  removeVolume(spec: VolumeRemoveSpec, signal: AbortSignal): Promise<void>;
  /**
   * Resolves `spec.mounts`/`spec.volumesFrom` (engine/volumes resolveMounts), prepares the network namespace per
   * `spec.network` and `spec.ports`, and creates `spec.container` with them. Returns the new container's id.
   */
  createContainer(spec: ContainerCreateSpec, signal: AbortSignal): Promise<string>;
  startContainer(spec: ContainerStartSpec, signal: AbortSignal): Promise<void>;
  /** Stop signal, then SIGKILL after `spec.timeoutSeconds`. */
  stopContainer(spec: ContainerStopSpec, signal: AbortSignal): Promise<void>;
  /** Removes a stopped container; with `spec.volumes`, its anonymous volumes too. */
  removeContainer(spec: ContainerRemoveSpec, signal: AbortSignal): Promise<void>;
  /** Resolves once the container is healthy; rejects if it becomes unhealthy, exits, or has no healthcheck. */
  waitHealthy(spec: ContainerWaitHealthySpec, signal: AbortSignal): Promise<void>;
  /** Resolves with the exit code once the container has exited (the executor fails the op unless it is 0). */
  waitCompleted(spec: ContainerWaitCompletedSpec, signal: AbortSignal): Promise<number>;
  /** Resolves once the container runs (or exited 0); rejects when it exited otherwise or the timeout passes. */
  waitRunning(spec: ContainerWaitRunningSpec, signal: AbortSignal): Promise<void>;
  /** Sends `spec.signal` to a running container. */
  killContainer(spec: ContainerKillSpec, signal: AbortSignal): Promise<void>;
  /** Freezes (`paused`) or thaws the container's processes. */
  pauseContainer(spec: ContainerPauseSpec, paused: boolean, signal: AbortSignal): Promise<void>;
  /** Pulls `spec.image` into the image store, reporting `pull.*` events. */
  pullImage(spec: ImagePullSpec, signal: AbortSignal): Promise<void>;
  /** Builds a service's image and tags it, reporting `build.*` events. */
  buildImage(spec: ImageBuildSpec, signal: AbortSignal): Promise<void>;
  /** Removes the reference `spec.image` (the image goes with its last reference). */
  removeImage(spec: ImageRemoveSpec, signal: AbortSignal): Promise<void>;
  /** Pushes the local image `spec.image` to its registry; resolves with the manifest's digest. */
  pushImage(spec: ImagePushSpec, signal: AbortSignal): Promise<{ digest: string }>;
  /** Pushes the artifact's layers and manifest to `spec.reference`; resolves with the manifest's digest. */
  pushArtifact(spec: ArtifactPushSpec, signal: AbortSignal): Promise<{ digest: string }>;
  /** Creates an image from the container's changes (tagged `spec.reference` when set); resolves with its id. */
  commitContainer(spec: ImageCommitSpec, signal: AbortSignal): Promise<string>;
  /**
   * Runs a post_start/pre_stop hook in the running container (an exec); its output goes to the container's log.
   * Resolves with the exit code and the output (stderr first when there is some), for the executor's message.
   */
  runHook(spec: ContainerHookSpec, signal: AbortSignal): Promise<{ exitCode: number; output: string }>;
  /**
   * Creates the pre_start one-off container (sharing `spec.volumesFrom`'s volumes), runs it to its exit, removes it,
   * and resolves with its exit code and output; its output also goes to the service container's log.
   */
  runPreStart(spec: ContainerPreStartSpec, signal: AbortSignal): Promise<{ exitCode: number; output: string }>;
  /**
   * `develop.watch` sync: runs each of `spec.scripts` with `sh -c` in the running container, one after the other,
   * up to the first that fails. Resolves with the exit code (0 when all ran) and that script's stderr.
   */
  syncFiles(spec: ContainerSyncSpec, signal: AbortSignal): Promise<{ exitCode: number; output: string }>;
  /** `develop.watch` sync+exec: runs the command in the running container; resolves with its exit code and output. */
  execInContainer(spec: ContainerExecSpec, signal: AbortSignal): Promise<{ exitCode: number; output: string }>;
  /** Optional: finishes work the ops deferred (batched host-side updates); awaited once every op has ended. */
  flush?(): Promise<void>;
}
