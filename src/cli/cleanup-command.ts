import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TsfigError } from '../errors.js';

/** The CLI entry point of this installation: the first `bin/tsfig.js` above this module (source or dist/). */
function cliEntry(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'bin', 'tsfig.js');
    if (existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) throw new TsfigError('internal', 'cannot find bin/tsfig.js for the auto-remove command');
    dir = parent;
  }
}

let cached: readonly string[] | undefined;

/**
 * The autoRemoveCommand of the containers this CLI creates with `--rm` (ContainerSpec.autoRemoveCommand): this
 * installation's CLI run by this node, `container cleanup --rm` (commands/container.ts), to which the engine appends
 * the container's id and its root. The engine does not know the CLI: the CLI passes it in.
 */
export function autoRemoveCommand(): readonly string[] {
  cached ??= [process.execPath, cliEntry(), 'container', 'cleanup', '--rm'];
  return cached;
}
