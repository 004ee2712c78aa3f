/**
 * The TUI's entry points for the CLI. This module is light (no ink, no react): commands import it unconditionally and
 * the TUI itself is loaded only when it runs.
 */
import type { Command } from 'commander';
import type { TuiOptions, TuiResult } from './session.js';

export type { TuiOptions, TuiResult } from './session.js';

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

/** `--progress` of a command (global option), defaulting to auto. */
export function progressOf(command: Command): string {
  return command.optsWithGlobals<{ progress?: string }>().progress ?? 'auto';
}

/** Runs the TUI (loading ink and react now) until detach, a stop, or every container has exited. */
export async function runTui(options: TuiOptions): Promise<TuiResult> {
  // React's development build records a performance mark per render and diffs props for its profiler: at 20 frames a
  // second that costs most of a core. It is chosen when react loads, which is here.
  process.env.NODE_ENV ??= 'production';
  const { runTuiSession } = await import('./session.js');
  return runTuiSession(options);
}
