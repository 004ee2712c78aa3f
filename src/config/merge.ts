import type { Position } from './diagnostics.js';
import { scalarText } from './values.js';
import { isRawMap, locationOf, setLocation, YamlTag } from './parse.js';
import type { ContainerLocation, RawMap } from './parse.js';

/**
 * Merges compose files the way compose does (compose-spec 13-merge.md, compose-go override/merge.go):
 * mappings merge by key; `ports` are unique by host ip/published/target/protocol; `volumes` and `devices` by
 * container path; `secrets`/`configs` by target; `command`, `entrypoint` and `healthcheck.test` are replaced;
 * list-or-mapping keys (environment, labels, ...) become mappings and merge; other sequences append without
 * duplicates; `!reset` removes what earlier files set and `!override` replaces it.
 */
export function mergeFiles(base: RawMap, override: RawMap): RawMap {
  return mergeValue(base, override, []) as RawMap;
}

const replaced = new Set(['services.*.command', 'services.*.entrypoint', 'services.*.healthcheck.test']);
const mappingLike = new Set([
  'services.*.environment',
  'services.*.labels',
  'services.*.annotations',
  'services.*.sysctls',
  'services.*.extra_hosts',
  'services.*.build.args',
  'services.*.build.labels',
  'services.*.build.additional_contexts',
  'services.*.build.extra_hosts',
  'services.*.deploy.labels',
  'services.*.depends_on',
  'services.*.networks',
  'networks.*.labels',
  'volumes.*.labels',
  'secrets.*.labels',
  'configs.*.labels',
]);
const stringOrList = new Set(['services.*.dns', 'services.*.dns_search', 'services.*.tmpfs', 'services.*.env_file']);

const namedSections = new Set(['services', 'networks', 'volumes', 'secrets', 'configs', 'models']);

function pattern(path: readonly string[]): string {
  return path.map((part, i) => (i === 1 && namedSections.has(path[0] ?? '') ? '*' : part)).join('.');
}

/** Removes `!reset` entries and unwraps `!override` values (used on the first file and on replaced values). */
export function stripTags(value: unknown): unknown {
  if (value instanceof YamlTag) return value.tag === 'reset' ? undefined : stripTags(value.value);
  if (Array.isArray(value)) {
    const location = locationOf(value);
    const out: unknown[] = [];
    const keep: ContainerLocation | undefined = location && { self: location.self, keys: new Map(), values: new Map() };
    value.forEach((item, index) => {
      const stripped = stripTags(item);
      if (stripped === undefined) return;
      copyEntry(keep, out.length, location, index);
      out.push(stripped);
    });
    if (keep) setLocation(out, keep);
    return out;
  }
  if (isRawMap(value)) {
    for (const key of Object.keys(value)) {
      const stripped = stripTags(value[key]);
      if (stripped === undefined) delete value[key];
      else value[key] = stripped;
    }
  }
  return value;
}

function copyEntry(
  target: ContainerLocation | undefined,
  targetKey: string | number,
  source: ContainerLocation | undefined,
  sourceKey: string | number,
): void {
  if (!target || !source) return;
  const keyPos = source.keys.get(sourceKey);
  const valuePos = source.values.get(sourceKey);
  if (keyPos) target.keys.set(targetKey, keyPos);
  if (valuePos) target.values.set(targetKey, valuePos);
}

function newLocation(...candidates: (ContainerLocation | undefined)[]): ContainerLocation {
  const self: Position = candidates.find((c) => c !== undefined)?.self ?? { file: '', line: 1, column: 1 };
  return { self, keys: new Map(), values: new Map() };
}

function mergeValue(base: unknown, over: unknown, path: readonly string[]): unknown {
  if (over instanceof YamlTag) return over.tag === 'reset' ? undefined : stripTags(over.value);
  if (base === undefined || base === null) return stripTags(over);
  if (over === null) return base;
  const key = pattern(path);
  if (replaced.has(key)) return stripTags(over);
  if (key === 'services.*.build') return mergeMaps(buildAsMap(base), buildAsMap(over), path);
  if (mappingLike.has(key)) return mergeMaps(asMapping(base, key), asMapping(over, key), path);
  if (stringOrList.has(key)) return appendUnique(asList(base), asList(over), () => undefined);
  if (key === 'services.*.ports') return appendUnique(asList(base), asList(over), portKey);
  if (key === 'services.*.volumes' || key === 'services.*.devices') {
    return appendUnique(asList(base), asList(over), mountTarget);
  }
  if (key === 'services.*.secrets' || key === 'services.*.configs') {
    return appendUnique(asList(base), asList(over), secretTarget);
  }
  if (key === 'services.*.logging' && isRawMap(base) && isRawMap(over)) {
    if (over.driver !== undefined && base.driver !== undefined && over.driver !== base.driver) return stripTags(over);
  }
  if (isRawMap(base) && isRawMap(over)) return mergeMaps(base, over, path);
  if (Array.isArray(base) && Array.isArray(over)) return appendUnique(base, over, () => undefined);
  return stripTags(over);
}

function mergeMaps(base: RawMap, over: RawMap, path: readonly string[]): RawMap {
  const out: RawMap = {};
  const baseLocation = locationOf(base);
  const overLocation = locationOf(over);
  const location = newLocation(baseLocation, overLocation);
  for (const [key, value] of Object.entries(base)) {
    out[key] = value;
    copyEntry(location, key, baseLocation, key);
  }
  for (const [key, value] of Object.entries(over)) {
    const merged = mergeValue(out[key], value, [...path, key]);
    if (merged === undefined) {
      delete out[key];
      continue;
    }
    out[key] = merged;
    copyEntry(location, key, overLocation, key);
  }
  setLocation(out, location);
  return out;
}

/** Identity of a list item for merging; undefined means "compare the whole value". */
type ItemKey = (item: unknown) => string | undefined;

function appendUnique(base: readonly unknown[], over: readonly unknown[], keyOf: ItemKey): unknown[] {
  const identity = (item: unknown): string => keyOf(item) ?? JSON.stringify(item);
  const out: unknown[] = [];
  const baseLocation = locationOf(base);
  const overLocation = locationOf(over);
  const location = newLocation(baseLocation, overLocation);
  const indexOf = new Map<string, number>();
  const add = (item: unknown, source: ContainerLocation | undefined, sourceIndex: number): void => {
    const stripped = stripTags(item);
    if (stripped === undefined) return;
    const id = identity(stripped);
    const existing = indexOf.get(id);
    const at = existing ?? out.length;
    if (existing === undefined) indexOf.set(id, at);
    out[at] = stripped;
    copyEntry(location, at, source, sourceIndex);
  };
  base.forEach((item, index) => add(item, baseLocation, index));
  over.forEach((item, index) => add(item, overLocation, index));
  setLocation(out, location);
  return out;
}

function asList(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  const out = [value];
  const location = isRawMap(value) ? locationOf(value) : undefined;
  if (location) setLocation(out, location);
  return out;
}

function buildAsMap(value: unknown): RawMap {
  return isRawMap(value) ? value : { context: value };
}

/** Turns `["A=1", "B"]` into `{A: "1", B: null}` (or `a:b` pairs for extra_hosts, names for depends_on/networks). */
export function asMapping(value: unknown, key: string): RawMap {
  if (!Array.isArray(value)) return isRawMap(value) ? value : {};
  const out: RawMap = {};
  const source = locationOf(value);
  const location = newLocation(source);
  value.forEach((item, index) => {
    const [name, entry] = splitListItem(item, key);
    out[name] = entry;
    copyEntry(location, name, source, index);
  });
  setLocation(out, location);
  return out;
}

function splitListItem(item: unknown, key: string): [string, unknown] {
  const text = typeof item === 'string' ? item : String(item);
  if (key.endsWith('.depends_on')) return [text, { condition: 'service_started' }];
  if (key.endsWith('.networks')) return [text, null];
  if (key.endsWith('extra_hosts')) {
    const match = /^([^:=]+)[:=](.*)$/.exec(text);
    return match ? [match[1] ?? text, match[2] ?? ''] : [text, ''];
  }
  const eq = text.indexOf('=');
  return eq < 0 ? [text, null] : [text.slice(0, eq), text.slice(eq + 1)];
}

function portKey(item: unknown): string | undefined {
  if (isRawMap(item)) {
    return [item.host_ip ?? '', item.published ?? '', item.target ?? '', item.protocol ?? 'tcp']
      .map(scalarText)
      .join('|');
  }
  const text = String(item);
  const [spec, protocol = 'tcp'] = text.split('/');
  const parts = (spec ?? '').split(':');
  const target = parts.pop() ?? '';
  const published = parts.pop() ?? '';
  return [parts.join(':'), published, target, protocol].join('|');
}

function mountTarget(item: unknown): string | undefined {
  if (isRawMap(item)) return typeof item.target === 'string' ? item.target : undefined;
  if (typeof item !== 'string') return undefined;
  const parts = item.split(':');
  return parts.length === 1 ? parts[0] : parts[1];
}

function secretTarget(item: unknown): string | undefined {
  if (isRawMap(item)) {
    const target = item.target ?? item.source;
    return typeof target === 'string' ? target : undefined;
  }
  return typeof item === 'string' ? item : undefined;
}
