import type { Command } from 'commander';
import { TsfigError } from '../../errors.js';
import { observe } from '../../planner/observe.js';
import type { ObservedContainer } from '../../planner/observed.js';
import * as create from '../../compose/create.js';
import * as scale from '../../compose/scale.js';
import { setExitCode } from '../exit-codes.js';
import { collect } from '../units.js';
import { composeContext, loadForServices, verbContext } from './context.js';
import { parseScale } from './up.js';

interface ContainerEvent {
  readonly time: string;
  readonly type: 'container';
  readonly action: string;
  readonly id: string;
  readonly service: string;
  readonly attributes: Readonly<Record<string, string>>;
}

/** What changed between two observations of the project's containers, as docker-style events. */
export function diffContainers(
  before: ReadonlyMap<string, ObservedContainer>,
  after: ReadonlyMap<string, ObservedContainer>,
  time: string,
): ContainerEvent[] {
  const events: ContainerEvent[] = [];
  const event = (container: ObservedContainer, action: string): ContainerEvent => ({
    time,
    type: 'container',
    action,
    id: container.id,
    service: container.service,
    attributes: { name: container.name, image: container.imageId },
  });
  for (const [id, container] of after) {
    const previous = before.get(id);
    if (previous === undefined) {
      events.push(event(container, 'create'));
      if (container.running) events.push(event(container, 'start'));
      continue;
    }
    if (!previous.running && container.running) events.push(event(container, 'start'));
    if (previous.running && !container.running) events.push(event(container, 'die'));
  }
  for (const [id, container] of before) if (!after.has(id)) events.push(event(container, 'destroy'));
  return events;
}

/** `create`, `scale`, `events`. */
export function registerMoreCommands(program: Command): void {
  program
    .command('create')
    .description('creates containers for a service')
    .argument('[services...]')
    .option('--force-recreate', "recreate containers even if their configuration and image haven't changed")
    .option('--no-recreate', "if containers already exist, don't recreate them")
    .option('--remove-orphans', 'remove containers for services not defined in the project file')
    .option('--scale <SERVICE=NUM>', 'scale SERVICE to NUM instances', collect)
    .option('--build', 'build images before creating containers (by default only the missing ones are built)')
    .option('--no-build', "don't build an image, even if it's missing")
    .option('--pull <policy>', 'pull image before running: always, missing, never')
    .option('--dry-run', 'print the plan and change nothing')
    .action(
      async (
        services: string[],
        flags: {
          forceRecreate?: boolean;
          recreate: boolean;
          removeOrphans?: boolean;
          scale?: string[];
          build?: boolean;
          pull?: string;
          dryRun?: boolean;
        },
        command: Command,
      ) => {
        if (flags.forceRecreate === true && !flags.recreate) {
          throw new TsfigError('usage', '--force-recreate and --no-recreate are incompatible');
        }
        const { project } = loadForServices(command, services);
        const options: create.CreateOptions = {
          project,
          services,
          forceRecreate: flags.forceRecreate === true,
          noRecreate: !flags.recreate,
          removeOrphans: flags.removeOrphans === true,
          scale: parseScale(flags.scale ?? [], project),
          build: flags.build ?? 'missing',
          pull: flags.pull,
          dryRun: flags.dryRun === true,
        };
        setExitCode(command, await create.run(await verbContext(command), options));
      },
    );

  program
    .command('scale')
    .description('scale services')
    .argument('<SERVICE=REPLICAS...>')
    .option('--no-deps', "don't start linked services")
    .option('--dry-run', 'print the plan and change nothing')
    .action(async (entries: string[], flags: { deps: boolean; dryRun?: boolean }, command: Command) => {
      const services = entries.map((entry) => entry.split('=')[0] ?? entry);
      if (entries.some((entry) => !/^[^=]+=\d+$/.test(entry))) {
        throw new TsfigError('usage', 'scale takes SERVICE=REPLICAS arguments', { hint: 'e.g. tsfig scale web=3' });
      }
      const { project } = loadForServices(command, services);
      const options = { project, scale: parseScale(entries, project), deps: flags.deps, dryRun: flags.dryRun === true };
      setExitCode(command, await scale.run(await verbContext(command), options));
    });

  program
    .command('events')
    .description('receive real time events from containers')
    .argument('[services...]')
    .option('--json', 'output events as a stream of json objects')
    .option('--interval <ms>', 'how often the engine state is read', '250')
    .action(async (services: string[], flags: { json?: boolean; interval: string }, command: Command) => {
      const context = await composeContext(command, services);
      const select = (containers: readonly ObservedContainer[]) =>
        new Map(
          containers
            .filter((container) => services.length === 0 || services.includes(container.service))
            .map((container) => [container.id, container]),
        );
      let previous = select(context.observed.containers);
      const interval = Math.max(50, Number(flags.interval) || 250);
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      process.once('SIGTERM', () => stop.abort());
      while (!stop.signal.aborted) {
        await new Promise((resolve) => setTimeout(resolve, interval));
        const current = select((await observe(context.engine, context.project.name, context.project)).containers);
        for (const event of diffContainers(previous, current, new Date().toISOString())) {
          process.stdout.write(
            flags.json === true
              ? `${JSON.stringify(event)}\n`
              : `${event.time} container ${event.action} ${event.id} (name=${event.attributes.name ?? ''}, service=${event.service})\n`,
          );
        }
        previous = current;
      }
    });
}
