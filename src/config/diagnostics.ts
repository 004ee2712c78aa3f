import { TsfigError } from '../errors.js';

/** A position in a project file; line and column count from 1. */
export interface Position {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** One problem found while loading a project. Errors make the project invalid; warnings are printed and loading goes on. */
export interface Diagnostic {
  readonly severity: 'error' | 'warning';
  /** One lowercase line naming the object, e.g. `services.web: unknown key "prots"`. */
  readonly message: string;
  /** Where the problem is; absent only for problems with no file (a missing file, a bad flag value). */
  readonly position: Position | undefined;
  /** The next action, e.g. `did you mean "ports"?`. */
  readonly hint: string | undefined;
}

/** Collects diagnostics of one load; reads the source lines to show excerpts when printing. */
export class DiagnosticBag {
  readonly items: Diagnostic[] = [];
  readonly sources = new Map<string, string>();

  error(message: string, position?: Position, hint?: string): void {
    this.items.push({ severity: 'error', message, position, hint });
  }

  warn(message: string, position?: Position, hint?: string): void {
    this.items.push({ severity: 'warning', message, position, hint });
  }

  get errors(): Diagnostic[] {
    return this.items.filter((item) => item.severity === 'error');
  }

  get warnings(): Diagnostic[] {
    return this.items.filter((item) => item.severity === 'warning');
  }

  hasErrors(): boolean {
    return this.items.some((item) => item.severity === 'error');
  }
}

/** The project files are invalid: holds every problem found, so the user can fix them all in one go. */
export class ConfigError extends TsfigError {
  readonly diagnostics: readonly Diagnostic[];

  constructor(diagnostics: readonly Diagnostic[], sources: ReadonlyMap<string, string>, cwd: string = process.cwd()) {
    const errors = sortDiagnostics(diagnostics.filter((d) => d.severity === 'error'));
    const head =
      errors.length === 1 ? 'the project is invalid: 1 problem' : `the project is invalid: ${errors.length} problems`;
    super('config', `${head}\n${formatDiagnostics(errors, sources, cwd)}`, {
      // No `source`: every diagnostic in the message carries its own file:line:col.
      hint: 'fix the problems above, then check with: tsfig config -q',
    });
    this.name = 'ConfigError';
    this.diagnostics = diagnostics;
  }
}

/** Orders diagnostics by file, line and column; those without a position come last. Stable. */
export function sortDiagnostics(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  return [...diagnostics].sort((a, b) => {
    if (!a.position || !b.position) return (a.position ? 0 : 1) - (b.position ? 0 : 1);
    if (a.position.file !== b.position.file) return a.position.file < b.position.file ? -1 : 1;
    return a.position.line - b.position.line || a.position.column - b.position.column;
  });
}

/** Shows a path relative to `cwd` when it is below it, so messages stay short and goldens stay portable. */
export function displayPath(file: string, cwd: string): string {
  const prefix = cwd.endsWith('/') ? cwd : `${cwd}/`;
  return file.startsWith(prefix) ? file.slice(prefix.length) : file;
}

/**
 * Formats diagnostics for a terminal:
 * ```
 * compose.yaml:3:5: error: services.web: unknown key "prots"
 *     3 |     prots:
 *       |     ^
 *   hint: did you mean "ports"?
 * ```
 */
export function formatDiagnostics(
  diagnostics: readonly Diagnostic[],
  sources: ReadonlyMap<string, string>,
  cwd: string,
): string {
  return diagnostics.map((d) => formatDiagnostic(d, sources, cwd)).join('\n');
}

export function formatDiagnostic(d: Diagnostic, sources: ReadonlyMap<string, string>, cwd: string): string {
  const lines: string[] = [];
  const where = d.position ? `${displayPath(d.position.file, cwd)}:${d.position.line}:${d.position.column}: ` : '';
  lines.push(`${where}${d.severity}: ${d.message}`);
  if (d.position) {
    const text = sources.get(d.position.file);
    const sourceLine = text?.split('\n')[d.position.line - 1];
    if (sourceLine !== undefined) {
      const shown = sourceLine.length > 120 ? `${sourceLine.slice(0, 117)}...` : sourceLine;
      const number = String(d.position.line).padStart(5);
      lines.push(`${number} | ${shown.trimEnd()}`);
      lines.push(`${' '.repeat(5)} | ${' '.repeat(Math.max(0, d.position.column - 1))}^`);
    }
  }
  if (d.hint !== undefined) lines.push(`  hint: ${d.hint}`);
  return lines.join('\n');
}

/** Edit distance where a transposition of two neighbours costs 1 (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const cell = (i: number, j: number): number => rows[i]?.[j] ?? 0;
  for (let i = 1; i <= a.length; i++) {
    const row = rows[i] ?? [];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(cell(i - 1, j) + 1, cell(i, j - 1) + 1, cell(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, cell(i - 2, j - 2) + 1);
      row[j] = best;
    }
  }
  return cell(a.length, b.length);
}

/** The closest candidate to a misspelt name (terraform didyoumean: distance < 3, or a transposition). */
export function didYouMean(name: string, candidateList: Iterable<string>): string | undefined {
  const candidates = [...candidateList];
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance || (distance === bestDistance && best !== undefined && candidate < best)) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best === undefined) return undefined;
  if (name.length >= 3) {
    const prefixed = [...candidates].filter((c) => c.startsWith(name) || (c.length >= 3 && name.startsWith(c)));
    if (prefixed.length === 1 && bestDistance > 1) return prefixed[0];
  }
  const limit = Math.max(1, Math.min(3, Math.floor(Math.max(name.length, best.length) / 3)));
  return bestDistance <= limit ? best : undefined;
}

/** `did you mean "x"?` or undefined. */
export function suggestion(name: string, candidates: Iterable<string>): string | undefined {
  const best = didYouMean(name, candidates);
  return best === undefined ? undefined : `did you mean "${best}"?`;
}
