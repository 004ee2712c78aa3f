/**
 * Where a project key was written, for `kube generate`'s warnings (`file:line:col`). The normalised `Project` carries
 * no positions, so the project's own files are parsed again (YAML with positions, no interpolation: only the shape
 * matters) and `services.<name>.<key>...` is looked up in the last file that sets it, as a merge would have taken it.
 */
import { readFileSync } from 'node:fs';
import { DiagnosticBag } from '../config/diagnostics.js';
import type { Position } from '../config/diagnostics.js';
import { isRawMap, locationOf, parseYaml } from '../config/parse.js';

export type KeyPath = readonly (string | number)[];

export interface PositionIndex {
  /** Position of the deepest key of `path` that a file sets (the last file first); the first file's start if none. */
  at(path: KeyPath): Position;
  /** True when some file writes `path` (e.g. `services.web.restart`, to tell a default from a written value). */
  has(path: KeyPath): boolean;
  /** File texts by path, for excerpts. */
  readonly sources: ReadonlyMap<string, string>;
}

interface Found {
  readonly depth: number;
  readonly position: Position;
}

function lookup(root: unknown, path: KeyPath): Found | undefined {
  let node: unknown = root;
  let found: Found | undefined;
  for (let depth = 0; depth < path.length; depth++) {
    const key = path[depth] as string | number;
    if (typeof node !== 'object' || node === null) break;
    const location = locationOf(node);
    const position = location?.keys.get(key) ?? location?.values.get(key);
    const next: unknown = Array.isArray(node)
      ? (node as unknown[])[key as number]
      : isRawMap(node)
        ? node[String(key)]
        : undefined;
    if (next === undefined || position === undefined) break;
    found = { depth: depth + 1, position };
    node = next;
  }
  return found;
}

/** Parses `files` (the project's config files, in merge order); unreadable or invalid files are skipped. */
export function positionIndex(files: readonly string[], read: (file: string) => string = readUtf8): PositionIndex {
  const bag = new DiagnosticBag();
  const roots: unknown[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = read(file);
    } catch {
      continue;
    }
    roots.push(parseYaml(file, text, bag));
  }
  const fallback: Position = { file: files[0] ?? 'compose.yaml', line: 1, column: 1 };
  const best = (path: KeyPath): Found | undefined => {
    let result: Found | undefined;
    for (let i = roots.length - 1; i >= 0; i--) {
      const found = lookup(roots[i], path);
      if (found !== undefined && (result === undefined || found.depth > result.depth)) result = found;
      if (result?.depth === path.length) break;
    }
    return result;
  };
  return {
    at: (path) => best(path)?.position ?? fallback,
    has: (path) => best(path)?.depth === path.length,
    sources: bag.sources,
  };
}

function readUtf8(file: string): string {
  return readFileSync(file, 'utf8');
}
