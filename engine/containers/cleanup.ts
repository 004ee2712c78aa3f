import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EngineError, isEngineError } from '../errors.js';
import type { EnginePaths } from '../state/paths.js';
import type { ContainerManager } from './manager.js';
import type { ExitCommand } from './runtime-config.js';
import type { ContainerRecord, ContainerSpec } from './types.js';

/**
 * Auto-removal (`run --rm`, `run -d --rm`) without a daemon, as podman does with conmon's `--exit-command`: the
 * container's runtime.conf carries `<node> <repo>/bin/tsfig.js container cleanup --rm <id>`, which its monitor
 * starts (detached) once the container has exited for good and the monitor has let go of it. The cleanup removes
 * the container only if it is still exited, under the container's lock (removeIfExited), so it is safe next to a
 * user `rm`, an attached `run --rm` removing it too, or a `start` that brought it back.
 */

/** docker: "Conflicting options: --restart and --rm". Checked before anything is created. */
export function checkAutoRemove(spec: ContainerSpec): void {
  if (spec.autoRemove === true && spec.restart !== undefined && spec.restart.name !== 'no') {
    throw new EngineError('invalid', 'conflicting options: --restart and --rm', {
      hint: 'a container removed when it exits cannot be restarted by a policy: drop one of them',
    });
  }
}

/** The CLI entry point of this installation: the first `bin/tsfig.js` above this module (source or dist/). */
function cliEntry(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'bin', 'tsfig.js');
    if (existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) throw new EngineError('internal', 'cannot find bin/tsfig.js for the auto-remove command');
    dir = parent;
  }
}

let cachedEntry: string | undefined;

/** The exit command of an autoRemove container: the cleanup against this engine root, with a minimal env. */
export function autoRemoveExitCommand(paths: EnginePaths, id: string): ExitCommand {
  cachedEntry ??= cliEntry();
  return {
    argv: [process.execPath, cachedEntry, 'container', 'cleanup', '--rm', id],
    env: [
      `PATH=${process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'}`,
      `TSFIG_ROOT=${paths.root}`,
      `TSFIG_RUN_ROOT=${paths.runRoot}`,
    ],
  };
}

/**
 * Removes an autoRemove container if it has exited; returns its record when it did. Nothing happens (undefined)
 * when it is gone already (a user `rm`, the attached `run --rm`, a cleanup before), running or restarting again
 * (checked under the container's lock by remove()), or not an autoRemove container. Idempotent.
 */
export async function removeIfExited(containers: ContainerManager, id: string): Promise<ContainerRecord | undefined> {
  let record: ContainerRecord;
  try {
    record = await containers.get(id);
  } catch (error) {
    if (isEngineError(error, 'not-found')) return undefined;
    throw error;
  }
  if (record.spec.autoRemove !== true) return undefined;
  try {
    return await containers.remove(record.id);
  } catch (error) {
    // not-found: removed in between; conflict: running again (a start took the lock first)
    if (isEngineError(error, 'not-found') || isEngineError(error, 'conflict')) return undefined;
    throw error;
  }
}
