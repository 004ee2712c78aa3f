/**
 * `docker cp` against the embedded engine: files between a container's filesystem and the host (or a tar stream).
 *
 * Where the container's files are read and written:
 * - a running container: its own root as the kernel shows it, `/proc/<pid>/root` (its overlay, volumes and tmpfs
 *   included), with the container frozen for the copy (as docker does since CVE-2018-15664), so nothing in it can
 *   swap a checked directory for a symlink while the copy walks it (without a cgroup, rootless: every process of its
 *   pid namespace stopped with SIGSTOP instead, stopPidNamespace); the pid is checked to be in the container's cgroup
 *   (or pid namespace) and in a mount namespace other than this process's, before and after freezing;
 * - a stopped or created container: its overlay (image layers under its upper dir) mounted in a private mount
 *   namespace held by a helper process (as `export`/`commit` read it: read-only for reading, with the container's
 *   upper and work dirs for writing, so copy-up and whiteouts are the kernel's), under the container's lock so it
 *   cannot start meanwhile. Its volumes and bind-mounted host directories are not mounted there: a path below one of
 *   their mount points is read or written in the mount's source (inStoppedMount), as docker mounts them for the copy;
 *   a read-only one refuses a write. So is what a copied tree holds below another such mount (subMounts), for a
 *   running container with a user namespace too (its volumes are idmapped: host root cannot write through them).
 * Confinement, in both directions: a path in the container is resolved component by component inside its root
 * (resolveInRoot: an absolute symlink restarts at the container's root, `..` stops there), never by the kernel from
 * the host's root; trees are walked with lstat and never through a symlink (symlinks are copied as symlinks); files
 * are opened with O_NOFOLLOW and written under a fresh name (O_EXCL) then renamed over the target, so an existing
 * symlink at the target is replaced, never written through; directories that are symlinks or other files in the
 * destination are replaced by directories, as tar does. A tar stream's entries may not leave the destination (`..`).
 */
import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import type { Stats } from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { ownedTmpDir } from '../layers/tmpdir.js';
import { resolveInRoot, withMergedRootfs, withPrivateOverlay } from '../layers/rootfs.js';
import { encodeEntry, endOfArchive, readTar, type TarEntry } from '../layers/tar.js';
import { checkMapped, toContainerIds, toHostIds, type IdRange, type Owner } from '../layers/ids.js';
import { EngineError, isErrno } from '../errors.js';
import type { Engine } from '../index.js';
import { readJson } from '../state/atomic.js';
import { containerPids, isFrozen, stopPidNamespace } from './cgroup-state.js';
import { cgroupsAvailable } from '../system/rootless.js';
import { containerFiles } from './runtime-config.js';
import { volumeShift } from './shift.js';
import type { ContainerMount, ContainerRecord, MonitorStatus } from './types.js';

export interface CopyOptions {
  /** -L: follow a symlink given as the source path (symlinks inside a copied tree are always copied as symlinks). */
  readonly followLink?: boolean;
  /** -a: keep uid/gid of the source (otherwise what is written belongs to the user running the copy: root). */
  readonly archive?: boolean;
  /** Entries that cannot be written (devices, fifos, sockets) are skipped and reported here. */
  readonly onWarning?: (message: string) => void;
}

export type HostEnd = { readonly kind: 'path'; readonly path: string } | { readonly kind: 'tar' };

// ---- the container's root -------------------------------------------------------------------------------------

async function mountNamespace(pid: number | 'self'): Promise<string | undefined> {
  return fs.readlink(`/proc/${pid}/ns/mnt`).catch(() => undefined);
}

/** The pid is the container's init: in its cgroup and in a mount namespace of its own. */
async function checkContainerPid(engine: Engine, record: ContainerRecord, pid: number): Promise<void> {
  const own = await mountNamespace('self');
  const theirs = await mountNamespace(pid);
  if (!(await containerPids(engine.paths, record.id)).includes(pid) || theirs === undefined || theirs === own) {
    throw new EngineError('conflict', `container ${record.name} stopped while copying`, { hint: 'try again' });
  }
}

async function withRunningRoot<T>(
  engine: Engine,
  record: ContainerRecord,
  pid: number,
  fn: (root: string) => Promise<T>,
): Promise<T> {
  await checkContainerPid(engine, record, pid);
  if (!cgroupsAvailable()) {
    // no freezer (rootless without cgroups): every process of the container stopped by signal instead
    const resume = await stopPidNamespace(pid, `container ${record.name}`);
    try {
      await checkContainerPid(engine, record, pid);
      return await fn(`/proc/${pid}/root`);
    } finally {
      resume();
    }
  }
  const paused = await isFrozen(engine.paths, record.id);
  if (!paused) await engine.containers.freeze(record.id, true);
  try {
    await checkContainerPid(engine, record, pid);
    return await fn(`/proc/${pid}/root`);
  } finally {
    if (!paused) await engine.containers.freeze(record.id, false).catch(() => undefined);
  }
}

/** The container's overlay, writable (its upper and work dirs), mounted in a private mount namespace of a helper. */
async function withWritableOverlay<T>(
  layers: readonly string[],
  upper: string,
  work: string,
  tmpDir: string,
  fn: (root: string) => Promise<T>,
): Promise<T> {
  // `from-`: the prefix whose dirs the build's debris sweep removes when their process died
  const dir = await ownedTmpDir(tmpDir, 'from');
  const mountpoint = path.join(dir, 'merged');
  await fs.mkdir(mountpoint);
  const options = `lowerdir=${layers.join(':')},upperdir=${upper},workdir=${work}`;
  try {
    return await withPrivateOverlay(options, mountpoint, fn, { what: "the container's root filesystem" });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Runs fn with the container's root directory (see the top of this file), writable or not. */
async function withContainerRoot<T>(
  engine: Engine,
  ref: string,
  writable: boolean,
  fn: (root: string, record: ContainerRecord, running: boolean) => Promise<T>,
): Promise<T> {
  const record = await engine.containers.get(ref);
  const state = await engine.containers.state(record);
  if (state.status === 'restarting') {
    throw new EngineError('conflict', `container ${record.name} is restarting`, { hint: 'try again once it runs' });
  }
  if (state.status === 'running' && state.pid > 0) {
    return withRunningRoot(engine, record, state.pid, (root) => fn(root, record, true));
  }
  // the container's lock: a start waits until the copy is done
  return engine.containers.withContainerLock(record.id, async () => {
    const files = containerFiles(path.join(engine.paths.containers, record.id));
    const status = await readJson<MonitorStatus>(files.status);
    if (status !== undefined && status.state !== 'exited') {
      throw new EngineError('conflict', `container ${record.name} was started while copying`, { hint: 'try again' });
    }
    const upper = await fs.stat(files.upper).catch(() => undefined);
    if (upper?.isDirectory() !== true) {
      throw new EngineError('not-found', `container ${record.name} has no filesystem (${files.upper} is missing)`);
    }
    const layers = engine.images.layerDirs(await engine.images.resolve(record.imageId));
    const tmp = path.join(engine.paths.root, 'tmp');
    if (!writable) return withMergedRootfs([files.upper, ...layers], tmp, (root) => fn(root, record, false));
    await fs.mkdir(files.work, { recursive: true });
    return withWritableOverlay(layers, files.upper, files.work, tmp, (root) => fn(root, record, false));
  });
}

// ---- trees as entries -----------------------------------------------------------------------------------------

function entryName(top: string, rel: string): string {
  return rel === '' ? top : top === '' ? rel : `${top}/${rel}`;
}

/**
 * The entries of the tree at hostPath (named top, then top/...), read with lstat and never through a symlink;
 * files are opened with O_NOFOLLOW. follow: the top itself may be a symlink to follow (it was resolved already
 * for a container path). ids: a container's user namespace: owners as the container sees them.
 */
async function* walkTree(
  hostPath: string,
  top: string,
  follow: boolean,
  onWarning: (message: string) => void,
  rootIds?: IdRange,
  mounts: ReadonlyMap<string, { readonly full: string; readonly ids: IdRange | undefined }> = new Map(),
): AsyncGenerator<TarEntry> {
  const seen = new Map<string, string>();
  async function* visit(full: string, rel: string, stat: Stats, ids = rootIds): AsyncGenerator<TarEntry> {
    const name = entryName(top, rel);
    const base = {
      name,
      mode: stat.mode & 0o7777,
      ...(ids === undefined ? { uid: stat.uid, gid: stat.gid } : toContainerIds(stat, ids)),
      mtime: Math.floor(stat.mtimeMs / 1000),
    };
    if (stat.isDirectory()) {
      yield { ...base, type: 'dir' };
      // a mount point the container has not made yet (it never ran) is still read
      const mountedHere = [...mounts.keys()]
        .filter((key) => path.posix.dirname(key) === (rel === '' ? '.' : rel))
        .map((key) => path.posix.basename(key));
      for (const child of [...new Set([...(await fs.readdir(full)), ...mountedHere])].sort()) {
        const childRel = rel === '' ? child : `${rel}/${child}`;
        // a mount point of a stopped container: the mount's own directory, with its ids
        const mount = mounts.get(childRel);
        const childPath = mount?.full ?? path.join(full, child);
        const childStat = await fs.lstat(childPath).catch(() => undefined);
        if (childStat !== undefined)
          yield* visit(childPath, childRel, childStat, mount === undefined ? ids : mount.ids);
      }
    } else if (stat.isSymbolicLink()) {
      yield { ...base, type: 'symlink', linkname: await fs.readlink(full) };
    } else if (stat.isFile()) {
      const key = `${stat.dev}:${stat.ino}`;
      const first = stat.nlink > 1 ? seen.get(key) : undefined;
      if (first !== undefined) {
        yield { ...base, type: 'hardlink', linkname: first };
        return;
      }
      if (stat.nlink > 1) seen.set(key, name);
      const handle = await fs.open(full, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      try {
        if (!(await handle.stat()).isFile()) throw new EngineError('conflict', `${name} changed while copying`);
        yield { ...base, type: 'file', data: await handle.readFile() };
      } finally {
        await handle.close();
      }
    } else if (stat.isCharacterDevice() || stat.isBlockDevice() || stat.isFIFO()) {
      const type = stat.isFIFO() ? 'fifo' : stat.isCharacterDevice() ? 'char' : 'block';
      const devmajor = Math.floor(stat.rdev / 256) & 0xfff;
      const devminor = (stat.rdev & 0xff) | ((stat.rdev >> 12) & 0xfff00);
      yield { ...base, type, devmajor, devminor };
    } else {
      onWarning(`skipped ${name}: a socket cannot be copied`);
    }
  }
  const stat = await (follow ? fs.stat(hostPath) : fs.lstat(hostPath));
  yield* visit(hostPath, '', stat);
}

/** A tar entry's name as path parts; refuses absolute-escaping `..` (the entry would leave the destination). */
function nameParts(name: string): string[] {
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) {
    throw new EngineError('invalid', `refusing the archive entry "${name}": it leaves the destination`);
  }
  return parts;
}

/**
 * Writing into a container with a user namespace: its range, and whether the files written are stored with the
 * container's own ids (a volume: an idmapped bind, written in its own directory) rather than the range's host ids
 * (its root file system: the overlay's upper dir is not idmapped).
 */
interface WriteIds {
  readonly range: IdRange;
  readonly own: boolean;
}

/**
 * Writes entries into base (an existing directory) without ever following a symlink below base: parent directories
 * that are missing, symlinks or files are made (or replaced by) real directories; files and symlinks are made under
 * a temporary name and renamed over their target.
 */
class TreeWriter {
  private readonly dirs: { full: string; entry: TarEntry }[] = [];
  bytes = 0;

  private readonly base: string;
  private readonly options: CopyOptions;
  /** The container's user namespace, when writing into one. */
  private readonly ids: WriteIds | undefined;
  /** The mounts below base, deepest first, each with the writer of its own directory. */
  private readonly subs: { readonly sub: SubMount; readonly writer: TreeWriter }[];

  constructor(base: string, options: CopyOptions, ids?: WriteIds, subs: readonly SubMount[] = []) {
    this.base = base;
    this.options = options;
    this.ids = ids;
    this.subs = [...subs]
      .sort((a, b) => b.parts.length - a.parts.length)
      .map((sub) => ({ sub, writer: new TreeWriter(sub.base, options, sub.ids) }));
  }

  /** The mount below base that holds the entry name, and the name inside it. */
  private route(name: string): { writer: TreeWriter; sub: SubMount; rest: string[] } | undefined {
    const parts = nameParts(name);
    for (const { sub, writer } of this.subs) {
      if (sub.parts.every((part, index) => parts[index] === part)) {
        return { writer, sub, rest: parts.slice(sub.parts.length) };
      }
    }
    return undefined;
  }

  /**
   * Who a written entry belongs to: its own ids with -a, else the writer's (root, left as created); in a user
   * namespace both as the container sees them (root: its 0), stored as host ids of its range outside volumes, as
   * the container's root would have written them, and as they are in a volume. An id the range does not map is
   * refused.
   */
  private ownerOf(entry: TarEntry): Owner | undefined {
    if (this.ids === undefined) return this.options.archive === true ? entry : undefined;
    const { range, own } = this.ids;
    if (own) return this.options.archive === true ? checkMapped(entry, range, entry.name) : undefined;
    return this.options.archive === true ? toHostIds(entry, range, entry.name) : { uid: range.uid, gid: range.gid };
  }

  private async ensureDirs(parts: readonly string[]): Promise<string> {
    let current = this.base;
    for (const part of parts) {
      current = path.join(current, part);
      const stat = await fs.lstat(current).catch(() => undefined);
      if (stat?.isDirectory() === true) continue;
      if (stat !== undefined) await fs.rm(current, { force: true });
      await fs.mkdir(current, { mode: 0o755 });
      if (this.ids !== undefined && !this.ids.own) await fs.lchown(current, this.ids.range.uid, this.ids.range.gid);
    }
    return current;
  }

  private temp(dir: string): string {
    return path.join(dir, `.tsfig-cp-${randomBytes(6).toString('hex')}`);
  }

  /** An existing file below base, reached without symlinks (a hard link's target). */
  private async existingFile(parts: readonly string[]): Promise<string> {
    let current = this.base;
    for (const [index, part] of parts.entries()) {
      current = path.join(current, part);
      const stat = await fs.lstat(current).catch(() => undefined);
      const ok = index === parts.length - 1 ? stat?.isFile() === true : stat?.isDirectory() === true;
      if (!ok) throw new EngineError('invalid', `hard link target ${parts.join('/')} is not a file in the copy`);
    }
    return current;
  }

  async write(entry: TarEntry): Promise<void> {
    const routed = this.route(entry.name);
    const link = entry.type === 'hardlink' ? this.route(entry.linkname ?? '') : undefined;
    if (entry.type === 'hardlink' && link?.sub !== routed?.sub) {
      throw new EngineError(
        'invalid',
        `cannot link ${entry.name} to ${entry.linkname ?? ''}: they are on different mounts`,
      );
    }
    if (routed !== undefined) {
      const { writer, sub, rest } = routed;
      if (sub.readOnly !== undefined) {
        throw new EngineError('conflict', `cannot copy ${entry.name}: it is on a read-only mount`, {
          hint: `${sub.readOnly} is mounted read-only`,
        });
      }
      if (rest.length === 0 && entry.type !== 'dir') {
        throw new EngineError('conflict', `cannot overwrite ${entry.name}: a volume or directory is mounted there`);
      }
      const inner = { ...entry, name: rest.join('/') };
      return writer.write(link === undefined ? inner : { ...inner, linkname: link.rest.join('/') });
    }
    try {
      await this.writeEntry(entry);
    } catch (error) {
      // host root's ids do not exist on an idmapped mount: one that volumeDir did not find (a volume mounted
      // below the destination, inside the copied tree)
      if (this.ids !== undefined && isErrno(error, 'EOVERFLOW')) {
        throw new EngineError('unsupported', `cannot write ${entry.name}: it is on an idmapped volume mount`, {
          hint: 'copy into the volume itself (its mount point or below), or from a container (run --rm -v VOLUME:/v ...)',
          cause: error,
        });
      }
      throw error;
    }
  }

  private async writeEntry(entry: TarEntry): Promise<void> {
    const parts = nameParts(entry.name);
    if (parts.length === 0) return; // the destination itself
    const parent = await this.ensureDirs(parts.slice(0, -1));
    const target = path.join(parent, parts.at(-1) ?? '');
    const existing = await fs.lstat(target).catch(() => undefined);
    if (entry.type === 'dir') {
      if (existing?.isDirectory() !== true) {
        if (existing !== undefined) await fs.rm(target, { force: true });
        await fs.mkdir(target, { mode: 0o700 });
      }
      this.dirs.push({ full: target, entry });
      return;
    }
    if (entry.type === 'char' || entry.type === 'block' || entry.type === 'fifo') {
      this.options.onWarning?.(`skipped ${entry.name}: a ${entry.type} device or fifo cannot be copied`);
      return;
    }
    if (existing?.isDirectory() === true) {
      throw new EngineError('conflict', `cannot overwrite directory ${entry.name} with a non-directory`);
    }
    const owner = this.ownerOf(entry);
    const temp = this.temp(parent);
    try {
      if (entry.type === 'symlink') {
        await fs.symlink(entry.linkname ?? '', temp);
        if (owner !== undefined) await fs.lchown(temp, owner.uid, owner.gid);
        await fs.lutimes(temp, entry.mtime, entry.mtime);
      } else if (entry.type === 'hardlink') {
        await fs.link(await this.existingFile(nameParts(entry.linkname ?? '')), temp);
      } else {
        const data = entry.data ?? Buffer.alloc(0);
        const handle = await fs.open(
          temp,
          constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
          0o600,
        );
        try {
          await handle.writeFile(data);
          if (owner !== undefined) await handle.chown(owner.uid, owner.gid);
          await handle.chmod(entry.mode);
          await handle.utimes(entry.mtime, entry.mtime);
        } finally {
          await handle.close();
        }
        this.bytes += data.length;
      }
      await fs.rename(temp, target);
    } catch (error) {
      await fs.rm(temp, { force: true });
      throw error;
    }
  }

  /** Modes, owners and times of the directories, once their contents are written (deepest first). */
  async finish(): Promise<void> {
    for (const { writer } of this.subs) {
      await writer.finish();
      this.bytes += writer.bytes;
    }
    for (const { full, entry } of this.dirs.reverse()) {
      const owner = this.ownerOf(entry);
      if (owner !== undefined) await fs.lchown(full, owner.uid, owner.gid);
      await fs.chmod(full, entry.mode);
      await fs.utimes(full, entry.mtime, entry.mtime);
    }
  }
}

/** Renames the top component of each entry (and of hard link targets): '' drops the top entry (contents only). */
function renamed(entries: AsyncIterable<TarEntry>, from: string, to: string): AsyncGenerator<TarEntry> {
  const rename = (name: string): string | undefined => {
    const parts = nameParts(name);
    const fromParts = nameParts(from);
    if (fromParts.some((part, index) => parts[index] !== part)) return name;
    const rest = parts.slice(fromParts.length).join('/');
    if (to === '') return rest === '' ? undefined : rest;
    return rest === '' ? to : `${to}/${rest}`;
  };
  return (async function* () {
    for await (const entry of entries) {
      const name = rename(entry.name);
      if (name === undefined) continue;
      const linkname = entry.type === 'hardlink' && entry.linkname !== undefined ? rename(entry.linkname) : undefined;
      yield { ...entry, name, ...(linkname !== undefined ? { linkname } : {}) };
    }
  })();
}

async function writeTar(entries: AsyncIterable<TarEntry>, out: Writable): Promise<number> {
  let bytes = 0;
  const put = async (chunk: Buffer): Promise<void> => {
    if (out.destroyed) throw new EngineError('runtime', 'the output was closed while copying');
    if (!out.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          out.off('drain', done);
          out.off('close', done);
          resolve();
        };
        out.on('drain', done);
        out.on('close', done);
      });
    }
  };
  for await (const entry of entries) {
    bytes += entry.data?.length ?? 0;
    await put(encodeEntry(entry));
  }
  await put(endOfArchive());
  return bytes;
}

// ---- docker's rules -------------------------------------------------------------------------------------------

/** `dir/.`: the directory's contents, not the directory. */
function contentsOnly(given: string): boolean {
  return given === '.' || given.endsWith('/.');
}

function endsWithSeparator(given: string): boolean {
  return given.endsWith('/') || contentsOnly(given);
}

/** The name a copied source gets: its base name as given ('' for a root). */
function topName(given: string): string {
  return path.posix.basename(path.posix.normalize(given.replace(/\/+\.?$/, '') || '/'));
}

interface Destination {
  /** Where the (resolved) destination is on this host; its components are real directories. */
  readonly full: string;
  readonly given: string;
  readonly stat: Stats | undefined;
  readonly parentIsDir: boolean;
}

/**
 * Copies the tree at source (an lstat-walked path named by the given source path) to destination, following docker
 * cp's rules: into an existing directory under its own name (its contents with `SRC/.`), as the destination's name
 * when that does not exist (its parent must), over an existing file (a file only).
 */
async function copyTree(
  source: { full: string; given: string; stat: Stats; follow: boolean },
  dest: Destination,
  options: CopyOptions,
  ids: {
    readonly from?: IdRange | undefined;
    /** Mounts of a stopped container below the source (walkTree). */
    readonly mounts?: ReadonlyMap<string, { readonly full: string; readonly ids: IdRange | undefined }>;
    /** Where a destination directory is written, and with which ids (a container's: placeIn). */
    readonly place?: (base: string) => Promise<Placed>;
  } = {},
): Promise<number> {
  const srcIsDir = source.stat.isDirectory();
  const top = topName(source.given);
  const warn = options.onWarning ?? (() => undefined);
  const entries = walkTree(source.full, top, source.follow, warn, ids.from, ids.mounts);
  let base: string;
  let stream: AsyncIterable<TarEntry>;
  /** The name the source's top gets in base ('': its contents go into base). */
  let name: string;
  if (dest.stat?.isDirectory() === true) {
    base = dest.full;
    name = srcIsDir && (contentsOnly(source.given) || top === '') ? '' : top;
    stream = name === '' ? renamed(entries, top, '') : entries;
  } else if (dest.stat !== undefined) {
    if (srcIsDir) throw new EngineError('conflict', `cannot copy a directory to a file: ${dest.given}`);
    base = path.dirname(dest.full);
    name = path.basename(dest.full);
    stream = renamed(entries, top, name);
  } else {
    if (!srcIsDir && dest.given.endsWith('/')) {
      throw new EngineError('not-found', `destination directory ${dest.given} does not exist`, {
        hint: 'create it first, or drop the trailing / to copy to a file of that name',
      });
    }
    if (!dest.parentIsDir) {
      throw new EngineError('not-found', `the parent directory of ${dest.given} does not exist`);
    }
    base = path.dirname(dest.full);
    name = path.basename(dest.full);
    stream = renamed(entries, top, name);
  }
  const placed: Placed = ids.place === undefined ? { base } : await ids.place(base);
  await refuseReadOnlyMounts(placed.subs ?? [], source, name === '' ? [] : [name]);
  const writer = new TreeWriter(placed.base, options, placed.ids, placed.subs);
  for await (const entry of stream) await writer.write(entry);
  await writer.finish();
  return writer.bytes;
}

/**
 * Refuses, before anything is written, a copy of the host tree source (its top written as prefix in the destination
 * directory) that would write below a read-only mount (subs): changes nothing.
 */
async function refuseReadOnlyMounts(
  subs: readonly SubMount[],
  source: { full: string; given: string; stat: Stats },
  prefix: readonly string[],
): Promise<void> {
  for (const sub of subs) {
    if (sub.readOnly === undefined || prefix.some((part, index) => sub.parts[index] !== part)) continue;
    const inSource = sub.parts.slice(prefix.length);
    const there =
      inSource.length === 0 ||
      (source.stat.isDirectory() && (await fs.lstat(path.join(source.full, ...inSource)).catch(() => undefined)));
    if (there !== undefined && there !== false) {
      throw new EngineError(
        'conflict',
        `cannot copy ${source.given}: ${sub.readOnly} below the destination is mounted read-only`,
        {
          hint: 'copy the rest without what goes there, or mount it read-write',
        },
      );
    }
  }
}

interface Placed {
  readonly base: string;
  readonly ids?: WriteIds;
  /** Mounts below base whose entries are written in their own directories. */
  readonly subs?: readonly SubMount[];
}

/**
 * A volume or host directory mounted below the directory a copy writes (parts: its mount point, relative to that
 * directory) whose files are written in its own directory (base) rather than through the container's root: a
 * stopped container's mounts are not mounted for the copy, and a running one's idmapped volumes cannot be written
 * through (host root's ids are not mapped there). A read-only one (readOnly: its destination) refuses what would go
 * below it.
 */
interface SubMount {
  readonly parts: readonly string[];
  readonly base: string;
  readonly ids?: WriteIds;
  readonly readOnly?: string;
}

/**
 * The volume directory that base, a directory in a running container's root (/proc/PID/root/...), is: the volume
 * mounted deepest above it, with the same directories below its source (lstat, no symlink) and the same inode as base;
 * undefined when base is not in a writable volume, or in another mount below it.
 */
async function volumeDir(
  root: string,
  record: ContainerRecord,
  base: string,
): Promise<{ dir: string; mount: ContainerMount } | undefined> {
  const inside = `/${path.relative(root, base)}`;
  const under = (destination: string) =>
    inside === destination || inside.startsWith(`${destination.replace(/\/+$/, '')}/`);
  const mount = record.mounts
    .filter((candidate) => under(candidate.destination))
    .sort((a, b) => b.destination.length - a.destination.length)[0];
  // read-only: left to the kernel, which refuses the write through the mount
  if (mount?.type !== 'bind' || mount.volumeName === undefined || mount.options.includes('ro')) return undefined;
  const rest = [...(mount.subpath ?? '').split('/'), ...path.posix.relative(mount.destination, inside).split('/')];
  let current = mount.source;
  for (const part of rest.filter((part) => part !== '' && part !== '.')) {
    if (part === '..') return undefined;
    current = path.join(current, part);
    if ((await fs.lstat(current).catch(() => undefined))?.isDirectory() !== true) return undefined;
  }
  const [seen, there] = await Promise.all([fs.stat(base).catch(() => undefined), fs.lstat(current)]);
  return seen?.dev === there.dev && seen.ino === there.ino ? { dir: current, mount } : undefined;
}

/**
 * How a volume's files are stored: with the container's own ids (idmapped), or, chowned to a range where its file
 * system has no idmapped mounts (engine/containers/shift.ts), with that range's host ids.
 */
async function volumeIds(engine: Engine, mount: ContainerMount, range: IdRange): Promise<WriteIds> {
  const shifted = mount.volumeName === undefined ? undefined : await volumeShift(engine.paths, mount.volumeName);
  return shifted === undefined ? { range, own: true } : { range: shifted, own: false };
}

/**
 * Where a copy into a container writes the directory base, and with which ids. A container with a user namespace:
 * its root file system takes host ids of its range; its volumes are idmapped binds, whose files on disk carry the
 * container's own ids and which host root cannot create files through (its ids are not mapped: EOVERFLOW), so a
 * directory in a running container's volume is written in the volume's own directory, with the container's ids.
 */
async function placeIn(engine: Engine, root: string, record: ContainerRecord, base: string): Promise<Placed> {
  if (record.userns === undefined) return { base };
  const volume = root.startsWith('/proc/') ? await volumeDir(root, record, base) : undefined;
  return volume === undefined
    ? { base, ids: { range: record.userns, own: false } }
    : { base: volume.dir, ids: await volumeIds(engine, volume.mount, record.userns) };
}

/**
 * A stopped or created container's volumes and bind-mounted host directories are not mounted in the root that a
 * copy sees (its overlay alone), so a path below one of their mount points is looked up in the mount's source
 * instead, as docker does (it mounts the volumes for the copy): the directory a container sees there once started.
 * The mount point is resolved in the container's root, as the runtime resolves it; the rest of the path inside the
 * source, whose symlinks cannot leave it. `full` is a path resolved in `root`; undefined when no such mount holds
 * it (tmpfs and image mounts are not kept while a container is stopped: those paths stay in its root).
 */
async function inStoppedMount(
  root: string,
  record: ContainerRecord,
  full: string,
  followFinal: boolean,
): Promise<StoppedMount | undefined> {
  const inside = path.relative(root, full);
  let best: { mount: ContainerMount; at: string } | undefined;
  for (const mount of record.mounts) {
    if (mount.type !== 'bind' || mount.source === '') continue;
    const at = path.relative(root, await resolveInRoot(root, mount.destination, true));
    if (at === '' || (inside !== at && !inside.startsWith(`${at}/`))) continue;
    if (best === undefined || at.length > best.at.length) best = { mount, at };
  }
  if (best === undefined) return undefined;
  const { mount, at } = best;
  const base = mount.subpath !== undefined ? await resolveInRoot(mount.source, mount.subpath, true) : mount.source;
  // a single file bound in: left as before (the copy writes beside it, in the host's directory, otherwise)
  if ((await fs.lstat(base).catch(() => undefined))?.isDirectory() !== true) return undefined;
  const rest = path.relative(at, inside);
  return { mount, at, base, full: rest === '' ? base : await resolveInRoot(base, rest, followFinal) };
}

/** A path of a stopped container in one of its mounts' source (inStoppedMount). */
interface StoppedMount {
  readonly mount: ContainerMount;
  /** The mount point, relative to the container's root, resolved in it. */
  readonly at: string;
  /** The mount's directory on the host (its source, or its subpath in it). */
  readonly base: string;
  /** The path, in base. */
  readonly full: string;
}

/** How a mount's files are stored: a volume's (volumeIds), or a host directory's, written as the container's root. */
async function mountIds(engine: Engine, record: ContainerRecord, mount: ContainerMount): Promise<WriteIds | undefined> {
  if (record.userns === undefined) return undefined;
  return mount.volumeName !== undefined
    ? volumeIds(engine, mount, record.userns)
    : { range: record.userns, own: false };
}

/**
 * The volumes and host directories mounted strictly below rel (a directory, relative to the container's root) that a
 * copy must write in their own directories (SubMount): every one of a stopped container; of a running one with a
 * user namespace, those that are the directory the container sees there (same device and inode); none of a
 * running one without (the kernel's view through /proc/PID/root is right). A single file bound in is left out.
 */
async function subMounts(
  engine: Engine,
  root: string,
  record: ContainerRecord,
  rel: string,
  running: boolean,
): Promise<SubMount[]> {
  if (running && record.userns === undefined) return [];
  const subs: SubMount[] = [];
  for (const mount of record.mounts) {
    if (mount.type !== 'bind' || mount.source === '') continue;
    const at = path.relative(root, await resolveInRoot(root, mount.destination, true));
    if (at === '' || at === rel || !(rel === '' || at.startsWith(`${rel}/`))) continue;
    const base = mount.subpath !== undefined ? await resolveInRoot(mount.source, mount.subpath, true) : mount.source;
    const there = await fs.lstat(base).catch(() => undefined);
    if (there?.isDirectory() !== true) continue;
    const parts = (rel === '' ? at : at.slice(rel.length + 1)).split('/');
    if (running) {
      const seen = await fs.stat(path.join(root, at)).catch(() => undefined);
      if (seen?.dev !== there.dev || seen.ino !== there.ino) continue;
    }
    const ids = await mountIds(engine, record, mount);
    const readOnly = mount.options.includes('ro') ? { readOnly: mount.destination } : {};
    subs.push({ parts, base, ...(ids !== undefined ? { ids } : {}), ...readOnly });
  }
  return subs;
}

/** A path inside the container, resolved inside its root; the destination's parent must be a real directory. */
async function containerDestination(root: string, given: string, full = ''): Promise<Destination> {
  full ||= await resolveInRoot(root, given, true);
  // the root itself may be /proc/PID/root, a link to follow; below it, nothing is followed
  const lookup = (candidate: string) => (candidate === root ? fs.stat(candidate) : fs.lstat(candidate));
  const stat = await lookup(full).catch(() => undefined);
  const parent = full === root ? undefined : await lookup(path.dirname(full)).catch(() => undefined);
  return { full, given, stat, parentIsDir: full === root || parent?.isDirectory() === true };
}

async function containerSource(
  root: string,
  record: ContainerRecord,
  given: string,
  options: CopyOptions,
  running: boolean,
): Promise<{
  full: string;
  given: string;
  stat: Stats;
  follow: boolean;
  volume: string | undefined;
  rel: string;
}> {
  const followFinal = options.followLink === true || endsWithSeparator(given);
  const resolved = await resolveInRoot(root, given, followFinal);
  const mounted = running ? undefined : await inStoppedMount(root, record, resolved, followFinal);
  const full = mounted?.full ?? resolved;
  const stat = await (full === root ? fs.stat(full) : fs.lstat(full)).catch(() => undefined);
  if (stat === undefined) {
    throw new EngineError('not-found', `could not find the file ${given} in container ${record.name}`);
  }
  if (endsWithSeparator(given) && !stat.isDirectory()) {
    throw new EngineError('conflict', `${given} in container ${record.name} is not a directory`);
  }
  // where it is in the container, relative to its root
  const rel =
    mounted === undefined ? path.relative(root, full) : path.join(mounted.at, path.relative(mounted.base, full));
  return { full, given, stat, follow: full === root, volume: mounted?.mount.volumeName, rel: rel === '.' ? '' : rel };
}

/** `cp CONTAINER:SRC DEST|-`: returns the bytes of file content copied. */
export async function copyFromContainer(
  engine: Engine,
  ref: string,
  srcPath: string,
  dest: HostEnd,
  options: CopyOptions & { readonly out?: Writable } = {},
): Promise<number> {
  return withContainerRoot(engine, ref, false, async (root, record, running) => {
    const source = await containerSource(root, record, srcPath, options, running);
    // a volume's files carry the container's own ids on disk (idmapped when it runs) or, chowned where idmapped
    // mounts are not available, a range's host ids; its root's, host ids of its range
    const range = source.volume === undefined ? record.userns : await volumeShift(engine.paths, source.volume);
    // a stopped container's mounts below the source are read in their own directories, with their ids
    const below = running || !source.stat.isDirectory() ? [] : await subMounts(engine, root, record, source.rel, false);
    const mounts = new Map(
      below.map((sub) => [
        sub.parts.join('/'),
        { full: sub.base, ids: sub.ids?.own === false ? sub.ids.range : undefined },
      ]),
    );
    if (dest.kind === 'tar') {
      if (options.out === undefined) throw new EngineError('internal', 'no output for the tar stream');
      const top = topName(srcPath) || '.';
      const warn = options.onWarning ?? (() => undefined);
      return writeTar(walkTree(source.full, top, source.follow, warn, range, mounts), options.out);
    }
    const full = path.resolve(dest.path);
    const stat = await fs.stat(full).catch((error: unknown) => {
      if (isErrno(error, 'ENOENT')) return undefined;
      throw error;
    });
    const parent = await fs.stat(path.dirname(full)).catch(() => undefined);
    const destination = { full, given: dest.path, stat, parentIsDir: parent?.isDirectory() === true };
    return copyTree(source, destination, options, { from: range, mounts });
  });
}

/** `cp SRC|- CONTAINER:DEST`: returns the bytes of file content copied. */
export async function copyToContainer(
  engine: Engine,
  ref: string,
  src: HostEnd,
  destPath: string,
  options: CopyOptions & { readonly input?: AsyncIterable<Uint8Array> } = {},
): Promise<number> {
  let source: { full: string; given: string; stat: Stats; follow: boolean } | undefined;
  if (src.kind === 'path') {
    // checked before the container is touched
    const full = path.resolve(src.path);
    const follow = options.followLink === true || endsWithSeparator(src.path);
    const stat = await (follow ? fs.stat(full) : fs.lstat(full)).catch(() => undefined);
    if (stat === undefined) throw new EngineError('not-found', `could not find the file ${src.path} on the host`);
    if (endsWithSeparator(src.path) && !stat.isDirectory()) {
      throw new EngineError('conflict', `${src.path} is not a directory`);
    }
    source = { full, given: src.path, stat, follow };
  }
  return withContainerRoot(engine, ref, true, async (root, record, running) => {
    const resolved = await resolveInRoot(root, destPath, true);
    const mounted = running ? undefined : await inStoppedMount(root, record, resolved, true);
    if (mounted !== undefined && mounted.mount.options.includes('ro')) {
      throw new EngineError(
        'conflict',
        `cannot copy to ${destPath} in container ${record.name}: it is on a read-only mount`,
        {
          hint: `${mounted.mount.destination} is mounted read-only`,
        },
      );
    }
    const dest = await containerDestination(root, destPath, mounted?.full ?? resolved);
    const place = async (base: string): Promise<Placed> => {
      // where base is in the container, relative to its root: mounts below it are written in their own dirs
      const rel =
        mounted === undefined ? path.relative(root, base) : path.join(mounted.at, path.relative(mounted.base, base));
      const subs = await subMounts(engine, root, record, rel === '.' ? '' : rel, running);
      if (mounted === undefined) return { ...(await placeIn(engine, root, record, base)), subs };
      // a volume is idmapped when the container runs: its files carry the container's own ids on disk (or a
      // range's, chowned where idmapped mounts are not available); a host directory bound in is not (as in
      // Docker): the range's host ids, as the container's root writes there
      const ids = await mountIds(engine, record, mounted.mount);
      return { base, subs, ...(ids !== undefined ? { ids } : {}) };
    };
    if (source !== undefined) return copyTree(source, dest, options, { place });
    if (dest.stat?.isDirectory() !== true) {
      throw new EngineError('conflict', `destination ${destPath} in container ${record.name} must be a directory`, {
        hint: 'a tar stream is extracted into an existing directory',
      });
    }
    if (options.input === undefined) throw new EngineError('internal', 'no input for the tar stream');
    const placed = await place(dest.full);
    const writer = new TreeWriter(placed.base, options, placed.ids, placed.subs);
    for await (const entry of readTar(options.input)) await writer.write(entry);
    await writer.finish();
    return writer.bytes;
  });
}
