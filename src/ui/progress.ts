import type { EventSink, OpEventRef, TsfigEvent } from '../events/events.js';

/**
 * `--progress`: how status is shown. `tty` (and `auto` on a terminal outside CI: ui/tty `wantsTui`) shows the TUI
 * for attached `up` and `logs -f`; plan progress stays plain lines.
 */
export type ProgressMode = 'auto' | 'tty' | 'plain' | 'json' | 'quiet';

const WORDS: Record<string, { noun: string; doing: string; done: string }> = {
  'network.create': { noun: 'Network', doing: 'Creating', done: 'Created' },
  'network.remove': { noun: 'Network', doing: 'Removing', done: 'Removed' },
  'volume.create': { noun: 'Volume', doing: 'Creating', done: 'Created' },
  'volume.remove': { noun: 'Volume', doing: 'Removing', done: 'Removed' },
  'container.create': { noun: 'Container', doing: 'Creating', done: 'Created' },
  'container.start': { noun: 'Container', doing: 'Starting', done: 'Started' },
  'container.stop': { noun: 'Container', doing: 'Stopping', done: 'Stopped' },
  'container.remove': { noun: 'Container', doing: 'Removing', done: 'Removed' },
  'container.wait-healthy': { noun: 'Container', doing: 'Waiting', done: 'Healthy' },
  'container.wait-completed': { noun: 'Container', doing: 'Waiting', done: 'Exited' },
};

function words(op: OpEventRef) {
  return WORDS[op.kind] ?? { noun: 'Resource', doing: 'Working', done: 'Done' };
}

/** compose's plain progress lines: ` Container web-1  Started`. */
export function plainLine(event: TsfigEvent): string | undefined {
  switch (event.kind) {
    case 'op.start':
      return ` ${words(event.op).noun} ${event.op.target}  ${words(event.op).doing}`;
    case 'op.done':
      return ` ${words(event.op).noun} ${event.op.target}  ${words(event.op).done}`;
    case 'op.error':
      return ` ${words(event.op).noun} ${event.op.target}  ${event.bestEffort ? 'Warning' : 'Error'}: ${event.message}`;
    case 'op.skipped':
    case 'plan.start':
    case 'plan.done':
      return undefined;
    case 'warning':
      return `WARN ${event.message}`;
  }
}

/** Writes events as lines to a stream (stderr): plain, JSON (one object per event) or quiet (warnings/errors). */
export class LineRenderer implements EventSink {
  private readonly mode: 'plain' | 'json' | 'quiet';
  private readonly out: NodeJS.WritableStream;

  constructor(mode: 'plain' | 'json' | 'quiet', out: NodeJS.WritableStream = process.stderr) {
    this.mode = mode;
    this.out = out;
  }

  emit(event: TsfigEvent): void {
    if (this.mode === 'json') {
      const { kind } = event;
      const data = kind === 'op.error' ? { ...event, error: undefined } : event;
      this.out.write(`${JSON.stringify({ ...data, kind })}\n`);
      return;
    }
    if (this.mode === 'quiet' && event.kind !== 'warning' && event.kind !== 'op.error') return;
    const line = plainLine(event);
    if (line !== undefined) this.out.write(`${line}\n`);
  }
}

export function makeRenderer(mode: ProgressMode): EventSink {
  if (mode === 'json' || mode === 'quiet') return new LineRenderer(mode);
  return new LineRenderer('plain');
}
