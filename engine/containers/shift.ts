/**
 * chown-on-copy: a user namespace's range where the file system does not support idmapped mounts (`--userns auto`;
 * docs/security.md). Where idmapped mounts work (the default), nothing here runs.
 *
 * - The image's layers: a copy of each layer owned by the range's host ids (`tsfig-runtime shift copy`), in the
 *   container's own dir (`containers/<id>/shifted/<chain id>`): made once, at the container's first start, reused by
 *   every later start (a container keeps its range for its life) and removed with the container. A copy is made under
 *   a temporary name and renamed into place when complete; a start finds and removes what a killed one left.
 * - Named and anonymous volumes: their files are chowned in place to the range of the container that starts with
 *   them (`tsfig-runtime shift chown`), and back to the container's own ids for a container without a user namespace
 *   (or whose volume file system takes idmapped mounts): `volumes/<name>/shift.json` says which range the files are
 *   stored for (no file: the container's own ids, as idmapped volumes are), with the range being moved to written
 *   before the walk (a killed walk is finished by the next start). A volume in use by a running container of another
 *   range is refused: its files can be one range's at a time.
 * - The engine's files bound in (secrets and configs, `files/`): chowned to the range, as the container's root
 *   would own them; /etc/hosts, /etc/hostname and /etc/resolv.conf stay host root's (readable, not writable).
 *
 * The walks are the native helper's: fd-relative, never through a symlink, nothing on another file system, a hard
 * link to a file outside the tree left alone, setuid/setgid bits and file capabilities kept (native/src/shift.c).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { EngineError } from '../errors.js';
import type { IdRange } from '../layers/ids.js';
import { runtimeBinary } from '../runtime/binary.js';
import { spawnCommand } from '../runtime/spawner.js';
import { readJson, writeJsonAtomic } from '../state/atomic.js';
import type { EnginePaths } from '../state/paths.js';
import { USERNS_SIZE } from './userns.js';

/** Why idmapped mounts are not used for a path, or undefined when they are. */
const probed = new Map<number, string | undefined>();
/** Why a probe itself failed (no user namespace could be made...), per file system: not probed again. */
const probeFailures = new Map<number, string>();

/**
 * Whether dir's file system takes idmapped mounts, probed once per file system (`tsfig-runtime idmap-probe`).
 * `TSFIG_IDMAP=0` says no everywhere (a test and debug switch: the chown-on-copy fallback where idmapped mounts work).
 */
export async function idmapSupported(dir: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const setting = env.TSFIG_IDMAP ?? '';
  if (setting === '0') return false;
  if (setting !== '' && setting !== '1') {
    throw new EngineError('invalid', `TSFIG_IDMAP: invalid value "${setting}"`, {
      hint: '0 turns idmapped mounts off (chown-on-copy instead); unset or 1 uses them where the file system can',
    });
  }
  const { dev } = await fs.stat(dir);
  if (probed.has(dev)) return probed.get(dev) === undefined;
  const failed = probeFailures.get(dev);
  if (failed !== undefined) throw new EngineError('runtime', `cannot probe idmapped mounts on ${dir}: ${failed}`);
  const result = await spawnCommand(runtimeBinary(), ['idmap-probe', dir]);
  if (result.code !== 0 && result.code !== 1) {
    probeFailures.set(dev, lastMessage(result.stdout));
    throw new EngineError('runtime', `cannot probe idmapped mounts on ${dir}: ${lastMessage(result.stdout)}`);
  }
  probed.set(dev, result.code === 0 ? undefined : lastMessage(result.stdout));
  return result.code === 0;
}

function lastMessage(stdout: Buffer): string {
  const line = stdout.toString('utf8').trim().split('\n').pop() ?? '';
  try {
    const parsed = JSON.parse(line) as { message?: unknown };
    return typeof parsed.message === 'string' ? parsed.message : line;
  } catch {
    return line || 'no output';
  }
}

async function runShift(args: readonly string[], what: string): Promise<{ skipped: number }> {
  const result = await spawnCommand(runtimeBinary(), ['shift', ...args]);
  if (result.code !== 0) {
    throw new EngineError(
      'runtime',
      `cannot chown ${what} to the container's user namespace: ${lastMessage(result.stdout)}`,
    );
  }
  const done = JSON.parse(result.stdout.toString('utf8').trim().split('\n').pop() ?? '{}') as { skipped?: number };
  return { skipped: done.skipped ?? 0 };
}

/** The container's copies of layer dirs (`.../layers/<chain>/diff`), made when missing; same order. */
export async function shiftedLayers(
  containerDir: string,
  layerDirs: readonly string[],
  range: IdRange,
): Promise<string[]> {
  const dir = path.join(containerDir, 'shifted');
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  // what a killed start left: a copy not renamed into place
  for (const name of await fs.readdir(dir)) {
    if (name.startsWith('.tmp-')) await fs.rm(path.join(dir, name), { recursive: true, force: true });
  }
  const copies: string[] = [];
  for (const layer of layerDirs) {
    const chain = path.basename(path.dirname(layer));
    const copy = path.join(dir, chain);
    if (!(await fs.stat(copy).catch(() => undefined))?.isDirectory()) {
      const temp = path.join(dir, `.tmp-${chain}-${randomBytes(4).toString('hex')}`);
      try {
        await runShift(
          ['copy', layer, temp, String(range.uid), String(range.gid), String(range.size)],
          `layer ${chain}`,
        );
        await fs.rename(temp, copy);
      } catch (error) {
        await fs.rm(temp, { recursive: true, force: true });
        throw error;
      }
    }
    copies.push(copy);
  }
  return copies;
}

/** An image mount's `lowerdir=` list (escaped) with each layer replaced by its copy. */
export function splitLowerdir(value: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i] as string;
    if (c === '\\' && i + 1 < value.length) current += value[++i];
    else if (c === ':') {
      parts.push(current);
      current = '';
    } else current += c;
  }
  parts.push(current);
  return parts;
}

export function joinLowerdir(dirs: readonly string[]): string {
  return dirs.map((dir) => dir.replace(/[\\:,]/g, (c) => `\\${c}`)).join(':');
}

/** The engine's files of a container (files/): owned by the range, as its root would own them (idempotent). */
export async function shiftContainerFiles(containerDir: string, range: IdRange): Promise<void> {
  const dir = path.join(containerDir, 'files');
  if (!(await fs.lstat(dir).catch(() => undefined))?.isDirectory()) return;
  await runShift(['chown', dir, '0', '0', String(range.uid), String(range.gid), String(range.size)], 'its files');
}

/** The range a volume's files are stored for, and the one a killed chown was moving them to. */
interface VolumeShift {
  readonly v: 1;
  readonly range?: IdRange;
  readonly to?: IdRange | null;
}

const OWN: IdRange = { uid: 0, gid: 0, size: USERNS_SIZE };

function shiftFile(paths: EnginePaths, volume: string): string {
  return path.join(paths.volumes, volume, 'shift.json');
}

function same(a: IdRange | undefined, b: IdRange | undefined): boolean {
  return (a?.uid ?? 0) === (b?.uid ?? 0) && (a?.gid ?? 0) === (b?.gid ?? 0);
}

/**
 * The range a volume's files are stored for (undefined: the container's own ids). A chown that a kill interrupted
 * is refused: the next start of a container with the volume finishes it.
 */
export async function volumeShift(paths: EnginePaths, volume: string): Promise<IdRange | undefined> {
  const state = await readJson<VolumeShift>(shiftFile(paths, volume));
  if (state?.to !== undefined) {
    throw new EngineError('conflict', `volume ${volume} is being chowned to a container's user namespace`, {
      hint: 'start a container that uses it: the start finishes the chown',
    });
  }
  return state?.range;
}

/**
 * Makes the volume's files (in source, its directory) stored for `to` (undefined: the container's own ids): finishes
 * a killed chown, then moves them from the range they are stored for. `inUse` names a running container that needs
 * another range, when there is one: then it is refused.
 */
export async function shiftVolume(
  paths: EnginePaths,
  volume: string,
  source: string,
  to: IdRange | undefined,
  inUse: () => Promise<string | undefined>,
): Promise<void> {
  const file = shiftFile(paths, volume);
  let state = await readJson<VolumeShift>(file);
  if (state?.to !== undefined) {
    await chownVolume(source, state.range ?? OWN, state.to ?? OWN, volume);
    state = await record(file, state.to ?? undefined);
  }
  const current = state?.range;
  if (same(current, to)) return;
  const user = await inUse();
  if (user !== undefined) {
    throw new EngineError('conflict', `volume ${volume} is in use by container ${user}, whose user namespace differs`, {
      hint:
        "the volume's file system does not support idmapped mounts: its files are chowned to one container's " +
        'range at a time; stop that container first',
    });
  }
  await writeJsonAtomic(file, { v: 1, ...(current !== undefined ? { range: current } : {}), to: to ?? null }, 0o600);
  await chownVolume(source, current ?? OWN, to ?? OWN, volume);
  await record(file, to);
}

async function record(file: string, range: IdRange | undefined): Promise<VolumeShift | undefined> {
  if (range === undefined) {
    await fs.rm(file, { force: true });
    return undefined;
  }
  const state: VolumeShift = { v: 1, range };
  await writeJsonAtomic(file, state, 0o600);
  return state;
}

async function chownVolume(source: string, from: IdRange, to: IdRange, volume: string): Promise<void> {
  const overlap = (a: number, b: number) => a < b + to.size && b < a + from.size;
  if (overlap(from.uid, to.uid) || overlap(from.gid, to.gid)) {
    throw new EngineError('conflict', `volume ${volume}: the ranges ${from.uid} and ${to.uid} overlap`, {
      hint: 'the subordinate ids in /etc/subuid and /etc/subgid must not include the container ids 0-65535',
    });
  }
  await runShift(
    ['chown', source, ...[from.uid, from.gid, to.uid, to.gid, Math.min(from.size, to.size)].map(String)],
    `volume ${volume}`,
  );
}
