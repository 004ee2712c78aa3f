/**
 * Attached `up`: the logs of every container until they all exit; Ctrl-C stops them (a plan of stops), twice kills
 * them (a plan of kills). In a terminal the TUI does the same (ui/tty).
 */
import { TsfigError } from '../errors.js';
import { nullSink } from '../events/events.js';
import type { Project } from '../model/project.js';
import { planKill, planStop } from '../planner/lifecycle.js';
import type { ObservedContainer } from '../planner/observed.js';
import type { StackControl, TuiSink } from '../ui/tty/index.js';
import { applyPlan } from './apply.js';
import { serviceContainers, type ComposeContext } from './context.js';
import * as restart from './restart.js';
import * as stop from './stop.js';

export interface AttachOptions {
  readonly abortOnContainerExit?: boolean;
  readonly abortOnContainerFailure?: boolean;
  /** Return the exit code of this service's container (implies abort on exit). */
  readonly exitCodeFrom?: string | undefined;
  readonly timestamps?: boolean;
  /** @default true */
  readonly logPrefix?: boolean;
  readonly color?: boolean;
  /** The TUI that showed the pulls, builds and plan (it follows the stack from here). */
  readonly tui?: TuiSink | undefined;
  /** Run the TUI now (a terminal, no abort flags) when there is no `tui` yet. */
  readonly runTui?: boolean;
  /** Show output from this time on (ISO 8601; the start of `up`), as compose attaches without the logs so far. */
  readonly since?: string | undefined;
}

export function abortsOnExit(options: AttachOptions): boolean {
  return (
    options.abortOnContainerExit === true ||
    options.abortOnContainerFailure === true ||
    options.exitCodeFrom !== undefined
  );
}

/**
 * What the TUI's keys and Ctrl-C do to the stack: `stop`'s, `kill`'s and `restart`'s plans over `services` (kills
 * report nothing: the TUI shows the containers exiting).
 */
export function stackControl(ctx: ComposeContext, project: Project, services: readonly string[]): StackControl {
  return {
    stopAll: async (kill) => {
      const observed = await ctx.port.observe(project);
      const thePlan = kill
        ? planKill(project, observed, { services, signal: 'SIGKILL' })
        : planStop(project, observed, { services });
      await applyPlan(kill ? { ...ctx, events: nullSink } : ctx, thePlan);
    },
    stopService: async (service) => {
      await stop.run(ctx, { project, services: [service] });
    },
    restartService: async (service) => {
      await restart.run(ctx, { project, services: [service] });
    },
  };
}

/** Follows the project's containers; the session's exit code (130 after Ctrl-C, or the aborting container's). */
export async function attach(
  ctx: ComposeContext,
  project: Project,
  services: readonly string[],
  options: AttachOptions,
): Promise<number> {
  const engine = ctx.port.engine;
  if (options.tui !== undefined) {
    if (engine === undefined) throw new TsfigError('internal', 'the TUI needs the engine');
    return (await options.tui.attach({ engine, project, services, control: stackControl(ctx, project, services) }))
      .exitCode;
  }
  if (options.runTui === true && engine !== undefined) {
    const { runTui } = await import('../ui/tty/index.js');
    return (await runTui({ engine, project, services, mode: 'up', control: stackControl(ctx, project, services) }))
      .exitCode;
  }
  const containers = serviceContainers(await ctx.port.observe(project), services);
  const controller = new AbortController();
  let interrupts = 0;
  let exitCode = 0;
  const control = stackControl(ctx, project, services);
  const stopAll = (kill: boolean) => control.stopAll(kill).catch(() => undefined);
  const onSignal = () => {
    interrupts++;
    exitCode = 130;
    if (interrupts === 1) {
      ctx.stderr.write('Gracefully stopping... (press Ctrl+C again to force)\n');
      void stopAll(false);
    } else {
      void stopAll(true);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const abortOn = abortsOnExit(options);
  const watchers = containers.map(async (container: ObservedContainer) => {
    const code = await ctx.port.waitExit(container.id, controller.signal).catch(() => undefined);
    if (code === undefined) return;
    ctx.stderr.write(`${container.name} exited with code ${code}\n`);
    if (options.exitCodeFrom !== undefined && container.service === options.exitCodeFrom) exitCode = code;
    const failed = code !== 0;
    if (
      abortOn &&
      interrupts === 0 &&
      (options.abortOnContainerExit === true || options.exitCodeFrom !== undefined || failed)
    ) {
      if (options.exitCodeFrom === undefined) exitCode = code;
      interrupts = 1;
      ctx.stderr.write('Aborting on container exit...\n');
      await stopAll(false);
    }
  });
  try {
    await Promise.all([
      ctx.terminal.followLogs(containers, {
        timestamps: options.timestamps === true,
        color: options.color === true,
        prefix: options.logPrefix !== false,
        // a container's stderr lines to stderr, as compose v2's attached up (e2e TestStdoutStderr)
        splitStreams: true,
        ...(options.since !== undefined ? { since: options.since } : {}),
        signal: controller.signal,
      }),
      Promise.all(watchers),
    ]);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return exitCode;
}
