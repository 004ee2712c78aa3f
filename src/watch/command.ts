/** CLI glue for watch: `tsfig watch [SERVICE...]` and `tsfig up --watch`. */
import type { Command } from 'commander';
import type { Engine } from '../../engine/index.js';
import { loadForServices } from '../cli/compose/context.js';
import { converge, type UpFlags } from '../cli/compose/up.js';
import { openEngine } from '../cli/engine.js';
import { TsfigError } from '../errors.js';
import type { Project } from '../model/project.js';
import { tuiStatus } from '../ui/tty/index.js';
import { watchProject } from './watch.js';

/** `up`'s flags with every default, as `tsfig watch` converges. */
export const DEFAULT_UP_FLAGS: UpFlags = {
  format: 'text',
  recreate: true,
  deps: true,
  start: true,
  logPrefix: true,
  color: true,
  detach: true,
};

function rootOf(command: Command): Command {
  let root = command;
  while (root.parent !== null) root = root.parent;
  return root;
}

/** While a TUI owns the terminal, the plan's progress lines must not scribble over it: only warnings and errors. */
async function quietWhileTui<T>(command: Command, fn: () => Promise<T>): Promise<T> {
  if (!tuiStatus.connected) return fn();
  const root = rootOf(command);
  const before: unknown = root.getOptionValue('progress');
  root.setOptionValue('progress', 'quiet');
  try {
    return await fn();
  } finally {
    root.setOptionValue('progress', before);
  }
}

function replanner(command: Command, flags: UpFlags) {
  return async (services: readonly string[], options: { forceRecreate: boolean }): Promise<Project> =>
    quietWhileTui(command, async () => {
      const result = await converge(command, services, { ...flags, forceRecreate: options.forceRecreate });
      return result.load.project;
    });
}

/** Starts watching in the background (for `up --watch`); `stop` ends it. Failures are reported, never thrown. */
export function startWatch(
  command: Command,
  services: readonly string[],
  flags: UpFlags,
  engine: Engine,
  project: Project,
  projectFiles: readonly string[],
): { stop(): Promise<void> } {
  const controller = new AbortController();
  const running = watchProject({
    engine,
    project,
    projectFiles,
    services,
    report: (message) => tuiStatus.emit(message),
    replan: replanner(command, { ...flags, detach: true }),
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
      let engine: Engine;
      let load;
      if (flags.up) {
        ({ engine, load } = await converge(command, services, DEFAULT_UP_FLAGS));
      } else {
        load = loadForServices(command, services);
        engine = await openEngine();
      }
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
          report: (message) => process.stderr.write(`${message}\n`),
          replan: replanner(command, DEFAULT_UP_FLAGS),
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
