import type { Engine } from '../../../engine/index.js';
import { resolveMounts, type VolumesFromSource } from '../../../engine/volumes/index.js';
import type {
  ContainerCreateSpec,
  ContainerRemoveSpec,
  ContainerStartSpec,
  ContainerStopSpec,
  ContainerWaitCompletedSpec,
  ContainerWaitHealthySpec,
  NetworkCreateSpec,
  NetworkRemoveSpec,
  VolumeCreateSpec,
  VolumeRemoveSpec,
} from '../../planner/plan.js';
import { TsfigError } from '../../errors.js';
import type { ExecutorPort } from '../../executor/port.js';
import { toEngineContainerSpec } from '../../planner/container-spec.js';
import { linkEnv } from '../../../engine/network/links.js';
import { containerRecordUsers } from '../../../engine/volumes/index.js';

/**
 * The executor's port onto the real engine: one method per operation kind, each one engine call (or the few calls
 * that make one compose step, such as resolving a container's mounts before creating it). No decisions here.
 */
export class EnginePort implements ExecutorPort {
  private readonly engine: Engine;

  constructor(engine: Engine) {
    this.engine = engine;
  }

  async createNetwork(spec: NetworkCreateSpec): Promise<void> {
    await this.engine.networks.create(spec.name, {
      internal: spec.internal,
      labels: spec.labels,
      ...(spec.subnet !== undefined ? { subnet: spec.subnet } : {}),
      ...(spec.gateway !== undefined ? { gateway: spec.gateway } : {}),
    });
  }

  async removeNetwork(spec: NetworkRemoveSpec): Promise<void> {
    await this.engine.networks.remove(spec.name);
  }

  async createVolume(spec: VolumeCreateSpec): Promise<void> {
    if (spec.driver !== undefined && spec.driver !== 'local') {
      throw new TsfigError('runtime', `volume ${spec.name}: driver "${spec.driver}" is not supported`, {
        hint: 'use the local driver',
      });
    }
    await this.engine.volumes.create(spec.name, { driverOpts: spec.driverOpts, labels: spec.labels });
  }

  async removeVolume(spec: VolumeRemoveSpec): Promise<void> {
    await this.engine.volumes.remove(spec.name, { usersOf: containerRecordUsers(this.engine.paths) });
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
    const container = toEngineContainerSpec(spec);
    const links = await this.linkSettings(spec);
    const record = await engine.containers.create(
      {
        ...container,
        env: [...links.env, ...(container.env ?? [])],
        extraHosts: [...(container.extraHosts ?? []), ...links.hosts],
      },
      {
        // The other containers' /etc/hosts are rewritten in the background; flush() waits for them.
        deferHosts: true,
        reserve: async (write) => {
          await turn;
          try {
            return await engine.volumes.withLock(async () => {
              const resolved = await resolveMounts(spec.mounts, {
                volumes: engine.volumes,
                imageVolumes: Object.keys(image.config.config?.Volumes ?? {}),
                volumesFrom,
                volumeLabels: spec.volumeLabels,
              });
              for (const note of resolved.notes) process.stderr.write(`note: ${spec.name}: ${note}\n`);
              for (const created of resolved.createdPaths) {
                process.stderr.write(`note: ${spec.name}: created the missing bind source ${created}\n`);
              }
              return write(resolved.mounts);
            });
          } finally {
            passTurn();
          }
        },
      },
    );
    return record.id;
  }

  /**
   * Fig-style links: for each linked container, its address on a network both share as an /etc/hosts line under the
   * alias, and Docker's link variables (`DB_PORT_5432_TCP_ADDR`...; the container's own environment wins).
   */
  private async linkSettings(spec: ContainerCreateSpec): Promise<{ env: string[]; hosts: string[] }> {
    const env: string[] = [];
    const hosts: string[] = [];
    if (spec.links === undefined || spec.links.length === 0) return { env, hosts };
    const joined = new Set(spec.network.mode === 'networks' ? spec.network.networks.map((n) => n.network) : []);
    const networks = await this.engine.networks.list();
    for (const link of spec.links) {
      const target = await this.engine.containers.get(link.container);
      const endpoint = networks
        .filter((network) => joined.has(network.name))
        .map((network) => network.endpoints[target.id])
        .find((candidate) => candidate !== undefined);
      if (endpoint === undefined) continue;
      const image = await this.engine.images.resolve(target.imageId);
      const exposedPorts = Object.keys(image.config.config?.ExposedPorts ?? {}).map((key) => {
        const [port = '0', proto = 'tcp'] = key.split('/');
        return { port: Number(port), proto };
      });
      const ownEnv = target.process.env.filter((entry) => !/^(PATH|HOME|HOSTNAME)=/.test(entry));
      env.push(...linkEnv({ name: `/${spec.name}/${link.alias}`, ip: endpoint.ip, exposedPorts, env: ownEnv }));
      hosts.push(`${endpoint.ip}\t${link.alias}`);
    }
    return { env, hosts };
  }

  /** End of the plan: the deferred /etc/hosts rewrites of the creates are done. */
  async flush(): Promise<void> {
    await this.engine.containers.flushHosts();
  }

  async startContainer(spec: ContainerStartSpec): Promise<void> {
    await this.engine.containers.start(spec.container);
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
      if (health === undefined) {
        throw new TsfigError('runtime', `container ${spec.name} has no healthcheck`, {
          hint: 'add a healthcheck to the service, or use condition: service_started',
        });
      }
      if (health === 'unhealthy')
        throw new TsfigError('runtime', `dependency failed to start: container ${spec.name} is unhealthy`);
      if (!state.running) {
        throw new TsfigError(
          'runtime',
          `dependency failed to start: container ${spec.name} exited (${state.exitCode})`,
        );
      }
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
}
