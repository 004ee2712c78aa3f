import { defaultUserns } from '../userns.js';
import type { BuildEvent, BuildOptions } from '../../engine/build/index.js';
import { withAutoRemoveHold } from '../../engine/containers/index.js';
import { commitContainer } from '../../engine/images/index.js';
import { isEngineError, type Engine } from '../../engine/index.js';
import { linkEnv } from '../../engine/network/index.js';
import type { PullEvent, RegistryClient } from '../../engine/registry/index.js';
import { acquireLock } from '../../engine/state/index.js';
import {
  containerRecordUsers,
  resolveMounts,
  volumeUsers,
  type VolumesFromSource,
} from '../../engine/volumes/index.js';
import { preflight } from './preflight.js';
import { TsfigError } from '../errors.js';
import type { EventSink, TsfigEvent } from '../events/events.js';
import type { Project } from '../model/project.js';
import { toEngineContainerSpec } from '../planner/container-spec.js';
import { observe } from '../planner/observe.js';
import type { ObservedState } from '../planner/observed.js';
import type {
  ContainerCreateSpec,
  ContainerExecSpec,
  ContainerHookSpec,
  ContainerKillSpec,
  ContainerPauseSpec,
  ContainerPreStartSpec,
  ContainerRemoveSpec,
  ContainerStartSpec,
  ContainerStopSpec,
  ContainerSyncSpec,
  ContainerWaitCompletedSpec,
  ContainerWaitHealthySpec,
  ContainerWaitRunningSpec,
  ImageBuildSpec,
  ImagePullSpec,
  ImageRemoveSpec,
  ImagePushSpec,
  ArtifactPushSpec,
  ImageCommitSpec,
  NetworkCreateSpec,
  NetworkRemoveSpec,
  Plan,
  VolumeCreateSpec,
  VolumeRemoveSpec,
} from '../planner/plan.js';
import type { ComposePort } from './context.js';

/** The registry client (http, tls, zlib...) loads only when something is pulled, not on every `up`. */
const registry = () => import('../../engine/registry/index.js');

/** A plan's build operation as the builder's options. */
export function builderOptionsOf(spec: ImageBuildSpec, signal: AbortSignal | undefined): BuildOptions {
  return {
    contextDir: spec.context,
    dockerfile: spec.dockerfile,
    dockerfileInline: spec.dockerfileInline,
    buildArgs: { ...spec.args },
    target: spec.target,
    tags: [spec.image, ...spec.tags],
    labels: { ...spec.labels },
    noCache: spec.noCache,
    pull: spec.pull,
    secrets: spec.secrets,
    contexts: spec.contexts,
    signal,
  };
}

/**
 * The builder's events as the orchestrator's, for one service. A cache hit is remembered in `cachedSteps` and
 * reported by the step's `build.step-done` (the builder sends that one for every step).
 */
export function buildEventOf(service: string, event: BuildEvent, cachedSteps: Set<number>): TsfigEvent | undefined {
  switch (event.kind) {
    case 'step':
      return { kind: 'build.step', service, step: event.step, total: event.total, text: event.text };
    case 'cache-hit':
      cachedSteps.add(event.step);
      return undefined;
    case 'output':
      return { kind: 'build.output', service, step: event.step, stream: event.stream, text: event.text };
    case 'step-done':
      return {
        kind: 'build.step-done',
        service,
        step: event.step,
        cached: cachedSteps.has(event.step),
        durationMs: event.durationMs,
      };
    case 'warning':
      return { kind: 'warning', message: `[${service}] ${event.message}` };
  }
}

/** The engine's pull events as the orchestrator's, for one image. */
export function pullEventSink(events: EventSink, image: string): (event: PullEvent) => void {
  return (event) => {
    if (event.type !== 'layer') return;
    const total = event.total ?? 0;
    const done = event.status === 'exists' || event.status === 'verified' || event.status === 'extracting';
    events.emit({
      kind: 'pull.progress',
      image,
      layer: event.digest.replace(/^sha256:/, '').slice(0, 12),
      state: event.status,
      current: event.current ?? (done || event.status === 'done' ? total : 0),
      total,
    });
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The project lock (`<root-id>:project:<name>`): serialises the mutations of one project (`EnginePort.lockProject`:
 * the compose verbs, `kube play`).
 */
export async function withProjectLock<T>(engine: Engine, project: string, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(`${engine.paths.rootId}:project:${project}`, { timeoutMs: 600_000 });
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/**
 * The executor's port onto the real engine: one method per operation kind, each one engine call (or the few calls
 * that make one compose step, such as resolving a container's mounts before creating it). No decisions here.
 */
export class EnginePort implements ComposePort {
  readonly engine: Engine;
  private readonly events: EventSink;
  private readonly env: NodeJS.ProcessEnv;
  private client: RegistryClient | undefined;
  private readonly autoRemoveCommand: readonly string[] | undefined;

  /**
   * options.autoRemoveCommand: what the monitor of a one-off created with `--rm` runs to remove it (the CLI's
   * `container cleanup --rm`, engine ContainerSpec.autoRemoveCommand); without it such a create is refused.
   */
  constructor(
    engine: Engine,
    events: EventSink,
    env: NodeJS.ProcessEnv = process.env,
    options: { autoRemoveCommand?: readonly string[] } = {},
  ) {
    this.engine = engine;
    this.events = events;
    this.env = env;
    this.autoRemoveCommand = options.autoRemoveCommand;
  }

  private note(message: string): void {
    this.events.emit({ kind: 'note', message });
  }

  private readonly warned = new Set<string>();

  /**
   * An engine warning, given once per command whatever the number of containers it concerns (rootless without
   * cgroups: every service with limits gets the same one).
   */
  private warnOnce(message: string): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.events.emit({ kind: 'warning', message });
  }

  observe(project: Project): Promise<ObservedState> {
    return observe(this.engine, project.name, project);
  }

  lockProject<T>(project: string, fn: () => Promise<T>): Promise<T> {
    return withProjectLock(this.engine, project, fn);
  }

  async repair(): Promise<void> {
    await this.engine.containers.repairNetworking();
  }

  preflight(plan: Plan): Promise<void> {
    return preflight(this.engine, plan, this.env);
  }

  holdAutoRemove<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return withAutoRemoveHold(this.engine.paths, id, fn);
  }

  waitExit(id: string, signal?: AbortSignal): Promise<number> {
    return this.engine.containers.wait(id, signal === undefined ? {} : { signal });
  }

  async createNetwork(spec: NetworkCreateSpec): Promise<void> {
    try {
      await this.engine.networks.create(spec.name, {
        internal: spec.internal,
        labels: spec.labels,
        ...(spec.subnet !== undefined ? { subnet: spec.subnet } : {}),
        ...(spec.gateway !== undefined ? { gateway: spec.gateway } : {}),
      });
    } catch (error) {
      // the default bridge: another project's up made it between our observe and this create
      if (spec.shared === true && isEngineError(error, 'conflict')) return;
      throw error;
    }
  }

  async removeNetwork(spec: NetworkRemoveSpec): Promise<void> {
    await this.engine.networks.remove(spec.name);
  }

  /** The planner decided the driver (it warns that another driver is created as local). */
  async createVolume(spec: VolumeCreateSpec): Promise<void> {
    await this.engine.volumes.create(spec.name, { driverOpts: spec.driverOpts, labels: spec.labels });
  }

  /** down -v planned it only for a volume nothing outside the plan uses; the engine refuses one in use. */
  async removeVolume(spec: VolumeRemoveSpec): Promise<void> {
    await this.engine.volumes.remove(spec.name, { usersOf: containerRecordUsers(this.engine.paths) });
  }

  async lastPulled(images: readonly string[]): Promise<Record<string, number | undefined>> {
    const { lastPulled } = await registry();
    const out: Record<string, number | undefined> = {};
    for (const image of images) out[image] = (await lastPulled(this.engine.images, image))?.getTime();
    return out;
  }

  volumeUsers(names: readonly string[]): Promise<Record<string, string[]>> {
    return volumeUsers(this.engine.paths, names);
  }

  /**
   * Resolves the service's mounts (creating the volumes docker would) and creates the container; returns its id.
   * The volumes lock covers only resolving the mounts and writing the record that refers to them (the engine's
   * `reserve` step), so parallel creates overlap in image lookup and network attach.
   */
  async createContainer(spec: ContainerCreateSpec): Promise<string> {
    // Records are written in the order the executor started the creates (dependencies first, as compose creates
    // them); what comes before and after that step overlaps. The turn passes once the record is written (or failed).
    const previous = this.recordTurn;
    let passTurn!: () => void;
    this.recordTurn = new Promise<void>((resolve) => (passTurn = resolve));
    try {
      return await this.create(spec, previous, passTurn);
    } finally {
      passTurn();
    }
  }

  private recordTurn: Promise<void> = Promise.resolve();

  private async create(spec: ContainerCreateSpec, turn: Promise<void>, passTurn: () => void): Promise<string> {
    const engine = this.engine;
    const image = await engine.images.resolve(spec.container.image);
    const volumesFrom: VolumesFromSource[] = [];
    for (const source of spec.volumesFrom) {
      const record = await engine.containers.get(source.container);
      volumesFrom.push({
        mounts: record.mounts.map((mount) => ({ ...mount, copy: mount.copy === true })),
        mode: source.mode,
      });
    }
    // The same engine spec the planner compares with (recreate reasons), plus the links and the resolved mounts.
    const specified = toEngineContainerSpec(spec);
    // userns_mode unset: TSFIG_USERNS (not part of the config hash: changing it recreates nothing)
    const userns = specified.userns ?? defaultUserns(this.env);
    const container = userns !== undefined ? { ...specified, userns } : specified;
    const links = await this.linkSettings(spec);
    const record = await engine.containers.create(
      {
        ...container,
        env: [...links.env, ...(container.env ?? [])],
        extraHosts: [...(container.extraHosts ?? []), ...links.hosts],
        ...(container.autoRemove === true && this.autoRemoveCommand !== undefined
          ? { autoRemoveCommand: this.autoRemoveCommand }
          : {}),
      },
      {
        // The other containers' /etc/hosts are rewritten in the background; flush() waits for them.
        deferHosts: true,
        onWarning: (message) => this.warnOnce(message),
        reserve: async (write) => {
          await turn;
          try {
            return await engine.volumes.withLock(async () => {
              const resolved = await resolveMounts(spec.mounts, {
                volumes: engine.volumes,
                imageVolumes: Object.keys(image.config.config?.Volumes ?? {}),
                volumesFrom,
                volumeLabels: spec.volumeLabels,
                image: async (ref) => {
                  const mounted = await engine.images.resolve(ref);
                  return { id: mounted.id, layers: [...engine.images.layerDirs(mounted)].reverse() };
                },
              });
              for (const note of resolved.notes) this.note(`${spec.name}: ${note}`);
              for (const created of resolved.createdPaths) {
                this.note(`${spec.name}: created the missing bind source ${created}`);
              }
              return write(resolved.mounts);
            });
          } finally {
            passTurn();
          }
        },
      },
    );
    this.createdIds.set(record.name, record.id);
    return record.id;
  }

  /**
   * The ids of the containers this plan created, by name: the plan refers to a new container by its name (its id is
   * not known when planning), and the engine resolves a name by reading every record, which made each start of an
   * `up` of n containers cost O(n) (issue 18, 500 containers).
   */
  private readonly createdIds = new Map<string, string>();

  /**
   * Fig-style links, as the planner laid them out (LinkSpec: the linked container, the alias, the networks both
   * join): the linked container's address on the first of those networks it is attached to, as an /etc/hosts line
   * under the alias, and Docker's link variables (engine linkEnv) over the ports the planner listed.
   */
  private async linkSettings(spec: ContainerCreateSpec): Promise<{ env: string[]; hosts: string[] }> {
    const env: string[] = [];
    const hosts: string[] = [];
    if (spec.links === undefined || spec.links.length === 0) return { env, hosts };
    const networks = await this.engine.networks.list();
    for (const link of spec.links) {
      const target = await this.engine.containers.get(link.container);
      const endpoint = link.networks
        .map((name) => networks.find((network) => network.name === name)?.endpoints[target.id])
        .find((candidate) => candidate !== undefined);
      if (endpoint === undefined) continue;
      const exposedPorts = (link.exposedPorts ?? []).map((key) => {
        const [port = '0', proto = 'tcp'] = key.split('/');
        return { port: Number(port), proto };
      });
      const name = `/${spec.name}/${link.alias}`;
      env.push(...linkEnv({ name, ip: endpoint.ip, exposedPorts, env: target.process.env }));
      hosts.push(`${endpoint.ip}\t${link.alias}`);
    }
    return { env, hosts };
  }

  /** End of the plan: the deferred /etc/hosts rewrites of the creates are done; the registry client is closed. */
  async flush(): Promise<void> {
    this.client?.close();
    this.client = undefined;
    await this.engine.containers.flushHosts();
  }

  async startContainer(spec: ContainerStartSpec): Promise<void> {
    await this.engine.containers.start(this.createdIds.get(spec.container) ?? spec.container);
  }

  async stopContainer(spec: ContainerStopSpec): Promise<void> {
    await this.engine.containers.stop(spec.container, spec.timeoutSeconds);
  }

  async removeContainer(spec: ContainerRemoveSpec): Promise<void> {
    // The other containers' /etc/hosts are rewritten once, by flush() at the end of the plan.
    const record = await this.engine.containers.remove(spec.container, { force: true, deferHosts: true });
    if (spec.volumes) {
      await this.engine.volumes.removeAnonymous(record.mounts, { usersOf: containerRecordUsers(this.engine.paths) });
    }
  }

  /** Waits until the container's monitor reports it healthy; fails when it is unhealthy or exits. */
  async waitHealthy(spec: ContainerWaitHealthySpec, signal: AbortSignal): Promise<void> {
    const deadline = spec.timeoutMs === undefined ? Infinity : Date.now() + spec.timeoutMs;
    let delay = 20;
    for (;;) {
      signal.throwIfAborted();
      const record = await this.engine.containers.get(spec.container);
      const state = await this.engine.containers.state(record);
      const health = state.health?.status;
      if (health === 'healthy') return;
      // as compose: an exited container is named with its exit code (its health turns unhealthy when it exits)
      if (!state.running) {
        throw new TsfigError(
          'runtime',
          `dependency failed to start: container ${spec.name} exited (${state.exitCode})`,
        );
      }
      if (health === undefined) {
        throw new TsfigError('runtime', `container ${spec.name} has no healthcheck`, {
          hint: 'add a healthcheck to the service, or use condition: service_started',
        });
      }
      if (health === 'unhealthy')
        throw new TsfigError('runtime', `dependency failed to start: container ${spec.name} is unhealthy`);
      if (Date.now() > deadline)
        throw new TsfigError('runtime', `timed out waiting for container ${spec.name} to be healthy`);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 250);
    }
  }

  /** Waits until the container exits and returns its exit code (the executor fails the op unless it is 0). */
  async waitCompleted(spec: ContainerWaitCompletedSpec, signal: AbortSignal): Promise<number> {
    return this.engine.containers.wait(spec.container, { signal });
  }

  async waitRunning(spec: ContainerWaitRunningSpec, signal: AbortSignal): Promise<void> {
    const deadline = spec.timeoutMs === undefined ? Infinity : Date.now() + spec.timeoutMs;
    for (;;) {
      signal.throwIfAborted();
      const state = await this.engine.containers.state(await this.engine.containers.get(spec.container));
      if (state.running) return;
      if (state.status === 'exited' && state.exitCode === 0) return;
      if (state.status === 'exited')
        throw new TsfigError('runtime', `container ${spec.name} exited (${state.exitCode})`);
      if (Date.now() > deadline) throw new TsfigError('runtime', `timed out waiting for container ${spec.name} to run`);
      await sleep(100);
    }
  }

  async killContainer(spec: ContainerKillSpec): Promise<void> {
    await this.engine.containers.kill(spec.container, spec.signal);
  }

  async pauseContainer(spec: ContainerPauseSpec, paused: boolean): Promise<void> {
    await this.engine.containers.freeze(spec.container, paused);
  }

  async pullImage(spec: ImagePullSpec, signal: AbortSignal): Promise<void> {
    const { pullImage } = await registry();
    const client = await this.registryClient();
    const { image, services } = spec;
    this.events.emit({ kind: 'pull.start', image, services });
    try {
      const result = await pullImage(client, this.engine.images, image, {
        onEvent: pullEventSink(this.events, image),
        signal,
      });
      this.events.emit({ kind: 'pull.done', image, services, status: result.downloaded ? 'downloaded' : 'up-to-date' });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (!signal.aborted) this.events.emit({ kind: 'pull.error', image, services, message });
      throw error;
    }
  }

  async buildImage(spec: ImageBuildSpec, signal: AbortSignal): Promise<void> {
    // The builder (and what it imports) loads only when a service has something to build: not on every `up`.
    const { Builder } = await import('../../engine/build/index.js');
    const started = Date.now();
    const cachedSteps = new Set<number>();
    this.events.emit({ kind: 'build.start', service: spec.service, image: spec.image });
    const result = await new Builder(this.engine).build(builderOptionsOf(spec, signal), (event) => {
      const converted = buildEventOf(spec.service, event, cachedSteps);
      if (converted !== undefined) this.events.emit(converted);
    });
    this.events.emit({
      kind: 'build.done',
      service: spec.service,
      image: spec.image,
      steps: result.steps,
      cachedSteps: result.cachedSteps,
      durationMs: Date.now() - started,
    });
  }

  async removeImage(spec: ImageRemoveSpec): Promise<void> {
    await this.engine.images.remove(spec.image);
  }

  /** The registry client of this plan (one for all its pulls and pushes; flush closes it). */
  private async registryClient(): Promise<RegistryClient> {
    const { registryClientFromEnv } = await registry();
    this.client ??= registryClientFromEnv(this.env);
    return this.client;
  }

  async pushImage(spec: ImagePushSpec): Promise<{ digest: string }> {
    const client = await this.registryClient();
    const { pushImage } = await registry();
    return { digest: (await pushImage(client, this.engine.images, spec.image)).digest };
  }

  async pushArtifact(spec: ArtifactPushSpec): Promise<{ digest: string }> {
    const client = await this.registryClient();
    const { pushArtifact } = await registry();
    const layers = [];
    for (const layer of spec.layers) {
      layers.push({
        mediaType: layer.mediaType,
        data: await layer.data.read(`publish ${spec.reference}`),
        annotations: layer.annotations,
      });
    }
    const result = await pushArtifact(client, spec.reference, {
      artifactType: spec.artifactType,
      legacyConfigMediaType: spec.legacyConfigMediaType,
      layers,
      annotations: spec.annotations,
      ociVersion: spec.ociVersion,
    });
    if (spec.ociVersion === 'auto' && result.ociVersion === '1.0') {
      this.note(`${result.reference}: the registry refused an OCI 1.1 artifact; it was pushed as OCI 1.0`);
    }
    return { digest: result.digest };
  }

  async commitContainer(spec: ImageCommitSpec): Promise<string> {
    const record = await commitContainer(this.engine, spec.container, {
      reference: spec.reference,
      changes: [...spec.changes],
      message: spec.message,
      author: spec.author,
    });
    return record.id;
  }

  /** A post_start/pre_stop hook: an exec in the container; its output is appended to the container's log. */
  async runHook(spec: ContainerHookSpec): Promise<{ exitCode: number; output: string }> {
    const result = await this.engine.containers.exec(spec.container, {
      argv: spec.command,
      env: spec.environment,
      interactive: false,
      privileged: spec.privileged,
      ...(spec.user !== undefined ? { user: spec.user } : {}),
      ...(spec.workingDir !== undefined ? { workingDir: spec.workingDir } : {}),
    });
    await this.engine.containers.appendLog(spec.container, hookLogEntries(result.stdout, result.stderr));
    return { exitCode: result.exitCode, output: result.stderr.trim() !== '' ? result.stderr : result.stdout };
  }

  /**
   * A `develop.watch` sync: each script with `sh -c` in the container (its root, its user: a symlink inside it never
   * leads out to the host), up to the first that fails.
   */
  async syncFiles(spec: ContainerSyncSpec): Promise<{ exitCode: number; output: string }> {
    for (const script of spec.scripts) {
      const result = await this.engine.containers.exec(spec.container, { argv: ['sh', '-c', script] });
      if (result.exitCode !== 0) return { exitCode: result.exitCode, output: result.stderr };
    }
    return { exitCode: 0, output: '' };
  }

  /** A `develop.watch` sync+exec command: an exec in the container. */
  async execInContainer(spec: ContainerExecSpec): Promise<{ exitCode: number; output: string }> {
    const result = await this.engine.containers.exec(spec.container, {
      argv: spec.command,
      env: spec.environment,
      ...(spec.user !== undefined ? { user: spec.user } : {}),
      ...(spec.workingDir !== undefined ? { workingDir: spec.workingDir } : {}),
    });
    return { exitCode: result.exitCode, output: result.stderr.trim() !== '' ? result.stderr : result.stdout };
  }

  /**
   * A pre_start hook: a one-off container with the volumes of `spec.volumesFrom` (created, not started), run to
   * its exit and removed whatever its exit (its output stays in the service container's log and in the error).
   * One that a killed command left is removed by the plan before (`container.remove`, planner/reconcile.ts).
   */
  async runPreStart(spec: ContainerPreStartSpec, signal: AbortSignal): Promise<{ exitCode: number; output: string }> {
    const id = await this.createContainer(spec.create);
    try {
      await this.engine.containers.start(id);
      const exitCode = await this.engine.containers.wait(id, { signal });
      let stdout = '';
      let stderr = '';
      for await (const entry of this.engine.containers.logs(id)) {
        if (entry.stream === 'stderr') stderr += entry.text;
        else stdout += entry.text;
      }
      await this.engine.containers.appendLog(spec.volumesFrom.container, hookLogEntries(stdout, stderr));
      return { exitCode, output: stderr.trim() !== '' ? stderr : stdout };
    } finally {
      const record = await this.engine.containers.remove(id, { force: true, deferHosts: true });
      await this.engine.volumes.removeAnonymous(record.mounts, { usersOf: containerRecordUsers(this.engine.paths) });
    }
  }
}

/** A hook's output as log lines of the container (stdout lines, then stderr lines). */
function hookLogEntries(stdout: string, stderr: string): Array<{ stream: 'stdout' | 'stderr'; text: string }> {
  const lines = (text: string) => (text === '' ? [] : text.replace(/\n$/, '').split('\n'));
  return [
    ...lines(stdout).map((text) => ({ stream: 'stdout' as const, text })),
    ...lines(stderr).map((text) => ({ stream: 'stderr' as const, text })),
  ];
}
