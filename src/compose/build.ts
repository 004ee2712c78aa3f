/**
 * `build [SERVICE...]`: a plan of `image.build` operations (`planBuild`, planner/images.ts), run through the port
 * under the project lock; the first Ctrl-C aborts the build (the running RUN step's container is killed and removed)
 * and the verb fails with 128+signal. The builder's progress goes to the context's event sink as `build.*` events.
 */
import { ExitCode } from '../exit-code.js';
import type { Project } from '../model/project.js';
import { planBuild } from '../planner/images.js';
import { applyPlan, printPlan } from './apply.js';
import type { ComposeContext } from './context.js';

export interface BuildOptions {
  readonly project: Project;
  /** The services named; all when empty. */
  readonly services: readonly string[];
  readonly noCache?: boolean;
  readonly pull?: boolean;
  /** `--build-arg KEY=VALUE` entries, over the file's `build.args`. */
  readonly buildArgs?: readonly string[];
  readonly dryRun?: boolean;
  readonly format?: 'text' | 'json';
}

const INTERRUPT_HINT = 'run tsfig build again to finish it: the steps that completed are cached';

export async function run(ctx: ComposeContext, options: BuildOptions): Promise<ExitCode> {
  const plan = planBuild(options.project, {
    services: options.services,
    ...(options.noCache !== undefined ? { noCache: options.noCache } : {}),
    ...(options.pull !== undefined ? { pull: options.pull } : {}),
    ...(options.buildArgs !== undefined ? { buildArgs: options.buildArgs } : {}),
    env: ctx.env,
  });
  if (options.dryRun === true) {
    printPlan(ctx, plan, options.format);
    return ExitCode.ok;
  }
  await ctx.port.lockProject(options.project.name, () =>
    ctx.interruptible('the build', INTERRUPT_HINT, (signal) => applyPlan(ctx, plan, signal)),
  );
  return ExitCode.ok;
}
