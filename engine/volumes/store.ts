import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { EngineError, isErrno } from '../errors.js';
import { writeJsonAtomic } from '../state/atomic.js';
import { newId } from '../state/ids.js';
import { withLock } from '../state/lock.js';
import type { EnginePaths } from '../state/paths.js';
import { ANONYMOUS_LABEL, assertVolumeName, parseLocalDriverOptions, volumeNameProblem } from './options.js';
import { compareText } from '../state/compare.js';

/** `docker volume inspect` shape. */
export interface VolumeInfo {
  readonly Name: string;
  readonly Driver: 'local';
  readonly Mountpoint: string;
  readonly Labels: Readonly<Record<string, string>>;
  readonly Options: Readonly<Record<string, string>>;
  readonly Scope: 'local';
  readonly CreatedAt: string;
}

export interface CreateVolumeOptions {
  /** Only `local`. @default 'local' */
  readonly driver?: string;
  /** The local driver's options: `type=tmpfs,device=tmpfs,o=size=100m` or `type=none,o=bind,device=/host/path`. */
  readonly driverOpts?: Readonly<Record<string, string>>;
  readonly labels?: Readonly<Record<string, string>>;
}

/** Names of the containers that use a volume (from their records). */
export type UsersOf = (name: string) => Promise<readonly string[]>;

/** Docker-style filters: `{label: ['a', 'b=c'], dangling: ['true']}`; keys label, dangling, driver, name. */
export type VolumeFilters = Readonly<Record<string, readonly string[]>>;

export interface ListVolumesOptions {
  readonly filters?: VolumeFilters;
  /** Needed by the `dangling` filter. */
  readonly usersOf?: UsersOf;
}

export interface ListVolumesResult {
  readonly volumes: VolumeInfo[];
  /** Leftovers found and adopted or reported (never deleted). */
  readonly warnings: string[];
}

export interface RemoveVolumeOptions {
  /** No error when the volume does not exist (Docker's `volume rm -f`). It never removes a volume in use. */
  readonly force?: boolean;
  readonly usersOf: UsersOf;
}

export interface PruneVolumesOptions {
  /** Also named volumes, not only anonymous ones (Docker's `volume prune --all`). */
  readonly all?: boolean;
  /** label filters (`label`, `label!`). */
  readonly filters?: VolumeFilters;
  readonly usersOf: UsersOf;
}

export interface PruneVolumesResult {
  readonly deleted: string[];
  readonly spaceReclaimed: number;
  readonly warnings: string[];
}

/** volume.json */
interface VolumeRecord {
  readonly v: 1;
  readonly name: string;
  readonly driver: 'local';
  readonly options: Record<string, string>;
  readonly labels: Record<string, string>;
  readonly createdAt: string;
}

const RECORD = 'volume.json';
const DATA = '_data';
const REMOVING = '.removing-';
const FILTER_KEYS = ['label', 'dangling', 'driver', 'name'];

/** Locks held by the current async context, so that nested store calls under `withLock` do not wait on themselves. */
const held = new AsyncLocalStorage<ReadonlySet<string>>();

function isoSeconds(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/**
 * Named and anonymous volumes of one engine root, laid out as Docker's: `<root>/volumes/<name>/{_data/, volume.json}`.
 * volume.json is written last and atomically: a directory without it is an interrupted create, adopted (when its
 * `_data` is a directory) or reported by `list`, never deleted without being asked.
 */
export class VolumeStore {
  readonly paths: EnginePaths;
  private readonly lockName: string;

  constructor(paths: EnginePaths) {
    this.paths = paths;
    this.lockName = `volumes:${paths.root}`;
  }

  /** Host directory of a volume (the Mountpoint). */
  dataDir(name: string): string {
    return path.join(this.paths.volumes, name, DATA);
  }

  private volumeDir(name: string): string {
    return path.join(this.paths.volumes, name);
  }

  /**
   * Runs fn holding the volumes lock of this root. Store calls made inside fn do not take it again; callers that
   * create a container hold it from resolving mounts to writing the container record, so that no `rm`/`prune` removes
   * a volume in between.
   */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    const current = held.getStore();
    if (current?.has(this.lockName) === true) return fn();
    const next = new Set(current ?? []);
    next.add(this.lockName);
    return withLock(this.lockName, () => held.run(next, fn));
  }

  /**
   * Creates a volume, or returns the existing one of that name (Docker: options of an existing volume are not
   * compared). Without a name, an anonymous volume with a random 64-hex name and the `io.tsfig.anonymous` label.
   */
  async create(name: string | undefined, options: CreateVolumeOptions = {}): Promise<VolumeInfo> {
    const driver = options.driver ?? 'local';
    if (driver !== 'local') {
      throw new EngineError('unsupported', `volume driver ${JSON.stringify(driver)} is not supported (only "local")`);
    }
    const driverOpts = { ...(options.driverOpts ?? {}) };
    const parsed = parseLocalDriverOptions(driverOpts);
    const labels = { ...(options.labels ?? {}) };
    const volumeName = name ?? newId();
    if (name === undefined) labels[ANONYMOUS_LABEL] = '';
    assertVolumeName(volumeName);
    return this.withLock(async () => {
      const existing = await this.readRecord(volumeName);
      if (existing.record !== undefined) return this.info(existing.record);
      if (parsed.kind === 'bind' && parsed.device !== undefined) await assertBindDevice(parsed.device);
      const dir = this.volumeDir(volumeName);
      await fs.mkdir(this.paths.volumes, { recursive: true, mode: 0o701 });
      await mkdirIfMissing(dir, 0o755);
      const data = this.dataDir(volumeName);
      await mkdirIfMissing(data, 0o755);
      const stat = await fs.lstat(data);
      if (!stat.isDirectory()) {
        throw new EngineError(
          'conflict',
          `volume ${JSON.stringify(volumeName)}: ${data} exists and is not a directory`,
          {
            hint: `a damaged leftover; remove it with: tsfig volume rm ${volumeName}`,
          },
        );
      }
      const record: VolumeRecord = {
        v: 1,
        name: volumeName,
        driver: 'local',
        options: driverOpts,
        labels,
        createdAt: isoSeconds(new Date()),
      };
      await writeJsonAtomic(path.join(dir, RECORD), record);
      return this.info(record);
    });
  }

  /** The volume, or undefined when there is none of that name (an interrupted create with `_data` is adopted). */
  async get(name: string): Promise<VolumeInfo | undefined> {
    if (volumeNameProblem(name) !== undefined) return undefined;
    return this.withLock(async () => {
      const found = await this.readRecord(name);
      if (found.record !== undefined) return this.info(found.record);
      if (found.adoptable) return this.info(await this.adopt(name));
      return undefined;
    });
  }

  async inspect(name: string): Promise<VolumeInfo> {
    assertVolumeName(name);
    const info = await this.get(name);
    if (info === undefined) throw new EngineError('not-found', `no such volume: ${name}`);
    return info;
  }

  async list(options: ListVolumesOptions = {}): Promise<ListVolumesResult> {
    const filters = options.filters ?? {};
    checkFilters(filters, FILTER_KEYS);
    return this.withLock(async () => {
      const warnings: string[] = [];
      const volumes: VolumeInfo[] = [];
      for (const name of await this.entries(warnings)) {
        const found = await this.readRecord(name);
        let record = found.record;
        if (record === undefined && found.adoptable) {
          record = await this.adopt(name);
          warnings.push(
            `volume ${JSON.stringify(name)} had no volume.json (an interrupted create?); adopted as a plain local volume`,
          );
        } else if (record === undefined) {
          warnings.push(
            found.problem ??
              `${this.volumeDir(name)} is not a volume (no volume.json, no _data directory); left in place — remove it with: tsfig volume rm ${name}`,
          );
          continue;
        }
        const info = this.info(record);
        if (await matches(info, filters, options.usersOf)) volumes.push(info);
      }
      volumes.sort((a, b) => compareText(a.Name, b.Name));
      return { volumes, warnings };
    });
  }

  /**
   * Removes a volume and its data. Refuses while a container uses it, naming them. A leftover directory of that name
   * (no volume.json) is removed too: the user asked for it by name.
   */
  async remove(name: string, options: RemoveVolumeOptions): Promise<boolean> {
    assertVolumeName(name);
    return this.withLock(async () => {
      const dir = this.volumeDir(name);
      if (!(await exists(dir))) {
        if (options.force === true) return false;
        throw new EngineError('not-found', `no such volume: ${name}`);
      }
      const users = await options.usersOf(name);
      if (users.length > 0) {
        throw new EngineError('conflict', `volume ${name} is in use by container ${users.join(', ')}`, {
          hint: 'remove the container(s) first (tsfig rm), then the volume',
        });
      }
      await this.removeDir(name);
      return true;
    });
  }

  /**
   * Removes the anonymous volumes among a removed container's mounts (`rm -v`, `run --rm`), keeping any another
   * container still uses (a `volumes_from` user); call it after the container's record is gone.
   */
  async removeAnonymous(
    mounts: ReadonlyArray<{ readonly volumeName?: string; readonly anonymous?: boolean }>,
    options: { readonly usersOf: UsersOf },
  ): Promise<{ removed: string[]; kept: Array<{ name: string; users: readonly string[] }> }> {
    const names = [
      ...new Set(
        mounts.filter((m) => m.anonymous === true && m.volumeName !== undefined).map((m) => m.volumeName ?? ''),
      ),
    ];
    return this.withLock(async () => {
      const removed: string[] = [];
      const kept: Array<{ name: string; users: readonly string[] }> = [];
      for (const name of names) {
        const info = await this.get(name);
        if (info?.Labels[ANONYMOUS_LABEL] === undefined) continue;
        const users = await options.usersOf(name);
        if (users.length > 0) {
          kept.push({ name, users });
          continue;
        }
        await this.removeDir(name);
        removed.push(name);
      }
      return { removed, kept };
    });
  }

  /** Removes unused volumes: anonymous ones, or all with `all`. */
  async prune(options: PruneVolumesOptions): Promise<PruneVolumesResult> {
    const filters = options.filters ?? {};
    checkFilters(filters, ['label', 'label!']);
    return this.withLock(async () => {
      const { volumes, warnings } = await this.list({});
      const deleted: string[] = [];
      let spaceReclaimed = 0;
      for (const volume of volumes) {
        if (options.all !== true && volume.Labels[ANONYMOUS_LABEL] === undefined) continue;
        if (!labelFiltersMatch(volume.Labels, filters)) continue;
        if ((await options.usersOf(volume.Name)).length > 0) continue;
        const size = await diskUsage(this.dataDir(volume.Name));
        try {
          await this.removeDir(volume.Name);
        } catch (error) {
          if (!(error instanceof EngineError) || error.kind !== 'conflict') throw error;
          warnings.push(`volume ${volume.Name} not pruned: ${error.message}`);
          continue;
        }
        deleted.push(volume.Name);
        spaceReclaimed += size;
      }
      return { deleted, spaceReclaimed, warnings };
    });
  }

  /** Bytes used by a volume's data (regular files and symlinks, hard links once; mounts not crossed). */
  async size(name: string): Promise<number> {
    assertVolumeName(name);
    return diskUsage(this.dataDir(name));
  }

  private info(record: VolumeRecord): VolumeInfo {
    return {
      Name: record.name,
      Driver: 'local',
      Mountpoint: this.dataDir(record.name),
      Labels: { ...record.labels },
      Options: { ...record.options },
      Scope: 'local',
      CreatedAt: record.createdAt,
    };
  }

  /** Names under volumes/, finishing removals a crash interrupted and reporting what is not a volume. */
  private async entries(warnings: string[]): Promise<string[]> {
    let dirents;
    try {
      dirents = await fs.readdir(this.paths.volumes, { withFileTypes: true });
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return [];
      throw error;
    }
    const names: string[] = [];
    for (const dirent of dirents) {
      const full = path.join(this.paths.volumes, dirent.name);
      if (dirent.name.startsWith(REMOVING) && dirent.isDirectory()) {
        // A removal the user asked for and a crash interrupted: finish it.
        try {
          await this.removeTree(full, dirent.name);
        } catch (error) {
          warnings.push(`could not finish removing ${full}: ${(error as Error).message}`);
        }
        continue;
      }
      if (!dirent.isDirectory()) {
        warnings.push(`${full} is not a volume directory; left in place`);
        continue;
      }
      if (volumeNameProblem(dirent.name) !== undefined) {
        warnings.push(`${full} does not have a volume name; left in place`);
        continue;
      }
      names.push(dirent.name);
    }
    return names;
  }

  private async readRecord(name: string): Promise<{ record?: VolumeRecord; adoptable: boolean; problem?: string }> {
    const dir = this.volumeDir(name);
    let text: string;
    try {
      text = await fs.readFile(path.join(dir, RECORD), 'utf8');
    } catch (error) {
      if (!isErrno(error, 'ENOENT') && !isErrno(error, 'ENOTDIR')) throw error;
      try {
        const stat = await fs.lstat(path.join(dir, DATA));
        return { adoptable: stat.isDirectory() };
      } catch (inner) {
        if (isErrno(inner, 'ENOENT') || isErrno(inner, 'ENOTDIR')) return { adoptable: false };
        throw inner;
      }
    }
    try {
      const parsed = JSON.parse(text) as Partial<VolumeRecord>;
      if (parsed.v !== 1 || parsed.name !== name || parsed.driver !== 'local') throw new Error('unexpected content');
      return {
        record: {
          v: 1,
          name,
          driver: 'local',
          options: { ...(parsed.options ?? {}) },
          labels: { ...(parsed.labels ?? {}) },
          createdAt: parsed.createdAt ?? '',
        },
        adoptable: false,
      };
    } catch (error) {
      if (error instanceof EngineError) throw error;
      return {
        adoptable: false,
        problem: `${path.join(dir, RECORD)} is unreadable (${(error as Error).message}); volume ${name} left in place`,
      };
    }
  }

  private async adopt(name: string): Promise<VolumeRecord> {
    const dir = this.volumeDir(name);
    const stat = await fs.stat(dir);
    const record: VolumeRecord = {
      v: 1,
      name,
      driver: 'local',
      options: {},
      labels: {},
      createdAt: isoSeconds(stat.mtime),
    };
    await writeJsonAtomic(path.join(dir, RECORD), record);
    return record;
  }

  /** Renames the volume out of the way (atomic: it is gone or whole), then deletes it. */
  private async removeDir(name: string): Promise<void> {
    const dir = this.volumeDir(name);
    await assertNothingMounted(dir);
    const trash = path.join(this.paths.volumes, `${REMOVING}${name}-${randomBytes(4).toString('hex')}`);
    await fs.rename(dir, trash);
    await this.removeTree(trash, name);
  }

  private async removeTree(dir: string, what: string): Promise<void> {
    await assertNothingMounted(dir);
    try {
      // fs.rm does not follow symlinks: a link planted by a container to / only loses the link.
      await fs.rm(dir, { recursive: true, force: true });
    } catch (error) {
      throw new EngineError('runtime', `removing volume ${what}: ${(error as Error).message}`, { cause: error });
    }
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return false;
    throw error;
  }
}

async function mkdirIfMissing(dir: string, mode: number): Promise<void> {
  try {
    await fs.mkdir(dir, { mode });
  } catch (error) {
    if (!isErrno(error, 'EEXIST')) throw error;
  }
}

/** The device of a bind-backed volume must be an existing directory. */
export async function assertBindDevice(device: string): Promise<string> {
  try {
    const real = await fs.realpath(device);
    const stat = await fs.stat(real);
    if (!stat.isDirectory()) throw new EngineError('invalid', `volume device ${device} is not a directory`);
    return real;
  } catch (error) {
    if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) {
      throw new EngineError('invalid', `volume device ${device} does not exist`, {
        hint: `create the directory first (mkdir -p ${device})`,
      });
    }
    throw error;
  }
}

/** Mount points at or under dir, from /proc/self/mountinfo. */
export async function mountsUnder(dir: string): Promise<string[]> {
  let text: string;
  try {
    text = await fs.readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4];
    if (field === undefined) continue;
    const point = field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
    if (point === dir || point.startsWith(`${dir}/`)) found.push(point);
  }
  return found;
}

async function assertNothingMounted(dir: string): Promise<void> {
  const mounted = await mountsUnder(dir);
  if (mounted.length > 0) {
    throw new EngineError('conflict', `refusing to delete ${dir}: ${mounted.join(', ')} is mounted there`, {
      hint: `unmount it first (umount ${mounted[0] ?? dir})`,
    });
  }
}

async function diskUsage(dir: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  let rootDev: number | undefined;
  const walk = async (current: string): Promise<void> => {
    let stat;
    try {
      stat = await fs.lstat(current);
    } catch {
      return;
    }
    rootDev ??= stat.dev;
    if (stat.dev !== rootDev) return;
    if (stat.isDirectory()) {
      let names: string[];
      try {
        names = await fs.readdir(current);
      } catch {
        return;
      }
      for (const name of names) await walk(path.join(current, name));
      return;
    }
    const key = `${stat.dev}:${stat.ino}`;
    if (stat.nlink > 1) {
      if (seen.has(key)) return;
      seen.add(key);
    }
    total += stat.size;
  };
  await walk(dir);
  return total;
}

function checkFilters(filters: VolumeFilters, allowed: readonly string[]): void {
  for (const key of Object.keys(filters)) {
    if (!allowed.includes(key)) {
      throw new EngineError('invalid', `invalid filter ${JSON.stringify(key)} (valid: ${allowed.join(', ')})`);
    }
  }
}

function labelMatches(labels: Readonly<Record<string, string>>, filter: string): boolean {
  const eq = filter.indexOf('=');
  if (eq < 0) return labels[filter] !== undefined;
  return labels[filter.slice(0, eq)] === filter.slice(eq + 1);
}

function labelFiltersMatch(labels: Readonly<Record<string, string>>, filters: VolumeFilters): boolean {
  for (const filter of filters.label ?? []) if (!labelMatches(labels, filter)) return false;
  for (const filter of filters['label!'] ?? []) if (labelMatches(labels, filter)) return false;
  return true;
}

async function matches(info: VolumeInfo, filters: VolumeFilters, usersOf: UsersOf | undefined): Promise<boolean> {
  if (!labelFiltersMatch(info.Labels, filters)) return false;
  const names = filters.name ?? [];
  if (names.length > 0 && !names.some((part) => info.Name.includes(part))) return false;
  const drivers = filters.driver ?? [];
  if (drivers.length > 0 && !drivers.includes(info.Driver)) return false;
  for (const value of filters.dangling ?? []) {
    if (!['true', 'false', '1', '0'].includes(value)) {
      throw new EngineError('invalid', `invalid filter "dangling=${value}" (use true or false)`);
    }
    if (usersOf === undefined) throw new EngineError('internal', 'the dangling filter needs usersOf');
    const dangling = (await usersOf(info.Name)).length === 0;
    if (dangling !== (value === 'true' || value === '1')) return false;
  }
  return true;
}

/** Parses `--filter key=value` arguments into filters. */
export function parseFilterArgs(args: readonly string[]): Record<string, string[]> {
  const filters: Record<string, string[]> = {};
  for (const arg of args) {
    const eq = arg.indexOf('=');
    if (eq <= 0) throw new EngineError('invalid', `bad format of filter ${JSON.stringify(arg)} (expected name=value)`);
    const key = arg.slice(0, eq);
    (filters[key] ??= []).push(arg.slice(eq + 1));
  }
  return filters;
}
