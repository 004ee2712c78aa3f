import { Option, type Command } from 'commander';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Global options that take a value, so the command name can be found in argv without parsing everything. */
export const GLOBAL_OPTIONS_WITH_VALUE = new Set([
  '-f',
  '--file',
  '-p',
  '--project-name',
  '--project-directory',
  '--env-file',
  '--profile',
  '--progress',
  '--parallel',
]);

/**
 * Adds `-f/--file` (repeatable), `-p/--project-name`, `--project-directory`, `--env-file` (repeatable) and
 * `--profile` (repeatable) to a command. Read them back with `cmd.optsWithGlobals()`, so they work whether they are
 * on the program or on a subcommand.
 */
export function addProjectOptions(cmd: Command): Command {
  return cmd
    .option(
      '-f, --file <path>',
      'project file; repeat to merge several (default: search for compose.yaml, ...)',
      collect,
    )
    .option('-p, --project-name <name>', 'project name (default: name: key, then the directory name)')
    .option('--project-directory <dir>', 'directory for relative paths and .env (default: that of the first file)')
    .option('--env-file <path>', 'file of variables for interpolation, instead of .env; repeatable', collect)
    .option('--profile <name>', 'enable services of this profile; repeatable', collect);
}

/** compose's global options: the project options, `--progress` and `--parallel`. */
export function addGlobalOptions(program: Command): Command {
  return addProjectOptions(program)
    .addOption(
      new Option('--progress <mode>', 'how progress is shown')
        .choices(['auto', 'tty', 'plain', 'json', 'quiet'])
        .default('auto'),
    )
    .option('--parallel <n>', 'maximum engine operations at once');
}

/** The first word of argv that is not a global option or its value: the command the user asked for. */
export function commandName(argv: readonly string[]): string | undefined {
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index] ?? '';
    if (arg === '--') return argv[index + 1];
    if (!arg.startsWith('-')) return arg;
    if (GLOBAL_OPTIONS_WITH_VALUE.has(arg)) index++;
  }
  return undefined;
}
