/**
 * Clean interruption of the commands that pull or build. While their work runs, the first SIGINT, SIGTERM or SIGHUP
 * aborts it (the builder kills and removes its RUN container, a pull deletes its downloads) and the command then
 * fails with 128+signal (130, 143, 129) and says what to do next; a second signal ends the process at once, and the
 * next build or pull removes what it left (engine/build/debris.ts). An attached `up` in a terminal hands its signals
 * and its q / Ctrl-C keys to this work while it runs (`cleanInterrupts`), after giving the terminal back.
 */
import { constants } from 'node:os';
import { TsfigError } from '../errors.js';
import { cleanInterrupts } from '../ui/tty/index.js';

const SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** 128 + the signal's number: the exit code of a process ended by it (130 for SIGINT, 143 for SIGTERM). */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 2);
}

/** The reason a signal aborts the work with: what the builder or the pull rejects with. */
export class InterruptedError extends Error {
  readonly signal: NodeJS.Signals;

  constructor(signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.name = 'AbortError';
    this.signal = signal;
  }
}

export interface InterruptOptions {
  /** What is interrupted, for the messages: `the build`, `up`. */
  readonly what: string;
  /** The next thing to do, once interrupted (the error's hint). */
  readonly hint: string;
  /** @default process.stderr */
  readonly stderr?: { write(text: string): unknown };
}

/**
 * Runs work with an AbortSignal that the first SIGINT/SIGTERM/SIGHUP aborts. Once interrupted, whatever the work
 * ends with (it has cleaned up by then), this throws a TsfigError with exit code 128+signal and the hint; a second
 * signal exits at once. Not nested: the work passes the signal down.
 */
export async function interruptible<T>(
  options: InterruptOptions,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const stderr = options.stderr ?? process.stderr;
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received === undefined) {
      received = signal;
      controller.abort(new InterruptedError(signal));
      // after the other listeners of this signal: a TUI gives the terminal back first, so this is seen
      queueMicrotask(() =>
        stderr.write(
          `${signal === 'SIGINT' ? '\n' : ''}Interrupted (${signal}): stopping ${options.what} and removing what it ` +
            'started... (press Ctrl+C again to quit at once)\n',
        ),
      );
      return;
    }
    stderr.write(
      `Interrupted again (${signal}): quitting now. The next build or pull removes what was left ` +
        '(or run: tsfig image prune -f)\n',
    );
    process.exit(signalExitCode(signal));
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);
  cleanInterrupts.owners++;
  let outcome: { ok: true; value: T } | { ok: false; error: unknown };
  try {
    outcome = { ok: true, value: await work(controller.signal) };
  } catch (error) {
    outcome = { ok: false, error };
  } finally {
    cleanInterrupts.owners--;
    for (const signal of SIGNALS) process.off(signal, onSignal);
  }
  if (received === undefined) {
    if (outcome.ok) return outcome.value;
    throw outcome.error;
  }
  const other =
    !outcome.ok && !(outcome.error instanceof Error && outcome.error.name === 'AbortError')
      ? ` (it also failed: ${outcome.error instanceof Error ? outcome.error.message : String(outcome.error)})`
      : '';
  const message = outcome.ok
    ? `${options.what} was interrupted (${received}) as it finished; its result was kept`
    : `${options.what} was interrupted (${received}); what it had started was removed${other}`;
  throw new TsfigError('runtime', message, { hint: options.hint, exitCode: signalExitCode(received) });
}
