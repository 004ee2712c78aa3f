import { interpolateString, InterpolationError } from './interpolate.js';
import type { Lookup } from './interpolate.js';

/** A line of a dotenv file that cannot be read. */
export interface DotenvProblem {
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

export interface DotenvResult {
  /** Variables in file order. */
  readonly values: Map<string, string>;
  readonly problems: readonly DotenvProblem[];
}

const keyPattern = /^[A-Za-z0-9_.[\]-]+/;
const escapes: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\', '"': '"', $: '$$' };

/**
 * Parses a dotenv file as compose does: `KEY=value`, optional `export `, `#` comments, single quotes (literal),
 * double quotes (escapes, may span lines), unquoted values trimmed with a ` #comment` stripped; `${VAR}` in
 * unquoted and double-quoted values is expanded from `options.first` (the shell environment, for the project's
 * `.env` and `--env-file`, as compose v2 does), then earlier lines, then `lookup`. A bare `KEY` takes its value from
 * `options.first`, then `lookup`, and is skipped when unset.
 */
export function parseDotenv(text: string, lookup: Lookup, options: { first?: Lookup } = {}): DotenvResult {
  const values = new Map<string, string>();
  const problems: DotenvProblem[] = [];
  const first: Lookup = options.first ?? (() => undefined);
  const scoped: Lookup = (name) => first(name) ?? values.get(name) ?? lookup(name);
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  for (let index = 0; index < lines.length; index++) {
    const lineNumber = index + 1;
    let line = (lines[index] ?? '').replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) continue;
    if (/^export\s+/.test(line)) line = line.replace(/^export\s+/, '');
    const key = keyPattern.exec(line)?.[0];
    if (key === undefined) {
      problems.push({
        line: lineNumber,
        column: 1,
        message: `unexpected character "${line[0] ?? ''}" in variable name`,
      });
      continue;
    }
    let rest = line.slice(key.length).replace(/^[ \t]+/, '');
    if (rest === '' || rest.startsWith('#')) {
      const inherited = first(key) ?? lookup(key);
      if (inherited !== undefined) values.set(key, inherited);
      continue;
    }
    if (rest[0] !== '=' && rest[0] !== ':') {
      problems.push({
        line: lineNumber,
        column: key.length + 1,
        message: `key "${key}" must be followed by "=" (spaces are not allowed in names)`,
      });
      continue;
    }
    rest = rest.slice(1).replace(/^[ \t]+/, '');
    const quote = rest[0];
    try {
      if (quote === "'" || quote === '"') {
        let body = rest.slice(1);
        let end = findClosingQuote(body, quote);
        while (end < 0 && index + 1 < lines.length) {
          index++;
          body += `\n${lines[index] ?? ''}`;
          end = findClosingQuote(body, quote);
        }
        if (end < 0) {
          problems.push({
            line: lineNumber,
            column: key.length + 2,
            message: `unterminated quoted value for "${key}"`,
          });
          continue;
        }
        const raw = body.slice(0, end);
        values.set(key, quote === "'" ? raw : expand(unescape(raw), scoped));
        continue;
      }
      const unquoted = rest.replace(/\s+#.*$/, '').trim();
      values.set(key, expand(unquoted, scoped));
    } catch (error) {
      if (!(error instanceof InterpolationError)) throw error;
      problems.push({ line: lineNumber, column: 1, message: error.message });
    }
  }
  return { values, problems };
}

function findClosingQuote(body: string, quote: string): number {
  for (let i = 0; i < body.length; i++) {
    if (quote === '"' && body[i] === '\\') {
      i++;
      continue;
    }
    if (body[i] === quote) return i;
  }
  return -1;
}

function unescape(raw: string): string {
  return raw.replace(/\\(.)/g, (_, c: string) => escapes[c] ?? `\\${c}`);
}

function expand(value: string, lookup: Lookup): string {
  if (!value.includes('$')) return value;
  return interpolateString(value, lookup).value;
}
