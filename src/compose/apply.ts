/** What every state-changing verb does with its plan: show it (`--dry-run`) or run it through the executor. */
import { TsfigError } from '../errors.js';
import { executePlan, type ExecuteResult } from '../executor/execute.js';
import type { Project } from '../model/project.js';
import type { ObservedState } from '../planner/observed.js';
import type { Plan } from '../planner/plan.js';
import { renderPlanJson, renderPlanText } from '../planner/render.js';
import type { ComposeContext } from './context.js';

/**
 * Runs a plan: its warnings go to the event sink, its ops through the port. A failed op (or an interrupt) throws
 * the op's error, after the executor has reported it; the result names the containers created.
 */
export async function applyPlan(ctx: ComposeContext, plan: Plan, signal?: AbortSignal): Promise<ExecuteResult> {
  for (const warning of plan.warnings) ctx.events.emit({ kind: 'warning', message: warning });
  const result = await executePlan({ ...plan, warnings: [] }, ctx.port, ctx.events, {
    ...(ctx.parallel !== undefined ? { parallel: ctx.parallel } : {}),
    ...(signal !== undefined ? { signal } : {}),
  });
  if (result.ok) return result;
  const error = result.error;
  if (error instanceof Error) throw error;
  throw new TsfigError('runtime', String(error));
}

/** `--dry-run`: the plan on stdout (terraform-like text, or the versioned JSON); nothing changes. */
export function printPlan(ctx: ComposeContext, plan: Plan, format: 'text' | 'json' = 'text'): void {
  ctx.stdout.write(format === 'json' ? renderPlanJson(plan) : renderPlanText(plan));
}

export interface VerbPlanOptions {
  readonly dryRun?: boolean;
  readonly format?: 'text' | 'json';
  /** Take the project lock (every verb that creates or removes; not kill or pause). @default true */
  readonly lock?: boolean;
}

/**
 * The shape of the verbs that act on existing containers: (lock,) observe, plan with `make`, then print or apply.
 * `make` may throw a user error (nothing to start) before anything changes.
 */
export async function planAndApply(
  ctx: ComposeContext,
  project: Project,
  options: VerbPlanOptions,
  make: (observed: ObservedState) => Plan,
): Promise<Plan> {
  const work = async () => {
    const thePlan = make(await ctx.port.observe(project));
    if (options.dryRun === true) printPlan(ctx, thePlan, options.format);
    else await applyPlan(ctx, thePlan);
    return thePlan;
  };
  return options.lock === false ? work() : ctx.port.lockProject(project.name, work);
}
