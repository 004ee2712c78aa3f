import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { isErrno } from '../errors.js';

/** Writes a file so that readers see the old content or the new one, never a part: temp file, fsync, rename. */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await fs.open(tmp, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.rename(tmp, file);
  } catch (error) {
    await fs.rm(tmp, { force: true });
    throw error;
  }
  await syncDir(dir);
}

/**
 * Removes the temporary files writeFileAtomic left beside file when its writer died before the rename (a kill -9
 * mid-write). Only for a file whose writers all hold one lock, which the caller holds: then no such file is another
 * write in progress.
 */
export async function removeStaleTemps(file: string): Promise<void> {
  const dir = path.dirname(file);
  const prefix = `.${path.basename(file)}.`;
  const entries = await fs.readdir(dir).catch(() => [] as string[]);
  const stale = entries.filter(
    (entry) => entry.startsWith(prefix) && /^[0-9a-f]{12}\.tmp$/.test(entry.slice(prefix.length)),
  );
  await Promise.all(stale.map((entry) => fs.rm(path.join(dir, entry), { force: true })));
}

export async function writeJsonAtomic(file: string, value: unknown, mode = 0o644): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`, mode);
}

/**
 * Reads and parses a JSON file; undefined when it does not exist. The state files are small and local: one
 * synchronous read (open, read, close) costs tens of microseconds, where fs.promises.readFile makes four or five
 * thread-pool round trips (open, fstat, read, close), which is what listing n containers cost on a busy machine.
 */
export function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return Promise.resolve(readJsonSync<T>(file));
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}

/** readJson, synchronously. */
export function readJsonSync<T>(file: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw error;
  }
  return JSON.parse(text) as T;
}

export async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function pathExists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return false;
    throw error;
  }
}
