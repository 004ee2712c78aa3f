import type { EngineErrorKind } from '../../engine/errors.js';
import type { ErrorKind } from '../errors.js';

import { ExitCode } from '../exit-code.js';

export { ExitCode };

export function exitCodeOfKind(kind: ErrorKind | EngineErrorKind): number {
  switch (kind) {
    case 'usage':
    case 'invalid':
      return ExitCode.usage;
    case 'config':
      return ExitCode.config;
    case 'permission':
      return ExitCode.permission;
    case 'not-found':
    case 'conflict':
    case 'runtime':
    case 'unsupported':
    case 'internal':
      return ExitCode.failure;
  }
}

/**
 * A command action's result, kept for `main.ts` (the only place that turns it into the process's exit code): actions
 * return through commander, which drops their value, so they leave it here, on the program.
 */
const results = new WeakMap<object, number>();

function rootOf(command: { parent: unknown }): object {
  let root = command;
  while (root.parent !== null && root.parent !== undefined) root = root.parent as { parent: unknown };
  return root;
}

export function setExitCode(command: { parent: unknown }, code: ExitCode): void {
  results.set(rootOf(command), code);
}

/** The exit code an action left on this program (0 when none did). */
export function exitCodeOf(program: object): ExitCode {
  return results.get(program) ?? ExitCode.ok;
}
