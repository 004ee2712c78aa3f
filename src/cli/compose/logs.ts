import type { Engine } from '../../../engine/index.js';
import type { LogEntry } from '../../../engine/containers/index.js';
import type { ObservedContainer } from '../../planner/observed.js';

const COLORS = [36, 33, 32, 35, 34, 91, 92, 93, 94, 95, 96];

export interface LogPrintOptions {
  readonly follow: boolean;
  readonly tail?: number;
  readonly timestamps: boolean;
  readonly since?: string;
  readonly until?: string;
  readonly color: boolean;
  readonly prefix: boolean;
  readonly signal?: AbortSignal;
  /** The containers' stderr to this process's stderr (an attached `run`, as docker attach does); else all to stdout. */
  readonly splitStreams?: boolean;
  /**
   * With follow: the project's containers now (of the services shown). Polled while following, so that a container
   * created later (recreated by `up`, scaled up) or started again (`restart`) is followed too, as compose v2 does.
   */
  readonly discover?: () => Promise<readonly ObservedContainer[]>;
}

/** How often a following `logs -f` looks for new or restarted containers, and how long none may run before it ends
 * (the gap between the old container's exit and the new one's start of a recreate). */
const DISCOVER_MS = 500;
const QUIET_MS = 3000;

const labelOf = (container: ObservedContainer): string =>
  container.number > 0 ? `${container.service}-${container.number}` : container.name;

/** `web-1  | ` padded to the longest name, coloured per container as compose does. */
export function logPrefixes(containers: readonly ObservedContainer[], color: boolean): Map<string, string> {
  const label = labelOf;
  const width = Math.max(0, ...containers.map((container) => label(container).length));
  const prefixes = new Map<string, string>();
  containers.forEach((container, index) => {
    const text = `${label(container).padEnd(width)}  | `;
    prefixes.set(container.id, color ? `\u001b[${COLORS[index % COLORS.length]}m${text}\u001b[0m` : text);
  });
  return prefixes;
}

/** One line of output for an entry; the entry's text already ends with a newline (or is a partial line). */
export function formatLogLine(entry: LogEntry, prefix: string, timestamps: boolean): string {
  const text = entry.text.endsWith('\n') ? entry.text : `${entry.text}\n`;
  return `${prefix}${timestamps ? `${entry.time} ` : ''}${text}`;
}

/** The time just after a log entry's (its 9-digit fraction plus one nanosecond): `since` for a re-follow. */
export function afterLogTime(time: string): string {
  const match = /^(.*\.)(\d{9})Z$/.exec(time);
  if (match === null) return time;
  const next = BigInt(match[2] ?? '0') + 1n;
  if (next < 1_000_000_000n) return `${match[1]}${String(next).padStart(9, '0')}Z`;
  const seconds = new Date(Date.parse(`${(match[1] ?? '').slice(0, -1)}Z`) + 1000).toISOString().slice(0, 19);
  return `${seconds}.000000000Z`;
}

/**
 * Prints the logs of several containers, interleaved as they come (follow) or one after another. Following with
 * `discover`, it also follows the containers that appear or start again while it runs, and ends once none of the
 * containers is running (after a short quiet time that covers a recreate).
 */
export async function printLogs(
  engine: Engine,
  containers: readonly ObservedContainer[],
  options: LogPrintOptions,
): Promise<void> {
  const prefixes = logPrefixes(containers, options.color);
  const width = Math.max(0, ...containers.map((container) => labelOf(container).length));
  let colours = containers.length;
  const active = new Map<string, Promise<void>>();
  const lastTime = new Map<string, string>();
  const follow = (container: ObservedContainer, resumeAfter?: string): void => {
    let prefix = prefixes.get(container.id);
    if (prefix === undefined) {
      const text = `${labelOf(container).padEnd(width)}  | `;
      prefix = options.color ? `\u001b[${COLORS[colours++ % COLORS.length]}m${text}\u001b[0m` : text;
      prefixes.set(container.id, prefix);
    }
    const shown = options.prefix ? prefix : '';
    const task = (async () => {
      for await (const entry of engine.containers.logs(container.id, {
        follow: options.follow,
        ...(options.tail !== undefined && resumeAfter === undefined ? { tail: options.tail } : {}),
        ...(resumeAfter !== undefined
          ? { since: resumeAfter }
          : options.since !== undefined
            ? { since: options.since }
            : {}),
        ...(options.until !== undefined ? { until: options.until } : {}),
        ...(options.signal !== undefined ? { signal: options.signal } : {}),
      })) {
        lastTime.set(container.id, entry.time);
        const out = options.splitStreams === true && entry.stream === 'stderr' ? process.stderr : process.stdout;
        out.write(formatLogLine(entry, shown, options.timestamps));
      }
    })()
      // A container removed while it is followed (recreated, `down`) ends its stream; other errors are errors.
      .catch(async (error: unknown) => {
        if (
          await engine.containers.get(container.id).then(
            () => true,
            () => false,
          )
        )
          throw error;
      })
      .finally(() => active.delete(container.id));
    active.set(container.id, task);
  };
  for (const container of containers) follow(container);
  const discover = options.discover;
  if (!options.follow || discover === undefined) {
    await Promise.all(active.values());
    return;
  }
  let everRunning = containers.some((container) => container.running);
  let quietSince: number | undefined;
  const aborted = (): boolean => options.signal?.aborted === true;
  let wake: (() => void) | undefined;
  options.signal?.addEventListener('abort', () => wake?.(), { once: true });
  while (!aborted()) {
    if (active.size === 0 && !everRunning) break;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, DISCOVER_MS);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    if (aborted()) break;
    const current = await discover().catch(() => [] as const);
    for (const container of current) {
      if (!container.running || active.has(container.id)) continue;
      everRunning = true;
      const last = lastTime.get(container.id);
      // A container followed before (restarted) continues after its last line; a new one is shown from its start.
      follow(container, last === undefined ? undefined : afterLogTime(last));
    }
    if (active.size > 0 || current.some((container) => container.running)) quietSince = undefined;
    else if (quietSince === undefined) quietSince = Date.now();
    else if (Date.now() - quietSince >= QUIET_MS) break;
  }
  await Promise.all(active.values());
}
