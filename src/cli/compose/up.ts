import { Option, type Command } from 'commander';
import type { Engine } from '../../../engine/index.js';
import { acquireLock } from '../../../engine/state/lock.js';
import type { LoadResult } from '../../config/load.js';
import { TsfigError } from '../../errors.js';
import { executePlan } from '../../executor/execute.js';
import type { Project } from '../../model/project.js';
import { observe, PROJECT_LABEL } from '../../planner/observe.js';
import { ANONYMOUS_LABEL, containerRecordUsers } from '../../../engine/volumes/index.js';
import type { ObservedContainer } from '../../planner/observed.js';
import type { Plan } from '../../planner/plan.js';
import { plan, planDown, type PlanOptions } from '../../planner/reconcile.js';
import { planHasChanges, renderPlanJson, renderPlanText } from '../../planner/render.js';
import type { EventSink } from '../../events/events.js';
import { makeRenderer, type ProgressMode } from '../../ui/progress.js';
import { runTui, TuiSink, wantsTui } from '../../ui/tty/index.js';
import { loadProjectFromOptions } from '../commands/config.js';
import { openEngine } from '../engine.js';
import { interruptible } from '../interrupt.js';
import { collect, parseCount } from '../units.js';
import { checkServices, loadForServices, projectOptions, serviceContainers } from './context.js';
import { EnginePort } from './engine-port.js';
import { printLogs } from './logs.js';
import { preflight } from './preflight.js';
import { buildServices, withDependencies } from './build.js';
import { ensureServiceImages } from './pull.js';

/** Serialises mutations of one project (two `up` at once end with one set of containers); reads never take it. */
export async function withProjectLock<T>(engine: Engine, projectName: string, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(`${engine.paths.rootId}:project:${projectName}`, { timeoutMs: 600_000 });
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

export function progressMode(command: Command): ProgressMode {
  return command.optsWithGlobals<{ progress?: ProgressMode }>().progress ?? 'auto';
}

/**
 * Applies a plan: renders its warnings, runs it, and turns a failure into the error of the op that failed. Events go
 * to `events` (the TUI of an attached `up`), else to the `--progress` renderer.
 */
export async function applyPlan(
  engine: Engine,
  thePlan: Plan,
  command: Command,
  signal?: AbortSignal,
  events?: EventSink,
): Promise<void> {
  const renderer = events ?? makeRenderer(progressMode(command));
  for (const warning of thePlan.warnings) renderer.emit({ kind: 'warning', message: warning });
  if (thePlan.operations.length === 0) return;
  const parallel = command.optsWithGlobals<{ parallel?: string }>().parallel;
  const result = await executePlan(thePlan, new EnginePort(engine), renderer, {
    ...(parallel !== undefined ? { parallel: Math.max(1, parseCount(parallel, '--parallel')) } : {}),
    ...(signal !== undefined ? { signal } : {}),
  });
  if (result.ok) return;
  const error = result.error;
  if (error instanceof Error) throw error;
  throw new TsfigError('runtime', String(error));
}

export interface UpFlags {
  detach?: boolean;
  dryRun?: boolean;
  format: 'text' | 'json';
  forceRecreate?: boolean;
  recreate: boolean;
  alwaysRecreateDeps?: boolean;
  deps: boolean;
  removeOrphans?: boolean;
  start: boolean;
  scale?: string[];
  renewAnonVolumes?: boolean;
  timeout?: string;
  wait?: boolean;
  waitTimeout?: string;
  abortOnContainerExit?: boolean;
  abortOnContainerFailure?: boolean;
  exitCodeFrom?: string;
  timestamps?: boolean;
  logPrefix: boolean;
  color: boolean;
  build?: boolean;
  pull?: string;
  watch?: boolean;
}

function parseScale(entries: readonly string[], project: Project): Record<string, number> {
  const scale: Record<string, number> = {};
  for (const entry of entries) {
    const match = /^([^=]+)=(\d+)$/.exec(entry);
    if (match === null || match[1] === undefined || match[2] === undefined) {
      throw new TsfigError('usage', `--scale: invalid value "${entry}"`, {
        hint: 'use SERVICE=NUM, e.g. --scale web=3',
      });
    }
    checkServices(project, [match[1]]);
    scale[match[1]] = Number(match[2]);
  }
  return scale;
}

export function planOptions(services: readonly string[], flags: UpFlags, project: Project): PlanOptions {
  if (flags.forceRecreate === true && !flags.recreate) {
    throw new TsfigError('usage', '--force-recreate and --no-recreate are incompatible');
  }
  return {
    services,
    noDeps: !flags.deps,
    forceRecreate: flags.forceRecreate === true,
    noRecreate: !flags.recreate,
    alwaysRecreateDeps: flags.alwaysRecreateDeps === true,
    removeOrphans: flags.removeOrphans === true,
    noStart: !flags.start,
    renewAnonVolumes: flags.renewAnonVolumes === true,
    scale: parseScale(flags.scale ?? [], project),
    ...(flags.timeout !== undefined ? { timeoutSeconds: parseCount(flags.timeout, '--timeout') } : {}),
  };
}

/**
 * Loads, locks, observes, plans; with --dry-run prints the plan; otherwise checks and applies it. Pulls, builds and
 * the plan report to `events` (the TUI of an attached `up`), else to the `--progress` renderer.
 */
export async function converge(
  command: Command,
  services: readonly string[],
  flags: UpFlags,
  events?: EventSink,
): Promise<{ engine: Engine; load: LoadResult; applied: boolean }> {
  const load = loadForServices(command, services);
  const project = load.project;
  const options = planOptions(services, flags, project);
  const engine = await openEngine();
  const applied = await withProjectLock(engine, project.name, async () => {
    if (flags.dryRun !== true) await engine.containers.repairNetworking();
    if (flags.dryRun !== true) {
      const names = services.length === 0 ? Object.keys(project.services) : services;
      const selected = flags.deps ? withDependencies(project, names) : names;
      // Images first: pulled as each service's pull_policy (or --pull) says, built for services with build:.
      // Ctrl-C / SIGTERM meanwhile stops them cleanly (a RUN step's container is removed), then 130 / 143.
      const sink = events ?? makeRenderer(progressMode(command));
      await interruptible(
        {
          what: 'up',
          hint:
            'run tsfig up again to continue (completed build steps and pulled layers are kept), ' +
            'or tsfig down to remove what the project already runs',
        },
        async (signal) => {
          await ensureServiceImages(project, engine, { policy: flags.pull, services: selected, events: sink, signal });
          if (flags.build !== false) await buildServices(engine, project, selected, { events: sink, signal });
        },
      );
    }
    const observed = await observe(engine, project.name, project);
    const thePlan = plan(project, observed, options);
    if (flags.dryRun === true) {
      const built = Object.values(project.services).filter((service) => service.build !== undefined);
      if (built.length > 0 && flags.build !== false) {
        process.stderr.write(
          `note: ${built.map((service) => service.name).join(', ')} would be built first; this plan assumes their current images\n`,
        );
      }
      process.stdout.write(flags.format === 'json' ? renderPlanJson(thePlan) : renderPlanText(thePlan));
      return false;
    }
    if (!planHasChanges(thePlan)) {
      for (const warning of thePlan.warnings) process.stderr.write(`WARN ${warning}\n`);
      process.stderr.write(`Project ${project.name} is up to date: nothing to do.\n`);
      return true;
    }
    await preflight(engine, thePlan);
    await applyPlan(engine, thePlan, command, undefined, events);
    return true;
  });
  return { engine, load, applied };
}

async function waitRunning(
  engine: Engine,
  project: Project,
  services: readonly string[],
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const observed = await observe(engine, project.name, project);
    const pending: string[] = [];
    for (const container of serviceContainers(observed, services)) {
      const state = await engine.containers.state(await engine.containers.get(container.id));
      const health = state.health?.status;
      if (!state.running) {
        if (state.exitCode !== 0)
          throw new TsfigError('runtime', `container ${container.name} exited (${state.exitCode})`);
        continue;
      }
      if (health !== undefined && health !== 'healthy') {
        if (health === 'unhealthy') throw new TsfigError('runtime', `container ${container.name} is unhealthy`);
        pending.push(container.name);
      }
    }
    if (pending.length === 0) return;
    if (Date.now() > deadline)
      throw new TsfigError('runtime', `timed out waiting for ${pending.join(', ')} to be healthy`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const abortFlags = (flags: UpFlags) =>
  flags.abortOnContainerExit === true || flags.abortOnContainerFailure === true || flags.exitCodeFrom !== undefined;

/** Attached mode: logs of every container until they all exit; Ctrl-C stops them gracefully, twice kills. */
async function attach(
  engine: Engine,
  project: Project,
  services: readonly string[],
  flags: UpFlags,
  command: Command,
  tui?: TuiSink,
): Promise<number> {
  if (tui !== undefined) return (await tui.attach({ engine, project, services })).exitCode;
  if (!abortFlags(flags) && wantsTui(progressMode(command)))
    return (await runTui({ engine, project, services, mode: 'up' })).exitCode;
  const observed = await observe(engine, project.name, project);
  const containers = serviceContainers(observed, services);
  const controller = new AbortController();
  let interrupts = 0;
  let exitCode = 0;
  const stopAll = async (kill: boolean) => {
    const all = serviceContainers(await observe(engine, project.name, project), services).filter((c) => c.running);
    await Promise.all(
      all.map((container) =>
        (kill ? engine.containers.kill(container.id, 'SIGKILL') : engine.containers.stop(container.id)).catch(
          () => undefined,
        ),
      ),
    );
  };
  const onSignal = () => {
    interrupts++;
    exitCode = 130;
    if (interrupts === 1) {
      process.stderr.write('Gracefully stopping... (press Ctrl+C again to force)\n');
      void stopAll(false);
    } else {
      void stopAll(true);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const abortOn =
    flags.abortOnContainerExit === true || flags.abortOnContainerFailure === true || flags.exitCodeFrom !== undefined;
  const watchers = containers.map(async (container: ObservedContainer) => {
    const code = await engine.containers.wait(container.id, { signal: controller.signal }).catch(() => undefined);
    if (code === undefined) return;
    process.stderr.write(`${container.name} exited with code ${code}\n`);
    if (flags.exitCodeFrom !== undefined && container.service === flags.exitCodeFrom) exitCode = code;
    const failed = code !== 0;
    if (
      abortOn &&
      interrupts === 0 &&
      (flags.abortOnContainerExit === true || flags.exitCodeFrom !== undefined || failed)
    ) {
      if (flags.exitCodeFrom === undefined) exitCode = code;
      interrupts = 1;
      process.stderr.write('Aborting on container exit...\n');
      await stopAll(false);
    }
  });
  try {
    await Promise.all([
      printLogs(engine, containers, {
        follow: true,
        timestamps: flags.timestamps === true,
        color: flags.color && process.stdout.isTTY === true && process.env.NO_COLOR === undefined,
        prefix: flags.logPrefix,
        signal: controller.signal,
      }),
      Promise.all(watchers),
    ]);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  void command;
  return exitCode;
}

export function registerUpDown(program: Command): void {
  program
    .command('up')
    .description('create and start containers')
    .argument('[services...]')
    .option('-d, --detach', 'detached mode: run containers in the background')
    .option('--dry-run', 'print the plan and change nothing')
    .addOption(new Option('--format <format>', 'format of --dry-run output').choices(['text', 'json']).default('text'))
    .option('--force-recreate', "recreate containers even if their configuration and image haven't changed")
    .option('--no-recreate', "if containers already exist, don't recreate them")
    .option('--always-recreate-deps', 'recreate dependent containers')
    .option('--no-deps', "don't start linked services")
    .option('--remove-orphans', 'remove containers for services not defined in the project file')
    .option('--no-start', "don't start the services after creating them")
    .option('--build', 'build images before starting containers (tsfig always does; the layer cache makes it cheap)')
    .option('--no-build', "don't build images, even if their build context changed")
    .option('--pull <policy>', 'pull image before running: always, missing, never')
    .option('--scale <SERVICE=NUM>', 'scale SERVICE to NUM instances', collect)
    .option(
      '-V, --renew-anon-volumes',
      'recreate anonymous volumes instead of retrieving data from the previous containers',
    )
    .option('-t, --timeout <seconds>', 'timeout in seconds for container shutdown')
    .option('--wait', 'wait for services to be running|healthy (implies detached mode)')
    .option('--wait-timeout <seconds>', 'maximum duration to wait for the project to be running|healthy')
    .option('--abort-on-container-exit', 'stops all containers if any container was stopped')
    .option('--abort-on-container-failure', 'stops all containers if any container exited with failure')
    .option('--exit-code-from <service>', 'return the exit code of the selected service container')
    .option('--timestamps', 'show timestamps')
    .option('--no-log-prefix', "don't print prefix in logs")
    .option('--no-color', 'produce monochrome output')
    .option('-w, --watch', 'watch the develop.watch paths and sync, restart or rebuild services as files change')
    .action(async (services: string[], flags: UpFlags, command: Command) => {
      const detach = flags.detach === true || flags.wait === true;
      if (detach && (flags.abortOnContainerExit === true || flags.exitCodeFrom !== undefined)) {
        throw new TsfigError('usage', '--abort-on-container-exit and --exit-code-from cannot be used with --detach');
      }
      // attached in a terminal: the TUI shows the pulls, builds and plan, then follows the stack
      const tui = !detach && !abortFlags(flags) && wantsTui(progressMode(command)) ? new TuiSink() : undefined;
      const converged = await converge(command, services, flags, tui).catch(async (error: unknown) => {
        await tui?.close();
        throw error;
      });
      const { engine, load, applied } = converged;
      if (!applied) return void (await tui?.close());
      if (flags.wait === true) {
        const timeout = flags.waitTimeout === undefined ? 600 : parseCount(flags.waitTimeout, '--wait-timeout');
        await waitRunning(engine, load.project, services, timeout * 1000);
      }
      if (detach) return;
      const files = [...load.sources.keys()];
      const watch =
        flags.watch === true
          ? (await import('../../watch/command.js')).startWatch(command, services, flags, engine, load.project, files)
          : undefined;
      try {
        process.exitCode = await attach(engine, load.project, services, flags, command, tui);
      } finally {
        await watch?.stop();
      }
    });

  program
    .command('down')
    .description('stop and remove containers and networks')
    .option(
      '-v, --volumes',
      'remove named volumes declared in the project file and anonymous volumes of its containers',
    )
    .option('--remove-orphans', 'remove containers for services not defined in the project file')
    .option('-t, --timeout <seconds>', 'shutdown timeout in seconds')
    .option('--rmi <type>', 'remove images used by services: local or all')
    .action(
      async (
        flags: { volumes?: boolean; removeOrphans?: boolean; timeout?: string; rmi?: string },
        command: Command,
      ) => {
        if (flags.rmi !== undefined) {
          throw new TsfigError('usage', '--rmi is not supported yet', { hint: 'remove images with: tsfig image rm' });
        }
        const load = loadProjectFromOptions(projectOptions(command));
        const project = load.project;
        const engine = await openEngine();
        await withProjectLock(engine, project.name, async () => {
          await engine.containers.repairNetworking();
          const observed = await observe(engine, project.name, project);
          const thePlan = planDown(project, observed, {
            volumes: flags.volumes === true,
            removeOrphans: flags.removeOrphans === true,
            ...(flags.timeout !== undefined ? { timeoutSeconds: parseCount(flags.timeout, '--timeout') } : {}),
          });
          await applyPlan(engine, thePlan, command);
          if (flags.volumes === true) await removeProjectAnonymousVolumes(engine, project.name);
        });
      },
    );
}

/**
 * `down -v` sweep: anonymous volumes labelled with the project that no container uses any more. Containers removed in
 * parallel each see the other's record while deciding about a shared volume, so a per-container removal can keep one.
 */
async function removeProjectAnonymousVolumes(engine: Engine, projectName: string): Promise<void> {
  const usersOf = containerRecordUsers(engine.paths);
  const { volumes } = await engine.volumes.list({
    filters: { label: [`${PROJECT_LABEL}=${projectName}`, ANONYMOUS_LABEL] },
  });
  for (const volume of volumes) {
    if ((await usersOf(volume.Name)).length === 0) await engine.volumes.remove(volume.Name, { usersOf });
  }
}
