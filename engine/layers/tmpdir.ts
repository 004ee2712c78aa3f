/**
 * Temp dirs owned by the process that made them (`<prefix>-<pid>.<start>-XXXXXX`), so a later process can tell what
 * a killed one left (merged roots, `cp` staging, builds' bind copies, pull downloads) and remove it; and `abortable`,
 * a stream that ends when its signal is aborted.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { currentBootId, isSameProcess, processStartTime } from '../containers/liveness.js';
import { isErrno } from '../errors.js';

/** A process on this boot: who made a container or a temp dir. */
export interface Owner {
  readonly pid: number;
  readonly start: number;
  readonly bootId: string;
}

let self: Owner | undefined;

export async function thisProcess(): Promise<Owner> {
  self ??= { pid: process.pid, start: (await processStartTime(process.pid)) ?? 0, bootId: currentBootId() };
  return self;
}

export async function isAlive(owner: Owner): Promise<boolean> {
  return owner.bootId === currentBootId() && (await isSameProcess(owner.pid, owner.start));
}

/**
 * A temp dir under dir named after this process (`<prefix>-<pid>.<start>-XXXXXX`), so that sweepTmpDirs can remove it
 * once this process is gone. The caller removes it when done.
 */
export async function ownedTmpDir(dir: string, prefix: string): Promise<string> {
  const owner = await thisProcess();
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  return fs.mkdtemp(path.join(dir, `${prefix}-${owner.pid}.${owner.start}-`));
}

/**
 * Removes the temp dirs under dir with one of prefixes whose process is gone (on this boot: the pid is checked with
 * its start time, since pids are reused). Dirs of another naming are left to `image prune`. Returns what it removed.
 */
export async function sweepTmpDirs(dir: string, prefixes: readonly string[]): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return [];
    throw error;
  }
  const removed: string[] = [];
  for (const name of names) {
    const match = /^([a-z]+)-(\d+)\.(\d+)-[^/]+$/.exec(name);
    if (match === null || !prefixes.includes(match[1] ?? '')) continue;
    if (await isSameProcess(Number(match[2]), Number(match[3]))) continue;
    await fs.rm(path.join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/** source, ending with the signal's reason as soon as it is aborted (between chunks): a layer being packed stops. */
export async function* abortable<T>(source: AsyncIterable<T>, signal: AbortSignal | undefined): AsyncGenerator<T> {
  signal?.throwIfAborted();
  for await (const chunk of source) {
    signal?.throwIfAborted();
    yield chunk;
  }
}
