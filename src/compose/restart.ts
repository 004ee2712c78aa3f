/** `restart`: stop (dependents first) and start again (dependencies first) the project's containers. */
import { ExitCode } from '../exit-code.js';
import type { Project } from '../model/project.js';
import { planRestart } from '../planner/lifecycle.js';
import { planAndApply, type VerbPlanOptions } from './apply.js';
import type { ComposeContext } from './context.js';

export interface RestartOptions extends VerbPlanOptions {
  readonly project: Project;
  readonly services: readonly string[];
  readonly timeoutSeconds?: number | undefined;
}

export async function run(ctx: ComposeContext, options: RestartOptions): Promise<ExitCode> {
  const { services, timeoutSeconds } = options;
  await planAndApply(ctx, options.project, options, (observed) =>
    planRestart(options.project, observed, { services, ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}) }),
  );
  return ExitCode.ok;
}
