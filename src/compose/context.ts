/**
 * What every compose verb (`src/compose/<verb>.ts`) runs with: `run(ctx, options): Promise<ExitCode>`. The CLI
 * (src/cli/compose/*) turns flags into the verb's Options and builds the context over the real engine
 * (`ComposeEngine`); unit tests pass a recording port instead. No verb reads argv, prints with console or sets the
 * exit code: it writes to the context's streams, reports through its event sink and returns the code.
 */
import type { Engine } from '../../engine/index.js';
import type { EventSink } from '../events/events.js';
import type { ExecutorPort } from '../executor/port.js';
import type { Project } from '../model/project.js';
import type { ObservedContainer, ObservedState } from '../planner/observed.js';
import { compareText } from '../../engine/index.js';
import type { Plan } from '../planner/plan.js';

/** The engine as the compose verbs see it: the executor's port plus the reads and holds around a plan. */
export interface ComposePort extends ExecutorPort {
  /** One snapshot of the engine's state for the project (planner/observe.ts). */
  observe(project: Project): Promise<ObservedState>;
  /** Serialises the mutations of one project (two `up` at once end with one set of containers). */
  lockProject<T>(project: string, fn: () => Promise<T>): Promise<T>;
  /** Finishes or undoes what a killed command left in the networking (before a plan that changes it). */
  repair(): Promise<void>;
  /** Refuses a plan that would fail half-way (held host ports, missing bind sources), before anything changes. */
  preflight(plan: Plan): Promise<void>;
  /** Runs fn holding a one-off's auto-remove hold: its monitor's cleanup waits for this CLI (attached `run --rm`). */
  holdAutoRemove<T>(id: string, fn: () => Promise<T>): Promise<T>;
  /** Waits for the container to exit; its exit code. */
  waitExit(id: string, signal?: AbortSignal): Promise<number>;
  /** When each image was last pulled (ms since the epoch; undefined: never by tsfig): pull_policy daily/every_N. */
  lastPulled(images: readonly string[]): Promise<Readonly<Record<string, number | undefined>>>;
  /** The containers (names, any project) that use each of the volumes: what `down -v` plans with. */
  volumeUsers(names: readonly string[]): Promise<Readonly<Record<string, readonly string[]>>>;
  /** The engine itself, for the attached views (the TUI, logs with signals); undefined in tests. */
  readonly engine: Engine | undefined;
}

/** How the attached verbs follow containers' logs: one line prefix per container, timestamps, colours. */
export interface FollowOptions {
  readonly prefix: boolean;
  readonly timestamps: boolean;
  readonly color: boolean;
  readonly signal?: AbortSignal;
  /** The containers' stderr to this process's stderr (attached `run`); otherwise everything goes to stdout. */
  readonly splitStreams?: boolean;
  /** Only what was logged from this time on (ISO 8601): an attached `up` shows no output of earlier runs. */
  readonly since?: string;
}

/**
 * The terminal side of the attached verbs (`run`, attached `up`), given by the CLI (`cliTerminal`,
 * src/cli/compose/context.ts): the verbs decide when to follow logs or connect stdin, the CLI owns how it is done on
 * this process's streams. The application layer never imports src/cli (a dependency rule).
 */
export interface ComposeTerminal {
  /** Copies the containers' logs to this process's output until they exit (or the signal aborts). */
  followLogs(containers: readonly ObservedContainer[], options: FollowOptions): Promise<void>;
  /** Connects this process's stdin to the container's; returns the detach function. */
  attachStdin(id: string, tty: boolean): () => void;
  /**
   * Until the returned function is called, SIGINT, SIGTERM and SIGHUP do not end this process: each one is passed to
   * forward (an attached one-off without a tty hands them to its container, docker's sig-proxy).
   */
  onSignals(forward: (signal: string) => void): () => void;
}

/** Runs work that pulls or builds with a signal the first Ctrl-C aborts (src/cli/interrupt.ts in the CLI). */
export type Interruptible = <T>(what: string, hint: string, work: (signal: AbortSignal) => Promise<T>) => Promise<T>;

export interface ComposeContext {
  readonly port: ComposePort;
  /** Logs and stdin of attached verbs on this process's terminal (recorded in tests). */
  readonly terminal: ComposeTerminal;
  /** Progress of plans, pulls and builds (the `--progress` renderer, or the TUI of an attached `up`). */
  readonly events: EventSink;
  /**
   * `--progress json`: every event is wanted, even those of the plans an attached `run` applies while the
   * container's output is on the terminal (in the line modes their status lines are left out).
   */
  readonly jsonProgress?: boolean;
  /** Data: `--dry-run` plans, `run -d`'s container name. */
  readonly stdout: { write(text: string): unknown; readonly isTTY?: boolean };
  /** Status lines that are not events (`Project x is up to date`). */
  readonly stderr: { write(text: string): unknown };
  /** Milliseconds since the epoch (pull policies, deadlines). */
  readonly clock: () => number;
  /** The environment (build args without a value). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** `--parallel`: ops at once; undefined = the executor's default. */
  readonly parallel?: number | undefined;
  readonly interruptible: Interruptible;
}

/** The project's service containers (no one-offs), optionally of some services, ordered by service then number. */
export function serviceContainers(
  observed: Pick<ObservedState, 'containers'>,
  services: readonly string[] = [],
  options: { includeOneoff?: boolean } = {},
): ObservedContainer[] {
  return observed.containers
    .filter((container) => options.includeOneoff === true || !container.oneoff)
    .filter((container) => services.length === 0 || services.includes(container.service))
    .sort((a, b) => compareText(a.service, b.service) || a.number - b.number || compareText(a.name, b.name));
}
