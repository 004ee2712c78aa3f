/**
 * `commit SERVICE [REPOSITORY[:TAG]]`: a plan of one `image.commit` (`planCommit`, planner/images.ts) of the
 * service's container number `--index`, run through the port; the new image's id on stdout (as `docker commit`),
 * the progress (`Committing`, `Committed as ID`, compose's words) through the event sink.
 */
import { TsfigError } from '../errors.js';
import { ExitCode } from '../exit-code.js';
import type { Project } from '../model/project.js';
import { planCommit } from '../planner/images.js';
import { applyPlan, printPlan } from './apply.js';
import type { ComposeContext } from './context.js';

export interface CommitOptions {
  readonly project: Project;
  readonly service: string;
  /** `--index`. @default 1 */
  readonly index?: number;
  readonly reference?: string | undefined;
  /** `-c`, `-m`, `-a`. */
  readonly changes?: readonly string[];
  readonly message?: string | undefined;
  readonly author?: string | undefined;
  readonly dryRun?: boolean;
  readonly format?: 'text' | 'json';
}

export async function run(ctx: ComposeContext, options: CommitOptions): Promise<ExitCode> {
  const plan = planCommit(options.project, await ctx.port.observe(options.project), {
    service: options.service,
    ...(options.index !== undefined ? { index: options.index } : {}),
    reference: options.reference,
    changes: options.changes ?? [],
    message: options.message,
    author: options.author,
  });
  if (options.dryRun === true) {
    printPlan(ctx, plan, options.format);
    return ExitCode.ok;
  }
  const result = await applyPlan(ctx, plan);
  const op = plan.operations[0];
  const id = op?.kind === 'image.commit' ? result.imageIds[op.spec.name] : undefined;
  if (id === undefined) throw new TsfigError('internal', 'the commit reported no image id');
  ctx.stdout.write(`${id}\n`);
  return ExitCode.ok;
}
