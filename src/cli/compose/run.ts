/** `tsfig run`: flags → Options for src/compose/run.ts. */
import type { Command } from 'commander';
import * as run from '../../compose/run.js';
import { setExitCode } from '../exit-codes.js';
import { collect, expandEnvFlags } from '../units.js';
import { loadForServices, verbContext } from './context.js';

interface RunFlags {
  detach?: boolean;
  rm?: boolean;
  name?: string;
  entrypoint?: string;
  env?: string[];
  label?: string[];
  user?: string;
  workdir?: string;
  publish?: string[];
  servicePorts?: boolean;
  volume?: string[];
  deps: boolean;
  TTY: boolean;
  interactive?: boolean;
  build?: boolean;
  pull?: string;
  dryRun?: boolean;
}

/**
 * `run`'s Options from its flags: a TTY when not `-T`, not detached and stdin is a terminal (compose's rule); `-e NAME`
 * valued from the project's environment (the shell, then .env or --env-file; left out when none sets it).
 */
export function runOptions(
  project: run.RunOptions['project'],
  service: string,
  command: readonly string[],
  flags: RunFlags,
  stdinIsTTY: boolean = process.stdin.isTTY === true,
  environment: NodeJS.ProcessEnv = process.env,
): run.RunOptions {
  return {
    project,
    service,
    command,
    detach: flags.detach === true,
    rm: flags.rm === true,
    name: flags.name,
    entrypoint: flags.entrypoint,
    env: expandEnvFlags(flags.env, environment),
    labels: flags.label ?? [],
    user: flags.user,
    workdir: flags.workdir,
    publish: flags.publish ?? [],
    servicePorts: flags.servicePorts === true,
    volumes: flags.volume ?? [],
    deps: flags.deps,
    tty: flags.TTY && stdinIsTTY && flags.detach !== true,
    // compose run keeps stdin open by default (-i is implied; -T only drops the tty), detached too (`run -d svc cat`
    // keeps running)
    interactive: true,
    build: flags.build === true,
    pull: flags.pull,
    dryRun: flags.dryRun === true,
  };
}

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('run a one-off command on a service')
    .argument('<service>')
    .argument('[command...]')
    .option('-d, --detach', 'run container in background and print container ID')
    .option('--rm', 'automatically remove the container when it exits')
    .option('--name <name>', 'assign a name to the container')
    .option('--entrypoint <cmd>', 'override the entrypoint of the image')
    .option('-e, --env <KEY=VAL>', 'set environment variables', collect)
    .option('-l, --label <KEY=VAL>', 'add or override a label', collect)
    .option('-u, --user <user>', 'run as specified username or uid')
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-p, --publish <spec>', "publish a container's port(s) to the host", collect)
    .option('-P, --service-ports', "run command with all service's ports enabled and mapped to the host")
    .option('-v, --volume <spec>', 'bind mount a volume', collect)
    .option('--no-deps', "don't start linked services")
    .option('-T, --no-TTY', 'disable pseudo-TTY allocation (default: auto-detected)')
    .option('-i, --interactive', 'keep STDIN open even if not attached (default: true, as compose)')
    .option('--build', 'build the image before starting the container (even when it is there)')
    .option('--pull <policy>', 'pull image before running: always, missing, never')
    .option('--dry-run', 'print the plan and change nothing')
    .passThroughOptions()
    .action(async (service: string, command: string[], flags: RunFlags, cmd: Command) => {
      const { project, environment } = loadForServices(cmd, [service]);
      const ctx = await verbContext(cmd);
      setExitCode(
        cmd,
        await run.run(ctx, runOptions(project, service, command, flags, process.stdin.isTTY === true, environment)),
      );
    });
}
