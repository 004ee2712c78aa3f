import type { Command } from 'commander';
import { shortId } from '../../../engine/state/ids.js';
import { TsfigError } from '../../errors.js';
import type { ObservedContainer } from '../../planner/observed.js';
import { dependencyOrder } from '../../planner/reconcile.js';
import { containerTop } from '../commands/container-verbs.js';
import { renderTable } from '../table.js';
import { parseCount } from '../units.js';
import { composeContext, serviceContainers, type ComposeContext } from './context.js';
import { withProjectLock } from './up.js';

function progress(verb: string, container: ObservedContainer): void {
  process.stderr.write(` Container ${container.name}  ${verb}\n`);
}

/** The project's containers of the given services (all when none), in dependency order (reversed for stopping). */
function ordered(context: ComposeContext, services: readonly string[], reverse = false): ObservedContainer[] {
  const containers = serviceContainers(context.observed, services);
  const order = dependencyOrder(context.project, new Set(containers.map((container) => container.service)));
  const rank = (service: string) => {
    const index = order.indexOf(service);
    return index < 0 ? order.length : index;
  };
  const sorted = [...containers].sort((a, b) => rank(a.service) - rank(b.service) || a.number - b.number);
  return reverse ? sorted.reverse() : sorted;
}

async function stopContainers(context: ComposeContext, containers: readonly ObservedContainer[], timeout?: number) {
  for (const container of containers) {
    if (!container.running) continue;
    progress('Stopping', container);
    const service = context.project.services[container.service];
    const seconds = timeout ?? Math.round((service?.stop_grace_period ?? 10_000) / 1000);
    await context.engine.containers.stop(container.id, seconds);
    progress('Stopped', container);
  }
}

async function startContainers(context: ComposeContext, containers: readonly ObservedContainer[]) {
  if (containers.length === 0) {
    throw new TsfigError('not-found', 'no containers to start', { hint: 'create them with: tsfig up -d' });
  }
  for (const container of containers) {
    progress('Starting', container);
    await context.engine.containers.start(container.id);
    progress('Started', container);
  }
}

function timeoutOf(flags: { timeout?: string }): number | undefined {
  return flags.timeout === undefined ? undefined : parseCount(flags.timeout, '--timeout');
}

/** `start`, `stop`, `restart`, `kill`, `rm`, `pause`, `unpause`, `wait`, `top`, `images`. */
export function registerLifecycleCommands(program: Command): void {
  program
    .command('start')
    .description('start services')
    .argument('[services...]')
    .action(async (services: string[], _flags: unknown, command: Command) => {
      const context = await composeContext(command, services);
      await withProjectLock(context.engine, context.project.name, () =>
        startContainers(context, ordered(context, services)),
      );
    });

  program
    .command('stop')
    .description('stop services')
    .argument('[services...]')
    .option('-t, --timeout <seconds>', 'specify a shutdown timeout in seconds')
    .action(async (services: string[], flags: { timeout?: string }, command: Command) => {
      const context = await composeContext(command, services);
      await withProjectLock(context.engine, context.project.name, () =>
        stopContainers(context, ordered(context, services, true), timeoutOf(flags)),
      );
    });

  program
    .command('restart')
    .description('restart service containers')
    .argument('[services...]')
    .option('-t, --timeout <seconds>', 'specify a shutdown timeout in seconds')
    .option('--no-deps', "don't restart dependent services")
    .action(async (services: string[], flags: { timeout?: string }, command: Command) => {
      const context = await composeContext(command, services);
      await withProjectLock(context.engine, context.project.name, async () => {
        await stopContainers(context, ordered(context, services, true), timeoutOf(flags));
        await startContainers(context, ordered(context, services));
      });
    });

  program
    .command('kill')
    .description('force stop service containers')
    .argument('[services...]')
    .option('-s, --signal <signal>', 'SIGNAL to send to the container', 'SIGKILL')
    .option('--remove-orphans', 'remove containers for services not defined in the project file')
    .action(async (services: string[], flags: { signal: string }, command: Command) => {
      const context = await composeContext(command, services);
      for (const container of ordered(context, services, true).filter((candidate) => candidate.running)) {
        await context.engine.containers.kill(container.id, flags.signal);
        progress('Killed', container);
      }
    });

  program
    .command('rm')
    .description('removes stopped service containers')
    .argument('[services...]')
    .option('-f, --force', "don't ask to confirm removal")
    .option('-s, --stop', 'stop the containers, if required, before removing')
    .option('-v, --volumes', 'remove any anonymous volumes attached to containers')
    .action(
      async (services: string[], flags: { force?: boolean; stop?: boolean; volumes?: boolean }, command: Command) => {
        const context = await composeContext(command, services);
        await withProjectLock(context.engine, context.project.name, async () => {
          const containers = ordered(context, services, true);
          if (flags.stop === true) await stopContainers(context, containers);
          const removable = flags.stop === true ? containers : containers.filter((container) => !container.running);
          if (removable.length === 0) {
            process.stderr.write('No stopped containers\n');
            return;
          }
          if (flags.force !== true) {
            throw new TsfigError(
              'usage',
              `refusing to remove ${removable.map((c) => c.name).join(', ')} without --force`,
              {
                hint: 'confirm with: tsfig rm -f',
              },
            );
          }
          for (const container of removable) {
            progress('Removing', container);
            const record = await context.engine.containers.remove(container.id, { force: flags.stop === true });
            if (flags.volumes === true) {
              const { containerRecordUsers } = await import('../../../engine/volumes/index.js');
              await context.engine.volumes.removeAnonymous(record.mounts, {
                usersOf: containerRecordUsers(context.engine.paths),
              });
            }
            progress('Removed', container);
          }
        });
      },
    );

  for (const [name, frozen] of [
    ['pause', true],
    ['unpause', false],
  ] as const) {
    program
      .command(name)
      .description(frozen ? 'pause services' : 'unpause services')
      .argument('[services...]')
      .action(async (services: string[], _flags: unknown, command: Command) => {
        const context = await composeContext(command, services);
        for (const container of ordered(context, services).filter((candidate) => candidate.running)) {
          await context.engine.containers.freeze(container.id, frozen);
          progress(frozen ? 'Paused' : 'Unpaused', container);
        }
      });
  }

  program
    .command('wait')
    .description('block until containers of all (or specified) services stop')
    .argument('<services...>')
    .action(async (services: string[], _flags: unknown, command: Command) => {
      const context = await composeContext(command, services);
      let last = 0;
      for (const container of serviceContainers(context.observed, services)) {
        last = await context.engine.containers.wait(container.id);
        process.stdout.write(`${last}\n`);
      }
      process.exitCode = last;
    });

  program
    .command('top')
    .description('display the running processes')
    .argument('[services...]')
    .action(async (services: string[], _flags: unknown, command: Command) => {
      const context = await composeContext(command, services);
      for (const container of serviceContainers(context.observed, services).filter((candidate) => candidate.running)) {
        // docker top's logic (the container's cgroup, v1 or v2), with compose's columns.
        const record = await context.engine.containers.get(container.id);
        const { rows } = await containerTop(context.engine, record, ['-eo', 'uid,pid,ppid,c,stime,tty,time,cmd']);
        process.stdout.write(`${container.name}\n`);
        if (rows.length === 0) continue;
        process.stdout.write(`${renderTable(['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'], rows)}\n`);
      }
    });

  program
    .command('images')
    .description('list images used by the created containers')
    .argument('[services...]')
    .option('-q, --quiet', 'only display IDs')
    .action(async (services: string[], flags: { quiet?: boolean }, command: Command) => {
      const context = await composeContext(command, services);
      const rows: string[][] = [];
      for (const container of serviceContainers(context.observed, services)) {
        const image = await context.engine.images.resolve(container.imageId).catch(() => undefined);
        const tag = image?.repoTags[0] ?? '<none>:<none>';
        const index = tag.lastIndexOf(':');
        if (flags.quiet === true) {
          process.stdout.write(`${container.imageId}\n`);
          continue;
        }
        rows.push([
          container.name,
          tag.slice(0, index),
          tag.slice(index + 1),
          shortId(container.imageId),
          image === undefined ? '' : `${(image.size / 1e6).toFixed(1)}MB`,
        ]);
      }
      if (flags.quiet !== true)
        process.stdout.write(renderTable(['CONTAINER', 'REPOSITORY', 'TAG', 'IMAGE ID', 'SIZE'], rows));
    });
}
