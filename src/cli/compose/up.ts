/** `tsfig up` and `tsfig down`: flags → Options for src/compose/up.ts and down.ts (gh's NewCmdX + runX). */
import { Option, type Command } from 'commander';
import { abortsOnExit } from '../../compose/attach.js';
import * as down from '../../compose/down.js';
import * as up from '../../compose/up.js';
import { TsfigError } from '../../errors.js';
import type { Project } from '../../model/project.js';
import type { PlanOptions } from '../../planner/reconcile.js';
import { TuiSink, wantsTui } from '../../ui/tty/index.js';
import { setExitCode } from '../exit-codes.js';
import { collect, parseCount } from '../units.js';
import { checkServices, loadForServices, progressMode, projectOptions, timeoutOf, verbContext } from './context.js';
import { loadProjectFromOptions } from '../commands/config.js';

export interface UpFlags {
  detach?: boolean;
  dryRun?: boolean;
  format: 'text' | 'json';
  forceRecreate?: boolean;
  recreate: boolean;
  alwaysRecreateDeps?: boolean;
  deps: boolean;
  removeOrphans?: boolean;
  start: boolean;
  scale?: string[];
  renewAnonVolumes?: boolean;
  timeout?: string;
  wait?: boolean;
  waitTimeout?: string;
  abortOnContainerExit?: boolean;
  abortOnContainerFailure?: boolean;
  exitCodeFrom?: string;
  timestamps?: boolean;
  logPrefix: boolean;
  color: boolean;
  build?: boolean;
  pull?: string;
  watch?: boolean;
}

/** `--scale SERVICE=NUM` entries; an unknown service or a malformed entry is a usage error. */
export function parseScale(entries: readonly string[], project: Project): Record<string, number> {
  const scale: Record<string, number> = {};
  for (const entry of entries) {
    const match = /^([^=]+)=(\d+)$/.exec(entry);
    if (match === null || match[1] === undefined || match[2] === undefined) {
      throw new TsfigError('usage', `--scale: invalid value "${entry}"`, {
        hint: 'use SERVICE=NUM, e.g. --scale web=3',
      });
    }
    checkServices(project, [match[1]]);
    scale[match[1]] = Number(match[2]);
  }
  return scale;
}

/** The planner's options for `up`'s flags. */
export function planOptions(flags: UpFlags, project: Project): up.UpOptions['plan'] {
  if (flags.forceRecreate === true && !flags.recreate) {
    throw new TsfigError('usage', '--force-recreate and --no-recreate are incompatible');
  }
  const options: Omit<PlanOptions, 'services'> = {
    noDeps: !flags.deps,
    forceRecreate: flags.forceRecreate === true,
    noRecreate: !flags.recreate,
    alwaysRecreateDeps: flags.alwaysRecreateDeps === true,
    removeOrphans: flags.removeOrphans === true,
    noStart: !flags.start,
    renewAnonVolumes: flags.renewAnonVolumes === true,
    scale: parseScale(flags.scale ?? [], project),
    ...(flags.timeout !== undefined ? { timeoutSeconds: parseCount(flags.timeout, '--timeout') } : {}),
  };
  return options;
}

/** `up`'s Options from its flags (the project already loaded). */
export function upOptions(project: Project, services: readonly string[], flags: UpFlags): up.UpOptions {
  // --no-start creates and returns: nothing runs to attach to (compose v2)
  const detach = flags.detach === true || flags.wait === true || flags.start === false;
  return {
    project,
    services,
    plan: planOptions(flags, project),
    build: flags.build ?? 'missing',
    pull: flags.pull,
    dryRun: flags.dryRun === true,
    format: flags.format,
    detach,
    wait: flags.wait === true,
    ...(flags.waitTimeout !== undefined ? { waitTimeoutSeconds: parseCount(flags.waitTimeout, '--wait-timeout') } : {}),
    attach: {
      abortOnContainerExit: flags.abortOnContainerExit === true,
      abortOnContainerFailure: flags.abortOnContainerFailure === true,
      exitCodeFrom: flags.exitCodeFrom,
      timestamps: flags.timestamps === true,
      logPrefix: flags.logPrefix,
      color: flags.color && process.stdout.isTTY === true && process.env.NO_COLOR === undefined,
    },
  };
}

export function registerUpDown(program: Command): void {
  program
    .command('up')
    .description('create and start containers')
    .argument('[services...]')
    .option('-d, --detach', 'detached mode: run containers in the background')
    .option('--dry-run', 'print the plan and change nothing')
    .addOption(new Option('--format <format>', 'format of --dry-run output').choices(['text', 'json']).default('text'))
    .option('--force-recreate', "recreate containers even if their configuration and image haven't changed")
    .option('--no-recreate', "if containers already exist, don't recreate them")
    .option('--always-recreate-deps', 'recreate dependent containers')
    .option('--no-deps', "don't start linked services")
    .option('--remove-orphans', 'remove containers for services not defined in the project file')
    .option('--no-start', "don't start the services after creating them")
    .option('--build', 'build images before starting containers (by default only the missing ones are built)')
    .option('--no-build', "don't build images, even if their build context changed")
    .option('--pull <policy>', 'pull image before running: always, missing, never')
    .option('--scale <SERVICE=NUM>', 'scale SERVICE to NUM instances', collect)
    .option(
      '-V, --renew-anon-volumes',
      'recreate anonymous volumes instead of retrieving data from the previous containers',
    )
    .option('-t, --timeout <seconds>', 'timeout in seconds for container shutdown')
    .option('--wait', 'wait for services to be running|healthy (implies detached mode)')
    .option('--wait-timeout <seconds>', 'maximum duration to wait for the project to be running|healthy')
    .option('--abort-on-container-exit', 'stops all containers if any container was stopped')
    .option('--abort-on-container-failure', 'stops all containers if any container exited with failure')
    .option('--exit-code-from <service>', 'return the exit code of the selected service container')
    .option('--timestamps', 'show timestamps')
    .option('--no-log-prefix', "don't print prefix in logs")
    .option('--no-color', 'produce monochrome output')
    .option('-w, --watch', 'watch the develop.watch paths and sync, restart or rebuild services as files change')
    .action(async (services: string[], flags: UpFlags, command: Command) => {
      const detach = flags.detach === true || flags.wait === true;
      if (detach && (flags.abortOnContainerExit === true || flags.exitCodeFrom !== undefined)) {
        throw new TsfigError('usage', '--abort-on-container-exit and --exit-code-from cannot be used with --detach');
      }
      const load = loadForServices(command, services);
      const options = upOptions(load.project, services, flags);
      // attached in a terminal: the TUI shows the pulls, builds and plan, then follows the stack
      const terminal = options.detach !== true && flags.dryRun !== true && !abortsOnExit(options.attach ?? {});
      const tui = terminal && wantsTui(progressMode(command)) ? new TuiSink() : undefined;
      try {
        const ctx = await verbContext(command, tui);
        const files = [...load.sources.keys()];
        const watch = flags.watch === true ? (await import('../../watch/command.js')).startWatch : undefined;
        const code = await up.run(ctx, {
          ...options,
          attach: { ...options.attach, tui, runTui: terminal && tui === undefined && wantsTui(progressMode(command)) },
          ...(watch !== undefined
            ? { whileAttached: (project: Project) => watch(ctx, services, { ...options, project }, files) }
            : {}),
        });
        setExitCode(command, code);
      } finally {
        await tui?.close();
      }
    });

  program
    .command('down')
    .description('stop and remove containers and networks (of the named services only, when given)')
    .argument('[services...]')
    .option(
      '-v, --volumes',
      'remove named volumes declared in the project file and anonymous volumes of its containers',
    )
    .option('--remove-orphans', 'remove containers for services not defined in the project file')
    .option('-t, --timeout <seconds>', 'shutdown timeout in seconds')
    .option('--rmi <type>', 'remove images used by services: local (built without an image: name) or all')
    .option('--dry-run', 'print the plan and change nothing')
    .action(
      async (
        services: string[],
        flags: { volumes?: boolean; removeOrphans?: boolean; timeout?: string; rmi?: string; dryRun?: boolean },
        command: Command,
      ) => {
        if (flags.rmi !== undefined && flags.rmi !== 'local' && flags.rmi !== 'all') {
          throw new TsfigError('usage', `--rmi: invalid value "${flags.rmi}"`, {
            hint: 'use --rmi local or --rmi all',
          });
        }
        const load = loadProjectFromOptions(projectOptions(command));
        const unknown = services.filter((name) => load.project.services[name] === undefined);
        if (unknown.length > 0) {
          throw new TsfigError('usage', `no such service: ${unknown.join(', ')}`, {
            hint: `services: ${Object.keys(load.project.services).sort().join(', ')}`,
          });
        }
        const ctx = await verbContext(command);
        const code = await down.run(ctx, {
          project: load.project,
          services,
          volumes: flags.volumes === true,
          removeOrphans: flags.removeOrphans === true,
          timeoutSeconds: timeoutOf(flags),
          rmi: flags.rmi,
          dryRun: flags.dryRun === true,
        });
        setExitCode(command, code);
      },
    );
}
