import type { DiagnosticBag, Position } from './diagnostics.js';
import { locationOf, YamlTag } from './parse.js';

/** Looks a variable up; undefined means unset (an empty string is set). */
export type Lookup = (name: string) => string | undefined;

/** A malformed `${...}` or a `${VAR:?message}` whose variable is missing. */
export class InterpolationError extends Error {
  readonly hint: string | undefined;
  constructor(message: string, hint?: string) {
    super(message);
    this.name = 'InterpolationError';
    this.hint = hint;
  }
}

export interface InterpolationResult {
  readonly value: string;
  /** Variables used without a default that were unset (each becomes ""). */
  readonly unset: readonly string[];
}

const namePattern = /^[A-Za-z_][A-Za-z0-9_]*/;

/**
 * Substitutes variables in one string, as the Compose Specification says: `$VAR`, `${VAR}`, `${VAR:-default}`,
 * `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`, nesting in the word, `$$` for `$`.
 * Any other `$` (`$(cmd)`, `$1`, a trailing `$`) is kept as written, as compose v2 does.
 */
export function interpolateString(input: string, lookup: Lookup): InterpolationResult {
  const unset: string[] = [];
  const value = substitute(input, lookup, unset);
  return { value, unset };
}

function substitute(input: string, lookup: Lookup, unset: string[]): string {
  let out = '';
  let i = 0;
  while (i < input.length) {
    const dollar = input.indexOf('$', i);
    if (dollar < 0) {
      out += input.slice(i);
      break;
    }
    out += input.slice(i, dollar);
    const next = input[dollar + 1];
    if (next === '$') {
      out += '$';
      i = dollar + 2;
      continue;
    }
    if (next === '{') {
      const end = matchingBrace(input, dollar + 2);
      if (end < 0) throw new InterpolationError(`invalid interpolation format in "${input}": missing "}"`);
      out += braced(input.slice(dollar + 2, end), input, lookup, unset);
      i = end + 1;
      continue;
    }
    const name = namePattern.exec(input.slice(dollar + 1))?.[0];
    if (name === undefined) {
      // compose v2/v5 (compose-go's pattern): a "$" that starts neither a name, "{" nor "$$" stays as written, so
      // `$(date)` in a dockerfile_inline or a command reaches the shell; docker-compose 1.29 refused it
      out += '$';
      i = dollar + 1;
      continue;
    }
    out += resolvePlain(name, lookup, unset);
    i = dollar + 1 + name.length;
  }
  return out;
}

function matchingBrace(input: string, start: number): number {
  let depth = 1;
  for (let i = start; i < input.length; i++) {
    const c = input[i];
    if (c === '$' && input[i + 1] === '$') {
      i++;
      continue;
    }
    if (c === '$' && input[i + 1] === '{') {
      depth++;
      i++;
      continue;
    }
    if (c === '}' && --depth === 0) return i;
  }
  return -1;
}

function resolvePlain(name: string, lookup: Lookup, unset: string[]): string {
  const value = lookup(name);
  if (value === undefined) {
    unset.push(name);
    return '';
  }
  return value;
}

const operators = [':-', ':?', ':+', '-', '?', '+'] as const;

function braced(body: string, whole: string, lookup: Lookup, unset: string[]): string {
  const name = namePattern.exec(body)?.[0];
  if (name === undefined) {
    throw new InterpolationError(`invalid interpolation format in "${whole}": "\${${body}}" has no variable name`);
  }
  const rest = body.slice(name.length);
  if (rest === '') return resolvePlain(name, lookup, unset);
  const operator = operators.find((op) => rest.startsWith(op));
  if (operator === undefined) {
    throw new InterpolationError(
      `invalid interpolation format in "${whole}": unexpected "${rest}" after "\${${name}"`,
      'the forms are ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+alt}, ${VAR+alt}',
    );
  }
  const word = () => substitute(rest.slice(operator.length), lookup, unset);
  const value = lookup(name);
  switch (operator) {
    case ':-':
      return value === undefined || value === '' ? word() : value;
    case '-':
      return value === undefined ? word() : value;
    case ':+':
      return value === undefined || value === '' ? '' : word();
    case '+':
      return value === undefined ? '' : word();
    case ':?':
    case '?':
      if (value === undefined || (operator === ':?' && value === '')) {
        const message = word();
        throw new InterpolationError(
          `required variable ${name} is missing a value${message === '' ? '' : `: ${message}`}`,
          `set ${name} in the environment or in the .env file`,
        );
      }
      return value;
  }
}

/**
 * Interpolates every string value (never a key) of one parsed file in place, so recorded positions stay valid.
 * Errors and unset-variable warnings go into `bag` with the value's position.
 */
export function interpolateTree(root: unknown, lookup: Lookup, bag: DiagnosticBag, rootPosition: Position): unknown {
  const visit = (value: unknown, position: Position): unknown => {
    if (typeof value === 'string') return interpolateValue(value, lookup, bag, position);
    if (value instanceof YamlTag) return new YamlTag(value.tag, visit(value.value, position));
    if (typeof value !== 'object' || value === null) return value;
    const location = locationOf(value);
    if (Array.isArray(value)) {
      value.forEach((item, index) => {
        value[index] = visit(item, location?.values.get(index) ?? position);
      });
      return value;
    }
    const map = value as Record<string, unknown>;
    for (const key of Object.keys(map)) map[key] = visit(map[key], location?.values.get(key) ?? position);
    return value;
  };
  return visit(root, rootPosition);
}

function interpolateValue(value: string, lookup: Lookup, bag: DiagnosticBag, position: Position): string {
  if (!value.includes('$')) return value;
  try {
    const result = interpolateString(value, lookup);
    for (const name of new Set(result.unset)) {
      bag.warn(`the "${name}" variable is not set, defaulting to a blank string`, position);
    }
    return result.value;
  } catch (error) {
    if (!(error instanceof InterpolationError)) throw error;
    bag.error(error.message, position, error.hint);
    return value;
  }
}

/** A variable a model uses, as `config --variables` prints it (compose-go template.Variable). */
export interface ModelVariable {
  readonly name: string;
  /** The word of `${VAR:-word}` / `${VAR-word}`. */
  readonly defaultValue: string;
  /** The word of `${VAR:+word}` / `${VAR+word}`. */
  readonly presenceValue: string;
  /** `${VAR:?err}` / `${VAR?err}`. */
  readonly required: boolean;
}

/**
 * The variables every string value of an uninterpolated model uses (compose-go template.ExtractVariables): `$$` is
 * skipped, variables inside a default or alternate word count too; a variable used twice keeps its last use.
 */
export function extractVariables(model: unknown): Map<string, ModelVariable> {
  const found = new Map<string, ModelVariable>();
  const scan = (text: string): void => {
    for (let i = text.indexOf('$'); i >= 0 && i < text.length; i = text.indexOf('$', i)) {
      const next = text[i + 1];
      if (next === '$') {
        i += 2;
        continue;
      }
      if (next === '{') {
        const end = matchingBrace(text, i + 2);
        if (end < 0) return;
        const body = text.slice(i + 2, end);
        const name = /^[A-Za-z0-9_]+/.exec(body)?.[0];
        if (name !== undefined) {
          const rest = body.slice(name.length);
          const operator = operators.find((op) => rest.startsWith(op));
          const word = operator === undefined ? '' : rest.slice(operator.length);
          const variable = {
            name,
            defaultValue: operator === ':-' || operator === '-' ? word : '',
            presenceValue: operator === ':+' || operator === '+' ? word : '',
            required: operator === ':?' || operator === '?',
          };
          found.set(name, variable);
          if (variable.defaultValue !== '') scan(variable.defaultValue);
          if (variable.presenceValue !== '') scan(variable.presenceValue);
        }
        i = end + 1;
        continue;
      }
      const name = namePattern.exec(text.slice(i + 1))?.[0];
      if (name !== undefined) found.set(name, { name, defaultValue: '', presenceValue: '', required: false });
      i += 1 + (name?.length ?? 0);
    }
  };
  const visit = (value: unknown): void => {
    if (typeof value === 'string') scan(value);
    else if (Array.isArray(value)) value.forEach(visit);
    else if (value !== null && typeof value === 'object') Object.values(value).forEach(visit);
  };
  visit(model);
  return found;
}
