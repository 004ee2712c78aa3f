import type { Command } from 'commander';
import type { Engine } from '../../../engine/index.js';
import type { ComposeTerminal, ComposeContext as VerbContext } from '../../compose/context.js';
import { EnginePort } from '../../compose/engine-port.js';
import type { EventSink } from '../../events/events.js';
import { makeRenderer, type ProgressMode } from '../../ui/progress.js';
import { attachStdin } from '../attach.js';
import { autoRemoveCommand } from '../cleanup-command.js';
import { interruptible } from '../interrupt.js';
import { printLogs } from './logs.js';
import { parseCount } from '../units.js';
import type { LoadResult } from '../../config/load.js';
import { TsfigError } from '../../errors.js';
import type { Project } from '../../model/project.js';
import { observe } from '../../planner/observe.js';
import type { ObservedState } from '../../planner/observed.js';
import { loadProjectFromOptions, type ProjectOptions } from '../commands/config.js';
import { openEngine } from '../engine.js';

/** What a compose verb works with: the loaded project, the engine, and one observation of the engine's state. */
export interface ComposeContext {
  readonly project: Project;
  readonly load: LoadResult;
  readonly engine: Engine;
  readonly observed: ObservedState;
}

/** The global options (`-f`, `-p`, `--project-directory`, `--env-file`, `--profile`) of a subcommand. */
export function projectOptions(command: Command): ProjectOptions {
  return command.optsWithGlobals<ProjectOptions>();
}

/**
 * Loads the project for the services named on the command line (which enables their profiles). An unknown name is
 * a usage error (exit 64) listing the known services, not a project error: it is checked on a first load without
 * names, whose warnings are not printed twice.
 */
export function loadForServices(command: Command, services: readonly string[]): LoadResult {
  if (services.length > 0) {
    const all = loadProjectFromOptions(projectOptions(command), { warn: () => undefined, lenientEnvFiles: true });
    checkServices(all.project, services);
  }
  const json = progressMode(command) === 'json';
  // with --progress json every line on stderr is a JSON object: the project's warnings are events too
  const warn = (text: string) => makeRenderer('json').emit({ kind: 'warning', message: text.trimEnd() });
  return loadProjectFromOptions(projectOptions(command), { services, ...(json ? { warn } : {}) });
}

export function progressMode(command: Command): ProgressMode {
  return command.optsWithGlobals<{ progress?: ProgressMode }>().progress ?? 'auto';
}

/**
 * The context a compose verb runs in (src/compose/context.ts): the engine behind the executor's port, the
 * `--progress` renderer (or `events`, the TUI of an attached `up`), the process's streams, clock and environment.
 * With `--progress json` the status lines a verb writes on stderr become JSON `note` events.
 */
export async function verbContext(
  command: Command,
  events?: EventSink,
  opened?: Engine,
  env: NodeJS.ProcessEnv = process.env,
): Promise<VerbContext> {
  const engine = opened ?? (await openEngine());
  const mode = progressMode(command);
  const sink = events ?? makeRenderer(mode);
  const parallel = command.optsWithGlobals<{ parallel?: string }>().parallel;
  return {
    port: new EnginePort(engine, sink, env, { autoRemoveCommand: autoRemoveCommand() }),
    terminal: cliTerminal(engine),
    events: sink,
    jsonProgress: mode === 'json',
    stdout: process.stdout,
    stderr:
      mode === 'json'
        ? { write: (text: string) => sink.emit({ kind: 'note', message: text.trimEnd() }) }
        : process.stderr,
    clock: Date.now,
    env,
    parallel: parallel === undefined ? undefined : Math.max(1, parseCount(parallel, '--parallel')),
    interruptible: (what, hint, work) => interruptible({ what, hint }, work),
  };
}

/** The signals an attached one-off passes to its container (as `attach --sig-proxy`, src/cli/attach-session.ts). */
const PROXIED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** The attached verbs' terminal: logs by printLogs (./logs.ts), stdin by the monitor's attach socket (../attach.ts). */
export function cliTerminal(engine: Engine): ComposeTerminal {
  return {
    followLogs: (containers, options) => printLogs(engine, containers, { follow: true, ...options }),
    attachStdin: (id, tty) => attachStdin(engine.paths, id, tty),
    onSignals: (forward) => {
      const handler = (signal: NodeJS.Signals) => forward(signal);
      for (const signal of PROXIED_SIGNALS) process.on(signal, handler);
      return () => {
        for (const signal of PROXIED_SIGNALS) process.off(signal, handler);
      };
    },
  };
}

/** `-t, --timeout` in seconds, when given. */
export function timeoutOf(flags: { timeout?: string }): number | undefined {
  return flags.timeout === undefined ? undefined : parseCount(flags.timeout, '--timeout');
}

/** Loads the project (exit 65 when invalid) and opens the engine; services named must exist. */
export async function composeContext(command: Command, services: readonly string[] = []): Promise<ComposeContext> {
  const load = loadForServices(command, services);
  const project = load.project;
  const engine = await openEngine();
  const observed = await observe(engine, project.name, project);
  return { project, load, engine, observed };
}

/** An unknown service on the command line is a usage error that lists the known ones (nothing is changed). A service
 * of a disabled profile is known: naming it enables its profile, as in compose. */
export function checkServices(project: Project, services: readonly string[]): void {
  const known = [...Object.keys(project.services), ...Object.keys(project.disabled_services)];
  for (const service of services) {
    if (known.includes(service) || service in project.disabled_services) continue;
    throw new TsfigError('usage', `no such service: ${service}`, {
      hint: `the project's services are: ${known.sort().join(', ')}`,
    });
  }
}

/** The project's service containers: one definition, in the compose layer. */
export { serviceContainers } from '../../compose/context.js';
