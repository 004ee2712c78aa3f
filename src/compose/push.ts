/**
 * `push [SERVICE...]`: a plan of `image.push` operations, one per reference (`planPush`, planner/images.ts), run
 * through the port under the project lock. The pushes report through the context's event sink (`op.*`: the digest
 * pushed, or the failure). With `--ignore-push-failures` every push is best effort: a failed one is a warning and
 * the verb exits 0, as compose does.
 */
import { ExitCode } from '../exit-code.js';
import type { Project } from '../model/project.js';
import { planPush } from '../planner/images.js';
import { applyPlan, printPlan } from './apply.js';
import type { ComposeContext } from './context.js';

export interface PushOptions {
  readonly project: Project;
  /** The services named; all when empty. */
  readonly services: readonly string[];
  /** `--include-deps`. */
  readonly includeDeps?: boolean;
  /** `--ignore-push-failures`. */
  readonly ignoreFailures?: boolean;
  readonly dryRun?: boolean;
  readonly format?: 'text' | 'json';
}

export async function run(ctx: ComposeContext, options: PushOptions): Promise<ExitCode> {
  const { project } = options;
  const plan = planPush(project, await ctx.port.observe(project), {
    services: options.services,
    ...(options.includeDeps !== undefined ? { includeDeps: options.includeDeps } : {}),
    ...(options.ignoreFailures !== undefined ? { ignoreFailures: options.ignoreFailures } : {}),
  });
  if (options.dryRun === true) {
    printPlan(ctx, plan, options.format);
    return ExitCode.ok;
  }
  if (plan.operations.length === 0) {
    for (const warning of plan.warnings) ctx.events.emit({ kind: 'warning', message: warning });
    return ExitCode.ok;
  }
  // the lock: a push reads the images a build of the same project may be tagging
  await ctx.port.lockProject(project.name, () => applyPlan(ctx, plan));
  return ExitCode.ok;
}
