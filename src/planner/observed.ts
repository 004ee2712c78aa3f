/**
 * What the planner knows about the engine: one snapshot read by `observe(engine, project)` before planning, so that
 * `plan` never calls the engine (compose's ObservedState). Types only; observation lives with the lead.
 */
import type {
  ContainerRecord,
  ContainerSpec,
  ContainerState,
  ContainerStateName,
} from '../../engine/containers/index.js';
import { Label } from './container-spec.js';

/** A mount of an observed container, as its record holds it (only what the planner needs). */
export interface ObservedMount {
  /** Path inside the container. */
  readonly destination: string;
  /** The named or anonymous volume behind the mount; undefined for binds and tmpfs. */
  readonly volumeName: string | undefined;
  /** True when that volume is anonymous (carried over on recreate unless renewAnonVolumes). */
  readonly anonymous: boolean;
}

export interface ObservedContainer {
  readonly id: string;
  readonly name: string;
  /** Label `io.tsfig.project`. */
  readonly project: string;
  /** Label `io.tsfig.service`. */
  readonly service: string;
  /** Label `io.tsfig.container-number`; 0 when absent or not a number. */
  readonly number: number;
  /** Label `io.tsfig.oneoff` is "True" (a `run` container). */
  readonly oneoff: boolean;
  /** Label `io.tsfig.config-hash`; undefined when absent. */
  readonly configHash: string | undefined;
  readonly running: boolean;
  /** Running with its processes frozen (`pause`): observed from its cgroup's freezer. */
  readonly paused: boolean;
  /** `restarting`: exited and waiting for its restart policy's back-off (the monitor restarts it). */
  readonly status: ContainerStateName;
  readonly exitCode: number;
  /** Image id the container was created from. */
  readonly imageId: string;
  readonly labels: Readonly<Record<string, string>>;
  /** ISO timestamp; only used to order duplicates deterministically. */
  readonly created: string;
  readonly mounts: readonly ObservedMount[];
  /**
   * The spec the container was created with (the engine record's `spec`), when available. Used only to write precise
   * human reasons ("environment.FOO changed"); the recreate decision is the config hash.
   */
  readonly spec?: ContainerSpec;
}

export interface ObservedNetwork {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface ObservedVolume {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** A local image, as the planner needs it. */
export interface ObservedImage {
  readonly id: string;
  /** Its config's `ExposedPorts` keys (`5432/tcp`): what Docker's link variables list with the service's ports. */
  readonly exposedPorts?: readonly string[];
}

export interface ObservedState {
  /** Every container labelled with this project (one-offs included), in any order. */
  readonly containers: readonly ObservedContainer[];
  /** Every network on the host (or at least those the project names). */
  readonly networks: readonly ObservedNetwork[];
  /** Every volume on the host (or at least those the project names and its containers use). */
  readonly volumes: readonly ObservedVolume[];
  /**
   * Local images, keyed by each service's `image` string exactly as written in the project. A key whose value is
   * undefined (or a missing key) means the image is not present locally.
   */
  readonly images: Readonly<Record<string, ObservedImage | undefined>>;
}

/**
 * An engine container as the planner sees it, or undefined when it carries no `io.tsfig.project` label (not ours).
 * Pure: `observe` reads records and states, this only maps them.
 */
export function toObservedContainer(
  record: Pick<ContainerRecord, 'id' | 'name' | 'created' | 'imageId' | 'labels' | 'mounts' | 'spec'>,
  state: Pick<ContainerState, 'status' | 'running' | 'exitCode'>,
  paused = false,
): ObservedContainer | undefined {
  const labels = record.labels;
  const project = labels[Label.Project];
  if (project === undefined) return undefined;
  const number = Number(labels[Label.ContainerNumber]);
  return {
    id: record.id,
    name: record.name,
    project,
    service: labels[Label.Service] ?? '',
    number: Number.isInteger(number) && number > 0 ? number : 0,
    oneoff: labels[Label.Oneoff] === 'True',
    configHash: labels[Label.ConfigHash],
    running: state.running,
    paused: state.running && paused,
    status: state.status,
    exitCode: state.exitCode,
    imageId: record.imageId,
    labels,
    created: record.created,
    mounts: record.mounts.map((mount) => ({
      destination: mount.destination,
      volumeName: mount.volumeName,
      anonymous: mount.anonymous === true,
    })),
    spec: record.spec,
  };
}
