/** `rm`: remove the project's stopped containers (`-s`: stop them first; `-v`: with their anonymous volumes). */
import { ExitCode } from '../exit-code.js';
import { TsfigError } from '../errors.js';
import type { Project } from '../model/project.js';
import { planRm, removableContainers } from '../planner/lifecycle.js';
import { planAndApply, type VerbPlanOptions } from './apply.js';
import type { ComposeContext } from './context.js';

export interface RmOptions extends VerbPlanOptions {
  readonly project: Project;
  readonly services: readonly string[];
  /** `-f`: no confirmation (there is no prompt: without it the removal is refused). */
  readonly force?: boolean;
  readonly stop?: boolean;
  readonly volumes?: boolean;
}

export async function run(ctx: ComposeContext, options: RmOptions): Promise<ExitCode> {
  const scope = { services: options.services, stop: options.stop === true, volumes: options.volumes === true };
  let none = false;
  await planAndApply(ctx, options.project, options, (observed) => {
    const removable = removableContainers(options.project, observed, scope);
    none = removable.length === 0;
    if (!none && options.force !== true && options.dryRun !== true) {
      throw new TsfigError('usage', `refusing to remove ${removable.map((c) => c.name).join(', ')} without --force`, {
        hint: 'confirm with: tsfig rm -f',
      });
    }
    return planRm(options.project, observed, scope);
  });
  if (none) ctx.stderr.write('No stopped containers\n');
  return ExitCode.ok;
}
