/**
 * `tsfig build [SERVICE...]`: its flags → `BuildOptions` for src/compose/build.ts (a plan of builds), and the lines
 * it prints on stderr: each step, its output and cache hits, warnings, a line per image built (`-q`: none;
 * `--progress json`: the events as JSON lines).
 */
import type { Command } from 'commander';
import * as build from '../../compose/build.js';
import type { EventSink, TsfigEvent } from '../../events/events.js';
import { makeRenderer } from '../../ui/progress.js';
import { setExitCode } from '../exit-codes.js';
import { collect } from '../units.js';
import { loadForServices, progressMode, verbContext } from './context.js';

export { buildEventOf } from '../../compose/engine-port.js';

/** The build's line on stderr for an event; plan and op events have none (a failure is main's error). */
export function buildLine(event: TsfigEvent): string | undefined {
  switch (event.kind) {
    case 'build.step':
      return `[${event.service}] Step ${event.step}/${event.total} : ${event.text}`;
    case 'build.step-done':
      return event.cached ? `[${event.service}]  ---> Using cache` : undefined;
    case 'build.output':
      return `[${event.service}] ${event.text.replace(/\n$/, '')}`;
    case 'build.done': {
      const cached = event.cachedSteps === event.steps ? ', all steps cached' : '';
      return ` Image ${event.image}  Built (${(event.durationMs / 1000).toFixed(1)}s${cached})`;
    }
    case 'warning':
      return `WARN ${event.message}`;
    case 'note':
      return `note: ${event.message}`;
    case 'build.start':
    case 'pull.start':
    case 'pull.progress':
    case 'pull.done':
    case 'pull.error':
    case 'plan.start':
    case 'op.start':
    case 'op.done':
    case 'op.error':
    case 'op.skipped':
    case 'plan.done':
      return undefined;
  }
}

/** `tsfig build`'s lines on a stream (stderr); quiet: none. */
export function buildLines(out: { write(text: string): unknown }, quiet: boolean): EventSink {
  return {
    emit: (event) => {
      const line = quiet ? undefined : buildLine(event);
      if (line !== undefined) out.write(`${line}\n`);
    },
  };
}

/** `tsfig build [SERVICE...]`. */
export function registerBuildCommands(program: Command): void {
  program
    .command('build')
    .description('build or rebuild services')
    .argument('[services...]')
    .option('--no-cache', 'do not use cache when building the image')
    .option('--pull', 'always attempt to pull a newer version of the image')
    .option('--build-arg <KEY=VALUE>', 'set build-time variables for services', collect)
    .option('-q, --quiet', "don't print anything to stdout")
    .option('--dry-run', 'print the plan and change nothing')
    .action(
      async (
        services: string[],
        flags: { cache: boolean; pull?: boolean; buildArg?: string[]; quiet?: boolean; dryRun?: boolean },
        command: Command,
      ) => {
        const { project } = loadForServices(command, services);
        const events =
          progressMode(command) === 'json' ? makeRenderer('json') : buildLines(process.stderr, flags.quiet === true);
        const ctx = await verbContext(command, events);
        const options: build.BuildOptions = {
          project,
          services,
          noCache: !flags.cache,
          pull: flags.pull === true,
          buildArgs: flags.buildArg ?? [],
          dryRun: flags.dryRun === true,
        };
        setExitCode(command, await build.run(ctx, options));
      },
    );
}
