/**
 * `pull [SERVICE...]`: a plan of `image.pull` operations, one per image (`planPull`, planner/images.ts), run through
 * the port under the project lock; the first Ctrl-C aborts the pulls (their downloads are deleted) and the verb fails
 * with 128+signal. The registry's progress goes to the context's event sink as `pull.*` events. A failed pull that is
 * best effort (`--ignore-pull-failures`, or a service that can be built) leaves exit 0, with a warning naming the
 * services that must be built.
 */
import { ExitCode } from '../exit-code.js';
import type { Project } from '../model/project.js';
import { planPull } from '../planner/images.js';
import { OpKind } from '../planner/plan.js';
import { applyPlan, printPlan } from './apply.js';
import type { ComposeContext } from './context.js';

export interface PullOptions {
  readonly project: Project;
  /** The services named; all when empty. */
  readonly services: readonly string[];
  /** `--include-deps`. */
  readonly includeDeps?: boolean;
  /** `--policy`. @default 'always' */
  readonly policy?: 'always' | 'missing';
  /** `--ignore-pull-failures`. */
  readonly ignoreFailures?: boolean;
  /** `-q`: no warning about services to build (the event sink is the CLI's quiet one). */
  readonly quiet?: boolean;
  readonly dryRun?: boolean;
  readonly format?: 'text' | 'json';
}

const INTERRUPT_HINT = 'run tsfig pull again to finish it (the layers already unpacked are kept)';

export async function run(ctx: ComposeContext, options: PullOptions): Promise<ExitCode> {
  const { project } = options;
  const plan = planPull(project, await ctx.port.observe(project), {
    services: options.services,
    ...(options.includeDeps !== undefined ? { includeDeps: options.includeDeps } : {}),
    ...(options.policy !== undefined ? { policy: options.policy } : {}),
    ...(options.ignoreFailures !== undefined ? { ignoreFailures: options.ignoreFailures } : {}),
  });
  if (options.dryRun === true) {
    printPlan(ctx, plan, options.format);
    return ExitCode.ok;
  }
  if (plan.operations.length === 0) return ExitCode.ok;
  const result = await ctx.port.lockProject(project.name, () =>
    ctx.interruptible('the pull', INTERRUPT_HINT, (signal) => applyPlan(ctx, plan, signal)),
  );
  // the failures left are best effort: the services among them that have build: must be built
  const failedIds = new Set(result.failed.map((failure) => failure.id));
  const mustBuild = plan.operations
    .flatMap((op) => (op.kind === OpKind.ImagePull && failedIds.has(op.id) ? op.spec.services : []))
    .filter((name) => project.services[name]?.build !== undefined)
    .sort();
  if (mustBuild.length > 0 && options.quiet !== true) {
    ctx.stderr.write(
      `WARNING: Some service image(s) must be built from source by running:\n    tsfig build ${mustBuild.join(' ')}\n`,
    );
  }
  return ExitCode.ok;
}
