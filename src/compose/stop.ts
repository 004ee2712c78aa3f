/** `stop`: the project's running containers, dependents first. */
import { ExitCode } from '../exit-code.js';
import type { Project } from '../model/project.js';
import { planStop } from '../planner/lifecycle.js';
import { planAndApply, type VerbPlanOptions } from './apply.js';
import type { ComposeContext } from './context.js';

export interface StopOptions extends VerbPlanOptions {
  readonly project: Project;
  readonly services: readonly string[];
  /** `-t` in seconds; default each service's stop_grace_period. */
  readonly timeoutSeconds?: number | undefined;
}

export async function run(ctx: ComposeContext, options: StopOptions): Promise<ExitCode> {
  const { services, timeoutSeconds } = options;
  await planAndApply(ctx, options.project, options, (observed) =>
    planStop(options.project, observed, { services, ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}) }),
  );
  return ExitCode.ok;
}
