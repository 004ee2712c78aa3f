/** `kill [-s SIGNAL]`: signal the project's running containers, all at once. */
import { ExitCode } from '../exit-code.js';
import type { Project } from '../model/project.js';
import { planKill } from '../planner/lifecycle.js';
import { planAndApply, type VerbPlanOptions } from './apply.js';
import type { ComposeContext } from './context.js';

export interface KillOptions extends VerbPlanOptions {
  readonly project: Project;
  readonly services: readonly string[];
  /** @default SIGKILL */
  readonly signal?: string;
}

export async function run(ctx: ComposeContext, options: KillOptions): Promise<ExitCode> {
  const signal = options.signal ?? 'SIGKILL';
  await planAndApply(ctx, options.project, { ...options, lock: false }, (observed) =>
    planKill(options.project, observed, { services: options.services, signal }),
  );
  return ExitCode.ok;
}
