import path from 'node:path';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { enginePaths } from '../../engine/state/index.js';
import schema from './compose-spec.json' with { type: 'json' };
// Compiled ahead of time (scripts/gen-compose-validator.js): no ajv and no schema compilation at run time. In the
// bundle (scripts/bundle.js) this import is a stub that loads the validator on its first call only.
import validateCompose from './compose-spec.validate.js';
import { suggestion } from './diagnostics.js';
import type { DiagnosticBag, Position } from './diagnostics.js';
import { locationOf } from './parse.js';
import { documentKey, fileValidationCache } from './validation-cache.js';
import type { ValidationCache } from './validation-cache.js';
import { scalarText } from './values.js';

/** The validator's identity (a hash of compose-spec.validate.ts), defined by scripts/bundle.js in the bundle only. */
declare const TSFIG_VALIDATOR_ID: string | undefined;

function validator(): ValidateFunction {
  return validateCompose as unknown as ValidateFunction;
}

let defaultCache: ValidationCache | undefined;

/**
 * The cache of accepted documents (validation-cache.ts) of the bundled CLI: `<TSFIG_ROOT>/cache/compose-validated`.
 * Unused from the sources and the tsc output, which have no validator identity to key it with.
 */
function validationCache(): { id: string; cache: ValidationCache } | undefined {
  if (typeof TSFIG_VALIDATOR_ID !== 'string') return undefined;
  defaultCache ??= fileValidationCache(path.join(enginePaths().root, 'cache', 'compose-validated'));
  return { id: TSFIG_VALIDATOR_ID, cache: defaultCache };
}

/** Top-level keys of the Compose Specification. */
export const topLevelKeys: readonly string[] = Object.keys(schema.properties);
/** Service keys of the Compose Specification. */
export const serviceKeys: readonly string[] = Object.keys(schema.definitions.service.properties);

/** Validates a merged project (plain values with recorded positions) against the vendored Compose Specification. */
export function validateSchema(root: unknown, bag: DiagnosticBag, fallback: Position): void {
  const cached = validationCache();
  const key = cached === undefined ? undefined : documentKey(cached.id, root);
  if (key !== undefined && cached?.cache.has(key) === true) return;
  const validate = validator();
  if (validate(root)) {
    if (key !== undefined) cached?.cache.add(key);
    return;
  }
  for (const error of reduceErrors(validate.errors ?? [])) report(error, root, bag, fallback);
}

type Segment = string | number;

function segmentsOf(instancePath: string): Segment[] {
  if (instancePath === '') return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** `services.web.ports[0]` */
export function dottedPath(segments: readonly Segment[]): string {
  let out = '';
  for (const s of segments) out += typeof s === 'number' ? `[${s}]` : out === '' ? s : `.${s}`;
  return out === '' ? 'top level' : out;
}

const specific = new Set(['additionalProperties', 'required', 'enum', 'pattern', 'minimum', 'maximum', 'uniqueItems']);

/** Keeps the errors a user needs: the deepest ones, and for one value the specific ones over "wrong type". */
function reduceErrors(errors: readonly ErrorObject[]): ErrorObject[] {
  const paths = errors.filter((e) => e.keyword !== 'oneOf' && e.keyword !== 'anyOf').map((e) => e.instancePath);
  const hasDeeper = (path: string) => paths.some((p) => p.startsWith(`${path}/`));
  const hasSpecific = (path: string) => errors.some((e) => e.instancePath === path && specific.has(e.keyword));
  const kept = errors.filter((e) => {
    if (e.keyword === 'oneOf' || e.keyword === 'anyOf') return false;
    if (e.keyword === 'type' && (hasDeeper(e.instancePath) || hasSpecific(e.instancePath))) return false;
    if (e.keyword === 'required' && hasDeeper(e.instancePath)) return false;
    return true;
  });
  // A misspelt required key shows as both "unknown key" and "missing key": report it once.
  const misspelt = kept.filter((e) => e.keyword === 'additionalProperties');
  const result = kept.filter(
    (e) => !(e.keyword === 'required' && misspelt.some((m) => m.instancePath === e.instancePath)),
  );
  // Merge type errors of the same value (from oneOf branches) into one.
  const out: ErrorObject[] = [];
  const typeAt = new Map<string, ErrorObject>();
  const seen = new Set<string>();
  for (const error of result) {
    if (error.keyword === 'type') {
      const existing = typeAt.get(error.instancePath);
      const types = ([] as string[]).concat(error.params.type as string | string[]);
      if (existing) {
        const merged = ([] as string[]).concat(existing.params.type as string | string[]);
        for (const t of types) if (!merged.includes(t)) merged.push(t);
        existing.params = { type: merged };
        continue;
      }
      const copy = { ...error, params: { type: types } };
      typeAt.set(error.instancePath, copy);
      out.push(copy);
      continue;
    }
    const key = `${error.instancePath}|${error.keyword}|${JSON.stringify(error.params)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(error);
  }
  return out;
}

function describeType(type: string): string {
  switch (type) {
    case 'object':
      return 'a mapping';
    case 'array':
      return 'a list';
    case 'integer':
      return 'an integer';
    case 'null':
      return 'empty';
    default:
      return `a ${type}`;
  }
}

function walk(root: unknown, segments: readonly Segment[]): { container: unknown; value: unknown } {
  let container: unknown = undefined;
  let value: unknown = root;
  for (const s of segments) {
    container = value;
    value = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[s] : undefined;
  }
  return { container, value };
}

function positionOf(root: unknown, segments: readonly Segment[], which: 'key' | 'value', fallback: Position): Position {
  for (let depth = segments.length; depth > 0; depth--) {
    const { container } = walk(root, segments.slice(0, depth));
    const last = segments[depth - 1];
    if (typeof container !== 'object' || container === null || last === undefined) continue;
    const location = locationOf(container);
    const found = (which === 'key' ? location?.keys : location?.values)?.get(last) ?? location?.keys.get(last);
    if (found) return found;
    if (location) return location.self;
  }
  const rootLocation = typeof root === 'object' && root !== null ? locationOf(root) : undefined;
  return rootLocation?.self ?? fallback;
}

const sections = new Set(['services', 'networks', 'volumes', 'secrets', 'configs', 'models']);

function report(error: ErrorObject, root: unknown, bag: DiagnosticBag, fallback: Position): void {
  const segments = segmentsOf(error.instancePath);
  const path = dottedPath(segments);
  const { value } = walk(root, segments);
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(error.params.additionalProperty);
      const position = positionOf(root, [...segments, key], 'key', fallback);
      const first = segments[0];
      if (segments.length === 1 && typeof first === 'string' && sections.has(first)) {
        bag.error(
          `invalid name "${key}" under ${first}`,
          position,
          'names may only contain letters, digits, ".", "_" and "-"',
        );
        return;
      }
      const parent = error.parentSchema as { properties?: Record<string, unknown> } | undefined;
      const known = Object.keys(parent?.properties ?? {});
      const hint = suggestion(key, known) ?? (key.startsWith('x-') ? undefined : hintForUnknown(segments));
      const where = segments.length === 0 ? 'top level' : path;
      bag.error(`${where}: unknown key "${key}"`, position, hint);
      return;
    }
    case 'required':
      bag.error(
        `${path}: missing required key "${String(error.params.missingProperty)}"`,
        positionOf(root, segments, 'value', fallback),
      );
      return;
    case 'type': {
      const types = ([] as string[]).concat(error.params.type as string | string[]);
      const words = types.map(describeType);
      const expected = words.length > 1 ? `${words.slice(0, -1).join(', ')} or ${words.at(-1)}` : (words[0] ?? '');
      bag.error(`${path}: must be ${expected}, not ${typeName(value)}`, positionOf(root, segments, 'value', fallback));
      return;
    }
    case 'enum': {
      const allowed = (error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v));
      const hint =
        typeof value === 'string'
          ? suggestion(
              value,
              allowed.map((a) => a.slice(1, -1)),
            )
          : undefined;
      bag.error(
        `${path}: ${JSON.stringify(value)} is not one of ${allowed.join(', ')}`,
        positionOf(root, segments, 'value', fallback),
        hint,
      );
      return;
    }
    case 'uniqueItems': {
      const j = Number(error.params.j);
      const i = Number(error.params.i);
      bag.error(
        `${path}: duplicate entry ${JSON.stringify((value as unknown[])[i])}`,
        positionOf(root, [...segments, Math.max(i, j)], 'value', fallback),
        'remove one of the two',
      );
      return;
    }
    case 'pattern':
      bag.error(`${path}: ${JSON.stringify(value)} is not valid`, positionOf(root, segments, 'value', fallback));
      return;
    default:
      bag.error(`${path}: ${error.message ?? 'is invalid'}`, positionOf(root, segments, 'value', fallback));
  }
}

function typeName(value: unknown): string {
  if (value === null || value === undefined) return 'empty';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value)}`;
  return `${typeof value} ${scalarText(value)}`;
}

function hintForUnknown(segments: readonly Segment[]): string | undefined {
  if (segments.length === 0)
    return 'top-level keys are version, name, include, services, networks, volumes, secrets, configs, models and x-*';
  if (segments.length === 2 && segments[0] === 'services')
    return 'see the service keys of the Compose Specification; custom keys must start with x-';
  return undefined;
}
