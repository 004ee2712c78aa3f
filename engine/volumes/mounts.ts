import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EngineError, isErrno } from '../errors.js';
import { escapeConfValue } from '../runtime/conf.js';
import {
  ANONYMOUS_LABEL,
  TMPFS_DEFAULT_FLAGS,
  parseLocalDriverOptions,
  parseMode,
  parseSize,
  parseTmpfsOptions,
  tmpfsMountOptions,
  volumeNameProblem,
  type TmpfsOptions,
} from './options.js';
import { assertBindDevice, type VolumeInfo, type VolumeStore } from './store.js';

/**
 * A mount ready for runtime.conf (native/PROTOCOL.md `mount*` keys); the same shape as the container record's
 * `ContainerMount`.
 */
export interface ResolvedMount {
  /** Absolute, normalised path inside the container. */
  readonly destination: string;
  /** overlay: an image's layers, read-only (compose `type: image`). */
  readonly type: 'bind' | 'tmpfs' | 'overlay';
  /**
   * Host path (real path, symlinks resolved on the host) for binds; `tmpfs` for tmpfs; for overlay the `lowerdir=`
   * value (escaped layer dirs, top layer first).
   */
  readonly source: string;
  /** `rbind`, a propagation, `ro`; for tmpfs `ro`, `noexec`, `nosuid`, `nodev`, `size=N`, `mode=0NNN`, ... */
  readonly options: readonly string[];
  /** Populate the volume from the image's content at destination when it is empty (Docker's copy-up). */
  readonly copy: boolean;
  /**
   * Only this path inside the source is mounted (compose `volume.subpath`, `image.subpath`): relative, normalised;
   * the native helper opens it beneath the source following no symlink (native/PROTOCOL.md `mount.subpath`).
   */
  readonly subpath?: string;
  /** The named or anonymous volume behind this mount. */
  readonly volumeName?: string;
  /** Set (true) when that volume is anonymous. */
  readonly anonymous?: boolean;
  /** The image mounted (compose `type: image`): it counts as a user of that image. */
  readonly imageId?: string;
}

export type Propagation = 'private' | 'rprivate' | 'shared' | 'rshared' | 'slave' | 'rslave';
const PROPAGATIONS: readonly string[] = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'];

interface MountSpecBase {
  /** Absolute, normalised container path. */
  readonly target: string;
  readonly readonly: boolean;
  /** How the user wrote it, for messages: `-v "./src:/app"`, `service "web" volumes[0]`. */
  readonly origin: string;
  /** Things accepted but ignored (`:z`), to show the user. */
  readonly notes: readonly string[];
}

export interface BindMountSpec extends MountSpecBase {
  readonly type: 'bind';
  /** Absolute host path as written (`..` resolved lexically, symlinks not yet followed). */
  readonly source: string;
  /** @default rprivate */
  readonly propagation: Propagation;
  /** Create a missing source directory (`-v` short syntax, compose `bind.create_host_path`). */
  readonly createHostPath: boolean;
}

export interface VolumeMountSpec extends MountSpecBase {
  readonly type: 'volume';
  /** Volume name; undefined for a new anonymous volume. */
  readonly source?: string;
  /** Do not copy the image's content into an empty volume. */
  readonly nocopy: boolean;
  /** Mount only this path inside the volume (compose `volume.subpath`, `--mount volume-subpath=`). */
  readonly subpath?: string;
  /** For a volume created by this mount (`--mount volume-label=`, `volume-opt=`). */
  readonly labels?: Readonly<Record<string, string>>;
  readonly driverOpts?: Readonly<Record<string, string>>;
}

export interface TmpfsMountSpec extends MountSpecBase {
  readonly type: 'tmpfs';
  readonly tmpfs: TmpfsOptions;
}

/** An image's file system, read-only (compose `volumes: - type: image`, Docker's `--mount type=image`). */
export interface ImageMountSpec extends MountSpecBase {
  readonly type: 'image';
  /** Image reference or id. */
  readonly source: string;
  /** Mount only this path inside the image (compose `image.subpath`). */
  readonly subpath?: string;
}

/** What a container asks for, parsed and validated (no host access). Compose builds these directly. */
export type MountSpec = BindMountSpec | VolumeMountSpec | TmpfsMountSpec | ImageMountSpec;

/** An image as a mount needs it: its id and its layer dirs, lowest first. */
export interface MountableImage {
  readonly id: string;
  readonly layers: readonly string[];
}

/** Escapes `\`, `:` and `,` in a path for an overlay `lowerdir=` list. */
function overlayPath(dir: string): string {
  return dir.replace(/[\\:,]/g, (c) => `\\${c}`);
}

/** The read-only mount of an image's layers: one layer is a bind of its dir, more an overlay of them. */
function imageMount(destination: string, image: MountableImage, subpath: string | undefined): ResolvedMount {
  const [only] = image.layers;
  const sub = subpath !== undefined ? { subpath } : {};
  if (image.layers.length === 1 && only !== undefined) {
    return {
      destination,
      type: 'bind',
      source: only,
      options: ['rbind', 'rprivate', 'ro', 'nosuid', 'nodev'],
      copy: false,
      ...sub,
      imageId: image.id,
    };
  }
  return {
    destination,
    type: 'overlay',
    source: [...image.layers].reverse().map(overlayPath).join(':'),
    options: ['ro', 'nosuid', 'nodev'],
    copy: false,
    ...sub,
    imageId: image.id,
  };
}

/**
 * A subpath as moby accepts it: relative and inside its source (`a/b`, `./a`; not `/a`, `..`, `a/../..`), returned
 * normalised. Whether it exists, and that no component is a symlink, is checked when the container starts (the
 * source's content may change until then).
 */
export function checkSubpath(what: string, subpath: string, of: 'volume' | 'image'): string {
  const clean = path.posix.normalize(subpath).replace(/\/+$/, '');
  if (subpath === '' || subpath.startsWith('/') || clean === '..' || clean.startsWith('../')) {
    throw invalid(what, `subpath must be a relative path within the ${of}: ${JSON.stringify(subpath)}`);
  }
  return clean;
}

export interface ParseMountOptions {
  /** Directory relative bind sources (`./src`) are resolved against. @default process.cwd() */
  readonly baseDir?: string;
  /** For `~/...` sources. @default os.homedir() */
  readonly homeDir?: string;
}

function invalid(what: string, message: string, hint?: string): EngineError {
  return new EngineError('invalid', `${what}: ${message}`, hint !== undefined ? { hint } : {});
}

/** Validates and normalises a container path. */
export function checkTarget(target: string, what: string): string {
  if (target === '') throw invalid(what, 'the container path is empty');
  if (target.includes('\0')) throw invalid(what, 'the container path contains a NUL byte');
  if (!target.startsWith('/')) {
    throw invalid(what, `container path ${JSON.stringify(target)} must be absolute (start with /)`);
  }
  const clean = path.posix.normalize(target).replace(/(.)\/+$/, '$1');
  if (clean === '/') throw invalid(what, 'the container path cannot be /');
  if (clean === '/proc' || clean.startsWith('/proc/')) {
    throw invalid(what, `cannot mount over ${clean} (/proc is managed by the runtime)`);
  }
  return clean;
}

function hostPath(source: string, what: string, options: ParseMountOptions): string {
  if (source.includes('\0')) throw invalid(what, 'the host path contains a NUL byte');
  if (source === '~' || source.startsWith('~/')) {
    return path.resolve(options.homeDir ?? os.homedir(), `.${source.slice(1)}`);
  }
  return path.resolve(options.baseDir ?? process.cwd(), source);
}

function isHostPath(source: string): boolean {
  return source.startsWith('/') || source.startsWith('.') || source === '~' || source.startsWith('~/');
}

function checkVolumeName(name: string, what: string): void {
  const problem = volumeNameProblem(name);
  if (problem !== undefined) throw invalid(what, problem);
}

const RW_MODES = ['rw', 'ro'];
const LABEL_MODES = ['z', 'Z'];
const COPY_MODES = ['nocopy'];
const CONSISTENCY_MODES = ['consistent', 'cached', 'delegated'];
const ALL_MODES = [...RW_MODES, ...LABEL_MODES, ...PROPAGATIONS, ...COPY_MODES, ...CONSISTENCY_MODES];

interface ParsedMode {
  readonly?: boolean;
  label?: string;
  propagation?: Propagation;
  nocopy?: boolean;
}

function isModeList(text: string): boolean {
  return text !== '' && text.split(',').every((word) => ALL_MODES.includes(word));
}

function parseModeList(text: string, what: string): ParsedMode {
  const result: ParsedMode = {};
  if (text === '') return result;
  const groups: Array<[readonly string[], string]> = [
    [RW_MODES, 'ro/rw'],
    [LABEL_MODES, 'z/Z'],
    [PROPAGATIONS, 'propagation'],
    [COPY_MODES, 'nocopy'],
    [CONSISTENCY_MODES, 'consistency'],
  ];
  const used = new Map<string, string>();
  for (const word of text.split(',')) {
    const group = groups.find(([modes]) => modes.includes(word));
    if (group === undefined) {
      throw invalid(what, `unknown option ${JSON.stringify(word)} (valid: ${ALL_MODES.join(', ')})`);
    }
    const previous = used.get(group[1]);
    if (previous !== undefined) {
      throw invalid(
        what,
        `options ${JSON.stringify(previous)} and ${JSON.stringify(word)} conflict (one ${group[1]} option at most)`,
      );
    }
    used.set(group[1], word);
    if (RW_MODES.includes(word)) result.readonly = word === 'ro';
    else if (LABEL_MODES.includes(word)) result.label = word;
    else if (PROPAGATIONS.includes(word)) result.propagation = word as Propagation;
    else if (word === 'nocopy') result.nocopy = true;
  }
  return result;
}

function selinuxNote(what: string, label: string | undefined): string[] {
  return label === undefined
    ? []
    : [`${what}: SELinux relabeling (:${label}) is not supported by tsfig and was ignored`];
}

/**
 * Parses a `-v`/`--volume` spec as Docker does: `/ctr` (anonymous volume), `name:/ctr[:opts]` (named volume),
 * `/host:/ctr[:opts]`, `./rel:/ctr` (resolved against baseDir), `~/dir:/ctr`. Options: `ro`, `rw`, `z`, `Z`
 * (ignored, with a note), `nocopy` (volumes), a propagation (binds), `consistent`/`cached`/`delegated` (ignored).
 */
export function parseVolumeFlag(spec: string, options: ParseMountOptions = {}): MountSpec {
  const what = `-v ${JSON.stringify(spec)}`;
  if (spec === '') throw invalid(what, 'empty volume specification');
  const parts = spec.split(':');
  if (parts.length > 3) {
    throw invalid(what, `too many ":" separators (expected [SOURCE:]CONTAINER-PATH[:OPTIONS])`);
  }
  if (parts[0] === '')
    throw invalid(what, 'the source before ":" is empty (expected [SOURCE:]CONTAINER-PATH[:OPTIONS])');
  if (parts.length === 1) {
    return { type: 'volume', target: checkTarget(spec, what), readonly: false, nocopy: false, origin: what, notes: [] };
  }
  const [source = '', target = '', modeText = ''] = parts;
  if (parts.length === 2 && isModeList(target)) {
    throw invalid(
      what,
      `${JSON.stringify(target)} is an option, not a container path (expected SOURCE:CONTAINER-PATH:${target})`,
    );
  }
  const cleanTarget = checkTarget(target, what);
  const mode = parseModeList(modeText, what);
  const notes = selinuxNote(what, mode.label);
  if (isHostPath(source)) {
    if (mode.nocopy === true) throw invalid(what, '"nocopy" applies to volumes, not to bind mounts');
    return {
      type: 'bind',
      source: hostPath(source, what, options),
      target: cleanTarget,
      readonly: mode.readonly === true,
      propagation: mode.propagation ?? 'rprivate',
      createHostPath: true,
      origin: what,
      notes,
    };
  }
  checkVolumeName(source, what);
  if (mode.propagation !== undefined) {
    throw invalid(what, `propagation ${JSON.stringify(mode.propagation)} applies to bind mounts, not to volumes`);
  }
  return {
    type: 'volume',
    source,
    target: cleanTarget,
    readonly: mode.readonly === true,
    nocopy: mode.nocopy === true,
    origin: what,
    notes,
  };
}

/** Splits a CSV line as Docker's --mount parser (encoding/csv): fields may be double-quoted to hold commas. */
function splitCsv(text: string, what: string): string[] {
  const fields: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        current += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else current += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      fields.push(current);
      current = '';
    } else current += ch;
  }
  if (quoted) throw invalid(what, 'unterminated double quote');
  fields.push(current);
  return fields;
}

function parseBool(value: string | undefined, key: string, what: string): boolean {
  if (value === undefined) return true;
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false;
  throw invalid(what, `invalid value for ${key}: ${JSON.stringify(value)} (true or false)`);
}

const MOUNT_KEYS = [
  'type',
  'source',
  'src',
  'target',
  'destination',
  'dst',
  'readonly',
  'ro',
  'consistency',
  'bind-propagation',
  'volume-nocopy',
  'volume-label',
  'volume-driver',
  'volume-opt',
  'volume-subpath',
  'tmpfs-size',
  'tmpfs-mode',
];
const BOOL_KEYS = ['readonly', 'ro', 'volume-nocopy'];
const UNSUPPORTED_KEYS = ['bind-recursive', 'bind-nonrecursive', 'bind-create-mountpoint', 'image-subpath'];

/**
 * Parses a `--mount` spec: `type=bind|volume|tmpfs` (default volume), `source`/`src`, `target`/`destination`/`dst`,
 * `readonly`/`ro`, `bind-propagation`, `volume-nocopy`, `volume-label`, `volume-driver` (local), `volume-opt`,
 * `tmpfs-size`, `tmpfs-mode`, `consistency` (ignored). A missing bind source is an error (no creation), as Docker.
 */
export function parseMountFlag(spec: string, options: ParseMountOptions = {}): MountSpec {
  const what = `--mount ${JSON.stringify(spec)}`;
  if (spec.trim() === '') throw invalid(what, 'empty mount specification');
  let type = 'volume';
  let source: string | undefined;
  let target: string | undefined;
  let readonly = false;
  let propagation: Propagation | undefined;
  let nocopy: boolean | undefined;
  let subpath: string | undefined;
  const labels: Record<string, string> = {};
  const driverOpts: Record<string, string> = {};
  let tmpfsSize: string | undefined;
  let tmpfsMode: number | undefined;
  const used = new Set<string>();
  for (const field of splitCsv(spec, what)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? undefined : field.slice(eq + 1);
    if (key === '') throw invalid(what, `invalid field ${JSON.stringify(field)}: must be a key=value pair`);
    if (UNSUPPORTED_KEYS.includes(key)) throw invalid(what, `${key} is not supported by tsfig`);
    if (!MOUNT_KEYS.includes(key)) {
      throw invalid(what, `unexpected key ${JSON.stringify(key)} (valid: ${MOUNT_KEYS.join(', ')})`);
    }
    if (value === undefined && !BOOL_KEYS.includes(key)) {
      throw invalid(what, `invalid field ${JSON.stringify(field)}: must be a key=value pair`);
    }
    const text = value ?? '';
    used.add(key);
    switch (key) {
      case 'type':
        if (!['bind', 'volume', 'tmpfs'].includes(text)) {
          throw invalid(what, `mount type ${JSON.stringify(text)} is not supported (bind, volume, tmpfs)`);
        }
        type = text;
        break;
      case 'source':
      case 'src':
        source = text;
        break;
      case 'target':
      case 'destination':
      case 'dst':
        target = text;
        break;
      case 'readonly':
      case 'ro':
        readonly = parseBool(value, key, what);
        break;
      case 'consistency':
        break;
      case 'bind-propagation':
        if (!PROPAGATIONS.includes(text)) {
          throw invalid(what, `invalid bind-propagation ${JSON.stringify(text)} (valid: ${PROPAGATIONS.join(', ')})`);
        }
        propagation = text as Propagation;
        break;
      case 'volume-nocopy':
        nocopy = parseBool(value, key, what);
        break;
      case 'volume-subpath':
        subpath = checkSubpath(what, text, 'volume');
        break;
      case 'volume-label':
      case 'volume-opt': {
        const inner = text.indexOf('=');
        if (inner <= 0) throw invalid(what, `invalid ${key} ${JSON.stringify(text)}: must be key=value`);
        (key === 'volume-label' ? labels : driverOpts)[text.slice(0, inner)] = text.slice(inner + 1);
        break;
      }
      case 'volume-driver':
        if (text !== 'local')
          throw invalid(what, `volume driver ${JSON.stringify(text)} is not supported (only local)`);
        break;
      case 'tmpfs-size': {
        const bytes = parseSize(text);
        if (bytes === undefined) throw invalid(what, `invalid tmpfs-size ${JSON.stringify(text)} (e.g. 64m, 1g)`);
        tmpfsSize = String(bytes);
        break;
      }
      case 'tmpfs-mode': {
        const mode = parseMode(text);
        if (mode === undefined) throw invalid(what, `invalid tmpfs-mode ${JSON.stringify(text)} (octal, e.g. 1777)`);
        tmpfsMode = mode;
        break;
      }
    }
  }
  const mixed = (prefix: string): void => {
    for (const key of used) {
      if (key.startsWith(prefix)) throw invalid(what, `cannot mix '${prefix}*' options with mount type '${type}'`);
    }
  };
  if (target === undefined || target === '') throw invalid(what, 'target is required');
  const cleanTarget = checkTarget(target, what);
  switch (type) {
    case 'bind': {
      mixed('volume-');
      mixed('tmpfs-');
      if (source === undefined || source === '') throw invalid(what, 'source is required for a bind mount');
      return {
        type: 'bind',
        source: hostPath(source, what, options),
        target: cleanTarget,
        readonly,
        propagation: propagation ?? 'rprivate',
        createHostPath: false,
        origin: what,
        notes: [],
      };
    }
    case 'tmpfs': {
      mixed('volume-');
      mixed('bind-');
      if (source !== undefined && source !== '') throw invalid(what, 'a tmpfs mount takes no source');
      return {
        type: 'tmpfs',
        target: cleanTarget,
        readonly,
        tmpfs: {
          flags: {},
          data: [],
          ...(tmpfsSize !== undefined ? { size: tmpfsSize } : {}),
          ...(tmpfsMode !== undefined ? { mode: tmpfsMode } : {}),
        },
        origin: what,
        notes: [],
      };
    }
    default: {
      mixed('bind-');
      mixed('tmpfs-');
      if (source !== undefined && source !== '') {
        if (isHostPath(source)) {
          throw invalid(what, `${JSON.stringify(source)} is a host path; use type=bind to mount a host directory`);
        }
        checkVolumeName(source, what);
      }
      if (Object.keys(driverOpts).length > 0) parseLocalDriverOptions(driverOpts);
      return {
        type: 'volume',
        ...(source !== undefined && source !== '' ? { source } : {}),
        target: cleanTarget,
        readonly,
        nocopy: nocopy === true,
        ...(subpath !== undefined ? { subpath } : {}),
        ...(Object.keys(labels).length > 0 ? { labels } : {}),
        ...(Object.keys(driverOpts).length > 0 ? { driverOpts } : {}),
        origin: what,
        notes: [],
      };
    }
  }
}

/** Parses a `--tmpfs /path[:size=64m,mode=1777,...]` spec. */
export function parseTmpfsFlag(spec: string): TmpfsMountSpec {
  const what = `--tmpfs ${JSON.stringify(spec)}`;
  const colon = spec.indexOf(':');
  const target = colon < 0 ? spec : spec.slice(0, colon);
  const optionText = colon < 0 ? '' : spec.slice(colon + 1);
  const cleanTarget = checkTarget(target, what);
  const tmpfs = parseTmpfsOptions(optionText, what);
  return { type: 'tmpfs', target: cleanTarget, readonly: tmpfs.readonly === true, tmpfs, origin: what, notes: [] };
}

export interface VolumesFromSource {
  /** The mounts of the source container (its record's mounts). */
  readonly mounts: readonly ResolvedMount[];
  /** `ro` forces every inherited mount read-only; `rw` keeps each as the source has it. */
  readonly mode: 'ro' | 'rw';
}

export interface ResolveMountsOptions {
  readonly volumes: VolumeStore;
  /** The image's config Volumes paths: each not otherwise covered becomes an anonymous volume. */
  readonly imageVolumes?: readonly string[];
  /** `volumes_from`/`--volumes-from`, in order (a later one wins on the same destination; explicit specs win). */
  readonly volumesFrom?: readonly VolumesFromSource[];
  /** false: never create a missing bind source, even for specs that allow it. @default true */
  readonly createHostPath?: boolean;
  /** false: a named volume that does not exist is an error instead of being created (Docker creates it). @default true */
  readonly createMissingVolumes?: boolean;
  /** Labels given to the volumes created here (e.g. compose's project labels, so `down -v` finds them). */
  readonly volumeLabels?: Readonly<Record<string, string>>;
  /** Finds an image for an `image` mount (throws not-found when it is missing). */
  readonly image?: (ref: string) => Promise<MountableImage>;
}

export interface ResolveMountsResult {
  /** Parents before children (by destination depth), as Docker sorts mounts. */
  readonly mounts: ResolvedMount[];
  /** For the user: options accepted and ignored (`:z`). */
  readonly notes: string[];
  /** Volumes created by this call (named ones that did not exist, and anonymous ones). */
  readonly createdVolumes: string[];
  /** Host directories created for missing bind sources. */
  readonly createdPaths: string[];
}

type Plan =
  | { readonly kind: 'ready'; readonly mount: ResolvedMount }
  | { readonly kind: 'bind'; readonly spec: BindMountSpec; readonly real?: string }
  | { readonly kind: 'volume'; readonly spec: VolumeMountSpec; readonly existing?: VolumeInfo }
  | { readonly kind: 'image'; readonly destination: string };

async function realPathOrMissing(source: string, what: string): Promise<string | undefined> {
  try {
    return await fs.realpath(source);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    if (isErrno(error, 'ENOTDIR'))
      throw invalid(what, `bind source ${source}: a component of the path is not a directory`);
    if (isErrno(error, 'ELOOP')) throw invalid(what, `bind source ${source}: too many levels of symbolic links`);
    throw error;
  }
}

function withReadonly(options: readonly string[], readonly: boolean): string[] {
  const rest = options.filter((option) => option !== 'ro' && option !== 'rw');
  return readonly ? [...rest, 'ro'] : rest;
}

/** The mount of an existing volume at destination, according to its driver options. */
export async function volumeMount(
  volume: VolumeInfo,
  destination: string,
  readonly: boolean,
  nocopy: boolean,
  subpath?: string,
): Promise<ResolvedMount> {
  const backing = parseLocalDriverOptions(volume.Options);
  // a subpath mount never populates the volume (the subpath must exist already, as in Docker)
  const tail = {
    copy: !nocopy && subpath === undefined,
    ...(subpath !== undefined ? { subpath } : {}),
    volumeName: volume.Name,
    ...(volume.Labels[ANONYMOUS_LABEL] !== undefined ? { anonymous: true } : {}),
  };
  if (subpath !== undefined && backing.kind === 'tmpfs') {
    throw new EngineError(
      'invalid',
      `volume ${volume.Name} is a tmpfs: it starts empty, so subpath ${subpath} cannot exist`,
    );
  }
  switch (backing.kind) {
    case 'tmpfs':
      // The runtime copies only into bind mounts: a tmpfs-backed volume starts empty (Docker would copy into it).
      return {
        destination,
        type: 'tmpfs',
        source: 'tmpfs',
        options: tmpfsMountOptions(backing.tmpfs ?? { flags: {}, data: [] }, readonly, {}),
        ...tail,
        copy: false,
      };
    case 'bind': {
      const real = await assertBindDevice(backing.device ?? '');
      const flags = backing.bindFlags ?? [];
      const ro = readonly || flags.includes('ro');
      return {
        destination,
        type: 'bind',
        source: real,
        options: ['rbind', 'rprivate', ...(ro ? ['ro'] : []), ...flags.filter((flag) => flag !== 'ro')],
        ...tail,
      };
    }
    case 'plain': {
      let isDir = false;
      try {
        isDir = (await fs.lstat(volume.Mountpoint)).isDirectory();
      } catch (error) {
        if (!isErrno(error, 'ENOENT')) throw error;
      }
      if (!isDir) {
        throw new EngineError('runtime', `volume ${volume.Name} is damaged: ${volume.Mountpoint} is not a directory`, {
          hint: `remove it (tsfig volume rm ${volume.Name}) and create it again`,
        });
      }
      return {
        destination,
        type: 'bind',
        source: volume.Mountpoint,
        options: withReadonly(['rbind', 'rprivate'], readonly),
        ...tail,
      };
    }
  }
}

function depth(destination: string): number {
  return destination.split('/').length;
}

/**
 * Resolves what a container asks for into the mounts the runtime makes, in order. Validates everything first and
 * changes nothing on bad input; then creates what is missing (bind sources the spec allows to create, named volumes
 * Docker would create, anonymous volumes for `-v /path` and for the image's VOLUME paths not otherwise covered), and
 * removes the volumes it created if a later step fails. Runs under the volume store's lock; callers that go on to
 * write a container record should hold `volumes.withLock` around both.
 */
export async function resolveMounts(
  specs: readonly MountSpec[],
  options: ResolveMountsOptions,
): Promise<ResolveMountsResult> {
  const store = options.volumes;
  return store.withLock(async () => {
    const notes: string[] = [];
    const explicit = new Map<string, string>();
    for (const spec of specs) {
      const previous = explicit.get(spec.target);
      if (previous !== undefined) {
        throw invalid(spec.origin, `duplicate mount point ${spec.target} (also used by ${previous})`);
      }
      explicit.set(spec.target, spec.origin);
      notes.push(...spec.notes);
    }

    // 1. Check everything; no side effects except adopting an interrupted volume create.
    const plans = new Map<string, Plan>();
    for (const source of options.volumesFrom ?? []) {
      for (const mount of source.mounts) {
        const inherited: ResolvedMount = {
          ...mount,
          copy: false,
          options: source.mode === 'ro' ? withReadonly(mount.options, true) : [...mount.options],
        };
        plans.delete(mount.destination);
        plans.set(mount.destination, { kind: 'ready', mount: inherited });
      }
    }
    for (const spec of specs) {
      plans.delete(spec.target);
      switch (spec.type) {
        case 'bind': {
          const real = await realPathOrMissing(spec.source, spec.origin);
          if (real === undefined && !(spec.createHostPath && options.createHostPath !== false)) {
            throw new EngineError('not-found', `${spec.origin}: bind source path does not exist: ${spec.source}`, {
              hint: `create it first (mkdir -p ${spec.source})${spec.createHostPath ? '' : ', or set bind.create_host_path: true'}`,
            });
          }
          plans.set(spec.target, { kind: 'bind', spec, ...(real !== undefined ? { real } : {}) });
          break;
        }
        case 'volume': {
          let existing: VolumeInfo | undefined;
          if (spec.source !== undefined) {
            existing = await store.get(spec.source);
            if (existing === undefined && options.createMissingVolumes === false) {
              throw new EngineError('not-found', `${spec.origin}: no such volume: ${spec.source}`, {
                hint: `create it first: tsfig volume create ${spec.source}`,
              });
            }
          }
          if (spec.subpath !== undefined) checkSubpath(spec.origin, spec.subpath, 'volume');
          const driverOpts = existing?.Options ?? spec.driverOpts ?? {};
          const backing = parseLocalDriverOptions(driverOpts);
          if (backing.kind === 'bind') await assertBindDevice(backing.device ?? '');
          plans.set(spec.target, { kind: 'volume', spec, ...(existing !== undefined ? { existing } : {}) });
          break;
        }
        case 'image': {
          if (options.image === undefined) throw invalid(spec.origin, 'image mounts are not available here');
          const image = await options.image(spec.source);
          if (image.layers.length === 0) throw invalid(spec.origin, `image ${spec.source} has no layers to mount`);
          const subpath = spec.subpath !== undefined ? checkSubpath(spec.origin, spec.subpath, 'image') : undefined;
          plans.set(spec.target, { kind: 'ready', mount: imageMount(spec.target, image, subpath) });
          break;
        }
        case 'tmpfs':
          plans.set(spec.target, {
            kind: 'ready',
            mount: {
              destination: spec.target,
              type: 'tmpfs',
              source: 'tmpfs',
              options: tmpfsMountOptions(spec.tmpfs, spec.readonly, TMPFS_DEFAULT_FLAGS),
              copy: false,
            },
          });
          break;
      }
    }
    for (const raw of options.imageVolumes ?? []) {
      const destination = path.posix.resolve('/', raw).replace(/(.)\/+$/, '$1');
      if (destination === '/' || plans.has(destination)) continue;
      plans.set(destination, { kind: 'image', destination });
    }

    // 2. Create what is missing.
    const createdVolumes: string[] = [];
    const createdPaths: string[] = [];
    const labels = { ...(options.volumeLabels ?? {}) };
    const mounts: ResolvedMount[] = [];
    try {
      for (const [destination, plan] of plans) {
        switch (plan.kind) {
          case 'ready':
            mounts.push(plan.mount);
            break;
          case 'bind': {
            let real = plan.real;
            if (real === undefined) {
              const first = await fs.mkdir(plan.spec.source, { recursive: true, mode: 0o755 });
              if (first !== undefined) createdPaths.push(first);
              real = await fs.realpath(plan.spec.source);
            }
            mounts.push({
              destination,
              type: 'bind',
              source: real,
              options: withReadonly(['rbind', plan.spec.propagation], plan.spec.readonly),
              copy: false,
            });
            break;
          }
          case 'volume': {
            let volume = plan.existing;
            if (volume === undefined) {
              volume = await store.create(plan.spec.source, {
                labels: { ...labels, ...(plan.spec.labels ?? {}) },
                ...(plan.spec.driverOpts !== undefined ? { driverOpts: plan.spec.driverOpts } : {}),
              });
              createdVolumes.push(volume.Name);
            }
            mounts.push(
              await volumeMount(volume, destination, plan.spec.readonly, plan.spec.nocopy, plan.spec.subpath),
            );
            break;
          }
          case 'image': {
            const volume = await store.create(undefined, { labels });
            createdVolumes.push(volume.Name);
            mounts.push(await volumeMount(volume, destination, false, false));
            break;
          }
        }
      }
    } catch (error) {
      for (const name of createdVolumes.reverse()) {
        await store.remove(name, { force: true, usersOf: () => Promise.resolve([]) }).catch(() => undefined);
      }
      throw error;
    }
    const ordered = mounts
      .map((mount, index) => ({ mount, index }))
      .sort((a, b) => depth(a.mount.destination) - depth(b.mount.destination) || a.index - b.index)
      .map(({ mount }) => mount);
    return { mounts: ordered, notes, createdVolumes, createdPaths };
  });
}

/** The runtime.conf lines of mounts (native/PROTOCOL.md), values escaped, one trailing newline per line. */
export function renderMountConf(mounts: readonly ResolvedMount[]): string {
  let text = '';
  const line = (key: string, value: string): void => {
    if (value.includes('\0')) throw new EngineError('invalid', `mount ${key} contains a NUL byte`);
    text += `${key} ${escapeConfValue(value)}\n`;
  };
  for (const mount of mounts) {
    line('mount', mount.destination);
    line('mount.type', mount.type);
    line('mount.source', mount.source);
    line('mount.options', mount.options.join(','));
    if (mount.copy) line('mount.copy', '1');
  }
  return text;
}
