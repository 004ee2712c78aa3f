import type { Command } from 'commander';
import { shortId } from '../../../engine/state/index.js';
import * as kill from '../../compose/kill.js';
import * as pause from '../../compose/pause.js';
import * as restart from '../../compose/restart.js';
import * as rm from '../../compose/rm.js';
import * as start from '../../compose/start.js';
import * as stop from '../../compose/stop.js';
import { setExitCode } from '../exit-codes.js';
import { containerTop } from '../commands/container-verbs.js';
import { renderTable } from '../table.js';
import { parseCount } from '../units.js';
import { composeContext, loadForServices, serviceContainers, timeoutOf, verbContext } from './context.js';

/** `start`, `stop`, `restart`, `kill`, `rm`, `pause`, `unpause`, `wait`, `top`, `images`. */
export function registerLifecycleCommands(program: Command): void {
  const verb = (command: Command) => verbContext(command);
  program
    .command('start')
    .description('start services')
    .argument('[services...]')
    .option('--wait', 'wait for services to be running|healthy')
    .option('--wait-timeout <seconds>', 'maximum duration to wait for the project to be running|healthy')
    .option('--dry-run', 'print the plan and change nothing')
    .action(
      async (
        services: string[],
        flags: { wait?: boolean; waitTimeout?: string; dryRun?: boolean },
        command: Command,
      ) => {
        const { project } = loadForServices(command, services);
        const options = {
          project,
          services,
          wait: flags.wait === true,
          waitTimeoutSeconds:
            flags.waitTimeout === undefined ? undefined : parseCount(flags.waitTimeout, '--wait-timeout'),
          dryRun: flags.dryRun === true,
        };
        setExitCode(command, await start.run(await verb(command), options));
      },
    );

  program
    .command('stop')
    .description('stop services')
    .argument('[services...]')
    .option('-t, --timeout <seconds>', 'specify a shutdown timeout in seconds')
    .option('--dry-run', 'print the plan and change nothing')
    .action(async (services: string[], flags: { timeout?: string; dryRun?: boolean }, command: Command) => {
      const { project } = loadForServices(command, services);
      const options = { project, services, timeoutSeconds: timeoutOf(flags), dryRun: flags.dryRun === true };
      setExitCode(command, await stop.run(await verb(command), options));
    });

  program
    .command('restart')
    .description('restart service containers')
    .argument('[services...]')
    .option('-t, --timeout <seconds>', 'specify a shutdown timeout in seconds')
    .option('--no-deps', "don't restart dependent services")
    .option('--dry-run', 'print the plan and change nothing')
    .action(async (services: string[], flags: { timeout?: string; dryRun?: boolean }, command: Command) => {
      const { project } = loadForServices(command, services);
      const options = { project, services, timeoutSeconds: timeoutOf(flags), dryRun: flags.dryRun === true };
      setExitCode(command, await restart.run(await verb(command), options));
    });

  program
    .command('kill')
    .description('force stop service containers')
    .argument('[services...]')
    .option('-s, --signal <signal>', 'SIGNAL to send to the container', 'SIGKILL')
    .option('--remove-orphans', 'remove containers for services not defined in the project file')
    .option('--dry-run', 'print the plan and change nothing')
    .action(async (services: string[], flags: { signal: string; dryRun?: boolean }, command: Command) => {
      const { project } = loadForServices(command, services);
      const options = { project, services, signal: flags.signal, dryRun: flags.dryRun === true };
      setExitCode(command, await kill.run(await verb(command), options));
    });

  program
    .command('rm')
    .description('removes stopped service containers')
    .argument('[services...]')
    .option('-f, --force', "don't ask to confirm removal")
    .option('-s, --stop', 'stop the containers, if required, before removing')
    .option('-v, --volumes', 'remove any anonymous volumes attached to containers')
    .option('--dry-run', 'print the plan and change nothing')
    .action(
      async (
        services: string[],
        flags: { force?: boolean; stop?: boolean; volumes?: boolean; dryRun?: boolean },
        command: Command,
      ) => {
        const { project } = loadForServices(command, services);
        const options = {
          project,
          services,
          force: flags.force === true,
          stop: flags.stop === true,
          volumes: flags.volumes === true,
          dryRun: flags.dryRun === true,
        };
        setExitCode(command, await rm.run(await verb(command), options));
      },
    );

  for (const [name, paused] of [
    ['pause', true],
    ['unpause', false],
  ] as const) {
    program
      .command(name)
      .description(paused ? 'pause services' : 'unpause services')
      .argument('[services...]')
      .option('--dry-run', 'print the plan and change nothing')
      .action(async (services: string[], flags: { dryRun?: boolean }, command: Command) => {
        const { project } = loadForServices(command, services);
        const options = { project, services, paused, dryRun: flags.dryRun === true };
        setExitCode(command, await pause.run(await verb(command), options));
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
      setExitCode(command, last);
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
      const ids: string[] = [];
      for (const container of serviceContainers(context.observed, services)) {
        if (flags.quiet === true) {
          // each image once, without its algorithm, as compose v2 (cmd/compose/images.go)
          const id = container.imageId.slice(container.imageId.indexOf(':') + 1);
          if (!ids.includes(id)) ids.push(id);
          continue;
        }
        const image = await context.engine.images.resolve(container.imageId).catch(() => undefined);
        const tag = image?.repoTags[0] ?? '<none>:<none>';
        const index = tag.lastIndexOf(':');
        rows.push([
          container.name,
          tag.slice(0, index),
          tag.slice(index + 1),
          shortId(container.imageId),
          image === undefined ? '' : `${(image.size / 1e6).toFixed(1)}MB`,
        ]);
      }
      if (flags.quiet === true) process.stdout.write(ids.map((id) => `${id}\n`).join(''));
      else process.stdout.write(renderTable(['CONTAINER', 'REPOSITORY', 'TAG', 'IMAGE ID', 'SIZE'], rows));
    });
}
