/** `create`: `up --no-start -d` (networks, volumes, images and containers; nothing is started). */
import { ExitCode } from '../exit-code.js';
import type { Project } from '../model/project.js';
import type { ComposeContext } from './context.js';
import { converge, type UpOptions } from './up.js';

export interface CreateOptions {
  readonly project: Project;
  readonly services: readonly string[];
  readonly forceRecreate?: boolean;
  readonly noRecreate?: boolean;
  readonly removeOrphans?: boolean;
  readonly scale?: Readonly<Record<string, number>>;
  readonly build?: boolean | 'missing';
  readonly pull?: string | undefined;
  readonly dryRun?: boolean;
}

export function upOptionsOf(options: CreateOptions): UpOptions {
  return {
    project: options.project,
    services: options.services,
    plan: {
      forceRecreate: options.forceRecreate === true,
      noRecreate: options.noRecreate === true,
      removeOrphans: options.removeOrphans === true,
      noStart: true,
      ...(options.scale !== undefined ? { scale: options.scale } : {}),
    },
    ...(options.build !== undefined ? { build: options.build } : {}),
    pull: options.pull,
    detach: true,
    ...(options.dryRun !== undefined ? { dryRun: options.dryRun } : {}),
  };
}

export async function run(ctx: ComposeContext, options: CreateOptions): Promise<ExitCode> {
  await converge(ctx, upOptionsOf(options));
  return ExitCode.ok;
}
