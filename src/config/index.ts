/**
 * The project loader: files a user wrote → one immutable, normalised `Project` (src/model/project.ts).
 *
 * `loadProject(options)` finds, parses, interpolates, merges (with includes and extends), validates against the
 * Compose Specification schema plus semantic checks, applies profiles and normalises. It throws `ConfigError`
 * (kind 'config', exit 65) holding every problem, each with file:line:col, or a `TsfigError` of kind 'not-found'
 * when there is no project file. CLI commands use `addProjectOptions`/`loadProjectFromOptions` in
 * src/cli/commands/config.ts instead of calling this directly.
 */
export { loadProject, projectFileNames } from './load.js';
export type { LoadOptions, LoadResult } from './load.js';
export { ConfigError, formatDiagnostics, sortDiagnostics } from './diagnostics.js';
export type { Diagnostic, Position } from './diagnostics.js';
