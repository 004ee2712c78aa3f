/**
 * CLI glue for watch: `tsfig watch [SERVICE...]` and `tsfig up --watch`. Re-plans are `up`'s function
 * (src/compose/up.ts converge) called with Options; restarts are `restart`'s (a plan of stops and starts).
 */
import type { Command } from 'commander';
import { loadForServices, verbContext } from '../cli/compose/context.js';
import type { ComposeContext } from '../compose/context.js';
import * as restart from '../compose/restart.js';
import { converge, type UpOptions } from '../compose/up.js';
import { TsfigError } from '../errors.js';
import type { Project } from '../model/project.js';
import { makeRenderer } from '../ui/progress.js';
import { tuiStatus } from '../ui/tty/index.js';
import { watchProject } from './watch.js';

/** While a TUI owns the terminal, the plan's progress lines must not scribble over it: only warnings and errors. */
function quietWhileTui(ctx: ComposeContext): ComposeContext {
  if (!tuiStatus.connected) return ctx;
  return { ...ctx, events: makeRenderer('quiet'), stderr: { write: (text: string) => tuiStatus.emit(text.trimEnd()) } };
}

/**
 * What a watch action runs: `up` again for the named services (after a rebuild, recreating them) with the project
 * loaded again by `reload`, and `restart` for one service.
 */
function actions(ctx: ComposeContext, options: UpOptions, reload: () => Project) {
  return {
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
  const engine = ctx.port.engine;
  if (engine === undefined) throw new TsfigError('internal', 'watch needs the engine');
  const controller = new AbortController();
  const running = watchProject({
    engine,
    project: options.project,
    projectFiles,
    services,
    report: (message) => tuiStatus.emit(message),
    ...actions(ctx, options, reload),
    signal: controller.signal,
  }).catch((error: unknown) => tuiStatus.emit(`watch: ${error instanceof Error ? error.message : String(error)}`));
  return {
    stop: async () => {
      controller.abort();
      await running;
    },
  };
}

export function registerWatchCommand(program: Command): void {
  program
    .command('watch')
    .description('watch the develop.watch paths of services and sync, restart or rebuild them as files change')
    .argument('[services...]')
    .option('--no-up', 'do not converge the project before watching')
    .action(async (services: string[], flags: { up: boolean }, command: Command) => {
      const load = loadForServices(command, services);
      const ctx = await verbContext(command);
      // `up -d` with every default
      const options: UpOptions = { project: load.project, services, plan: {}, detach: true };
      if (flags.up) await converge(ctx, options);
      const engine = ctx.port.engine;
      if (engine === undefined) throw new TsfigError('internal', 'watch needs the engine');
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        await watchProject({
          engine,
          project: load.project,
          projectFiles: [...load.sources.keys()],
          services,
          report: (message) => ctx.stderr.write(`${message}\n`),
          ...actions(ctx, options, () => loadForServices(command, services).project),
          signal: controller.signal,
        });
      } catch (error) {
        if (error instanceof Error && error.message.startsWith('no service has develop.watch rules')) {
          throw new TsfigError('config', 'no service has develop.watch rules', {
            hint: 'add services.<name>.develop.watch entries (path, action, target) to the project file',
          });
        }
        throw error;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
