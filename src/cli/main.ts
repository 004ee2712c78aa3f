import { Command, CommanderError } from 'commander';
import { isEngineError } from '../../engine/errors.js';
import { inRootlessSession } from '../../engine/rootless/index.js';
import { TsfigError } from '../errors.js';
import { registerCommands } from './commands/index.js';
import { addGlobalOptions } from './global-options.js';
import { ExitCode, exitCodeOf, exitCodeOfKind } from './exit-codes.js';
import { packageVersion } from './version.js';

/** The only place that reads argv, prints errors and sets the exit code. */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command('tsfig')
    .description('Fig/Compose-style orchestrator with an embedded, daemonless container engine')
    .version(packageVersion(), '-v, --version', 'print the version')
    .option('--debug', 'show internal details (stack traces) on errors')
    .showSuggestionAfterError(true)
    .exitOverride()
    .enablePositionalOptions();
  addGlobalOptions(program);
  await registerCommands(program, argv);
  return program;
}

function printError(error: unknown, debug: boolean): number {
  if (error instanceof CommanderError) {
    // commander already printed its message (usage errors, --help, --version).
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return ExitCode.ok;
    if (error.code === 'commander.help') return ExitCode.ok;
    return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  }
  if (error instanceof TsfigError || isEngineError(error)) {
    const source = error instanceof TsfigError ? error.source : undefined;
    const location = source === undefined ? '' : `${source.file}:${source.line}:${source.column}`;
    const where = location === '' || error.message.includes(location) ? '' : ` (${location})`;
    process.stderr.write(`error: ${error.message}${where}\n`);
    if (error.hint !== undefined) process.stderr.write(`hint: ${error.hint}\n`);
    if (debug && error.stack !== undefined) process.stderr.write(`${error.stack}\n`);
    return error.exitCode ?? exitCodeOfKind(error.kind);
  }
  const denied = permissionDenied(error);
  if (denied !== undefined) {
    process.stderr.write(`error: ${denied}\n`);
    process.stderr.write(
      inRootlessSession()
        ? 'hint: rootless, tsfig runs as you (and your subordinate ids): the file is not yours, or TSFIG_ROOT points at a root-owned state\n'
        : "hint: tsfig's engine and its state (/var/lib/tsfig, or TSFIG_ROOT) need root: run it as root (sudo tsfig ...)\n",
    );
    if (debug && error instanceof Error && error.stack !== undefined) process.stderr.write(`${error.stack}\n`);
    return ExitCode.permission;
  }
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(
    `internal error: this is a bug in tsfig ${packageVersion()}; please report it with the output below\n${detail}\n`,
  );
  return ExitCode.failure;
}

/**
 * A permission error from the file system (EACCES, EPERM, EROFS) that no command turned into a TsfigError: the user's,
 * not a bug (an ordinary user running a command that writes the root-owned state), so no stack trace.
 */
export function permissionDenied(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const { code, syscall, path } = error as NodeJS.ErrnoException;
  if (code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS') return undefined;
  const what = code === 'EROFS' ? 'read-only file system' : 'permission denied';
  return path === undefined ? `${what} (${syscall ?? code})` : `${what}: ${syscall ?? 'open'} ${path}`;
}

export async function main(argv: readonly string[]): Promise<number> {
  try {
    const program = await buildProgram(argv);
    // `-f oci://...`: the (synchronous) loader reads published projects from the cache this fills first.
    if (argv.some((arg) => arg.includes('oci://'))) {
      const { fetchRemoteProjectFiles, ociFileArguments } = await import('../config/oci.js');
      await fetchRemoteProjectFiles(ociFileArguments(argv));
    }
    await program.parseAsync([...argv], { from: 'user' });
    return exitCodeOf(program);
  } catch (error) {
    return printError(error, argv.includes('--debug'));
  }
}
