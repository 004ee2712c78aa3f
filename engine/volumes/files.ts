import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import { EngineError, isErrno } from '../errors.js';

/**
 * The bytes of a file the engine puts into a container (a compose secret or config): given, or read from a host file
 * when the container is created. The value never shows: JSON (records, plans, `--format json`) and util.inspect
 * (error dumps) give only its digest or its host path; `read()` is the only way to the bytes.
 */
export class FileContent {
  readonly #bytes: Buffer | undefined;
  readonly #path: string | undefined;

  private constructor(bytes: Buffer | undefined, file: string | undefined) {
    this.#bytes = bytes;
    this.#path = file;
  }

  static of(value: string | Uint8Array): FileContent {
    return new FileContent(Buffer.from(value), undefined);
  }

  /** The content of a host file (absolute path), read when the container is created. */
  static fromFile(file: string): FileContent {
    return new FileContent(undefined, file);
  }

  /** The host file it is read from, if any. */
  get file(): string | undefined {
    return this.#path;
  }

  async read(what: string): Promise<Buffer> {
    if (this.#bytes !== undefined) return this.#bytes;
    const file = this.#path ?? '';
    try {
      return await fs.readFile(file);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) throw new EngineError('not-found', `${what}: file ${file} does not exist`);
      if (isErrno(error, 'EISDIR')) throw new EngineError('invalid', `${what}: ${file} is a directory, not a file`);
      if (isErrno(error, 'EACCES')) throw new EngineError('permission', `${what}: cannot read ${file}`);
      throw error;
    }
  }

  toJSON(): { file: string } | { sha256: string } {
    if (this.#path !== undefined) return { file: this.#path };
    return { sha256: sha256(this.#bytes ?? Buffer.alloc(0)) };
  }

  [inspect.custom](): string {
    return `FileContent ${JSON.stringify(this.toJSON())}`;
  }

  toString(): string {
    return '[file content]';
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * A file the engine writes for a container and bind-mounts read-only at `destination` (compose's secrets and
 * configs). The record keeps where, whose and which mode, and the content's sha256, never the content.
 */
export interface ContainerFile {
  /** Absolute, normalised path inside the container; empty: not mounted (only `env`). */
  readonly destination: string;
  /**
   * An environment variable of the container's process set to the content (a build secret's `env=`): the native
   * helper reads it from the root-only file (runtime.conf `env_file`), so the value is in neither the record nor
   * runtime.conf.
   */
  readonly env?: string;
  readonly uid: number;
  readonly gid: number;
  /** Permission bits. */
  readonly mode: number;
  /** Given to create; dropped from the record (see `sha256`). */
  readonly content?: FileContent;
  /** Set in the record: the content's digest. */
  readonly sha256?: string;
  /** How the user wrote it, for messages (`service "web" secrets[0]`). */
  readonly origin?: string;
}

/** Where a container's files live in its state dir (root-only: 0700, like the dir itself). */
export function containerFilesDir(containerDir: string): string {
  return path.join(containerDir, 'files');
}

/** The host path of file number `index` of a container. */
export function containerFilePath(containerDir: string, index: number): string {
  return path.join(containerFilesDir(containerDir), String(index));
}

/**
 * Writes the files of a new container into its (staged) dir with their owner and mode; returns them as the record
 * keeps them (digest instead of content). Throws (writing nothing more) on a missing source file.
 */
export async function writeContainerFiles(
  containerDir: string,
  files: readonly ContainerFile[],
): Promise<ContainerFile[]> {
  if (files.length === 0) return [];
  const dir = containerFilesDir(containerDir);
  await fs.mkdir(dir, { mode: 0o700 });
  const out: ContainerFile[] = [];
  for (const [index, file] of files.entries()) {
    const what = file.origin ?? file.destination;
    if (file.content === undefined) throw new EngineError('invalid', `${what}: no content for ${file.destination}`);
    const bytes = await file.content.read(what);
    const handle = await fs.open(containerFilePath(containerDir, index), 'wx', 0o600);
    try {
      await handle.writeFile(bytes);
      await handle.chown(file.uid, file.gid);
      await handle.chmod(file.mode & 0o7777);
      await handle.sync();
    } finally {
      await handle.close();
    }
    out.push({
      destination: file.destination,
      ...(file.env !== undefined ? { env: file.env } : {}),
      uid: file.uid,
      gid: file.gid,
      mode: file.mode,
      sha256: sha256(bytes),
    });
  }
  return out;
}

/** The read-only binds of a container's files, as runtime.conf mounts (after the user's mounts). */
export function containerFileMounts(
  containerDir: string,
  files: readonly ContainerFile[],
): { destination: string; source: string; options: string[] }[] {
  return files.flatMap((file, index) =>
    file.destination === ''
      ? []
      : [
          {
            destination: file.destination,
            source: containerFilePath(containerDir, index),
            options: ['rbind', 'rprivate', 'ro', 'nosuid', 'nodev'],
          },
        ],
  );
}

/** The environment variables a container's files set (runtime.conf `env_file KEY=PATH`). */
export function containerFileEnv(containerDir: string, files: readonly ContainerFile[]): string[] {
  return files.flatMap((file, index) =>
    file.env === undefined ? [] : [`${file.env}=${containerFilePath(containerDir, index)}`],
  );
}
