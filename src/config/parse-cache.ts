import { createHash } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import type { Position } from './diagnostics.js';
import { enginePaths } from '../../engine/state/index.js';
import type { DiagnosticBag } from './diagnostics.js';
import { locations, parseYaml, YamlTag, type ContainerLocation } from './parse.js';

/**
 * A cache of parsed project files (issue 18): the plain values `parseYaml` made of a file, with the positions of
 * every mapping and sequence, keyed by the parser's identity, the file's path and its exact text. A command run
 * again on an unchanged file skips the YAML parser, which in a fresh process (its functions not yet compiled) takes
 * 60 to 110 ms for a 50-service file: the largest part of a short command such as `ps` after Node's own start.
 *
 * Only a file that parsed without any diagnostic is stored, so a hit is exactly what parsing would give: the same
 * values (types included: NaN, ±Infinity and -0 are encoded), the same positions, the same `!reset`/`!override`
 * tags, and an object reached twice stays one object. Interpolation, merging and validation run after it as before;
 * they depend on the environment, the parse does not.
 */
/** The parser's identity (a hash of parse.ts, this file and yaml's version), defined by scripts/bundle.js only. */
declare const TSFIG_PARSER_ID: string | undefined;

let defaultCache: ParseCache | undefined;

/**
 * parseYaml through the cache of the bundled CLI, `<TSFIG_ROOT>/cache/parsed`; from the sources and the tsc output,
 * which have no parser identity to key it with, parseYaml alone. Both give the same result.
 */
export function parseYamlCached(file: string, text: string, bag: DiagnosticBag): unknown {
  if (typeof TSFIG_PARSER_ID !== 'string') return parseYaml(file, text, bag);
  defaultCache ??= fileParseCache(path.join(enginePaths().root, 'cache', 'parsed'));
  return parseThrough(defaultCache, TSFIG_PARSER_ID, file, text, bag);
}

/** parseYaml, or the cached result of an earlier parse of the same text that gave no diagnostic. */
export function parseThrough(
  cache: ParseCache,
  parserId: string,
  file: string,
  text: string,
  bag: DiagnosticBag,
): unknown {
  const key = parseKey(parserId, file, text);
  const hit = cache.get(key);
  if (hit !== undefined) {
    try {
      const value = decodeParsed(hit, file);
      bag.sources.set(file, text);
      return value;
    } catch {
      // a damaged entry: parsed again and replaced
    }
  }
  const before = bag.items.length;
  const value = parseYaml(file, text, bag);
  if (value !== undefined && bag.items.length === before) {
    const encoded = encodeParsed(value);
    if (encoded !== undefined) cache.set(key, encoded);
  }
  return value;
}

export interface ParseCache {
  /** The encoding stored under `key` (encodeParsed's), or undefined. */
  get(key: string): string | undefined;
  set(key: string, encoded: string): void;
}

/** The key of a file's parse for a parser identity: the file's path is part of it (positions name it). */
export function parseKey(parserId: string, file: string, text: string): string {
  return createHash('sha256').update(`${parserId}\0${file}\0`).update(text).digest('hex');
}

type Pos = [number, number];
/**
 * The encoding, as JSON: scalars as themselves (finite numbers but -0), and tagged arrays for the rest:
 * `["m", self, [[key, keyPos|0, valuePos|0, value], ...], id]` a mapping, `["a", self, [[pos, value], ...], id]` a
 * sequence, `["t", tag, value]` a tagged value, `["n", text]` NaN, ±Infinity or -0, `["r", id]` an object already
 * given.
 */
type Encoded = string | number | boolean | null | Encoded[];

/** The encoding of a parsed value, or undefined when it holds something parseYaml does not make. */
export function encodeParsed(value: unknown): string | undefined {
  const ids = new Map<object, number>();
  const pos = (p: Position | undefined): Pos | 0 => (p === undefined ? 0 : [p.line, p.column]);
  const encode = (v: unknown): Encoded => {
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
    if (typeof v === 'number')
      return Number.isFinite(v) && !Object.is(v, -0) ? v : ['n', Object.is(v, -0) ? '-0' : String(v)];
    if (v instanceof YamlTag) return ['t', v.tag, encode(v.value)];
    if (typeof v !== 'object') throw new TypeError(typeof v);
    const seen = ids.get(v);
    if (seen !== undefined) return ['r', seen];
    const id = ids.size;
    ids.set(v, id);
    const location = locations.get(v);
    if (Array.isArray(v)) {
      return ['a', pos(location?.self), v.map((item: unknown, i) => [pos(location?.values.get(i)), encode(item)]), id];
    }
    if (Object.getPrototypeOf(v) !== Object.prototype) throw new TypeError('not a plain object');
    const record = v as Record<string, unknown>;
    return [
      'm',
      pos(location?.self),
      Object.keys(record).map((key) => [
        key,
        pos(location?.keys.get(key)),
        pos(location?.values.get(key)),
        encode(record[key]),
      ]),
      id,
    ];
  };
  try {
    return JSON.stringify(encode(value));
  } catch {
    return undefined;
  }
}

/** The value encodeParsed encoded, with its positions in `file` recorded again; throws on a malformed encoding. */
export function decodeParsed(text: string, file: string): unknown {
  const objects: object[] = [];
  const position = (p: unknown): Position | undefined => {
    if (p === 0) return undefined;
    if (!Array.isArray(p) || typeof p[0] !== 'number' || typeof p[1] !== 'number') throw new Error('bad position');
    return { file, line: p[0], column: p[1] };
  };
  const decode = (encoded: unknown): unknown => {
    if (!Array.isArray(encoded)) {
      const e = encoded;
      if (e === null || typeof e === 'string' || typeof e === 'boolean' || typeof e === 'number') return e;
      throw new Error('bad value');
    }
    const e = encoded as unknown[];
    switch (e[0]) {
      case 'n':
        return e[1] === '-0' ? -0 : Number(e[1]);
      case 't':
        if (e[1] !== 'reset' && e[1] !== 'override') throw new Error('bad tag');
        return new YamlTag(e[1], decode(e[2]));
      case 'r': {
        const target = typeof e[1] === 'number' ? objects[e[1]] : undefined;
        if (target === undefined) throw new Error('bad reference');
        return target;
      }
      case 'a':
      case 'm': {
        const self = position(e[1]) ?? { file, line: 1, column: 1 };
        const location: ContainerLocation = { self, keys: new Map(), values: new Map() };
        const items = e[2];
        if (!Array.isArray(items) || e[3] !== objects.length) throw new Error('bad container');
        if (e[0] === 'a') {
          const out: unknown[] = [];
          objects.push(out);
          items.forEach((item: unknown, index) => {
            const [p, value] = item as [unknown, unknown];
            const at = position(p);
            if (at !== undefined) {
              location.keys.set(index, at);
              location.values.set(index, at);
            }
            out.push(decode(value));
          });
          locations.set(out, location);
          return out;
        }
        const out: Record<string, unknown> = {};
        objects.push(out);
        for (const item of items) {
          const [key, keyPos, valuePos, value] = item as [unknown, unknown, unknown, unknown];
          if (typeof key !== 'string') throw new Error('bad key');
          const k = position(keyPos);
          const v = position(valuePos);
          if (k !== undefined) location.keys.set(key, k);
          if (v !== undefined) location.values.set(key, v);
          out[key] = decode(value);
        }
        locations.set(out, location);
        return out;
      }
      default:
        throw new Error('bad tag');
    }
  };
  return decode(JSON.parse(text));
}

/** How many parsed files the cache keeps (the most recently written): a few projects, each of a few files. */
const MAX_ENTRIES = 64;
/** A bigger entry is not ours (project files are limited to 4 MiB; their encoding is a few times that at most). */
const MAX_ENTRY_BYTES = 64 * 1024 * 1024;
const KEY = /^[0-9a-f]{64}$/;

/**
 * The cache in `dir` (`<key>.json` files: the key on the first line, then the encoding). Best effort, as the validation cache: an
 * unreadable, corrupt, foreign (another owner, or writable by group or others) or missing entry is a miss, and a
 * failed write is ignored. Entries are written whole under a temporary name and renamed. `dir` is created (0700) if
 * its parent exists; nothing else is. Past MAX_ENTRIES, the oldest entries are removed.
 */
export function fileParseCache(dir: string): ParseCache {
  return {
    get: (key) => {
      if (!KEY.test(key)) return undefined;
      const text = readOwnFile(path.join(dir, `${key}.json`));
      if (text === undefined || !text.startsWith(`${key}\n`)) return undefined;
      return text.slice(key.length + 1);
    },
    set: (key, value) => {
      if (!KEY.test(key)) return;
      try {
        write(dir, key, `${key}\n${value}`);
      } catch {
        // a cache: a command never fails because of it
      }
    },
  };
}

function readOwnFile(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const stat = fstatSync(fd);
    const uid = process.getuid?.();
    if (!stat.isFile() || (uid !== undefined && stat.uid !== uid) || (stat.mode & 0o022) !== 0) return undefined;
    if (stat.size > MAX_ENTRY_BYTES) return undefined;
    const buffer = Buffer.alloc(stat.size);
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    return buffer.toString('utf8', 0, length);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

function write(dir: string, key: string, text: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const file = path.join(dir, `${key}.json`);
  const tmp = path.join(dir, `.${key}.${process.pid}.${Date.now().toString(36)}.tmp`);
  try {
    writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
  const entries = readdirSync(dir).filter((name) => name.endsWith('.json') && KEY.test(name.slice(0, -5)));
  if (entries.length <= MAX_ENTRIES) return;
  const aged = entries
    .map((name) => {
      try {
        return { name, mtime: statSync(path.join(dir, name)).mtimeMs };
      } catch {
        return { name, mtime: 0 };
      }
    })
    .sort((a, b) => a.mtime - b.mtime);
  for (const { name } of aged.slice(0, entries.length - MAX_ENTRIES)) rmSync(path.join(dir, name), { force: true });
}
