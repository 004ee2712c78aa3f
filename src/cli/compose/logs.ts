import type { Engine } from '../../../engine/index.js';
import type { LogEntry } from '../../../engine/containers/types.js';
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
}

/** `web-1  | ` padded to the longest name, coloured per container as compose does. */
export function logPrefixes(containers: readonly ObservedContainer[], color: boolean): Map<string, string> {
  const label = (container: ObservedContainer) =>
    container.number > 0 ? `${container.service}-${container.number}` : container.name;
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

/** Prints the logs of several containers, interleaved as they come (follow) or one after another. */
export async function printLogs(
  engine: Engine,
  containers: readonly ObservedContainer[],
  options: LogPrintOptions,
): Promise<void> {
  const prefixes = logPrefixes(containers, options.color);
  await Promise.all(
    containers.map(async (container) => {
      const prefix = options.prefix ? (prefixes.get(container.id) ?? '') : '';
      for await (const entry of engine.containers.logs(container.id, {
        follow: options.follow,
        ...(options.tail !== undefined ? { tail: options.tail } : {}),
        ...(options.since !== undefined ? { since: options.since } : {}),
        ...(options.until !== undefined ? { until: options.until } : {}),
        ...(options.signal !== undefined ? { signal: options.signal } : {}),
      })) {
        process.stdout.write(formatLogLine(entry, prefix, options.timestamps));
      }
    }),
  );
}
