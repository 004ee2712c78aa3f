/**
 * The TUI's entry points for the CLI. This module is light (no ink, no react): commands import it unconditionally and
 * the TUI itself is loaded only when it runs.
 */
import type { EventSink, TsfigEvent, TsfigEventKind } from '../../events/events.js';
import type * as Session from './session.js';
import type { TuiHandle, TuiOptions, TuiResult, TuiTarget } from './session.js';

export type { StackControl, TuiOptions, TuiResult, TuiTarget } from './session.js';

/** Whether `--progress` resolves to the TUI: `tty` forces it, `auto` needs a TTY stdout and no CI. */
export function wantsTui(mode: string, stdout: { isTTY?: boolean } = process.stdout, env = process.env): boolean {
  if (mode === 'tty') return true;
  return mode === 'auto' && stdout.isTTY === true && (env.CI === undefined || env.CI === '');
}

/**
 * One-line reports from outside the TUI (watch actions): shown on the status line while a TUI runs, written to
 * stderr otherwise.
 */
export class StatusFeed {
  private target: ((message: string) => void) | undefined;

  get connected(): boolean {
    return this.target !== undefined;
  }

  emit(message: string): void {
    if (this.target !== undefined) this.target(message);
    else process.stderr.write(`${message}\n`);
  }

  connect(target: ((message: string) => void) | undefined): void {
    this.target = target;
  }
}

/** The feed every TUI of this process shows. */
export const tuiStatus = new StatusFeed();

/**
 * Work that stops itself cleanly on SIGINT/SIGTERM/SIGHUP (the pulls and builds of `up`: they remove what they
 * started, then end with 128+signal) counts itself here while it runs, with its own signal listeners. A session
 * that is still preparing then gives the terminal back and leaves the ending to that work (q and Ctrl-C become a
 * SIGINT for it) instead of ending the process by the signal.
 */
export const cleanInterrupts = { owners: 0 };

/** Loads the TUI (ink and react) on first use. */
async function loadSession(): Promise<typeof Session> {
  // React's development build records a performance mark per render and diffs props for its profiler: at 20 frames a
  // second that costs most of a core. It is chosen when react loads, which is here.
  process.env.NODE_ENV ??= 'production';
  return import('./session.js');
}

/** Runs the TUI (loading ink and react now) until detach, a stop, or every container has exited. */
export async function runTui(options: TuiOptions): Promise<TuiResult> {
  const { runTuiSession } = await loadSession();
  return runTuiSession(options);
}

/** The events that show the TUI: the work of `up` before the stack runs. A warning alone waits. */
const SHOWS_TUI = new Set<TsfigEventKind>(['pull.start', 'build.start', 'plan.start']);

/**
 * The event sink of an attached `up` in a terminal. The screen is taken on the first pull, build or plan (so a
 * config error or a dry run never flashes it), shows them as they run, and `attach` then follows the stack in the same
 * session. Events that come while the TUI loads are kept and replayed.
 */
export class TuiSink implements EventSink {
  private pending: TsfigEvent[] = [];
  private opening: Promise<TuiHandle> | undefined;
  private handle: TuiHandle | undefined;
  private closed = false;

  emit(event: TsfigEvent): void {
    if (this.handle !== undefined) {
      this.handle.feed(event);
      return;
    }
    this.pending.push(event);
    if (this.opening === undefined && SHOWS_TUI.has(event.kind)) this.opening = this.open();
  }

  private async open(): Promise<TuiHandle> {
    const { openTuiSession } = await loadSession();
    // the project's name comes with the plan (or `attach`); pulls and builds run before
    const handle = openTuiSession({ projectName: '', mode: 'up' });
    for (const event of this.pending) handle.feed(event);
    this.pending = [];
    this.handle = handle;
    if (this.closed) handle.close();
    return handle;
  }

  /** Follows the stack in the session (opened now if nothing showed it yet) until detach, a stop or the end. */
  async attach(target: TuiTarget): Promise<TuiResult> {
    const handle = await (this.opening ?? (this.opening = this.open()));
    return handle.attach(target);
  }

  /** Gives the terminal back when `up` fails or stops before attaching (a no-op if it was never taken). */
  async close(): Promise<void> {
    this.closed = true;
    const handle = await this.opening?.catch(() => undefined);
    handle?.close();
  }
}
