import { EngineError } from '../errors.js';
import type { ContainerProcess, ContainerSpec } from './types.js';

/** The parts of an OCI image config (`config` object) that decide a container's process. */
export interface ImageProcessConfig {
  readonly Env?: readonly string[] | null;
  readonly Cmd?: readonly string[] | null;
  readonly Entrypoint?: readonly string[] | null;
  readonly WorkingDir?: string;
  readonly User?: string;
  readonly StopSignal?: string;
  readonly ExposedPorts?: Readonly<Record<string, unknown>> | null;
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function envKey(entry: string): string {
  const index = entry.indexOf('=');
  return index < 0 ? entry : entry.slice(0, index);
}

/**
 * Image env, then the caller's entries by key (a later KEY=VALUE replaces an earlier one), PATH and HOSTNAME
 * defaulted. A caller's bare `KEY` (no `=`: `-e KEY` or compose's `environment: [KEY]` with KEY unset) removes KEY,
 * as dockerd's ReplaceOrAppendEnvValues does, so the image's value does not leak through.
 */
export function mergeEnv(imageEnv: readonly string[], extra: readonly string[], hostname: string): string[] {
  const merged = new Map<string, string>();
  merged.set('PATH', `PATH=${DEFAULT_PATH}`);
  merged.set('HOSTNAME', `HOSTNAME=${hostname}`);
  for (const entry of imageEnv) if (entry.includes('=')) merged.set(envKey(entry), entry);
  for (const entry of extra) {
    if (entry.includes('=')) merged.set(envKey(entry), entry);
    else if (entry !== 'PATH' && entry !== 'HOSTNAME') merged.delete(entry);
  }
  return [...merged.values()];
}

/**
 * The argv docker would run: an explicit entrypoint replaces the image's and drops its Cmd; an explicit cmd replaces
 * the image's Cmd. No command at all is an error naming the image.
 */
export function resolveArgv(
  image: ImageProcessConfig,
  spec: Pick<ContainerSpec, 'cmd' | 'entrypoint'>,
  imageRef: string,
): string[] {
  const entrypoint =
    spec.entrypoint !== undefined ? spec.entrypoint.filter((part) => part !== '') : (image.Entrypoint ?? []);
  const cmd = spec.cmd !== undefined ? spec.cmd : spec.entrypoint !== undefined ? [] : (image.Cmd ?? []);
  const argv = [...entrypoint, ...cmd];
  if (argv.length === 0) {
    throw new EngineError('invalid', `no command specified for image "${imageRef}"`, {
      hint: 'give a command after the image name, or --entrypoint',
    });
  }
  return argv;
}

export function resolveProcess(
  image: ImageProcessConfig,
  spec: ContainerSpec,
  imageRef: string,
  hostname: string,
): ContainerProcess {
  const cwd = spec.workingDir ?? (image.WorkingDir !== undefined && image.WorkingDir !== '' ? image.WorkingDir : '/');
  if (!cwd.startsWith('/')) {
    throw new EngineError('invalid', `working directory "${cwd}" is not an absolute path`, {
      hint: 'use an absolute path with -w/--workdir',
    });
  }
  return {
    argv: resolveArgv(image, spec, imageRef),
    env: mergeEnv(image.Env ?? [], spec.env ?? [], hostname),
    cwd,
    user: spec.user ?? image.User ?? '',
  };
}
