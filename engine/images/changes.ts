import { EngineError } from '../errors.js';
import type { ContainerConfig } from './types.js';

/** Instructions `image import --change` accepts, as `docker import` does (no ONBUILD, no build steps). */
export const CHANGE_INSTRUCTIONS = [
  'CMD',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'LABEL',
  'USER',
  'VOLUME',
  'WORKDIR',
  'STOPSIGNAL',
] as const;

function changeError(change: string, problem: string): EngineError {
  return new EngineError('invalid', `invalid --change "${change}": ${problem}`, {
    hint: `use Dockerfile syntax with one of ${CHANGE_INSTRUCTIONS.join(', ')}, e.g. --change 'CMD ["/bin/sh"]'`,
  });
}

/** Exec form when the value is a JSON array of strings, as Docker decides; undefined otherwise. */
function jsonForm(value: string): string[] | undefined {
  if (!value.startsWith('[')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  const items: unknown[] = parsed;
  return items.every((item): item is string => typeof item === 'string') ? items : undefined;
}

/** Expands `$VAR`, `${VAR}`, `${VAR:-default}` and `${VAR:+alternative}` from env, as the Dockerfile shell lexer. */
function expand(word: string, env: ReadonlyMap<string, string>, change: string): string {
  return word.replace(
    /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))|\$\{/g,
    (m, ...g) => {
      const [braced, op, arg, bare] = g as [
        string | undefined,
        string | undefined,
        string | undefined,
        string | undefined,
      ];
      if (m === '${') throw changeError(change, 'unterminated ${ in a variable reference');
      const name = braced ?? bare ?? '';
      const value = env.get(name);
      if (op === '-') return value !== undefined && value !== '' ? value : (arg ?? '');
      if (op === '+') return value !== undefined && value !== '' ? (arg ?? '') : '';
      return value ?? '';
    },
  );
}

/**
 * Splits a value into words as the Dockerfile lexer does: whitespace separates, single quotes are literal, double
 * quotes allow `\"`, `\\` and `\$`, a backslash outside quotes escapes the next character. With env, variables are
 * expanded outside single quotes.
 */
export function splitWords(value: string, change: string, env?: ReadonlyMap<string, string>, split = true): string[] {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  let pending = ''; // unexpanded text in the current word
  const flush = (): void => {
    current += env !== undefined ? expand(pending, env, change) : pending;
    pending = '';
  };
  for (let i = 0; i < value.length; i++) {
    const c = value[i] ?? '';
    if (split && /\s/.test(c)) {
      if (inWord) {
        flush();
        words.push(current);
        current = '';
        inWord = false;
      }
      continue;
    }
    inWord = true;
    if (c === '\\') {
      flush();
      if (i + 1 < value.length) current += value[++i];
      continue;
    }
    if (c === "'") {
      flush();
      const end = value.indexOf("'", i + 1);
      if (end === -1) throw changeError(change, 'unterminated single quote');
      current += value.slice(i + 1, end);
      i = end;
      continue;
    }
    if (c === '"') {
      flush();
      let j = i + 1;
      let text = '';
      for (; j < value.length && value[j] !== '"'; j++) {
        if (value[j] === '\\' && j + 1 < value.length && '"\\$'.includes(value[j + 1] ?? '')) {
          if (value[j + 1] === '$') {
            current += env !== undefined ? expand(text, env, change) : text;
            text = '';
            current += '$';
          } else {
            text += value[j + 1];
          }
          j++;
          continue;
        }
        text += value[j];
      }
      if (j >= value.length) throw changeError(change, 'unterminated double quote');
      current += env !== undefined ? expand(text, env, change) : text;
      i = j;
      continue;
    }
    pending += c;
  }
  if (inWord) {
    flush();
    words.push(current);
  }
  return words;
}

/** A whole value as one word (quotes and escapes processed, variables expanded, whitespace kept), as Docker's
 * ProcessWord for USER, WORKDIR, STOPSIGNAL and the legacy `ENV KEY VALUE`. */
function oneWord(value: string, change: string, env: ReadonlyMap<string, string>): string {
  return splitWords(value, change, env, false)[0] ?? '';
}

/** KEY=VALUE pairs (ENV, LABEL); the legacy one-pair form `ENV KEY VALUE` is accepted for ENV and LABEL. */
function keyValues(
  instruction: string,
  rest: string,
  change: string,
  env: ReadonlyMap<string, string>,
): [string, string][] {
  const words = splitWords(rest, change, env);
  if (words.length === 0) throw changeError(change, `${instruction} needs at least one KEY=VALUE`);
  if (!(words[0] ?? '').includes('=')) {
    const match = /^(\S+)\s+([\s\S]*)$/.exec(rest);
    if (match === null) throw changeError(change, `${instruction} ${rest} has no value`);
    return [[match[1] ?? '', oneWord((match[2] ?? '').trim(), change, env)]];
  }
  return words.map((word) => {
    const eq = word.indexOf('=');
    if (eq <= 0) throw changeError(change, `"${word}" is not KEY=VALUE`);
    return [word.slice(0, eq), word.slice(eq + 1)];
  });
}

function envMap(config: ContainerConfig): Map<string, string> {
  const map = new Map<string, string>();
  for (const entry of config.Env ?? []) {
    const eq = entry.indexOf('=');
    if (eq > 0) map.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return map;
}

function commandForm(rest: string): string[] {
  return jsonForm(rest) ?? ['/bin/sh', '-c', rest];
}

function portKeys(word: string, change: string): string[] {
  const match =
    /^(?:([0-9.]+|\[[0-9a-fA-F:]+\]):)?(?:[0-9]+(?:-[0-9]+)?:)?([0-9]+)(?:-([0-9]+))?(?:\/(tcp|udp|sctp))?$/i.exec(
      word,
    );
  if (match === null) throw changeError(change, `"${word}" is not PORT[-PORT][/PROTO]`);
  const from = Number(match[2]);
  const to = match[3] !== undefined ? Number(match[3]) : from;
  const proto = (match[4] ?? 'tcp').toLowerCase();
  if (from < 1 || to > 65535 || to < from) throw changeError(change, `port range "${word}" is out of 1-65535`);
  const keys: string[] = [];
  for (let port = from; port <= to; port++) keys.push(`${port}/${proto}`);
  return keys;
}

/** What earlier changes of the same batch did (ENTRYPOINT resets CMD unless CMD was set in the batch, as Docker). */
export interface ChangeState {
  cmdSet: boolean;
}

/** Applies one `--change` line to config (mutated) and returns it. */
export function applyChange(
  config: ContainerConfig,
  change: string,
  state: ChangeState = { cmdSet: false },
): ContainerConfig {
  const trimmed = change.trim();
  const match = /^([A-Za-z]+)(?:\s+([\s\S]*))?$/.exec(trimmed);
  if (match === null) throw changeError(change, 'it does not start with an instruction');
  const instruction = (match[1] ?? '').toUpperCase();
  const rest = (match[2] ?? '').trim();
  const env = envMap(config);
  if (!(CHANGE_INSTRUCTIONS as readonly string[]).includes(instruction)) {
    throw changeError(
      change,
      `${instruction} is not supported by import (supported: ${CHANGE_INSTRUCTIONS.join(', ')})`,
    );
  }
  if (rest === '' && instruction !== 'CMD' && instruction !== 'ENTRYPOINT') {
    throw changeError(change, `${instruction} needs an argument`);
  }
  switch (instruction) {
    case 'CMD':
      config.Cmd = rest === '' ? [] : commandForm(rest);
      state.cmdSet = true;
      break;
    case 'ENTRYPOINT':
      config.Entrypoint = rest === '' ? [] : commandForm(rest);
      if (!state.cmdSet) delete config.Cmd;
      break;
    case 'ENV': {
      const entries = [...(config.Env ?? [])];
      for (const [key, value] of keyValues(instruction, rest, change, env)) {
        const index = entries.findIndex((entry) => entry.startsWith(`${key}=`));
        if (index === -1) entries.push(`${key}=${value}`);
        else entries[index] = `${key}=${value}`;
        env.set(key, value);
      }
      config.Env = entries;
      break;
    }
    case 'LABEL': {
      const labels = { ...(config.Labels ?? {}) };
      for (const [key, value] of keyValues(instruction, rest, change, env)) labels[key] = value;
      config.Labels = labels;
      break;
    }
    case 'EXPOSE': {
      const ports = { ...(config.ExposedPorts ?? {}) };
      for (const word of splitWords(rest, change, env)) for (const key of portKeys(word, change)) ports[key] = {};
      config.ExposedPorts = ports;
      break;
    }
    case 'VOLUME': {
      const volumes = { ...(config.Volumes ?? {}) };
      const paths = jsonForm(rest) ?? splitWords(rest, change, env);
      for (const volume of paths) {
        if (volume.trim() === '') throw changeError(change, 'VOLUME paths cannot be empty');
        volumes[volume] = {};
      }
      config.Volumes = volumes;
      break;
    }
    case 'USER':
      config.User = oneWord(rest, change, env);
      break;
    case 'WORKDIR': {
      const dir = oneWord(rest, change, env);
      const base = config.WorkingDir !== undefined && config.WorkingDir !== '' ? config.WorkingDir : '/';
      config.WorkingDir = dir.startsWith('/') ? dir : `${base.replace(/\/+$/, '')}/${dir}`;
      break;
    }
    case 'STOPSIGNAL': {
      const signal = oneWord(rest, change, env);
      if (!/^(?:SIG[A-Z0-9+-]+|[0-9]+)$/i.test(signal)) {
        throw changeError(change, `"${signal}" is not a signal name (SIGTERM) or number`);
      }
      config.StopSignal = signal;
      break;
    }
  }
  return config;
}

/** Applies every change in order. */
export function applyChanges(config: ContainerConfig, changes: readonly string[]): ContainerConfig {
  const state: ChangeState = { cmdSet: false };
  for (const change of changes) applyChange(config, change, state);
  return config;
}
