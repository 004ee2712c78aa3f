import { performance } from 'node:perf_hooks';
import type { EventSink, LayerState, OpEventRef, TsfigEvent } from '../events/events.js';
import { formatBytes } from './tty/format.js';

/**
 * `--progress`: how status is shown. `tty` (and `auto` on a terminal outside CI: ui/tty `wantsTui`) shows the TUI
 * for attached `up` and `logs -f`, from the first pull, build or plan event on (plain lines are for the others).
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
  'container.wait-running': { noun: 'Container', doing: 'Waiting', done: 'Running' },
  'container.kill': { noun: 'Container', doing: 'Killing', done: 'Killed' },
  'container.pause': { noun: 'Container', doing: 'Pausing', done: 'Paused' },
  'container.unpause': { noun: 'Container', doing: 'Unpausing', done: 'Unpaused' },
  'image.pull': { noun: 'Image', doing: 'Pulling', done: 'Pulled' },
  'image.build': { noun: 'Image', doing: 'Building', done: 'Built' },
  'image.remove': { noun: 'Image', doing: 'Removing', done: 'Removed' },
  'image.push': { noun: 'Image', doing: 'Pushing', done: 'Pushed' },
  'artifact.push': { noun: 'Artifact', doing: 'Publishing', done: 'Published' },
  'image.commit': { noun: 'Container', doing: 'Committing', done: 'Committed' },
  'container.sync': { noun: 'Container', doing: 'Syncing', done: 'Synced' },
  'container.exec': { noun: 'Container', doing: 'Executing', done: 'Executed' },
};

function words(op: OpEventRef) {
  return WORDS[op.kind] ?? { noun: 'Resource', doing: 'Working', done: 'Done' };
}

/** What an op in flight is doing, in words: `Creating tsfig-web-1`. */
export function opDoing(op: OpEventRef): string {
  return `${words(op).doing} ${op.target}`;
}

const LAYER_WORDS: Record<LayerState, string> = {
  exists: 'Already exists',
  waiting: 'Waiting',
  downloading: 'Downloading',
  verified: 'Download complete',
  extracting: 'Extracting',
  done: 'Pull complete',
};

/**
 * compose's plain progress lines: ` Container web-1  Started`, ` web Pulling`, `  3f2a1b9c8d7e Extracting`,
 * `[web] Step 3/7 : RUN make`, `[web] <a line a RUN printed>`. Repeated download progress has no line (LineRenderer
 * prints a layer's line once per state).
 */
export function plainLine(event: TsfigEvent): string | undefined {
  switch (event.kind) {
    case 'pull.start':
      return ` ${event.services.join(', ')} Pulling`;
    case 'pull.progress': {
      const size = event.state === 'downloading' || event.state === 'waiting' ? ` ${formatBytes(event.total)}` : '';
      return `  ${event.layer} ${LAYER_WORDS[event.state]}${size}`;
    }
    case 'pull.done':
      return ` ${event.services.join(', ')} ${event.status === 'downloaded' ? 'Pulled' : 'Up to date'}`;
    case 'pull.error':
      return ` ${event.services.join(', ')} Error ${event.message}`;
    case 'build.start':
      return ` Image ${event.image}  Building`;
    case 'build.step':
      return `[${event.service}] Step ${event.step}/${event.total} : ${event.text}`;
    case 'build.step-done':
      return undefined;
    case 'build.output':
      // a RUN's output, as compose's plain progress shows it (BuildKit's `#5 0.301 text`), under the service
      return event.text
        .replace(/\n$/, '')
        .split('\n')
        .map((line) => `[${event.service}] ${line}`)
        .join('\n');
    case 'build.done': {
      const cached = event.cachedSteps === event.steps ? ', all steps cached' : '';
      return ` Image ${event.image}  Built (${(event.durationMs / 1000).toFixed(1)}s${cached})`;
    }
    case 'op.start':
      // a pull or a build has its own lines (pull.*, build.*): its op's would print each of them twice
      if (event.op.kind === 'image.pull' || event.op.kind === 'image.build') return undefined;
      return ` ${words(event.op).noun} ${event.op.target}  ${words(event.op).doing}`;
    case 'op.done': {
      if (event.op.kind === 'image.pull' || event.op.kind === 'image.build') return undefined;
      // a push says what it pushed (docker push's `digest:`), a commit the image it made (compose's `Committed as`)
      const result = event.digest ?? event.imageId;
      return ` ${words(event.op).noun} ${event.op.target}  ${words(event.op).done}${result === undefined ? '' : ` ${event.imageId !== undefined ? 'as ' : ''}${result}`}`;
    }
    case 'op.error':
      // a failed pull has its line (pull.error, from the port): this one would say it twice
      if (event.op.kind === 'image.pull') return undefined;
      return ` ${words(event.op).noun} ${event.op.target}  ${event.bestEffort ? 'Warning' : 'Error'}: ${event.message}`;
    case 'op.skipped':
    case 'plan.start':
    case 'plan.done':
      return undefined;
    case 'warning':
      return `WARN ${event.message}`;
    case 'note':
      return `note: ${event.message}`;
  }
}

/**
 * Writes events as lines to a stream (stderr): plain, JSON (one object per event, with `ms`: when, in ms since the
 * process started) or quiet (warnings/errors).
 */
export class LineRenderer implements EventSink {
  private readonly mode: 'plain' | 'json' | 'quiet';
  private readonly out: NodeJS.WritableStream;
  /** The last state printed per `image layer`: a layer gets a line when its state changes, not per 512 KiB. */
  private readonly layers = new Map<string, LayerState>();

  constructor(mode: 'plain' | 'json' | 'quiet', out: NodeJS.WritableStream = process.stderr) {
    this.mode = mode;
    this.out = out;
  }

  emit(event: TsfigEvent): void {
    if (this.mode === 'json') {
      const { kind } = event;
      const data = kind === 'op.error' ? { ...event, error: undefined } : event;
      // ms: when it happened, in ms since this process started (with op.start/op.done, where an up's time goes)
      this.out.write(`${JSON.stringify({ ...data, kind, ms: Math.round(performance.now() * 10) / 10 })}\n`);
      return;
    }
    if (this.mode === 'quiet' && event.kind !== 'warning' && event.kind !== 'op.error' && event.kind !== 'pull.error')
      return;
    if (event.kind === 'pull.progress') {
      const key = `${event.image} ${event.layer}`;
      if (this.layers.get(key) === event.state) return;
      this.layers.set(key, event.state);
    }
    const line = plainLine(event);
    if (line !== undefined) this.out.write(`${line}\n`);
  }
}

export function makeRenderer(mode: ProgressMode): EventSink {
  if (mode === 'json' || mode === 'quiet') return new LineRenderer(mode);
  return new LineRenderer('plain');
}
