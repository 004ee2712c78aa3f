import { TsfigError } from '../errors.js';

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** docker's RAMInBytes: `512m`, `1g`, `1024`, `1.5g` (binary units, optional trailing b). */
export function parseBytes(value: string, flag: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)b?\s*$/i.exec(value);
  const unit = match?.[2]?.toLowerCase() ?? '';
  if (match === null || match[1] === undefined || UNITS[unit] === undefined) {
    throw new TsfigError('usage', `${flag}: invalid size "${value}"`, {
      hint: 'use a number with an optional unit: 512m, 1g',
    });
  }
  return Math.round(Number(match[1]) * UNITS[unit]);
}

/** A positive integer flag value. */
export function parseCount(value: string, flag: string): number {
  if (!/^-?\d+$/.test(value.trim())) {
    throw new TsfigError('usage', `${flag}: "${value}" is not a whole number`);
  }
  return Number(value);
}

/** --cpus 1.5 → NanoCpus. */
export function parseCpus(value: string): number {
  const cpus = Number(value);
  if (!Number.isFinite(cpus) || cpus <= 0) {
    throw new TsfigError('usage', `--cpus: invalid value "${value}"`, {
      hint: 'use a positive number such as 0.5 or 2',
    });
  }
  return Math.round(cpus * 1e9);
}

/** Collects a repeatable option into an array (commander's reducer). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `-e NAME` takes NAME's value from the caller's environment (dropped when unset), as docker and compose do. */
export function expandEnv(entry: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (entry.includes('=')) return entry;
  const value = env[entry];
  return value === undefined ? undefined : `${entry}=${value}`;
}

/** The `-e` entries of a command with their values resolved (expandEnv), unset names dropped. */
export function expandEnvFlags(entries: readonly string[] | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  return (entries ?? []).map((entry) => expandEnv(entry, env)).filter((entry): entry is string => entry !== undefined);
}
