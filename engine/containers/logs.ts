import { promises as fs, watch } from 'node:fs';
import path from 'node:path';
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

async function readWhole(file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return Buffer.alloc(0);
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
 * entries until isDone() says the container has exited and the file is drained. The file is in the container's
 * directory, which follow watches (log writes and the exit's status.json), with a 250 ms poll as the safety net.
 */
export async function* readLogs(
  file: string,
  isDone: () => Promise<boolean>,
  options: LogReadOptions = {},
): AsyncGenerator<LogEntry> {
  let existing: LogEntry[] = [];
  // Following continues from the byte after the last complete line read here: a line the monitor appends between
  // this read and the first poll is read by the poll, never skipped (the current file's size is not what was read).
  let offset = 0;
  for (const part of await logFiles(file)) {
    const content = await readWhole(part);
    const end = part === file ? content.lastIndexOf(0x0a) + 1 : content.length;
    if (part === file) offset = end;
    for (const line of content.subarray(0, end).toString('utf8').split('\n')) {
      const entry = parseLine(line);
      if (entry !== undefined && inRange(entry, options)) existing.push(entry);
    }
  }
  if (options.tail !== undefined && options.tail >= 0)
    existing = existing.slice(Math.max(0, existing.length - options.tail));
  yield* existing;
  if (options.follow !== true) return;

  let wake: (() => void) | undefined;
  let drained = false;
  let stopping = false;
  // The log's directory is the container's: a write to the log, its rotation and the monitor's status.json (renamed
  // in when the container exits) all wake the loop. Watching the log alone, an exit that wrote nothing last (`run
  // --rm IMAGE true`) was seen only at the next 250 ms poll.
  const watcher = watch(path.dirname(file), { persistent: false }, () => wake?.());
  watcher.on('error', () => wake?.());
  options.signal?.addEventListener('abort', () => wake?.(), { once: true });
  try {
    for (;;) {
      // Aborted: what is already in the file is still read (the lines of a container that just exited), then stop.
      if (options.signal?.aborted === true) {
        if (stopping) return;
        stopping = true;
      }
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
      if (stopping) return;
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
