/**
 * `run SERVICE [COMMAND...]`: a one-off container of a service. One plan makes the project's networks and the
 * service's volumes, converges its dependencies (as `up --no-recreate` would, unless `--no-deps`) and creates the
 * container; `-d` starts it in the same plan. Attached, the start, the wait and (`--rm`) the removal are plans of
 * their own, run while this CLI holds the container's auto-remove hold; the exit code is the container's.
 */
import { randomBytes } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import { parsePortSpec } from '../../engine/network/index.js';
import { parseVolumeFlag } from '../../engine/volumes/index.js';
import { ExitCode } from '../exit-code.js';
import { TsfigError } from '../errors.js';
import type { EventSink } from '../events/events.js';
import type { Project } from '../model/project.js';
import type { ObservedState } from '../planner/observed.js';
import { Label, serviceContainerSpec, withComposeLabels } from '../planner/container-spec.js';
import { serviceConfigHash } from '../planner/hash.js';
import { imagesProduced, planImages } from '../planner/images.js';
import { OpKind, sequencePlans, type ContainerCreateSpec, type Plan } from '../planner/plan.js';
import { plan as planContainers, servicesInScope } from '../planner/reconcile.js';
import { applyPlan, printPlan } from './apply.js';
import type { ComposeContext } from './context.js';
import { lastPulledOf } from './up.js';

export interface RunOptions {
  readonly project: Project;
  readonly service: string;
  /** The command (overrides the service's); empty = the service's. */
  readonly command: readonly string[];
  readonly detach?: boolean;
  readonly rm?: boolean;
  /** `--name`; default `<project>-<service>-run-<12 hex>`. */
  readonly name?: string | undefined;
  readonly entrypoint?: string | undefined;
  /** `-e KEY=VAL` entries, after the service's environment. */
  readonly env?: readonly string[];
  /** `-l KEY=VAL` entries. */
  readonly labels?: readonly string[];
  readonly user?: string | undefined;
  readonly workdir?: string | undefined;
  /** `-p` specs (the service's ports are not published unless servicePorts). */
  readonly publish?: readonly string[];
  readonly servicePorts?: boolean;
  /** `-v` specs. */
  readonly volumes?: readonly string[];
  /** `--no-deps`: false. @default true */
  readonly deps?: boolean;
  /** A TTY for the container (the CLI decides: `-T` not given, stdin a terminal, not detached). */
  readonly tty?: boolean;
  readonly interactive?: boolean;
  /** `--build`: build the image even when present; `--pull POLICY`. */
  readonly build?: boolean;
  readonly pull?: string | undefined;
  readonly dryRun?: boolean;
  readonly format?: 'text' | 'json';
}

function keyValues(entries: readonly string[] = []): Record<string, string> {
  return Object.fromEntries(
    entries.map((entry) => {
      const index = entry.indexOf('=');
      return index < 0 ? [entry, ''] : [entry.slice(0, index), entry.slice(index + 1)];
    }),
  );
}

/** The one-off container's spec: the service's, with `run`'s overrides (compose's rules: no ports, no restart). */
export function oneOffSpec(base: ContainerCreateSpec, name: string, options: RunOptions): ContainerCreateSpec {
  const tty = options.tty === true && options.detach !== true;
  return {
    ...base,
    name,
    container: {
      ...base.container,
      name,
      labels: withComposeLabels({
        ...base.container.labels,
        ...keyValues(options.labels),
        [Label.Oneoff]: 'True',
        [Label.ContainerNumber]: '1',
      }),
      ...(options.command.length > 0 ? { cmd: [...options.command] } : {}),
      ...(options.entrypoint !== undefined
        ? { entrypoint: options.entrypoint === '' ? [] : [options.entrypoint] }
        : {}),
      env: [...(base.container.env ?? []), ...(options.env ?? [])],
      ...(options.user !== undefined ? { user: options.user } : {}),
      ...(options.workdir !== undefined ? { workingDir: options.workdir } : {}),
      tty,
      openStdin: options.interactive === true || tty,
      // removed by its monitor once it exits, even detached or with this CLI gone (and by this CLI when attached)
      ...(options.rm === true ? { autoRemove: true } : {}),
    },
    mounts: [...base.mounts, ...(options.volumes ?? []).map((spec) => parseVolumeFlag(spec))],
    ports: options.servicePorts === true ? base.ports : (options.publish ?? []).map(parsePortSpec),
    restart: { name: 'no', maxRetries: undefined },
  };
}

/**
 * Where the plans of an attached one-off report (its start, the signals forwarded to it, its removal): the
 * context's sink. With `--progress json` every event goes there, as for any plan; in the line modes a status line
 * would fall between the container's own output, so only warnings and notes do (compose's attached run shows none).
 */
function attachedEvents(ctx: ComposeContext): EventSink {
  if (ctx.jsonProgress === true) return ctx.events;
  return {
    emit: (event) => {
      if (event.kind === 'warning' || event.kind === 'note') ctx.events.emit(event);
    },
  };
}

/** The plan of one container op (attached run: its start, its removal). */
function single(project: string, op: Plan['operations'][number]): Plan {
  return { version: 1, project, operations: [op], warnings: [] };
}

export async function run(ctx: ComposeContext, options: RunOptions): Promise<ExitCode> {
  const { project } = options;
  const service = project.services[options.service];
  if (service === undefined) throw new TsfigError('usage', `no such service: ${options.service}`);
  const name = options.name ?? `${project.name}-${service.name}-run-${randomBytes(6).toString('hex')}`;
  const detach = options.detach === true;
  const noDeps = options.deps === false;
  // the service's spec with run's overrides; its links list the observed images' exposed ports
  const specFrom = (observed: ObservedState) =>
    oneOffSpec(
      serviceContainerSpec(project, service, 1, { configHash: serviceConfigHash(service), images: observed.images })
        .spec,
      name,
      options,
    );
  const planOptions = (observed: ObservedState) => ({
    oneOff: { spec: specFrom(observed), start: detach },
    noRecreate: true,
    noDeps,
  });
  const created = await ctx.port.lockProject(project.name, async () => {
    if (options.dryRun !== true) await ctx.port.repair();
    const before = await ctx.port.observe(project);
    const scope = noDeps ? new Set<string>() : servicesInScope(project, { services: [service.name] });
    const imageServices = [...new Set([service.name, ...scope])];
    const images = planImages(project, before, {
      services: imageServices,
      pull: options.pull,
      build: options.build === true ? true : 'missing',
      env: ctx.env,
      now: ctx.clock(),
      lastPulled: await lastPulledOf(ctx, project, before, imageServices, options.pull),
    });
    if (options.dryRun === true) {
      const pendingImages = imagesProduced(images);
      printPlan(
        ctx,
        sequencePlans(images, planContainers(project, before, { ...planOptions(before), pendingImages })),
        options.format,
      );
      return undefined;
    }
    let observed = before;
    if (images.operations.length > 0) {
      await ctx.interruptible('run', 'run it again to continue', (signal) => applyPlan(ctx, images, signal));
      observed = await ctx.port.observe(project);
    }
    const oneOff = planOptions(observed);
    const thePlan = planContainers(project, observed, oneOff);
    await ctx.port.preflight(thePlan);
    const result = await applyPlan(ctx, thePlan);
    const id = result.containerIds[name];
    if (id === undefined) throw new TsfigError('internal', `the plan did not create ${name}`);
    return { id, spec: oneOff.oneOff.spec };
  });
  if (created === undefined) return ExitCode.ok;
  if (detach) {
    ctx.stdout.write(`${name}\n`);
    return ExitCode.ok;
  }
  return attached(ctx, options, created.spec, created.id);
}

/**
 * Attached: this CLI starts the container, copies its output, reads its exit code and (`--rm`) removes it, holding
 * the auto-remove hold so that its monitor's cleanup waits (and removes it alone if this CLI is killed).
 */
async function attached(
  ctx: ComposeContext,
  options: RunOptions,
  spec: ContainerCreateSpec,
  id: string,
): Promise<ExitCode> {
  const project = options.project.name;
  const resource = `service:${spec.service}:run`;
  const quiet = { ...ctx, events: attachedEvents(ctx) };
  const ref = { container: id, name: spec.name };
  const remove = single(project, {
    id: 1,
    kind: OpKind.ContainerRemove,
    resource,
    reason: 'run --rm: the one-off container exited',
    dependsOn: [],
    group: `remove:${resource}`,
    spec: { ...ref, volumes: true },
  });
  const removeIfThere = async () => {
    const observed = await ctx.port.observe(options.project);
    if (observed.containers.some((c) => c.id === id)) await applyPlan(quiet, remove);
  };
  const work = async (): Promise<ExitCode> => {
    const start = single(project, {
      id: 1,
      kind: OpKind.ContainerStart,
      resource,
      reason: 'one-off container (run)',
      dependsOn: [],
      group: `start:${resource}`,
      spec: ref,
    });
    try {
      await applyPlan(quiet, start);
    } catch (error) {
      if (options.rm === true) await removeIfThere();
      throw error;
    }
    const detachStdin =
      spec.container.openStdin === true ? ctx.terminal.attachStdin(id, spec.container.tty === true) : undefined;
    // Without a tty, SIGINT/SIGTERM/SIGHUP of this CLI go to the container (docker compose run's signal proxy), which
    // decides whether it ends; this CLI stays to read its exit code. With a tty, Ctrl-C is a key on its stdin. A
    // second signal is not forwarded: this CLI stops following and exits 128+N, the container runs on (a PID 1
    // without a handler ignores SIGINT and SIGTERM, and the user must be able to get the terminal back); with --rm
    // its exit command removes it once it exits.
    const abandoned = new AbortController();
    let received: string | undefined;
    const stopForwarding =
      spec.container.tty === true
        ? undefined
        : ctx.terminal.onSignals((signal) => {
            if (received !== undefined) {
              received = signal;
              abandoned.abort();
              return;
            }
            received = signal;
            const kill = single(project, {
              id: 1,
              kind: OpKind.ContainerKill,
              resource,
              reason: `run: ${signal} forwarded to the one-off container`,
              dependsOn: [],
              group: `kill:${resource}`,
              spec: { ...ref, signal },
            });
            // the container may be exiting already: nothing to forward to then
            applyPlan(quiet, kill).catch(() => undefined);
          });
    let code: number;
    let left = false;
    try {
      const self = (await ctx.port.observe(options.project)).containers.filter((c) => c.id === id);
      // stdout to stdout, stderr to stderr, as an attached `docker compose run` (docker attach) keeps them
      await ctx.terminal.followLogs(self, {
        timestamps: false,
        color: false,
        prefix: false,
        splitStreams: true,
        signal: abandoned.signal,
      });
      code = await ctx.port.waitExit(id, abandoned.signal);
    } catch (error) {
      if (!abandoned.signal.aborted) throw error;
      left = true;
      code = 128 + (osConstants.signals[received as NodeJS.Signals] ?? 0);
    } finally {
      stopForwarding?.();
      detachStdin?.();
    }
    if (left) {
      ctx.stderr.write(`${spec.name} keeps running: this CLI stopped following it after a second ${received}\n`);
      return code;
    }
    if (options.rm === true) await removeIfThere();
    return code;
  };
  return options.rm === true ? ctx.port.holdAutoRemove(id, work) : work();
}
