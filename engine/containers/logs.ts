import { promises as fs, watch } from 'node:fs';
import { isErrno } from '../errors.js';
import type { LogEntry } from './types.js';

export interface LogReadOptions {
  /** Keep reading as the container writes, until it has exited and everything was read. */
  readonly follow?: boolean;
  /** Only the last N lines (per the whole log). */
  readonly tail?: number;
  /** RFC3339 bounds on the entries' timestamps. */
  readonly since?: string;
  readonly until?: string;
  readonly signal?: AbortSignal;
}

interface RawLine {
  log?: string;
  stream?: string;
  time?: string;
}

function parseLine(line: string): LogEntry | undefined {
  if (line === '') return undefined;
  let raw: RawLine;
  try {
    raw = JSON.parse(line) as RawLine;
  } catch {
    return undefined; // a line torn by a crash mid-write is skipped, as docker does
  }
  if (typeof raw.log !== 'string') return undefined;
  return { stream: raw.stream === 'stderr' ? 'stderr' : 'stdout', text: raw.log, time: raw.time ?? '' };
}

/** The rotated files first (oldest: log.N ... log.1), then the current one. */
async function logFiles(file: string): Promise<string[]> {
  const rotated: string[] = [];
  for (let index = 1; ; index++) {
    try {
      await fs.access(`${file}.${index}`);
      rotated.push(`${file}.${index}`);
    } catch {
      break;
    }
  }
  return [...rotated.reverse(), file];
}

async function readWhole(file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return '';
    throw error;
  }
}

async function readRange(file: string, start: number, end: number): Promise<Buffer> {
  const handle = await fs.open(file, 'r');
  try {
    const buffer = Buffer.alloc(end - start);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, start);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

function inRange(entry: LogEntry, options: LogReadOptions): boolean {
  if (options.since !== undefined && entry.time < options.since) return false;
  if (options.until !== undefined && entry.time > options.until) return false;
  return true;
}

/**
 * Reads a container's json-file log. Without follow it returns what is there; with follow it keeps yielding new
 * entries until isDone() says the container has exited and the file is drained.
 */
export async function* readLogs(
  file: string,
  isDone: () => Promise<boolean>,
  options: LogReadOptions = {},
): AsyncGenerator<LogEntry> {
  let existing: LogEntry[] = [];
  for (const part of await logFiles(file)) {
    for (const line of (await readWhole(part)).split('\n')) {
      const entry = parseLine(line);
      if (entry !== undefined && inRange(entry, options)) existing.push(entry);
    }
  }
  if (options.tail !== undefined && options.tail >= 0)
    existing = existing.slice(Math.max(0, existing.length - options.tail));
  yield* existing;
  if (options.follow !== true) return;

  let offset = (await fs.stat(file).catch(() => ({ size: 0 }))).size;
  let wake: (() => void) | undefined;
  let drained = false;
  const watcher = watch(file, { persistent: false }, () => wake?.());
  watcher.on('error', () => wake?.());
  try {
    for (;;) {
      if (options.signal?.aborted === true) return;
      const size = (await fs.stat(file).catch(() => ({ size: 0 }))).size;
      if (size < offset) offset = 0; // rotated: the current file starts again
      if (size > offset) {
        const chunk = await readRange(file, offset, size);
        const end = chunk.lastIndexOf(0x0a);
        if (end >= 0) {
          for (const line of chunk.subarray(0, end).toString('utf8').split('\n')) {
            const entry = parseLine(line);
            if (entry !== undefined && inRange(entry, options)) yield entry;
          }
          offset += end + 1;
          continue;
        }
      }
      if (await isDone()) {
        // One more pass after the exit was seen drains what the monitor wrote last; a torn last line is dropped.
        if (drained) return;
        drained = true;
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 250);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    watcher.close();
  }
}
