import path from 'node:path';
import { EngineError, isEngineError } from '../errors.js';
import { withLock } from '../state/lock.js';
import type { EnginePaths } from '../state/paths.js';
import type { ContainerManager } from './manager.js';
import type { ExitCommand } from './runtime-config.js';
import type { ContainerRecord, ContainerSpec } from './types.js';

/**
 * Auto-removal (`run --rm`, `run -d --rm`) without a daemon, as podman does with conmon's `--exit-command`: the
 * container's runtime.conf carries the caller's autoRemoveCommand and the id (tsfig's CLI gives `<node> <its
 * bin/tsfig.js> container cleanup --rm`), which its monitor starts (detached) once the container has exited for good
 * and the monitor has let go of it. The cleanup removes the container only if it is still exited, under the container's lock (removeIfExited), so it is safe next to a
 * user `rm`, an attached `run --rm` removing it too, or a `start` that brought it back. An attached `run --rm` holds
 * the container's auto-remove hold (withAutoRemoveHold) from its start until it has read the exit code and removed the
 * container itself; the cleanup waits for that hold, so it never takes the exit code away from a CLI still there,
 * and the kernel releases the hold of a CLI killed -9, so the cleanup then does the removal.
 */

function holdName(paths: EnginePaths, id: string): string {
  return `${paths.rootId}:auto-remove-hold:${id}`;
}

/** Runs fn (start, attach, wait, remove) holding the container's auto-remove hold: see above. */
export function withAutoRemoveHold<T>(paths: EnginePaths, id: string, fn: () => Promise<T>): Promise<T> {
  return withLock(holdName(paths, id), fn);
}

/** The cleanup may wait this long for an attached CLI to finish with the container (it drains the last logs). */
const HOLD_WAIT_MS = 24 * 3600_000;

/**
 * docker: "Conflicting options: --restart and --rm"; and the command that removes it must be given (absolute argv[0]:
 * the monitor runs it with a minimal environment). Checked before anything is created.
 */
export function checkAutoRemove(spec: ContainerSpec): void {
  if (spec.autoRemove !== true) return;
  if (spec.restart !== undefined && spec.restart.name !== 'no') {
    throw new EngineError('invalid', 'conflicting options: --restart and --rm', {
      hint: 'a container removed when it exits cannot be restarted by a policy: drop one of them',
    });
  }
  const command = spec.autoRemoveCommand ?? [];
  if (command[0] === undefined || !path.isAbsolute(command[0])) {
    throw new EngineError(
      'invalid',
      'autoRemove needs autoRemoveCommand, an absolute command that removes the container',
      {
        hint: "tsfig's CLI passes `<node> bin/tsfig.js container cleanup --rm` (removeIfExited)",
      },
    );
  }
}

/**
 * The exit command of an autoRemove container: the caller's autoRemoveCommand with the id appended, against this
 * engine root, with a minimal environment. None for a container without autoRemove (or a record made before the
 * command was recorded: its attached CLI still removes it).
 */
export function autoRemoveExitCommand(paths: EnginePaths, record: ContainerRecord): ExitCommand | undefined {
  const command = record.spec.autoRemoveCommand;
  if (record.spec.autoRemove !== true || command === undefined || command.length === 0) return undefined;
  return {
    argv: [...command, record.id],
    env: [
      `PATH=${process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'}`,
      `TSFIG_ROOT=${paths.root}`,
      `TSFIG_RUN_ROOT=${paths.runRoot}`,
      // rootless: the session the command runs in (engine/rootless/env.ts: its network namespace, the roots' registry)
      ...Object.entries(process.env)
        .filter(([key, value]) => key.startsWith('TSFIG_ROOTLESS') && value !== undefined)
        .map(([key, value]) => `${key}=${value ?? ''}`),
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
  return withLock(
    holdName(containers.paths, record.id),
    async () => {
      try {
        return await containers.remove(record.id);
      } catch (error) {
        // not-found: removed in between; conflict: running again (a start took the container's lock first)
        if (isEngineError(error, 'not-found') || isEngineError(error, 'conflict')) return undefined;
        throw error;
      }
    },
    { timeoutMs: HOLD_WAIT_MS },
  );
}
