/** `scale SERVICE=N...`: `up -d --no-recreate --scale` for the named services (and their dependencies). */
import { ExitCode } from '../exit-code.js';
import type { Project } from '../model/project.js';
import type { ComposeContext } from './context.js';
import { converge } from './up.js';

export interface ScaleOptions {
  readonly project: Project;
  readonly scale: Readonly<Record<string, number>>;
  /** `--no-deps`: false. @default true */
  readonly deps?: boolean;
  readonly dryRun?: boolean;
}

export async function run(ctx: ComposeContext, options: ScaleOptions): Promise<ExitCode> {
  await converge(ctx, {
    project: options.project,
    services: Object.keys(options.scale),
    plan: { scale: options.scale, noRecreate: true, noDeps: options.deps === false },
    detach: true,
    ...(options.dryRun !== undefined ? { dryRun: options.dryRun } : {}),
  });
  return ExitCode.ok;
}
