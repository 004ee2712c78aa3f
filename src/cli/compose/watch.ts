/** `tsfig watch`: its flags → WatchOptions for src/watch/command.ts; SIGINT and SIGTERM end the watch. */
import type { Command } from 'commander';
import * as watch from '../../watch/command.js';
import { setExitCode } from '../exit-codes.js';
import { loadForServices, verbContext } from './context.js';

export function registerWatchCommand(program: Command): void {
  program
    .command('watch')
    .description('watch the develop.watch paths of services and sync, restart or rebuild them as files change')
    .argument('[services...]')
    .option('--no-up', 'do not converge the project before watching')
    .action(async (services: string[], flags: { up: boolean }, command: Command) => {
      const load = loadForServices(command, services);
      const ctx = await verbContext(command);
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const options: watch.WatchOptions = {
          project: load.project,
          services,
          up: flags.up,
          projectFiles: [...load.sources.keys()],
          reload: () => loadForServices(command, services).project,
          signal: controller.signal,
        };
        setExitCode(command, await watch.run(ctx, options));
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
