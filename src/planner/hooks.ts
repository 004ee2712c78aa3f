/**
 * Lifecycle hooks of a service (compose 2.30 `post_start`/`pre_stop`, compose 5.3 `pre_start`), read from the
 * normalised service's `other` keys into the specs the planner puts in its hook operations. Pure.
 *
 * - `post_start`: run in the container (an exec) right after it started; a non-zero exit fails the operation.
 * - `pre_stop`: run in the running container before it is stopped (`stop`, `down`, a recreate).
 * - `pre_start`: a one-off container of the service's image (or `image:`) that shares the first replica's volumes
 *   and networks, run to completion before the service's containers start when none of them runs; a non-zero exit
 *   blocks the start.
 */
import { shellSplit } from '../config/values.js';
import { TsfigError } from '../errors.js';
import type { Project, Service } from '../model/project.js';
import {
  Label,
  containerName,
  serviceContainerSpec,
  withComposeLabels,
  type ServiceContainerOptions,
} from './container-spec.js';
import type { ObservedContainer } from './observed.js';
import type { ContainerHookSpec, ContainerPreStartSpec, ContainerRef } from './plan.js';

export type HookPhase = 'post_start' | 'pre_stop' | 'pre_start';

export interface HookSpec {
  readonly command: readonly string[];
  readonly user: string | undefined;
  readonly workingDir: string | undefined;
  /** KEY=VALUE, the hook's own `environment`. */
  readonly environment: readonly string[];
  /** `privileged: true`: every capability for the hook's process (docker exec --privileged). */
  readonly privileged: boolean;
  /** pre_start only: the image the hook runs (default: the service's). */
  readonly image: string | undefined;
}

function hookError(service: string, phase: HookPhase, index: number, message: string, hint?: string): TsfigError {
  return new TsfigError(
    'config',
    `services.${service}.${phase}[${index}]: ${message}`,
    hint === undefined ? {} : { hint },
  );
}

function environmentOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== null && item !== undefined)
      .map(([key, item]) => `${key}=${typeof item === 'string' ? item : JSON.stringify(item)}`);
  }
  return [];
}

/** The hooks of one phase, in declared order; a malformed entry is a config error naming it. */
export function serviceHooks(service: Service, phase: HookPhase): HookSpec[] {
  const raw = service.other[phase];
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw hookError(service.name, phase, 0, 'must be a list of hooks');
  return raw.map((entry: unknown, index) => {
    if (entry === null || typeof entry !== 'object') throw hookError(service.name, phase, index, 'must be a mapping');
    const hook = entry as Record<string, unknown>;
    let command: string[] = [];
    try {
      // a string is split into words as compose-go does (no shell), like the service's `command`
      if (typeof hook.command === 'string') command = shellSplit(hook.command);
      else if (Array.isArray(hook.command)) command = hook.command.map(String);
    } catch (error) {
      throw hookError(service.name, phase, index, `command: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (command.length === 0) throw hookError(service.name, phase, index, 'command is required');
    if (hook.per_replica === true) {
      throw hookError(service.name, phase, index, 'per_replica is not supported (as in compose 5.3)');
    }
    return {
      command,
      user: typeof hook.user === 'string' ? hook.user : undefined,
      workingDir: typeof hook.working_dir === 'string' ? hook.working_dir : undefined,
      environment: environmentOf(hook.environment),
      privileged: hook.privileged === true || hook.privileged === 'true',
      image: phase === 'pre_start' && typeof hook.image === 'string' ? hook.image : undefined,
    };
  });
}

/** A pre_stop hook runs only in a container that runs (not paused: an exec there would wait for the thaw). */
export function hooksCanRun(c: ObservedContainer): boolean {
  return c.running && c.status === 'running';
}

/** The container.hook spec of one post_start/pre_stop hook of `service` for the container `ref`. */
export function hookSpec(
  service: Service,
  ref: ContainerRef,
  phase: 'post_start' | 'pre_stop',
  index: number,
  hook: HookSpec,
): ContainerHookSpec {
  return {
    ...ref,
    service: service.name,
    phase,
    index,
    command: hook.command,
    user: hook.user,
    workingDir: hook.workingDir,
    environment: hook.environment,
    privileged: hook.privileged,
  };
}

/** The label of a hook's own container (`pre_start`). */
export const HOOK_LABEL = 'io.tsfig.hook';

/**
 * The container.pre-start spec of one pre_start hook: the service's container spec for replica 1 with the hook's
 * image, command (the image's entrypoint kept, as compose), user, working dir and environment added to the
 * service's; the volumes of `volumesFrom` and the service's networks; no published ports, no restart, no
 * healthcheck; labelled as a one-off of the service (`io.tsfig.hook=pre_start`), so it is never a replica.
 */
export function preStartSpec(
  project: Project,
  service: Service,
  index: number,
  hook: HookSpec,
  volumesFrom: ContainerRef,
  images?: ServiceContainerOptions['images'],
): ContainerPreStartSpec {
  const base = serviceContainerSpec(project, service, 1, { configHash: '', images }).spec;
  const name = `${containerName(project, service, 1)}-pre-start-${index + 1}`;
  const { entrypoint: _entrypoint, user: _user, workingDir: _workingDir, ...container } = base.container;
  return {
    service: service.name,
    index,
    volumesFrom,
    create: {
      ...base,
      name,
      container: {
        ...container,
        name,
        image: hook.image ?? base.container.image,
        cmd: hook.command,
        env: [...(base.container.env ?? []), ...hook.environment],
        ...(hook.user !== undefined ? { user: hook.user } : {}),
        ...(hook.workingDir !== undefined ? { workingDir: hook.workingDir } : {}),
        ...(hook.privileged ? { privileged: true } : {}),
        labels: withComposeLabels({
          [Label.Project]: project.name,
          [Label.Service]: service.name,
          [Label.Oneoff]: 'True',
          [HOOK_LABEL]: 'pre_start',
        }),
      },
      mounts: [],
      volumesFrom: [{ container: volumesFrom.container, mode: 'rw' }],
      ports: [],
      restart: { name: 'no', maxRetries: undefined },
      healthcheck: undefined,
    },
  };
}
