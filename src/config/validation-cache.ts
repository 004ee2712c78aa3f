import { createHash } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * "This exact document passed this exact validator": the keys of the merged, interpolated project documents that
 * the Compose Specification schema accepted, so a command run again on an unchanged project skips the validator
 * (10-15 ms of compiling and running it per command). Only success is remembered: a document with errors always
 * goes through the validator, which gives the errors their positions.
 *
 * The key is exact: the schema validator is a pure function of the plain values it is given (it neither coerces nor
 * adds defaults), and the key is a hash of the validator's identity and an injective encoding of those values (types
 * included: 1 and "1", null and a missing key, NaN and -0 all differ). Whatever produced the document (files,
 * interpolation with the shell environment and .env, includes, extends, merges) is therefore covered by hashing its
 * result. A value the encoding does not know (anything but plain objects, arrays and scalars) makes the document
 * uncacheable: it is validated as before.
 */
export interface ValidationCache {
  has(key: string): boolean;
  add(key: string): void;
}

/** The cache key of a document for a validator, or undefined when the document cannot be keyed exactly. */
export function documentKey(validatorId: string, document: unknown): string | undefined {
  const parts: string[] = [validatorId, '\n'];
  if (!encode(document, parts, new Set())) return undefined;
  return createHash('sha256').update(parts.join('')).digest('hex');
}

function encode(value: unknown, out: string[], ancestors: Set<object>): boolean {
  switch (typeof value) {
    case 'string':
      out.push(JSON.stringify(value));
      return true;
    case 'number':
      // String() is injective on numbers except for the sign of zero (NaN and ±Infinity included).
      out.push(Object.is(value, -0) ? '-0' : String(value));
      return true;
    case 'bigint':
      out.push(`${value}n`);
      return true;
    case 'boolean':
      out.push(value ? 't' : 'f');
      return true;
    case 'undefined':
      out.push('u');
      return true;
    case 'object':
      break;
    case 'function':
    case 'symbol':
      return false;
  }
  if (value === null) {
    out.push('n');
    return true;
  }
  if (ancestors.has(value)) return false;
  ancestors.add(value);
  let ok = true;
  if (Array.isArray(value)) {
    out.push('[');
    for (let i = 0; i < value.length && ok; i++) {
      if (i > 0) out.push(',');
      // A hole reads as undefined, as the validator sees it.
      ok = encode(value[i], out, ancestors);
    }
    out.push(']');
  } else {
    // Plain objects only: the validator walks keys with for...in, which for these is exactly Object.keys.
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) ok = false;
    const record = value as Record<string, unknown>;
    out.push('{');
    let first = true;
    for (const key of ok ? Object.keys(record) : []) {
      if (!first) out.push(',');
      first = false;
      out.push(JSON.stringify(key), ':');
      if (!encode(record[key], out, ancestors)) {
        ok = false;
        break;
      }
    }
    out.push('}');
  }
  ancestors.delete(value);
  return ok;
}

/** How many keys the file keeps (the most recent ones): a few projects, each with a few variants. */
const MAX_ENTRIES = 64;
const KEY = /^[0-9a-f]{64}$/;
/** A bigger file is not ours (or corrupt): ignored and replaced. */
const MAX_FILE_BYTES = MAX_ENTRIES * 65 + 1024;

/**
 * The cache kept in `file` (one key per line, most recent last). Best effort: an unreadable, corrupt, foreign
 * (another owner, or writable by group or others) or missing file is an empty cache, and a failed write is ignored.
 * Writes are atomic (temp file, rename), so concurrent commands lose at most an entry, never corrupt the file. The
 * file's directory is created (0700) if its parent exists; nothing else is.
 */
export function fileValidationCache(file: string): ValidationCache {
  let keys: string[] | undefined;
  const load = (): string[] => {
    keys ??= readKeys(file);
    return keys;
  };
  return {
    has: (key) => load().includes(key),
    add: (key) => {
      const next = [...load().filter((k) => k !== key), key].slice(-MAX_ENTRIES);
      keys = next;
      try {
        writeKeys(file, next);
      } catch {
        // a cache: a command never fails because of it
      }
    },
  };
}

function readKeys(file: string): string[] {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return [];
  }
  try {
    const stat = fstatSync(fd);
    const uid = process.getuid?.();
    if (!stat.isFile() || (uid !== undefined && stat.uid !== uid) || (stat.mode & 0o022) !== 0) return [];
    if (stat.size > MAX_FILE_BYTES) return [];
    const buffer = Buffer.alloc(stat.size);
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    return buffer
      .toString('latin1', 0, length)
      .split('\n')
      .filter((line) => KEY.test(line));
  } catch {
    return [];
  } finally {
    closeSync(fd);
  }
}

function writeKeys(file: string, keys: readonly string[]): void {
  const dir = path.dirname(file);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  try {
    writeFileSync(tmp, `${keys.join('\n')}\n`, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}
