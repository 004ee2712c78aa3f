/**
 * `tsfig watch [SERVICE...]` (`run`) and `tsfig up --watch` (`startWatch`) over a ComposeContext: re-plans are `up`'s
 * function (src/compose/up.ts converge) called with Options, restarts are `restart`'s (a plan of stops and starts),
 * syncs are plans of `container.sync` (and `container.exec`, or a restart) made by `planWatchSync` (./actions.ts).
 * No commander and no CLI here: src/cli/compose/watch.ts turns the flags into WatchOptions.
 */
import type { ComposeContext } from '../compose/context.js';
import * as restart from '../compose/restart.js';
import { converge, type UpOptions } from '../compose/up.js';
import { TsfigError } from '../errors.js';
import { runSyncAction } from './actions.js';
import { ExitCode } from '../exit-code.js';
import type { Project } from '../model/project.js';
import { makeRenderer } from '../ui/progress.js';
import { tuiStatus } from '../ui/tty/index.js';
import { watchProject, type WatchOptions as WatchLoopOptions } from './watch.js';

/** While a TUI owns the terminal, the plan's progress lines must not scribble over it: only warnings and errors. */
function quietWhileTui(ctx: ComposeContext): ComposeContext {
  if (!tuiStatus.connected) return ctx;
  return { ...ctx, events: makeRenderer('quiet'), stderr: { write: (text: string) => tuiStatus.emit(text.trimEnd()) } };
}

/**
 * What a watch action runs: `up` again for the named services (after a rebuild, recreating them) with the project
 * loaded again by `reload`, `restart` for one service, and the plan of a sync action.
 */
function actions(ctx: ComposeContext, options: UpOptions, reload: () => Project, report: (message: string) => void) {
  return {
    sync: (...[project, rule, paths, action]: Parameters<WatchLoopOptions['sync']>) =>
      runSyncAction(quietWhileTui(ctx), project, rule, paths, { action, report }),
    replan: async (services: readonly string[], { forceRecreate }: { forceRecreate: boolean }): Promise<Project> => {
      const project = reload();
      const plan = { ...options.plan, forceRecreate };
      // a rebuild action builds again (the layer cache keeps the unchanged steps); a changed project file builds
      // what is missing
      await converge(quietWhileTui(ctx), {
        ...options,
        project,
        services,
        plan,
        build: forceRecreate ? true : (options.build ?? 'missing'),
        detach: true,
        dryRun: false,
      });
      return project;
    },
    restart: async (service: string): Promise<void> => {
      await restart.run(quietWhileTui(ctx), { project: reload(), services: [service] });
    },
  };
}

/** Starts watching in the background (for `up --watch`); `stop` ends it. Failures are reported, never thrown. */
export function startWatch(
  ctx: ComposeContext,
  services: readonly string[],
  options: UpOptions,
  projectFiles: readonly string[],
  reload: () => Project = () => options.project,
): { stop(): Promise<void> } {
  const controller = new AbortController();
  const report = (message: string) => tuiStatus.emit(message);
  const running = watchProject({
    project: options.project,
    projectFiles,
    services,
    report,
    ...actions(ctx, options, reload, report),
    signal: controller.signal,
  }).catch((error: unknown) => tuiStatus.emit(`watch: ${error instanceof Error ? error.message : String(error)}`));
  return {
    stop: async () => {
      controller.abort();
      await running;
    },
  };
}

export interface WatchOptions {
  readonly project: Project;
  readonly services: readonly string[];
  /** Converge the project first, as `up -d` with every default (`--no-up`: false). */
  readonly up: boolean;
  /** The project's files (a change to one reloads the project). */
  readonly projectFiles: readonly string[];
  /** The project loaded again. */
  readonly reload: () => Project;
  /** Ends the watch (the CLI aborts it on SIGINT and SIGTERM). */
  readonly signal: AbortSignal;
}

/** `tsfig watch`: converge (unless `up: false`), then sync, restart or rebuild as files change, until `signal`. */
export async function run(ctx: ComposeContext, options: WatchOptions): Promise<ExitCode> {
  // `up -d` with every default
  const upOptions: UpOptions = { project: options.project, services: options.services, plan: {}, detach: true };
  if (options.up) await converge(ctx, upOptions);
  const report = (message: string) => ctx.stderr.write(`${message}\n`);
  try {
    await watchProject({
      project: options.project,
      projectFiles: options.projectFiles,
      services: options.services,
      report,
      ...actions(ctx, upOptions, options.reload, report),
      signal: options.signal,
    });
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('no service has develop.watch rules')) {
      throw new TsfigError('config', 'no service has develop.watch rules', {
        hint: 'add services.<name>.develop.watch entries (path, action, target) to the project file',
      });
    }
    throw error;
  }
  return ExitCode.ok;
}
