/** Parsers for the scalar syntaxes of compose files. Each throws `ValueError` with a user-facing message. */

export class ValueError extends Error {
  readonly hint: string | undefined;
  constructor(message: string, hint?: string) {
    super(message);
    this.name = 'ValueError';
    this.hint = hint;
  }
}

const durationUnits: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration (`1m30s`, `1.5s`, `500ms`) in milliseconds; a bare number is seconds (compose's v1 behaviour). */
export function parseDuration(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value * 1000;
  const text = String(value).trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const part = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = part.exec(text); match !== null; match = part.exec(text)) {
    total += Number(match[1]) * (durationUnits[match[2] ?? 's'] ?? 0);
    consumed = part.lastIndex;
  }
  if (text === '' || consumed !== text.length) {
    throw new ValueError(
      `${JSON.stringify(value)} is not a duration`,
      'write a number with a unit: 1h, 1m30s, 10s, 500ms',
    );
  }
  return Math.round(total * 1000) / 1000;
}

/**
 * Milliseconds as Go prints a time.Duration (what `docker compose config` prints): `10s`, `1m30s`, `1h0m0s`,
 * `1.5s`, `500ms`, `0s`. parseDuration reads it back to the same number.
 */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  const ns = Math.round(Math.abs(ms) * 1e6);
  const fraction = (value: number, unit: number) => {
    const whole = Math.floor(value / unit);
    const rest = value % unit;
    if (rest === 0) return String(whole);
    return `${whole}.${String(rest)
      .padStart(String(unit).length - 1, '0')
      .replace(/0+$/, '')}`;
  };
  if (ns < 1000) return `${sign}${ns}ns`;
  if (ns < 1e6) return `${sign}${fraction(ns, 1000)}µs`;
  if (ns < 1e9) return `${sign}${fraction(ns, 1e6)}ms`;
  const hours = Math.floor(ns / 3.6e12);
  const minutes = Math.floor((ns % 3.6e12) / 6e10);
  const seconds = fraction(ns % 6e10, 1e9);
  return `${sign}${hours > 0 ? `${hours}h` : ''}${hours > 0 || minutes > 0 ? `${minutes}m` : ''}${seconds}s`;
}

const sizeUnits: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** A size (`512m`, `1g`, `1.5GB`, `100000`) in bytes; units are binary, as docker's RAMInBytes. */
export function parseBytes(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  const text = String(value).trim();
  const match = /^(\d+(?:\.\d+)?) ?([kmgtp]?)(?:i?b)?$/i.exec(text);
  if (!match) {
    throw new ValueError(
      `${JSON.stringify(value)} is not a size`,
      'write a number of bytes or a number with a unit: 512m, 1g, 64k',
    );
  }
  return Math.round(Number(match[1]) * (sizeUnits[(match[2] ?? '').toLowerCase()] ?? 1));
}

/** Integer from a number or a numeric string. */
export function parseInteger(value: unknown, what = 'an integer'): number {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && /^-?\d+$/.test(value.trim())) return Number(value.trim());
  throw new ValueError(`${JSON.stringify(value)} is not ${what}`);
}

export function parseNumber(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  throw new ValueError(`${JSON.stringify(value)} is not a number`);
}

const truthy = new Set(['true', 'yes', 'y', 'on', '1']);
const falsy = new Set(['false', 'no', 'n', 'off', '0']);

/** Boolean from a boolean or a string such as "true"/"false" (interpolated values are strings). */
export function parseBoolean(value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  const text = String(value).trim().toLowerCase();
  if (truthy.has(text)) return true;
  if (falsy.has(text)) return false;
  throw new ValueError(`${JSON.stringify(value)} is not a boolean`, 'write true or false');
}

/** Splits a command string like a POSIX shell would (quotes and backslashes), without any expansion. */
export function shellSplit(command: string): string[] {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < command.length; i++) {
    const c = command[i] ?? '';
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else current += c;
      continue;
    }
    if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === '\\' && i + 1 < command.length && '"\\$`'.includes(command[i + 1] ?? '')) current += command[++i];
      else current += c;
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < command.length) {
      current += command[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
    } else {
      current += c;
      inWord = true;
    }
  }
  if (quote !== undefined) throw new ValueError(`unterminated ${quote} quote in ${JSON.stringify(command)}`);
  if (inWord) words.push(current);
  return words;
}

/** One port mapping from the short syntax, before defaults. */
export interface ParsedPort {
  readonly target: number;
  readonly published: string | undefined;
  readonly host_ip: string | undefined;
  readonly protocol: string;
}

function portNumber(text: string, whole: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= 0 && n <= 65535)) {
    throw new ValueError(`invalid port ${JSON.stringify(whole)}: "${text}" is not a port number (0-65535)`, portHint);
  }
  return n;
}

const portHint = 'the forms are TARGET, PUBLISHED:TARGET, IP:PUBLISHED:TARGET, each optionally /tcp or /udp';

function portRange(text: string, whole: string): [number, number] {
  const [from = '', to] = text.split('-');
  const start = portNumber(from, whole);
  const end = to === undefined ? start : portNumber(to, whole);
  if (end < start) throw new ValueError(`invalid port ${JSON.stringify(whole)}: range ${text} is reversed`, portHint);
  return [start, end];
}

/** `[[host_ip:]published:]target[/protocol]` with ranges; returns one mapping per container port. */
export function parsePortSpec(spec: string | number): ParsedPort[] {
  const whole = String(spec);
  const slash = whole.lastIndexOf('/');
  const protocol = slash >= 0 ? whole.slice(slash + 1).toLowerCase() : 'tcp';
  if (!['tcp', 'udp', 'sctp'].includes(protocol)) {
    throw new ValueError(
      `invalid port ${JSON.stringify(whole)}: unknown protocol "${protocol}"`,
      'use tcp, udp or sctp',
    );
  }
  const body = slash >= 0 ? whole.slice(0, slash) : whole;
  let hostIp: string | undefined;
  let rest = body;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(.*)$/.exec(body);
  if (v6) {
    hostIp = v6[1];
    rest = v6[2] ?? '';
  }
  const parts = rest.split(':');
  if (!v6 && parts.length > 3) {
    throw new ValueError(
      `invalid port ${JSON.stringify(whole)}: too many ":"`,
      `${portHint}; put IPv6 addresses in [brackets]`,
    );
  }
  const targetText = parts.pop() ?? '';
  const publishedText = parts.length > 0 ? parts.pop() : undefined;
  if (parts.length > 0) hostIp = parts.pop();
  if (hostIp !== undefined && !/^[0-9a-fA-F:.]*$/.test(hostIp)) {
    throw new ValueError(`invalid port ${JSON.stringify(whole)}: "${hostIp}" is not an IP address`, portHint);
  }
  const [targetStart, targetEnd] = portRange(targetText, whole);
  const published = publishedText === undefined || publishedText === '' ? undefined : portRange(publishedText, whole);
  const count = targetEnd - targetStart + 1;
  if (published && count > 1 && published[1] - published[0] + 1 !== count) {
    throw new ValueError(`invalid port ${JSON.stringify(whole)}: the two ranges have different sizes`, portHint);
  }
  const out: ParsedPort[] = [];
  for (let i = 0; i < count; i++) {
    let publishedText: string | undefined;
    if (published) {
      publishedText =
        count === 1 && published[0] !== published[1]
          ? `${published[0]}-${published[1]}`
          : String(published[0] === published[1] ? published[0] : published[0] + i);
    }
    out.push({ target: targetStart + i, published: publishedText, host_ip: hostIp || undefined, protocol });
  }
  return out;
}

/** One volume from the short syntax `[source:]target[:mode]`. */
export interface ParsedVolume {
  readonly type: 'bind' | 'volume';
  readonly source: string | undefined;
  readonly target: string;
  readonly read_only: boolean;
  readonly selinux: 'z' | 'Z' | undefined;
  readonly propagation: string | undefined;
  readonly nocopy: boolean;
}

const propagations = new Set(['shared', 'slave', 'private', 'rshared', 'rslave', 'rprivate']);
const knownVolumeModes = new Set(['ro', 'rw', 'z', 'Z', 'nocopy', ...propagations]);
const volumeHint = 'the forms are TARGET, NAME:TARGET, ./HOST/PATH:TARGET, each optionally :ro, :rw, :z, :Z';

/** Parses `data:/var/lib/data:ro`, `./src:/app`, `/tmp/cache` and friends. */
export function parseVolumeSpec(spec: string): ParsedVolume {
  const parts = spec.split(':');
  if (parts.length > 3 || parts.some((p) => p === '')) {
    throw new ValueError(`invalid volume ${JSON.stringify(spec)}`, volumeHint);
  }
  let source: string | undefined;
  let target: string;
  let mode = '';
  if (parts.length === 1) target = parts[0] ?? '';
  else if (parts.length === 2) {
    const [a = '', b = ''] = parts;
    if (!b.split(',').every((option) => knownVolumeModes.has(option))) {
      source = a;
      target = b;
    } else {
      target = a;
      mode = b;
    }
  } else [source = '', target = '', mode = ''] = parts;
  if (!target.startsWith('/')) {
    throw new ValueError(
      `invalid volume ${JSON.stringify(spec)}: the container path "${target}" must be absolute`,
      volumeHint,
    );
  }
  let readOnly = false;
  let selinux: 'z' | 'Z' | undefined;
  let propagation: string | undefined;
  let nocopy = false;
  for (const option of mode === '' ? [] : mode.split(',')) {
    if (option === 'ro') readOnly = true;
    else if (option === 'rw') readOnly = false;
    else if (option === 'z' || option === 'Z') selinux = option;
    else if (option === 'nocopy') nocopy = true;
    else if (propagations.has(option)) propagation = option;
    else throw new ValueError(`invalid volume ${JSON.stringify(spec)}: unknown mode "${option}"`, volumeHint);
  }
  const isPath = source !== undefined && /^(\.|\/|~)/.test(source);
  return {
    type: source === undefined || !isPath ? 'volume' : 'bind',
    source,
    target,
    read_only: readOnly,
    selinux,
    propagation,
    nocopy,
  };
}

/** Compose's project name rule: lowercase letters, digits, `-`, `_`, starting with a letter or digit. */
export const projectNamePattern = /^[a-z0-9][a-z0-9_-]*$/;

/** Lowercases and drops characters compose does not allow (used for names derived from a directory). */
export function normalizeProjectName(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '')
    .replace(/^[_-]+/, '');
}

/** A scalar as text (numbers and booleans as YAML writes them); other values as JSON. */
export function scalarText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === null || value === undefined) return '';
  return JSON.stringify(value);
}
