/**
 * The Dockerfile parser, after moby/buildkit's frontend/dockerfile/parser and instructions packages: parser
 * directives, comments, line continuations, heredocs, exec and shell forms, flags, and one typed node per
 * instruction with its position. Every error is collected (`Dockerfile:LINE:COL: message`) before anything runs.
 * Variables are not substituted here: the builder does it step by step (shell-lex.ts), because ARG and ENV values
 * change along the file.
 */
import path from 'node:path';
import { EngineError } from '../errors.js';

/** A 1-based position in the Dockerfile. */
export interface Position {
  readonly line: number;
  readonly column: number;
}

export interface DockerfileDiagnostic extends Position {
  readonly message: string;
}

/** `RUN ["a","b"]` (exec form, no shell) or `RUN a b` (shell form, run through SHELL). */
export type CommandForm =
  { readonly form: 'exec'; readonly args: readonly string[] } | { readonly form: 'shell'; readonly script: string };

/** A heredoc body (`<<EOF`, `<<-EOF`, `<<"EOF"`). */
export interface Heredoc {
  /** The delimiter, quotes removed. */
  readonly name: string;
  /** `<<-`: leading tabs were stripped from each body line. */
  readonly chomp: boolean;
  /** False when the delimiter was quoted: the body is taken literally. */
  readonly expand: boolean;
  /** The body, each line ending in `\n`. */
  readonly content: string;
  /** The file descriptor before `<<` (`3<<EOF`), if any. */
  readonly fd?: number;
}

/** One `RUN --mount=...` option list, keys lowercased, as written. */
export interface RunMount {
  readonly type: 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
  readonly target: string;
  readonly options: Readonly<Record<string, string>>;
  /** type=secret: the options resolved with BuildKit's defaults. */
  readonly secret?: SecretMount;
}

/** A `RUN --mount=type=secret`: which secret, where, whose. */
export interface SecretMount {
  readonly id: string;
  /** Where its file is mounted (target, else `/run/secrets/<id>`); absent when only `env` is asked. */
  readonly target?: string;
  /** The environment variable of the RUN that holds it. */
  readonly env?: string;
  /** @default false (BuildKit): a secret not given is then not mounted */
  readonly required: boolean;
  /** @default 0o400 */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

export interface KeyValue {
  readonly key: string;
  /** As written: quotes and variables are processed when the step runs. */
  readonly value: string;
}

interface Node extends Position {
  /** The last line the instruction spans (continuations and heredocs included). */
  readonly endLine: number;
  /** The instruction as written, continuation lines joined (for history and step output). */
  readonly original: string;
}

export interface FromInstruction extends Node {
  readonly kind: 'from';
  readonly image: string;
  readonly stageName?: string;
  readonly platform?: string;
}
export interface RunInstruction extends Node {
  readonly kind: 'run';
  readonly command: CommandForm;
  readonly mounts: readonly RunMount[];
  readonly network?: 'default' | 'none' | 'host';
  readonly security?: 'sandbox' | 'insecure';
  readonly heredocs: readonly Heredoc[];
}
export interface CmdInstruction extends Node {
  readonly kind: 'cmd' | 'entrypoint';
  readonly command: CommandForm;
}
export interface CopyInstruction extends Node {
  readonly kind: 'copy' | 'add';
  /** Source words as written; a heredoc source is its `<<NAME` word. */
  readonly sources: readonly string[];
  readonly dest: string;
  readonly from?: string;
  readonly chown?: string;
  readonly chmod?: string;
  readonly link: boolean;
  /** `COPY --parents` (parsed; the builder refuses it for now). */
  readonly parents?: boolean;
  readonly checksum?: string;
  readonly keepGitDir: boolean;
  readonly exclude: readonly string[];
  readonly heredocs: readonly Heredoc[];
}
export interface KeyValueInstruction extends Node {
  readonly kind: 'env' | 'label';
  readonly pairs: readonly KeyValue[];
}
export interface ArgInstruction extends Node {
  readonly kind: 'arg';
  readonly args: readonly { readonly name: string; readonly value?: string }[];
}
export interface ValueInstruction extends Node {
  readonly kind: 'workdir' | 'user' | 'stopsignal' | 'maintainer';
  readonly value: string;
}
export interface ListInstruction extends Node {
  readonly kind: 'expose' | 'volume';
  readonly values: readonly string[];
}
export interface HealthcheckInstruction extends Node {
  readonly kind: 'healthcheck';
  /** null = `HEALTHCHECK NONE`. */
  readonly command: CommandForm | null;
  readonly interval?: string;
  readonly timeout?: string;
  readonly startPeriod?: string;
  readonly startInterval?: string;
  readonly retries?: number;
}
export interface ShellInstruction extends Node {
  readonly kind: 'shell';
  readonly shell: readonly string[];
}
export interface OnbuildInstruction extends Node {
  readonly kind: 'onbuild';
  /** The trigger as written (`RUN echo hi`), stored in the image config's OnBuild. */
  readonly expression: string;
  readonly trigger: Instruction;
}

export type Instruction =
  | FromInstruction
  | RunInstruction
  | CmdInstruction
  | CopyInstruction
  | KeyValueInstruction
  | ArgInstruction
  | ValueInstruction
  | ListInstruction
  | HealthcheckInstruction
  | ShellInstruction
  | OnbuildInstruction;

export interface Dockerfile {
  /** Parser directives (`# syntax=...`, `# escape=...`), names lowercased. */
  readonly directives: Readonly<Record<string, string>>;
  readonly escape: string;
  readonly instructions: readonly Instruction[];
}

export interface ParseResult {
  readonly dockerfile: Dockerfile;
  readonly errors: readonly DockerfileDiagnostic[];
}

export const INSTRUCTIONS = [
  'ADD',
  'ARG',
  'CMD',
  'COPY',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'FROM',
  'HEALTHCHECK',
  'LABEL',
  'MAINTAINER',
  'ONBUILD',
  'RUN',
  'SHELL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
] as const;

const HEREDOC_INSTRUCTIONS = new Set(['RUN', 'COPY', 'ADD']);
const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);
const DIRECTIVE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

/** Flags each instruction accepts: name → `string`, `bool` or `list` (repeatable). */
const FLAGS: Readonly<Record<string, Readonly<Record<string, 'string' | 'bool' | 'list'>>>> = {
  FROM: { platform: 'string' },
  RUN: { mount: 'list', network: 'string', security: 'string' },
  COPY: { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'list' },
  ADD: {
    chown: 'string',
    chmod: 'string',
    link: 'bool',
    checksum: 'string',
    'keep-git-dir': 'bool',
    exclude: 'list',
  },
  HEALTHCHECK: {
    interval: 'string',
    timeout: 'string',
    'start-period': 'string',
    'start-interval': 'string',
    retries: 'string',
  },
};

class ParseError extends Error {
  readonly column: number | undefined;
  constructor(message: string, column?: number) {
    super(message);
    this.column = column;
  }
}

/** Levenshtein distance, for did-you-mean. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const saved = row[j] ?? 0;
      row[j] = Math.min((row[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = saved;
    }
  }
  return row[b.length] ?? 0;
}

/** The closest of candidates within a distance of 2 (1 for short words). */
function suggestFrom(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = distance(word, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= (word.length <= 3 ? 1 : 2) ? best : undefined;
}

/** The closest instruction name within a distance of 2 (1 for short names). */
export function suggestInstruction(word: string): string | undefined {
  const upper = word.toUpperCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of INSTRUCTIONS) {
    const d = distance(upper, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  const limit = upper.length <= 3 ? 1 : 2;
  return bestDistance <= limit ? best : undefined;
}

/** A JSON array of strings (exec form), as Docker decides; undefined when the text is not one. */
function jsonArray(text: string): string[] | undefined {
  const trimmed = text.trim();
  if (!trimmed.startsWith('[') || !trimmed.endsWith(']')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  const items: unknown[] = parsed;
  return items.every((item): item is string => typeof item === 'string') ? items : undefined;
}

/** Words split on unquoted whitespace with quotes and escapes kept (buildkit parseWords, for ENV/LABEL/ARG). */
function quotedWords(text: string, escape: string): string[] {
  const words: string[] = [];
  let word = '';
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] ?? '';
    if (quote === undefined && /\s/.test(ch)) {
      if (word !== '') words.push(word);
      word = '';
      continue;
    }
    if (ch === escape && quote !== "'" && i + 1 < text.length) {
      word += ch + (text[i + 1] ?? '');
      i++;
      continue;
    }
    if (quote === undefined && (ch === '"' || ch === "'")) quote = ch;
    else if (quote === ch) quote = undefined;
    word += ch;
  }
  if (word !== '') words.push(word);
  return words;
}

function fields(text: string): string[] {
  return text.split(/\s+/).filter((word) => word !== '');
}

interface Flags {
  readonly values: Map<string, string | boolean | string[]>;
  /** The column of each value of a list flag, in order (errors in a `--mount` point at it). */
  readonly columns: Map<string, number[]>;
}

interface Line {
  readonly keyword: string;
  readonly rest: string;
  readonly line: number;
  readonly column: number;
  /** Column where rest starts on the first line (for error positions). */
  readonly restColumn: number;
  readonly original: string;
}

/** The next flag word at the start of text: quotes group and are removed (buildkit extractBuilderFlags). */
function flagWord(text: string): { word: string; length: number } | undefined {
  const lead = /^\s*/.exec(text)?.[0].length ?? 0;
  if (!text.startsWith('--', lead)) return undefined;
  let word = '';
  let quote: string | undefined;
  let i = lead;
  for (; i < text.length; i++) {
    const ch = text[i] ?? '';
    if (quote === undefined && /\s/.test(ch)) break;
    if (quote === undefined && (ch === '"' || ch === "'")) quote = ch;
    else if (quote === ch) quote = undefined;
    else word += ch;
  }
  return { word, length: i };
}

/** Splits leading `--flag[=value]` words off rest and checks them against the instruction's flags. */
function parseFlags(keyword: string, line: Line): { flags: Flags; rest: string } {
  const allowed = FLAGS[keyword] ?? {};
  const values = new Map<string, string | boolean | string[]>();
  const columns = new Map<string, number[]>();
  let rest = line.rest;
  let offset = 0;
  for (;;) {
    const next = flagWord(rest);
    if (next === undefined) break;
    const word = next.word;
    const column = line.restColumn + offset + (/^\s*/.exec(rest)?.[0].length ?? 0);
    offset += next.length;
    rest = rest.slice(next.length);
    if (word === '--') break;
    const eq = word.indexOf('=');
    const name = (eq < 0 ? word.slice(2) : word.slice(2, eq)).toLowerCase();
    const value = eq < 0 ? undefined : word.slice(eq + 1);
    const type = allowed[name];
    if (type === undefined) throw new ParseError(`unknown flag: --${name}`, column);
    if (type === 'bool') {
      if (value !== undefined && !['true', 'false'].includes(value.toLowerCase())) {
        throw new ParseError(`expecting boolean value for flag --${name}, not: ${value}`, column);
      }
      if (values.has(name)) throw new ParseError(`duplicate flag specified: --${name}`, column);
      values.set(name, value === undefined || value.toLowerCase() === 'true');
      continue;
    }
    if (value === undefined) throw new ParseError(`missing a value on flag: --${name}`, column);
    if (type === 'list') {
      const list = values.get(name);
      values.set(name, [...(Array.isArray(list) ? list : []), value]);
      columns.set(name, [...(columns.get(name) ?? []), column]);
      continue;
    }
    if (values.has(name)) throw new ParseError(`duplicate flag specified: --${name}`, column);
    values.set(name, value);
  }
  return { flags: { values, columns }, rest: rest.trim() };
}

function flagString(flags: Flags, name: string): string | undefined {
  const value = flags.values.get(name);
  return typeof value === 'string' ? value : undefined;
}

function flagList(flags: Flags, name: string): string[] {
  const value = flags.values.get(name);
  return Array.isArray(value) ? value : [];
}

function command(rest: string): CommandForm {
  const args = jsonArray(rest);
  return args !== undefined ? { form: 'exec', args } : { form: 'shell', script: rest };
}

function requireArgs(keyword: string, rest: string): void {
  if (rest.trim() === '') throw new ParseError(`${keyword} requires at least one argument`);
}

function parseKeyValues(keyword: string, rest: string, escape: string): KeyValue[] {
  requireArgs(keyword, rest);
  const words = quotedWords(rest, escape);
  const first = words[0] ?? '';
  if (!first.includes('=')) {
    // legacy `ENV key value with spaces`
    const parts = /^(\S+)\s+([\s\S]+)$/.exec(rest.trim());
    if (parts === null) throw new ParseError(`${keyword} must have two arguments`);
    return [{ key: parts[1] ?? '', value: parts[2] ?? '' }];
  }
  return words.map((word) => {
    const eq = word.indexOf('=');
    if (eq < 0) {
      throw new ParseError(`syntax error - can't find = in "${word}". Must be of the form: name=value`);
    }
    const key = word.slice(0, eq);
    if (key === '') throw new ParseError(`${keyword} names can not be blank`);
    return { key, value: word.slice(eq + 1) };
  });
}

const MOUNT_KEYS = [
  'type',
  'from',
  'source',
  'src',
  'target',
  'dst',
  'destination',
  'readonly',
  'ro',
  'rw',
  'readwrite',
  'id',
  'sharing',
  'required',
  'mode',
  'uid',
  'gid',
  'size',
  'env',
];

/** strconv.ParseBool's spellings. */
function mountBool(key: string, value: string, column: number | undefined): boolean {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false;
  throw new ParseError(`invalid value for ${key}: ${value}`, column);
}

/**
 * One `--mount` value (BuildKit's parseMount and validateMount, with its messages): keys checked, `required` only for
 * secret and ssh, `mode` (octal) `uid` `gid` (decimal) only for secret, ssh and cache; a secret's id is `id` (or
 * `source`), else the base name of `target`; its file is at `target`, else `/run/secrets/<id>` unless only `env`
 * is asked.
 */
function parseMount(spec: string, column: number | undefined): RunMount {
  const options: Record<string, string> = {};
  for (const part of spec.split(',')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).toLowerCase();
    if (!MOUNT_KEYS.includes(key)) {
      const hint = suggestFrom(key, MOUNT_KEYS);
      throw new ParseError(
        `unexpected key '${key}' in '${part}'${hint !== undefined ? ` (did you mean ${hint}?)` : ''}`,
        column,
      );
    }
    options[key] = eq < 0 ? 'true' : part.slice(eq + 1);
  }
  const type = options.type ?? 'bind';
  if (!['bind', 'cache', 'tmpfs', 'secret', 'ssh'].includes(type)) {
    throw new ParseError(`unsupported mount type "${type}"`, column);
  }
  const target = options.target ?? options.dst ?? options.destination ?? '';
  if (target === '' && type !== 'secret' && type !== 'ssh') {
    throw new ParseError(`mount type=${type} needs a target (--mount=type=${type},target=/path)`, column);
  }
  const fileInfo = type === 'secret' || type === 'ssh' || type === 'cache';
  for (const key of ['mode', 'uid', 'gid'] as const) {
    const value = options[key];
    if (value === undefined) continue;
    if (!fileInfo) throw new ParseError(`${key} not allowed for "${type}" type mounts`, column);
    const valid =
      key === 'mode' ? /^[0-7]{1,11}$/.test(value) : /^\d{1,10}$/.test(value) && Number(value) <= 0xffffffff;
    if (!valid) throw new ParseError(`invalid value ${value} for ${key}`, column);
  }
  if (options.required !== undefined && type !== 'secret' && type !== 'ssh') {
    throw new ParseError(`unexpected key 'required' for mount type '${type}'`, column);
  }
  if (options.env !== undefined && type !== 'secret') {
    throw new ParseError(`unexpected key 'env' for mount type '${type}'`, column);
  }
  const mount = { type: type as RunMount['type'], target, options };
  if (type !== 'secret') return mount;
  if (options.from !== undefined) throw new ParseError('secret mount should not have a from', column);
  if (options.sharing !== undefined) throw new ParseError('secret mount should not define sharing', column);
  const source = options.source ?? options.src;
  if (source !== undefined && options.id !== undefined) throw new ParseError("both source and id can't be set", column);
  const env = options.env;
  if (env !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(env)) {
    throw new ParseError(`invalid value ${env} for env: a variable name ([A-Za-z_][A-Za-z0-9_]*)`, column);
  }
  const id = options.id ?? source ?? (target !== '' ? path.posix.basename(target) : '');
  if (id === '') throw new ParseError('invalid secret mount. one of id, source, target required', column);
  const required = options.required !== undefined && mountBool('required', options.required, column);
  const file = target !== '' ? target : env === undefined ? `/run/secrets/${id}` : undefined;
  return {
    ...mount,
    secret: {
      id,
      ...(file !== undefined ? { target: file } : {}),
      ...(env !== undefined ? { env } : {}),
      required,
      mode: options.mode !== undefined ? parseInt(options.mode, 8) : 0o400,
      uid: options.uid !== undefined ? Number(options.uid) : 0,
      gid: options.gid !== undefined ? Number(options.gid) : 0,
    },
  };
}

/** Heredoc words in an instruction's arguments (buildkit reHeredoc), in order. */
function heredocMarkers(rest: string): { name: string; chomp: boolean; expand: boolean; fd?: number }[] {
  const markers: { name: string; chomp: boolean; expand: boolean; fd?: number }[] = [];
  for (const word of fields(rest)) {
    const match = /^(\d*)<<(-?)(['"]?)([^<'"]+)\3$/.exec(word);
    if (match === null) continue;
    const fd = match[1] === '' ? undefined : Number(match[1]);
    markers.push({
      name: match[4] ?? '',
      chomp: match[2] === '-',
      expand: match[3] === '',
      ...(fd !== undefined ? { fd } : {}),
    });
  }
  return markers;
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** A Go duration (`30s`, `1m30s`, `500ms`) in nanoseconds; undefined when invalid. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let index = 0;
  while (index < text.length) {
    re.lastIndex = index;
    const match = re.exec(text);
    if (match === null) return undefined;
    total += Number(match[1]) * (DURATION_UNITS[match[2] ?? ''] ?? 0);
    index = re.lastIndex;
  }
  return text === '' ? undefined : Math.round(total);
}

function parseHealthcheck(line: Line, flags: Flags, rest: string): Omit<HealthcheckInstruction, keyof Node> {
  requireArgs('HEALTHCHECK', rest);
  const match = /^(\S+)\s*([\s\S]*)$/.exec(rest) ?? [];
  const type = (match[1] ?? '').toUpperCase();
  if (type === 'NONE') {
    if ((match[2] ?? '') !== '' || flags.values.size > 0) {
      throw new ParseError('HEALTHCHECK NONE takes no arguments');
    }
    return { kind: 'healthcheck', command: null };
  }
  if (type !== 'CMD') throw new ParseError(`unknown type "${match[1]}" in HEALTHCHECK (try CMD)`, line.restColumn);
  const body = match[2] ?? '';
  if (body.trim() === '') throw new ParseError('HEALTHCHECK CMD requires a command');
  const result: { -readonly [K in keyof HealthcheckInstruction]?: HealthcheckInstruction[K] } = {
    kind: 'healthcheck',
    command: command(body),
  };
  const durations = [
    ['interval', 'interval'],
    ['timeout', 'timeout'],
    ['start-period', 'startPeriod'],
    ['start-interval', 'startInterval'],
  ] as const;
  for (const [flag, key] of durations) {
    const value = flagString(flags, flag);
    if (value === undefined) continue;
    const ns = parseDuration(value);
    if (ns === undefined) throw new ParseError(`invalid duration for --${flag}: "${value}"`);
    if (ns !== 0 && ns < 1e6) throw new ParseError(`--${flag} cannot be less than 1ms`);
    result[key] = value;
  }
  const retries = flagString(flags, 'retries');
  if (retries !== undefined) {
    if (!/^\d+$/.test(retries)) throw new ParseError(`invalid value for --retries: "${retries}"`);
    result.retries = Number(retries);
  }
  return result as Omit<HealthcheckInstruction, keyof Node>;
}

function parseFrom(flags: Flags, rest: string): Omit<FromInstruction, keyof Node> {
  const words = fields(rest);
  if (words.length !== 1 && !(words.length === 3 && words[1]?.toLowerCase() === 'as')) {
    throw new ParseError('FROM requires either one or three arguments (FROM image [AS name])');
  }
  const platform = flagString(flags, 'platform');
  const stageName = words[2]?.toLowerCase();
  if (stageName !== undefined && !STAGE_NAME.test(stageName)) {
    throw new ParseError(
      `invalid name for build stage: "${words[2]}", name can't start with a number or contain symbols`,
    );
  }
  return {
    kind: 'from',
    image: words[0] ?? '',
    ...(stageName !== undefined ? { stageName } : {}),
    ...(platform !== undefined ? { platform } : {}),
  };
}

function parseRun(flags: Flags, rest: string, heredocs: Heredoc[]): Omit<RunInstruction, keyof Node> {
  requireArgs('RUN', rest);
  const network = flagString(flags, 'network');
  if (network !== undefined && !['default', 'none', 'host'].includes(network)) {
    throw new ParseError(`network mode "${network}" not supported (use default, none or host)`);
  }
  const security = flagString(flags, 'security');
  if (security !== undefined && !['sandbox', 'insecure'].includes(security)) {
    throw new ParseError(`security mode "${security}" not supported (use sandbox or insecure)`);
  }
  let script: CommandForm = command(rest);
  const only = heredocs[0];
  if (script.form === 'shell' && heredocs.length > 0) {
    // `RUN <<EOF` alone runs the body; otherwise the shell gets the line and the heredocs, as buildkit does.
    const sole = heredocs.length === 1 && only !== undefined && /^\d*<<-?['"]?[^<'"]+['"]?$/.test(rest.trim());
    script = {
      form: 'shell',
      script: sole ? only.content : `${rest}\n${heredocs.map((doc) => `${doc.content}${doc.name}\n`).join('')}`,
    };
  }
  return {
    kind: 'run',
    command: script,
    mounts: flagList(flags, 'mount').map((spec, index) => parseMount(spec, flags.columns.get('mount')?.[index])),
    ...(network !== undefined ? { network: network as RunInstruction['network'] & string } : {}),
    ...(security !== undefined ? { security: security as RunInstruction['security'] & string } : {}),
    heredocs,
  };
}

function parseCopy(
  keyword: 'COPY' | 'ADD',
  flags: Flags,
  rest: string,
  heredocs: Heredoc[],
): Omit<CopyInstruction, keyof Node> {
  requireArgs(keyword, rest);
  const words = jsonArray(rest) ?? fields(rest);
  if (words.length < 2) {
    throw new ParseError(
      `${keyword} requires at least two arguments, but only one was provided. Destination could not be determined`,
    );
  }
  const optional = (name: string): Record<string, string> => {
    const value = flagString(flags, name);
    return value !== undefined ? { [name]: value } : {};
  };
  return {
    kind: keyword === 'COPY' ? 'copy' : 'add',
    sources: words.slice(0, -1),
    dest: words.at(-1) ?? '',
    ...optional('from'),
    ...optional('chown'),
    ...optional('chmod'),
    link: flags.values.get('link') === true,
    ...(flags.values.get('parents') === true ? { parents: true } : {}),
    ...optional('checksum'),
    keepGitDir: flags.values.get('keep-git-dir') === true,
    exclude: flagList(flags, 'exclude'),
    heredocs,
  };
}

type Body = Instruction extends infer I ? (I extends Instruction ? Omit<I, keyof Node> : never) : never;

function parseBody(keyword: string, line: Line, escape: string, heredocs: Heredoc[], depth: number): Body {
  const { flags, rest } = parseFlags(keyword, line);
  switch (keyword) {
    case 'FROM':
      return parseFrom(flags, rest);
    case 'RUN':
      return parseRun(flags, rest, heredocs);
    case 'CMD':
    case 'ENTRYPOINT':
      requireArgs(keyword, rest);
      return { kind: keyword === 'CMD' ? 'cmd' : 'entrypoint', command: command(rest) };
    case 'COPY':
    case 'ADD':
      return parseCopy(keyword, flags, rest, heredocs);
    case 'ENV':
    case 'LABEL':
      return { kind: keyword === 'ENV' ? 'env' : 'label', pairs: parseKeyValues(keyword, rest, escape) };
    case 'ARG': {
      requireArgs(keyword, rest);
      const args = quotedWords(rest, escape).map((word) => {
        const eq = word.indexOf('=');
        const name = eq < 0 ? word : word.slice(0, eq);
        if (name === '') throw new ParseError('ARG names can not be blank');
        return eq < 0 ? { name } : { name, value: word.slice(eq + 1) };
      });
      return { kind: 'arg', args };
    }
    case 'WORKDIR':
    case 'USER':
    case 'STOPSIGNAL':
    case 'MAINTAINER':
      requireArgs(keyword, rest);
      if (keyword === 'STOPSIGNAL' && fields(rest).length > 1) {
        throw new ParseError('STOPSIGNAL requires exactly one argument');
      }
      return { kind: keyword.toLowerCase() as ValueInstruction['kind'], value: rest };
    case 'EXPOSE':
      requireArgs(keyword, rest);
      return { kind: 'expose', values: fields(rest) };
    case 'VOLUME': {
      requireArgs(keyword, rest);
      const values = jsonArray(rest) ?? fields(rest);
      if (values.some((value) => value.trim() === ''))
        throw new ParseError('VOLUME specified can not be an empty string');
      return { kind: 'volume', values };
    }
    case 'HEALTHCHECK':
      return parseHealthcheck(line, flags, rest);
    case 'SHELL': {
      requireArgs(keyword, rest);
      const shell = jsonArray(rest);
      if (shell === undefined) throw new ParseError('SHELL requires the arguments to be in JSON form');
      if (shell.length === 0) throw new ParseError('SHELL requires at least one argument');
      return { kind: 'shell', shell };
    }
    case 'ONBUILD':
      return parseOnbuild(line, rest, escape, depth);
    default:
      throw new ParseError(`unknown instruction: ${keyword}`);
  }
}

function parseOnbuild(line: Line, rest: string, escape: string, depth: number): Body {
  requireArgs('ONBUILD', rest);
  const match = /^(\S+)(\s*)([\s\S]*)$/.exec(rest) ?? [];
  const inner = (match[1] ?? '').toUpperCase();
  if (inner === 'ONBUILD') throw new ParseError("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  if (inner === 'FROM' || inner === 'MAINTAINER') {
    throw new ParseError(`${inner} isn't allowed as an ONBUILD trigger`);
  }
  if (!(INSTRUCTIONS as readonly string[]).includes(inner)) {
    const suggestion = suggestInstruction(inner);
    throw new ParseError(
      `unknown instruction: ${match[1]}${suggestion !== undefined ? ` (did you mean ${suggestion}?)` : ''}`,
      line.restColumn,
    );
  }
  const innerLine: Line = {
    ...line,
    keyword: inner,
    rest: match[3] ?? '',
    restColumn: line.restColumn + (match[1] ?? '').length + (match[2] ?? '').length,
  };
  const body = parseBody(inner, innerLine, escape, [], depth + 1);
  const trigger = {
    ...body,
    line: line.line,
    column: line.restColumn,
    endLine: line.line,
    original: rest,
  } as Instruction;
  return { kind: 'onbuild', expression: rest, trigger };
}

interface Directives {
  directives: Record<string, string>;
  escape: string;
  next: number;
  errors: DockerfileDiagnostic[];
}

function readDirectives(lines: readonly string[]): Directives {
  const directives: Record<string, string> = {};
  const errors: DockerfileDiagnostic[] = [];
  let escape = '\\';
  let index = 0;
  for (; index < lines.length; index++) {
    const match = DIRECTIVE.exec(lines[index] ?? '');
    if (match === null) break;
    const name = (match[1] ?? '').toLowerCase();
    const value = match[2] ?? '';
    if (!KNOWN_DIRECTIVES.has(name)) continue;
    if (name in directives) {
      errors.push({ line: index + 1, column: 1, message: `only one ${name} parser directive can be used` });
      continue;
    }
    directives[name] = value;
    if (name === 'escape') {
      if (value !== '\\' && value !== '`') {
        errors.push({ line: index + 1, column: 1, message: `invalid escape token '${value}' does not match \` or \\` });
      } else escape = value;
    }
  }
  return { directives, escape, next: index, errors };
}

/** Parses a Dockerfile; errors are collected, never thrown. */
export function parseDockerfile(input: string): ParseResult {
  const lines = input.replace(/^\uFEFF/, '').split(/\r?\n/);
  const { directives, escape, next, errors } = readDirectives(lines);
  const instructions: Instruction[] = [];
  const continuation = new RegExp(`${escape === '\\' ? '\\\\' : '`'}[ \\t]*$`);
  let index = next;
  while (index < lines.length) {
    const first = lines[index] ?? '';
    const trimmed = first.trimStart();
    if (trimmed === '' || trimmed.startsWith('#')) {
      index++;
      continue;
    }
    const start = index;
    const column = first.length - trimmed.length + 1;
    let text = trimmed;
    index++;
    let lastLine = index; // 1-based number of the last line the instruction uses
    while (continuation.test(text)) {
      text = text.replace(continuation, '');
      let joined = false;
      while (index < lines.length) {
        const raw = lines[index] ?? '';
        index++;
        if (raw.trim() === '' || raw.trimStart().startsWith('#')) continue; // comments and blank lines inside
        text += raw;
        lastLine = index;
        joined = true;
        break;
      }
      if (!joined) break;
    }
    const match = /^(\S+)(\s*)([\s\S]*)$/.exec(text) ?? [];
    const word = match[1] ?? '';
    const keyword = word.toUpperCase();
    const line: Line = {
      keyword,
      rest: (match[3] ?? '').trimEnd(),
      line: start + 1,
      column,
      restColumn: column + word.length + (match[2] ?? '').length,
      original: `${word}${match[2] ?? ''}${(match[3] ?? '').trimEnd()}`,
    };
    // heredoc bodies follow the instruction line
    const heredocs: Heredoc[] = [];
    if (HEREDOC_INSTRUCTIONS.has(keyword) && line.rest.includes('<<')) {
      for (const marker of heredocMarkers(line.rest)) {
        let content = '';
        let closed = false;
        while (index < lines.length) {
          let body = lines[index] ?? '';
          index++;
          if (marker.chomp) body = body.replace(/^\t+/, '');
          if (body === marker.name) {
            closed = true;
            break;
          }
          lastLine = index;
          content += `${body}\n`;
        }
        if (closed) lastLine = index;
        if (!closed) {
          errors.push({ line: start + 1, column, message: `unterminated heredoc: missing "${marker.name}" line` });
        }
        const { fd, ...rest } = marker;
        heredocs.push({ ...rest, content, ...(fd !== undefined ? { fd } : {}) });
      }
    }
    const node = { line: start + 1, column, endLine: lastLine, original: line.original };
    if (!(INSTRUCTIONS as readonly string[]).includes(keyword)) {
      const suggestion = suggestInstruction(keyword);
      errors.push({
        line: start + 1,
        column,
        message: `unknown instruction: ${word}${suggestion !== undefined ? ` (did you mean ${suggestion}?)` : ''}`,
      });
      continue;
    }
    try {
      instructions.push({ ...parseBody(keyword, line, escape, heredocs, 0), ...node });
    } catch (error) {
      if (!(error instanceof ParseError)) throw error;
      errors.push({ line: start + 1, column: error.column ?? column, message: error.message });
    }
  }
  errors.push(...checkStages(instructions, errors.length === 0));
  errors.sort((a, b) => a.line - b.line || a.column - b.column);
  return { dockerfile: { directives, escape, instructions }, errors };
}

/** Stage structure: FROM first (after global ARGs), unique stage names, at least one instruction. */
function checkStages(instructions: readonly Instruction[], clean: boolean): DockerfileDiagnostic[] {
  const errors: DockerfileDiagnostic[] = [];
  if (instructions.length === 0) {
    if (clean) errors.push({ line: 1, column: 1, message: 'the Dockerfile has no instructions' });
    return errors;
  }
  const firstStep = instructions.find((instruction) => instruction.kind !== 'arg');
  if (firstStep !== undefined && firstStep.kind !== 'from') {
    errors.push({
      line: firstStep.line,
      column: firstStep.column,
      message: 'no build stage in current context: FROM must come first',
    });
  }
  if (firstStep === undefined && clean) {
    const last = instructions.at(-1);
    errors.push({
      line: last?.line ?? 1,
      column: last?.column ?? 1,
      message: 'the Dockerfile has no FROM instruction',
    });
  }
  const names = new Map<string, number>();
  for (const instruction of instructions) {
    if (instruction.kind !== 'from' || instruction.stageName === undefined) continue;
    const seen = names.get(instruction.stageName);
    if (seen !== undefined) {
      errors.push({
        line: instruction.line,
        column: instruction.column,
        message: `duplicate stage name "${instruction.stageName}" (first defined on line ${seen})`,
      });
    } else names.set(instruction.stageName, instruction.line);
  }
  return errors;
}

/** `Dockerfile:LINE:COL: message`, one per line. */
export function formatDiagnostics(errors: readonly DockerfileDiagnostic[], file = 'Dockerfile'): string {
  return errors.map((error) => `${file}:${error.line}:${error.column}: ${error.message}`).join('\n');
}

/** Parses and throws an EngineError listing every problem, before anything runs. */
export function parseDockerfileOrThrow(input: string, file = 'Dockerfile'): Dockerfile {
  const { dockerfile, errors } = parseDockerfile(input);
  if (errors.length > 0) {
    throw new EngineError('invalid', formatDiagnostics(errors, file), {
      hint:
        errors.length === 1
          ? 'fix the Dockerfile line above; nothing was built'
          : `fix the ${errors.length} Dockerfile lines above; nothing was built`,
    });
  }
  return dockerfile;
}
