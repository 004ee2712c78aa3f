import type { Command } from 'commander';
import type { BuildEvent } from '../../../engine/build/index.js';
import type { Engine } from '../../../engine/index.js';
import { buildEventOf, builderOptionsOf } from '../../compose/engine-port.js';
import type { EventSink } from '../../events/events.js';
import { buildOrder, buildSpecOf } from '../../planner/images.js';
import type { Project } from '../../model/project.js';
import { servicesInScope } from '../../planner/reconcile.js';
import { interruptible } from '../interrupt.js';
import { collect } from '../units.js';
import { composeContext } from './context.js';
import { withProjectLock } from './up.js';

export interface ServiceBuildOptions {
  readonly noCache?: boolean;
  readonly pull?: boolean;
  /** Extra `--build-arg KEY=VALUE` entries, over the file's `build.args`. */
  readonly buildArgs?: readonly string[];
  /** Print the steps (stderr); otherwise only a line per service. */
  readonly verbose?: boolean;
  readonly quiet?: boolean;
  readonly signal?: AbortSignal;
  /**
   * Progress as events (`build.*`, warnings) instead of lines on stderr: what `up` renders (plain, JSON or the TUI).
   * `verbose` and `quiet` then do not apply: the renderer decides.
   */
  readonly events?: EventSink;
}

export { buildEventOf } from '../../compose/engine-port.js';

function renderEvent(service: string, event: BuildEvent, verbose: boolean): string | undefined {
  switch (event.kind) {
    case 'step':
      return verbose ? `[${service}] Step ${event.step}/${event.total} : ${event.text}` : undefined;
    case 'cache-hit':
      return verbose ? `[${service}]  ---> Using cache` : undefined;
    case 'output':
      return verbose ? `[${service}] ${event.text.replace(/\n$/, '')}` : undefined;
    case 'step-done':
      return undefined;
    case 'warning':
      return `WARN [${service}] ${event.message}`;
  }
}

/**
 * Builds the services that have `build:` (in dependency order), tagging each result with the service's image name
 * (`image:` or `<project>-<service>`) and `build.tags`. The layer cache makes an unchanged context cost only its
 * hashing, so `up` builds every time and a changed file or Dockerfile is picked up (the plan then says the image
 * changed).
 */
export async function buildServices(
  engine: Engine,
  project: Project,
  names: readonly string[],
  options: ServiceBuildOptions = {},
): Promise<void> {
  // The builder (and what it imports) loads only when a service has something to build: not on every `up`.
  if (!names.some((name) => project.services[name]?.build !== undefined)) return;
  const { Builder } = await import('../../../engine/build/index.js');
  const builder = new Builder(engine);
  for (const name of buildOrder(project, names)) {
    options.signal?.throwIfAborted();
    const service = project.services[name];
    if (service?.build === undefined) continue;
    const started = Date.now();
    const spec = buildSpecOf(project, service, process.env, {
      noCache: options.noCache === true,
      pull: options.pull === true,
      buildArgs: options.buildArgs ?? [],
    });
    const image = spec.image;
    const { events } = options;
    const cachedSteps = new Set<number>();
    events?.emit({ kind: 'build.start', service: name, image });
    const result = await builder.build(builderOptionsOf(spec, options.signal), (event) => {
      if (events !== undefined) {
        const converted = buildEventOf(name, event, cachedSteps);
        if (converted !== undefined) events.emit(converted);
        return;
      }
      const line = renderEvent(name, event, options.verbose === true);
      if (line !== undefined && options.quiet !== true) process.stderr.write(`${line}\n`);
    });
    if (events !== undefined) {
      events.emit({
        kind: 'build.done',
        service: name,
        image,
        steps: result.steps,
        cachedSteps: result.cachedSteps,
        durationMs: Date.now() - started,
      });
    } else if (options.quiet !== true) {
      const cached = result.cachedSteps === result.steps ? ', all steps cached' : '';
      process.stderr.write(` Image ${image}  Built (${((Date.now() - started) / 1000).toFixed(1)}s${cached})\n`);
    }
  }
}

/** The named services and everything they depend on (depends_on, links, volumes_from, network_mode service:). */
export function withDependencies(project: Project, names: readonly string[]): string[] {
  return names.length === 0 ? [] : [...servicesInScope(project, { services: names })];
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
    .action(
      async (
        services: string[],
        flags: { cache: boolean; pull?: boolean; buildArg?: string[]; quiet?: boolean },
        command: Command,
      ) => {
        const context = await composeContext(command, services);
        const names = services.length > 0 ? services : Object.keys(context.project.services);
        await withProjectLock(context.engine, context.project.name, () =>
          // Ctrl-C / SIGTERM: the running RUN step's container is killed and removed, then 130 / 143
          interruptible(
            { what: 'the build', hint: 'run tsfig build again to finish it: the steps that completed are cached' },
            (signal) =>
              buildServices(context.engine, context.project, names, {
                noCache: !flags.cache,
                pull: flags.pull === true,
                buildArgs: flags.buildArg ?? [],
                verbose: true,
                quiet: flags.quiet === true,
                signal,
              }),
          ),
        );
      },
    );
}
