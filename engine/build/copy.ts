/**
 * COPY and ADD: the files a step adds, as tar entries with their final paths, owners and modes, and a content
 * summary for the cache key (path, mode, uid, gid, size, link target and sha256; never mtime). Docker's rules: a
 * directory source copies its contents, a file goes into dest when dest ends with `/` or is an existing directory,
 * several sources need a directory dest, globs match path elements, `.dockerignore` hides context files, symlinks
 * are copied as links and never followed out of the root; ADD extracts local tar archives (gzip, bzip2, xz, zstd) and
 * downloads http(s) URLs (sha256 checked with --checksum). Downloads and archive members are streamed into files of
 * the build (its scratch dir), never held whole in memory, and each is refused past a size limit.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { EngineError } from '../errors.js';
import type { DockerIgnore } from './dockerignore.js';
import { detectCompression, type Compression } from '../images/index.js';
import { resolveInRoot, type LayerView } from '../layers/rootfs.js';
import { entryOf, tarEntries, type TarEntry, type TarEntryType } from '../layers/tar.js';

/** One path the step writes: where it goes in the image and where its bytes come from. */
export interface PlannedEntry {
  /** Absolute path in the image, without the leading `/`. */
  readonly target: string;
  readonly type: TarEntryType;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: number;
  readonly size: number;
  readonly linkname?: string;
  readonly sha256?: string;
  /** Host file to read (the context's, a download, an archive member), or the bytes themselves (heredocs). */
  readonly source: { readonly file: string } | { readonly data: Buffer } | undefined;
}

export interface CopySourceRoot {
  /** Host directory the sources are relative to (the context, or a stage's merged rootfs). */
  readonly root: string;
  /** Context rules (none for --from). */
  readonly ignore: DockerIgnore | undefined;
  /** Keep the sources' owners when no --chown (--from); the context's files are root's. */
  readonly keepOwners: boolean;
}

export interface CopyRequest {
  readonly keyword: 'COPY' | 'ADD';
  /** Expanded source words (heredoc words as `<<NAME`). */
  readonly sources: readonly string[];
  /** Expanded destination, absolute (WORKDIR applied); a trailing `/` kept. */
  readonly dest: string;
  readonly heredocs: ReadonlyMap<string, Buffer>;
  readonly owner: { uid: number; gid: number } | undefined;
  readonly chmod: number | undefined;
  readonly checksum: string | undefined;
  readonly exclude: DockerIgnore | undefined;
  readonly from: CopySourceRoot;
  /** The image so far, to tell an existing directory dest. */
  readonly view: LayerView;
  readonly signal?: AbortSignal | undefined;
  /**
   * A directory of the build where ADD writes its downloads and the members of the archives it extracts (the caller
   * removes it); required for ADD.
   */
  readonly scratch?: (() => Promise<string>) | undefined;
  /** The most bytes one download, or one archive's decompressed tar stream, may have. @default 8 GiB */
  readonly maxAddBytes?: number | undefined;
}

const GLOB = /[*?[]/;
const DEFAULT_MAX_ADD_BYTES = 8 * 1024 ** 3;

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The sha256 of a host file, read as a stream. */
async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

function typeOf(stat: Stats): TarEntryType {
  if (stat.isDirectory()) return 'dir';
  if (stat.isSymbolicLink()) return 'symlink';
  if (stat.isCharacterDevice()) return 'char';
  if (stat.isBlockDevice()) return 'block';
  if (stat.isFIFO()) return 'fifo';
  return 'file';
}

/** Go filepath.Match for one path element. */
function elementRegExp(pattern: string): RegExp {
  let source = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] ?? '';
    if (ch === '*') source += '[^/]*';
    else if (ch === '?') source += '[^/]';
    else if (ch === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) throw new EngineError('invalid', `syntax error in pattern "${pattern}"`);
      let cls = pattern.slice(i + 1, end);
      if (cls.startsWith('!') || cls.startsWith('^')) cls = `^${cls.slice(1)}`;
      source += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (ch === '\\' && i + 1 < pattern.length) source += `\\${pattern[++i] ?? ''}`;
    else source += ch.replace(/[.+^${}()|\]\\]/g, '\\$&');
  }
  return new RegExp(`${source}$`, 's');
}

/** Relative paths under root matching a glob (path elements matched one by one), sorted. */
async function glob(root: string, pattern: string, ignore: DockerIgnore | undefined): Promise<string[]> {
  const elements = pattern.split('/').filter((part) => part !== '' && part !== '.');
  let matches: string[] = [''];
  for (const element of elements) {
    const next: string[] = [];
    for (const base of matches) {
      if (!GLOB.test(element)) {
        next.push(base === '' ? element : `${base}/${element}`);
        continue;
      }
      const dir = await resolveInRoot(root, base, true);
      const names = await fs.readdir(dir).catch(() => [] as string[]);
      const re = elementRegExp(element);
      for (const name of names.sort()) if (re.test(name)) next.push(base === '' ? name : `${base}/${name}`);
    }
    matches = next;
  }
  const existing: string[] = [];
  for (const match of matches) {
    if (ignore?.matches(match) === true) continue;
    const host = await resolveInRoot(root, match, false);
    if ((await fs.lstat(host).catch(() => undefined)) !== undefined) existing.push(match);
  }
  return existing;
}

function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

class Planner {
  readonly entries: PlannedEntry[] = [];
  private readonly request: CopyRequest;

  constructor(request: CopyRequest) {
    this.request = request;
  }

  private owner(stat: { uid: number; gid: number }): { uid: number; gid: number } {
    if (this.request.owner !== undefined) return this.request.owner;
    return this.request.from.keepOwners ? { uid: stat.uid, gid: stat.gid } : { uid: 0, gid: 0 };
  }

  private mode(mode: number): number {
    return this.request.chmod ?? mode & 0o7777;
  }

  private add(target: string, stat: Stats, host: string, linkname?: string, digest?: string): void {
    const type = typeOf(stat);
    this.entries.push({
      target: target.replace(/^\/+/, ''),
      type,
      mode: type === 'symlink' ? 0o777 : this.mode(stat.mode),
      ...this.owner(stat),
      mtime: Math.floor(stat.mtimeMs / 1000),
      size: type === 'file' ? stat.size : 0,
      ...(linkname !== undefined ? { linkname } : {}),
      ...(digest !== undefined ? { sha256: digest } : {}),
      source: type === 'file' ? { file: host } : undefined,
    });
  }

  private addData(target: string, data: Buffer, mode: number, mtime = 0): void {
    this.entries.push({
      target: target.replace(/^\/+/, ''),
      type: 'file',
      mode: this.request.chmod ?? mode,
      ...(this.request.owner ?? { uid: 0, gid: 0 }),
      mtime,
      size: data.length,
      sha256: sha256(data),
      source: { data },
    });
  }

  private excluded(rel: string): boolean {
    return this.request.from.ignore?.matches(rel) === true || this.request.exclude?.matches(rel) === true;
  }

  /** An excluded directory may be skipped when no exception of the rules that exclude it reaches inside. */
  private canSkipDir(rel: string): boolean {
    const rules = [this.request.from.ignore, this.request.exclude];
    return rules.every((rules) => rules === undefined || !rules.matches(rel) || rules.canSkipDir(rel));
  }

  /** Adds a file, link or special file found at host (lstat'd) as target. */
  private async addNode(target: string, host: string, stat: Stats): Promise<void> {
    if (stat.isFile()) this.add(target, stat, host, undefined, await fileSha256(host));
    else if (stat.isSymbolicLink()) this.add(target, stat, host, await fs.readlink(host));
    else this.add(target, stat, host);
  }

  /** A directory's contents under targetDir, walked in name order; excluded entries are left out. */
  private async addTree(rel: string, host: string, targetDir: string): Promise<boolean> {
    let added = false;
    const names = (await fs.readdir(host)).sort();
    for (const name of names) {
      this.request.signal?.throwIfAborted();
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const childHost = path.join(host, name);
      const childTarget = path.posix.join(targetDir, name);
      const stat = await fs.lstat(childHost);
      const excluded = this.excluded(childRel);
      if (stat.isDirectory()) {
        if (excluded && this.canSkipDir(childRel)) continue;
        const index = this.entries.length;
        this.add(childTarget, stat, childHost);
        const inner = await this.addTree(childRel, childHost, childTarget);
        if (excluded && !inner) this.entries.splice(index, 1);
        else added = true;
        continue;
      }
      if (excluded) continue;
      await this.addNode(childTarget, childHost, stat);
      added = true;
    }
    return added;
  }

  async plan(): Promise<void> {
    const { sources, dest } = this.request;
    const destIsDir = dest.endsWith('/') || dest.endsWith('/.') || (await this.destIsExistingDir(dest));
    const matches: { source: string; rel: string }[] = [];
    for (const source of sources) {
      if (source.startsWith('<<') || isUrl(source)) {
        matches.push({ source, rel: '' });
        continue;
      }
      const clean = path.posix.normalize(`/${source}`).slice(1);
      const found = GLOB.test(clean)
        ? await glob(this.request.from.root, clean, this.request.from.ignore)
        : [clean === '' ? '.' : clean];
      if (found.length === 0) {
        throw new EngineError(
          'not-found',
          `${this.request.keyword} failed: no source files were specified for "${source}"`,
          {
            hint: 'check the path is in the build context and not excluded by .dockerignore',
          },
        );
      }
      for (const rel of found) matches.push({ source, rel: rel === '.' ? '' : rel });
    }
    if (matches.length > 1 && !destIsDir) {
      throw new EngineError(
        'invalid',
        `when using ${this.request.keyword} with more than one source file, the destination must be a directory and end with a /`,
        { hint: `write the destination as ${dest}/` },
      );
    }
    const destPath = dest.replace(/\/\.?$/, '') || '/';
    for (const { source, rel } of matches) {
      if (source.startsWith('<<')) {
        const name = source.replace(/^\d*<<-?['"]?/, '').replace(/['"]$/, '');
        const data = this.request.heredocs.get(name) ?? Buffer.alloc(0);
        this.addData(destIsDir ? path.posix.join(destPath, name) : destPath, data, 0o644);
      } else if (isUrl(source)) await this.addUrl(source, destIsDir, destPath);
      else await this.addLocal(source, rel, destIsDir, destPath);
    }
  }

  private async destIsExistingDir(dest: string): Promise<boolean> {
    const found = await this.request.view.lookup(dest, true);
    return found?.stat.isDirectory() === true;
  }

  private async addLocal(source: string, rel: string, destIsDir: boolean, destPath: string): Promise<void> {
    const { root, ignore } = this.request.from;
    if (rel !== '' && ignore?.matches(rel) === true) throw notFound(this.request.keyword, source);
    const host = await resolveInRoot(root, rel, true);
    const stat = await fs.lstat(host).catch(() => undefined);
    if (stat === undefined) throw notFound(this.request.keyword, source);
    if (stat.isDirectory()) {
      // a dest that does not exist yet is made with the source directory's mode, even when the source is empty
      if (destPath !== '/' && (await this.request.view.lookup(destPath, true)) === undefined) {
        if (!this.entries.some((entry) => entry.target === destPath.replace(/^\/+/, '')))
          this.add(destPath, stat, host);
      }
      await this.addTree(rel === '' ? '' : rel, host, destPath);
      return;
    }
    if (this.request.keyword === 'ADD' && stat.isFile() && (await this.addArchive(rel, host, destPath))) return;
    const base = rel.split('/').at(-1) ?? rel;
    await this.addNode(destIsDir ? path.posix.join(destPath, base) : destPath, host, stat);
  }

  /**
   * Extracts host into destPath when it is a tar archive (plain, gzip, bzip2, xz or zstd; false when it is not one, and it
   * is then copied as is, as Docker does). The archive is decompressed and read as a stream: each member's content
   * goes to a file of the build's scratch dir, hashed on the way, and the decompressed bytes are counted against
   * maxAddBytes, so neither the archive nor what it expands to is ever held in memory. Past the limit, or on a
   * damaged archive or a link that leaves destPath, it fails; what it extracted is removed and nothing is added.
   */
  private async addArchive(rel: string, host: string, destPath: string): Promise<boolean> {
    const tar = await openArchive(host);
    if (tar === undefined) return false;
    const limit = this.request.maxAddBytes ?? DEFAULT_MAX_ADD_BYTES;
    let dir: string | undefined;
    const count = this.entries.length;
    try {
      if (this.request.scratch === undefined)
        throw new EngineError('internal', 'ADD of an archive without a scratch dir');
      dir = await fs.mkdtemp(path.join(await this.request.scratch(), 'archive-'));
      let members = 0;
      const made = extracted(destPath);
      for await (const { header, data } of tarEntries(tar.bytes(limit))) {
        this.request.signal?.throwIfAborted();
        const entry = entryOf(header);
        if (entry === undefined || entry.name === '') continue;
        checkMemberParent(rel, destPath, entry, made);
        if (entry.type !== 'file' || header.size === 0) {
          this.addArchiveEntry(destPath, entry, { data: Buffer.alloc(0) }, sha256(Buffer.alloc(0)));
          continue;
        }
        const file = path.join(dir, String(members++));
        const hash = createHash('sha256');
        const out = await fs.open(file, 'wx', 0o600);
        try {
          for await (const chunk of data) {
            this.request.signal?.throwIfAborted();
            hash.update(chunk);
            for (let written = 0; written < chunk.length;) {
              written += (await out.write(chunk, written)).bytesWritten;
            }
          }
        } finally {
          await out.close();
        }
        this.addArchiveEntry(destPath, entry, { file }, `sha256:${hash.digest('hex')}`, header.size);
      }
      return true;
    } catch (error) {
      this.entries.splice(count);
      if (dir !== undefined) await fs.rm(dir, { recursive: true, force: true });
      if (error instanceof ArchiveTooLarge) {
        throw new EngineError('invalid', `ADD ${rel}: the archive expands to more than the limit of ${limit} bytes`, {
          hint: 'raise the limit with TSFIG_BUILD_ADD_MAX_BYTES (bytes, or with a k, m or g suffix); nothing was added',
        });
      }
      if (error instanceof EngineError || this.request.signal?.aborted === true) throw error;
      if (typeof (error as { syscall?: unknown }).syscall === 'string') {
        // writing the extracted files failed (ENOSPC...), not the archive
        throw new EngineError('runtime', `ADD ${rel}: cannot extract the archive: ${(error as Error).message}`, {
          hint: 'check the space left under the state root; nothing was added',
          cause: error,
        });
      }
      throw new EngineError('invalid', `ADD ${rel}: cannot extract the archive: ${(error as Error).message}`, {
        hint: 'the archive is damaged or not one tsfig can read; nothing was added',
        cause: error,
      });
    } finally {
      await tar.close();
    }
  }

  private addArchiveEntry(
    destPath: string,
    entry: TarEntry,
    content: { file: string } | { data: Buffer },
    digest: string,
    size = 0,
  ): void {
    const target = path.posix.join(destPath, path.posix.normalize(`/${entry.name}`)).replace(/^\/+/, '');
    if (entry.type === 'symlink' && entry.linkname !== undefined && !entry.linkname.startsWith('/')) {
      // Docker's breakout check: a relative link must resolve inside the extraction directory
      const resolved = path.posix.join(path.posix.dirname(`/${target}`), entry.linkname);
      const root = destPath === '/' ? '/' : `${destPath}/`;
      if (resolved !== destPath && !resolved.startsWith(root)) {
        throw new EngineError(
          'invalid',
          `ADD: invalid symlink "${entry.name}" -> "${entry.linkname}" leaves ${destPath}`,
          {
            hint: 'the archive is unsafe; nothing was added',
          },
        );
      }
    }
    this.entries.push({
      target,
      type: entry.type,
      mode: entry.type === 'symlink' ? 0o777 : (this.request.chmod ?? entry.mode),
      ...(this.request.owner ?? { uid: entry.uid, gid: entry.gid }),
      mtime: Math.floor(entry.mtime),
      size: entry.type === 'file' ? size : 0,
      ...(entry.linkname !== undefined
        ? {
            linkname:
              entry.type === 'hardlink'
                ? path.posix.join(destPath, path.posix.normalize(`/${entry.linkname}`)).replace(/^\/+/, '')
                : entry.linkname,
          }
        : {}),
      ...(entry.type === 'file' ? { sha256: digest } : {}),
      source: entry.type === 'file' ? content : undefined,
    });
  }

  /**
   * Downloads url into the build's scratch dir as it arrives (hashed on the way, never held in memory), refusing more
   * than maxAddBytes: a Content-Length over it before any byte is read, a body that grows over it as soon as it
   * does. Nothing is added on any failure.
   */
  private async addUrl(url: string, destIsDir: boolean, destPath: string): Promise<void> {
    const limit = this.request.maxAddBytes ?? DEFAULT_MAX_ADD_BYTES;
    const tooLarge = (): EngineError =>
      new EngineError('invalid', `ADD ${url}: the download is larger than the limit of ${limit} bytes`, {
        hint: 'raise the limit with TSFIG_BUILD_ADD_MAX_BYTES (bytes, or with a k, m or g suffix); nothing was added',
      });
    if (this.request.scratch === undefined) throw new EngineError('internal', 'ADD <url> without a scratch dir');
    const controller = new AbortController();
    const signal = this.request.signal ? AbortSignal.any([this.request.signal, controller.signal]) : controller.signal;
    let response: Response;
    try {
      response = await fetch(url, { redirect: 'follow', signal });
    } catch (error) {
      throw new EngineError('runtime', `ADD cannot download ${url}: ${(error as Error).message}`, { cause: error });
    }
    if (!response.ok) {
      controller.abort();
      throw new EngineError('runtime', `ADD cannot download ${url}: HTTP ${response.status} ${response.statusText}`);
    }
    const declared = Number(response.headers.get('content-length') ?? NaN);
    if (declared > limit) {
      controller.abort();
      throw tooLarge();
    }
    const dir = await this.request.scratch();
    // a dir of its own: each step plans anew, and every download of the build stays until its end
    const file = path.join(await fs.mkdtemp(path.join(dir, 'download-')), 'file');
    const hash = createHash('sha256');
    let size = 0;
    const out = await fs.open(file, 'wx', 0o600);
    try {
      if (response.body !== null) {
        for await (const chunk of Readable.fromWeb(response.body)) {
          const bytes = chunk as Buffer;
          size += bytes.length;
          if (size > limit) {
            controller.abort();
            throw tooLarge();
          }
          hash.update(bytes);
          await out.write(bytes);
        }
      }
    } catch (error) {
      await out.close();
      await fs.rm(file, { force: true });
      if (error instanceof EngineError) throw error;
      throw new EngineError('runtime', `ADD cannot download ${url}: ${(error as Error).message}`, { cause: error });
    }
    await out.close();
    const digest = `sha256:${hash.digest('hex')}`;
    const wanted = this.request.checksum;
    if (wanted !== undefined && wanted !== digest) {
      await fs.rm(file, { force: true });
      throw new EngineError('invalid', `ADD ${url}: checksum mismatch: expected ${wanted}, got ${digest}`, {
        hint: 'the download is not the file the Dockerfile expects; nothing was added',
      });
    }
    const lastModified = response.headers.get('last-modified');
    const mtime = lastModified !== null ? Math.floor(Date.parse(lastModified) / 1000) || 0 : 0;
    const base =
      new URL(url).pathname
        .split('/')
        .filter((part) => part !== '')
        .at(-1) ?? '__unnamed__';
    this.entries.push({
      target: (destIsDir ? path.posix.join(destPath, base) : destPath).replace(/^\/+/, ''),
      type: 'file',
      mode: this.request.chmod ?? 0o600,
      ...(this.request.owner ?? { uid: 0, gid: 0 }),
      mtime,
      size,
      sha256: digest,
      source: { file },
    });
  }
}

function notFound(keyword: string, source: string): EngineError {
  return new EngineError('not-found', `${keyword} failed: "${source}" not found in the build context`, {
    hint: 'check the path is in the build context (the PATH argument) and not excluded by .dockerignore',
  });
}

/** What one ADD of an archive has made so far, as paths of the image: its directories, and its links' targets. */
interface Extracted {
  readonly dirs: Set<string>;
  readonly links: Map<string, string>;
}

function extracted(destPath: string): Extracted {
  const dirs = new Set<string>(['/']);
  for (let dir = path.posix.join('/', destPath); dir !== '/'; dir = path.posix.dirname(dir)) dirs.add(dir);
  return { dirs, links: new Map() };
}

/**
 * Refuses a member of an archive below a symbolic link of the same archive that does not lead to a directory the
 * archive makes (`link -> /bin`, then `link/file`). The step's layer holds only what this ADD writes and is unpacked
 * without leaving it: a link is followed there (inside the layer, an absolute one from the layer's root), so a link to
 * a directory of the image below (or to nothing) cannot hold the member. The native unpacker failed such a member
 * with "open parent ... No such file or directory" and a hint about the native helper and disk space.
 */
function checkMemberParent(rel: string, destPath: string, entry: TarEntry, made: Extracted): void {
  const full = path.posix.join('/', destPath, path.posix.normalize(`/${entry.name}`));
  const parts = full.split('/').filter((part) => part !== '');
  let current = '/';
  for (const part of parts.slice(0, -1)) {
    let next = path.posix.join(current, part);
    for (let hops = 0; made.links.has(next); hops++) {
      const target = made.links.get(next) ?? '';
      const resolved = path.posix.resolve(current, target);
      if (hops >= 40 || (!made.dirs.has(resolved) && !made.links.has(resolved))) {
        throw new EngineError(
          'invalid',
          `ADD ${rel}: the archive's member "${entry.name}" is below ${next}, a symbolic link the archive makes to ${target}, which is not a directory the archive makes`,
          {
            hint: `the step's layer holds only the archive's files (a link is not followed out of it, nor into the image below): put the member under the link's target in the archive, or make ${next} a directory; nothing was added`,
          },
        );
      }
      current = path.posix.dirname(resolved);
      next = resolved;
    }
    current = next;
    made.dirs.add(current);
  }
  const own = path.posix.join(current, parts.at(-1) ?? '');
  made.links.delete(own);
  made.dirs.delete(own);
  if (entry.type === 'symlink' && entry.linkname !== undefined) made.links.set(own, entry.linkname);
  else if (entry.type === 'dir') made.dirs.add(own);
}

/** Thrown by an archive's byte stream once it passes its limit. */
class ArchiveTooLarge extends Error {}

/**
 * The decompressed bytes of file: gzip through node's zlib, bzip2, xz and zstd through their commands (`-dc`), whose
 * output is read as it comes (the command waits while it is not). Stopping the iteration stops the decompressor: the
 * command is killed and waited for.
 */
async function* decompress(file: string, compression: Compression): AsyncGenerator<Buffer> {
  if (compression === 'none' || compression === 'gzip') {
    const input = createReadStream(file);
    const gunzip = compression === 'gzip' ? createGunzip({ chunkSize: 64 * 1024 }) : undefined;
    if (gunzip !== undefined) {
      input.on('error', (error) => gunzip.destroy(error));
      input.pipe(gunzip);
    }
    try {
      for await (const chunk of gunzip ?? input) yield chunk as Buffer;
    } finally {
      input.destroy();
      gunzip?.destroy();
    }
    return;
  }
  const child = spawn(compression, ['-dc', '--', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr = (stderr + text).slice(-2000)));
  const exited = new Promise<number | Error | null>((resolve) => {
    child.once('error', resolve);
    child.once('close', resolve);
  });
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    const status = await exited;
    if (status instanceof Error) throw new Error(`cannot run ${compression}: ${status.message}`);
    if (status !== 0) throw new Error(`${compression}: ${stderr.trim() || `exit status ${String(status)}`}`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  }
}

/**
 * A local file as a tar archive, when it is one: a plain tar, or gzip, bzip2, xz or zstd whose first 512 decompressed
 * bytes are a ustar header (otherwise it is not an archive, and ADD copies it as is, as Docker does). `bytes(limit)`
 * is its decompressed stream, which throws ArchiveTooLarge as soon as it passes limit; `close` stops the decompressor.
 */
async function openArchive(
  file: string,
): Promise<{ bytes: (limit: number) => AsyncGenerator<Buffer>; close: () => Promise<void> } | undefined> {
  const magic = Buffer.alloc(6);
  const handle = await fs.open(file, 'r');
  try {
    await handle.read(magic, 0, magic.length, 0);
  } finally {
    await handle.close();
  }
  const stream = decompress(file, detectCompression(magic));
  const head: Buffer[] = [];
  let length = 0;
  try {
    while (length < 512) {
      const next = await stream.next();
      if (next.done === true) break;
      head.push(next.value);
      length += next.value.length;
    }
  } catch {
    await stream.return(undefined);
    return undefined; // compressed but not decompressible: copied as is
  }
  if (Buffer.concat(head).subarray(257, 262).toString('latin1') !== 'ustar') {
    await stream.return(undefined);
    return undefined;
  }
  async function* bytes(limit: number): AsyncGenerator<Buffer> {
    let total = 0;
    const counted = (chunk: Buffer): Buffer => {
      total += chunk.length;
      if (total > limit) throw new ArchiveTooLarge();
      return chunk;
    };
    for (const chunk of head) yield counted(chunk);
    for (;;) {
      const next = await stream.next();
      if (next.done === true) return;
      yield counted(next.value);
    }
  }
  return { bytes, close: async () => void (await stream.return(undefined)) };
}

/** Plans a COPY/ADD step: the entries it writes, in order. */
export async function planCopy(request: CopyRequest): Promise<PlannedEntry[]> {
  const planner = new Planner(request);
  await planner.plan();
  return planner.entries;
}

/** The cache summary of planned entries: mtime excluded. */
export function contentSummary(entries: readonly PlannedEntry[]): string[] {
  return entries.map((entry) =>
    [
      entry.target,
      entry.type,
      entry.mode.toString(8),
      entry.uid,
      entry.gid,
      entry.size,
      entry.linkname ?? '',
      entry.sha256 ?? '',
    ].join('\0'),
  );
}
