import { EngineError } from '../errors.js';

/** Docker's rule for volume names (moby: RestrictedNamePattern). */
export const VOLUME_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const NAME_RULE = '[a-zA-Z0-9][a-zA-Z0-9_.-]+';

/** Label set on anonymous volumes (Docker's is `com.docker.volume.anonymous`). */
export const ANONYMOUS_LABEL = 'io.tsfig.anonymous';

/** Why name is not a valid volume name, or undefined when it is. */
export function volumeNameProblem(name: string): string | undefined {
  if (name === '') return 'a volume name cannot be empty';
  if (name.includes('/') || name.includes('\\')) {
    return `volume name ${JSON.stringify(name)} contains a path separator; names follow ${NAME_RULE} (to mount a host directory, use an absolute path or one starting with ./)`;
  }
  if (name.length > 255) return `volume name ${JSON.stringify(name.slice(0, 40))}... is longer than 255 characters`;
  if (!VOLUME_NAME_PATTERN.test(name)) {
    return `volume name ${JSON.stringify(name)} includes invalid characters or is too short; names follow ${NAME_RULE} (at least 2 characters)`;
  }
  return undefined;
}

export function assertVolumeName(name: string): void {
  const problem = volumeNameProblem(name);
  if (problem !== undefined) throw new EngineError('invalid', problem);
}

/** Flags the runtime applies to a tmpfs mount; the positive ones only cancel a default. */
const TMPFS_FLAG_PAIRS: ReadonlyArray<readonly [string, string]> = [
  ['noexec', 'exec'],
  ['nosuid', 'suid'],
  ['nodev', 'dev'],
];

export interface TmpfsOptions {
  /** `ro`/`rw` when given. */
  readonly readonly?: boolean;
  /** noexec/nosuid/nodev (true) or exec/suid/dev (false), when given. */
  readonly flags: Readonly<Record<string, boolean>>;
  /** Size in bytes, or a percentage of RAM (`50%`). */
  readonly size?: string;
  readonly mode?: number;
  /** uid=, gid=, nr_inodes=, nr_blocks= as given. */
  readonly data: readonly string[];
}

const UNITS: Readonly<Record<string, number>> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Parses a size (`100m`, `1.5g`, `65536k`, `4096`) to bytes (binary units, as Docker's RAMInBytes); undefined if bad. */
export function parseSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (match === null) return undefined;
  const unit = UNITS[(match[2] ?? '').toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Math.floor(Number(match[1]) * unit);
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined;
}

/** Parses an octal mode (`1777`, `0755`, `755`); undefined if bad. */
export function parseMode(text: string): number | undefined {
  if (!/^0?[0-7]{1,4}$/.test(text)) return undefined;
  const mode = parseInt(text, 8);
  return mode <= 0o7777 ? mode : undefined;
}

export function formatMode(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}

/**
 * Parses a tmpfs option list (`size=64m,mode=1777,noexec`) as `--tmpfs` and the local driver's `o=` take it.
 * `what` names the flag or option in errors.
 */
export function parseTmpfsOptions(text: string, what: string): TmpfsOptions {
  const flags: Record<string, boolean> = {};
  const data: string[] = [];
  let readonly: boolean | undefined;
  let size: string | undefined;
  let mode: number | undefined;
  for (const raw of text.split(',')) {
    const option = raw.trim();
    if (option === '') continue;
    if (option === 'ro' || option === 'rw') {
      readonly = option === 'ro';
      continue;
    }
    const pair = TMPFS_FLAG_PAIRS.find(([neg, pos]) => option === neg || option === pos);
    if (pair !== undefined) {
      flags[pair[0]] = option === pair[0];
      continue;
    }
    const eq = option.indexOf('=');
    const key = eq < 0 ? option : option.slice(0, eq);
    const value = eq < 0 ? '' : option.slice(eq + 1);
    switch (key) {
      case 'size': {
        if (/^\d{1,3}%$/.test(value)) {
          size = value;
          break;
        }
        const bytes = parseSize(value);
        if (bytes === undefined)
          throw new EngineError(
            'invalid',
            `${what}: invalid tmpfs size ${JSON.stringify(value)} (use e.g. 64m, 1g or 50%)`,
          );
        size = String(bytes);
        break;
      }
      case 'mode': {
        const parsed = parseMode(value);
        if (parsed === undefined)
          throw new EngineError(
            'invalid',
            `${what}: invalid tmpfs mode ${JSON.stringify(value)} (an octal mode like 1777)`,
          );
        mode = parsed;
        break;
      }
      case 'uid':
      case 'gid':
      case 'nr_inodes':
      case 'nr_blocks':
        if (!/^\d+[kmg]?$/i.test(value) || ((key === 'uid' || key === 'gid') && !/^\d+$/.test(value))) {
          throw new EngineError('invalid', `${what}: invalid tmpfs option ${JSON.stringify(option)}`);
        }
        data.push(`${key}=${value}`);
        break;
      default:
        throw new EngineError(
          'invalid',
          `${what}: unknown tmpfs option ${JSON.stringify(option)} (supported: ro, rw, [no]exec, [no]suid, [no]dev, size=, mode=, uid=, gid=, nr_inodes=, nr_blocks=)`,
        );
    }
  }
  return {
    ...(readonly !== undefined ? { readonly } : {}),
    flags,
    ...(size !== undefined ? { size } : {}),
    ...(mode !== undefined ? { mode } : {}),
    data,
  };
}

/**
 * The runtime's option list for a tmpfs: `ro` when read-only, then the flags (defaults overridden by what was given),
 * then size, mode and the other data options.
 */
export function tmpfsMountOptions(
  parsed: TmpfsOptions,
  readonly: boolean,
  defaults: Readonly<Record<string, boolean>>,
): string[] {
  const flags = { ...defaults, ...parsed.flags };
  const options: string[] = [];
  if (readonly || parsed.readonly === true) options.push('ro');
  for (const [neg] of TMPFS_FLAG_PAIRS) if (flags[neg] === true) options.push(neg);
  if (parsed.size !== undefined) options.push(`size=${parsed.size}`);
  if (parsed.mode !== undefined) options.push(`mode=${formatMode(parsed.mode)}`);
  options.push(...parsed.data);
  return options;
}

/** Docker's defaults for `--tmpfs` and `--mount type=tmpfs`. */
export const TMPFS_DEFAULT_FLAGS: Readonly<Record<string, boolean>> = { noexec: true, nosuid: true, nodev: true };

/** Options of the `local` driver (docker volume create -o). */
export type LocalDriverKind = 'plain' | 'tmpfs' | 'bind';

export interface LocalDriverOptions {
  readonly kind: LocalDriverKind;
  /** tmpfs: its parsed options. */
  readonly tmpfs?: TmpfsOptions;
  /** bind: the host directory (absolute, as written). */
  readonly device?: string;
  /** bind: extra flags from `o` (ro, nosuid, nodev, noexec). */
  readonly bindFlags?: readonly string[];
}

const VALID_DRIVER_OPTS = ['type', 'device', 'o'];
const MANDATORY: Readonly<Record<string, readonly string[]>> = {
  device: ['type'],
  type: ['device'],
  o: ['device', 'type'],
};

/**
 * Validates the local driver's options as Docker does (type/device/o; `o` needs both, type and device need each
 * other) and narrows them to what tsfig supports: `type=tmpfs` (a fresh tmpfs per mount, with `o` as tmpfs options)
 * and `type=none,o=bind` (a host directory). Does not look at the host; the store checks that a device exists.
 */
export function parseLocalDriverOptions(opts: Readonly<Record<string, string>>): LocalDriverOptions {
  const keys = Object.keys(opts);
  if (keys.length === 0) return { kind: 'plain' };
  for (const key of keys) {
    if (key === 'size') {
      throw new EngineError(
        'unsupported',
        'volume option "size" (quota) is not supported by the local driver of tsfig',
      );
    }
    if (!VALID_DRIVER_OPTS.includes(key)) {
      throw new EngineError(
        'invalid',
        `invalid volume option ${JSON.stringify(key)} for the local driver (valid: ${VALID_DRIVER_OPTS.join(', ')})`,
      );
    }
  }
  for (const [key, required] of Object.entries(MANDATORY)) {
    if (opts[key] === undefined) continue;
    for (const other of required) {
      if (opts[other] === undefined) {
        throw new EngineError(
          'invalid',
          `volume option ${JSON.stringify(key)} requires option ${JSON.stringify(other)}`,
        );
      }
    }
  }
  const type = opts.type ?? '';
  const device = opts.device ?? '';
  const o = opts.o ?? '';
  if (type === 'tmpfs') {
    if (device === '') throw new EngineError('invalid', 'a tmpfs volume needs a device (use device=tmpfs)');
    return { kind: 'tmpfs', tmpfs: parseTmpfsOptions(o, 'volume option "o"') };
  }
  if (type === 'none' || type === 'bind') {
    const words = o
      .split(',')
      .map((word) => word.trim())
      .filter((word) => word !== '');
    if (!words.includes('bind') && !words.includes('rbind')) {
      throw new EngineError(
        'invalid',
        `a volume of type ${JSON.stringify(type)} needs o=bind (type=none,o=bind,device=/path)`,
      );
    }
    const bindFlags: string[] = [];
    for (const word of words) {
      if (word === 'bind' || word === 'rbind' || word === 'rw') continue;
      if (['ro', 'nosuid', 'nodev', 'noexec'].includes(word)) bindFlags.push(word);
      else {
        throw new EngineError(
          'invalid',
          `unknown option ${JSON.stringify(word)} in o= of a bind volume (supported: bind, rbind, ro, rw, nosuid, nodev, noexec)`,
        );
      }
    }
    if (!device.startsWith('/')) {
      throw new EngineError(
        'invalid',
        `the device of a bind volume must be an absolute host path, not ${JSON.stringify(device)}`,
      );
    }
    return { kind: 'bind', device, bindFlags };
  }
  throw new EngineError(
    'unsupported',
    `volume type ${JSON.stringify(type)} is not supported by the local driver of tsfig (supported: type=tmpfs, type=none with o=bind)`,
  );
}
