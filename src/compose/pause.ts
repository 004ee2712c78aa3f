/** `pause` / `unpause`: freeze or thaw the processes of the project's running containers. */
import { ExitCode } from '../exit-code.js';
import type { Project } from '../model/project.js';
import { planPause } from '../planner/lifecycle.js';
import { planAndApply, type VerbPlanOptions } from './apply.js';
import type { ComposeContext } from './context.js';

export interface PauseOptions extends VerbPlanOptions {
  readonly project: Project;
  readonly services: readonly string[];
  /** true: pause; false: unpause. */
  readonly paused: boolean;
}

export async function run(ctx: ComposeContext, options: PauseOptions): Promise<ExitCode> {
  await planAndApply(ctx, options.project, { ...options, lock: false }, (observed) =>
    planPause(options.project, observed, { services: options.services, paused: options.paused }),
  );
  return ExitCode.ok;
}
