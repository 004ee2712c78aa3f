/**
 * `up` (and `create`, `scale`, watch's re-plans, which are `up` with other options): lock, observe, plan the images
 * (pulls, builds) and run that plan, observe again, plan the containers and run that plan; attached, follow the
 * containers until they exit. Every decision is the planner's; this file only sequences the phases.
 */
import { ExitCode } from '../exit-code.js';
import type { Project } from '../model/project.js';
import { imagesProduced, planImages, policyInterval } from '../planner/images.js';
import { serviceImage } from '../planner/container-spec.js';
import type { ObservedState } from '../planner/observed.js';
import { OpKind, sequencePlans, type Plan } from '../planner/plan.js';
import { plan as planContainers, servicesInScope, type PlanOptions } from '../planner/reconcile.js';
import { planHasChanges } from '../planner/render.js';
import { applyPlan, printPlan } from './apply.js';
import { attach, type AttachOptions } from './attach.js';
import type { ComposeContext } from './context.js';

export interface UpOptions {
  readonly project: Project;
  /** Services named on the command line; empty = all. */
  readonly services: readonly string[];
  /** How the containers are converged (planner/reconcile.ts PlanOptions, without services). */
  readonly plan: Omit<PlanOptions, 'services' | 'pendingImages' | 'oneOff' | 'wait' | 'waitTimeoutMs'>;
  /**
   * `--build`: true (build every service with `build:`, the layer cache keeping unchanged steps); `--no-build`:
   * false; by default (`missing`) only the images not there yet, and those of `pull_policy: build` (compose v2: an
   * unchanged `up` rebuilds nothing; e2e TestLocalComposeBuild). @default 'missing'
   */
  readonly build?: boolean | 'missing';
  /** `--pull POLICY`: overrides every service's pull_policy. */
  readonly pull?: string | undefined;
  /** Print the plan (images and containers) and change nothing. */
  readonly dryRun?: boolean;
  readonly format?: 'text' | 'json';
  /** Return once the containers are started (`-d`, `--wait`). */
  readonly detach?: boolean;
  /** `--wait`: the plan waits for every container to be running, or healthy when it has a healthcheck. */
  readonly wait?: boolean;
  /** `--wait-timeout` in seconds. */
  readonly waitTimeoutSeconds?: number;
  /** Attached mode: how the containers are followed. */
  readonly attach?: AttachOptions;
  /** Attached mode: work that runs while attached (`up --watch`); its stop is awaited before returning. */
  readonly whileAttached?: (project: Project) => { stop(): Promise<void> };
}

export interface Converged {
  /** False for `--dry-run` (nothing was applied). */
  readonly applied: boolean;
  /** The container plan that was applied (or printed, with the image phase before it). */
  readonly plan: Plan;
}

/**
 * When the present images of `services` whose pull policy is an interval (daily, weekly, every_N) were last pulled:
 * what planImages decides those pulls with. Asked only when there is one (it reads the registry's records).
 */
export async function lastPulledOf(
  ctx: ComposeContext,
  project: Project,
  observed: ObservedState,
  services: Iterable<string>,
  pull: string | undefined,
): Promise<Readonly<Record<string, number | undefined>>> {
  const images = new Set<string>();
  for (const name of services) {
    const service = project.services[name];
    if (service === undefined || policyInterval(pull ?? service.pull_policy) === undefined) continue;
    const image = serviceImage(project, service);
    if (observed.images[image] !== undefined) images.add(image);
  }
  return images.size === 0 ? {} : ctx.port.lastPulled([...images]);
}

/** The image phase's plan for the services the container plan converges. */
async function imagePlan(ctx: ComposeContext, options: UpOptions, observed: ObservedState): Promise<Plan> {
  const scope = servicesInScope(options.project, { ...options.plan, services: options.services });
  return planImages(options.project, observed, {
    services: [...scope],
    pull: options.pull,
    build: options.build ?? 'missing',
    env: ctx.env,
    now: ctx.clock(),
    lastPulled: await lastPulledOf(ctx, options.project, observed, scope, options.pull),
  });
}

function containerOptions(options: UpOptions, pendingImages: readonly string[] = []): PlanOptions {
  return {
    ...options.plan,
    services: options.services,
    ...(options.wait === true ? { wait: true } : {}),
    ...(options.waitTimeoutSeconds !== undefined ? { waitTimeoutMs: options.waitTimeoutSeconds * 1000 } : {}),
    ...(pendingImages.length > 0 ? { pendingImages } : {}),
  };
}

const INTERRUPT_HINT =
  'run tsfig up again to continue (completed build steps and pulled layers are kept), ' +
  'or tsfig down to remove what the project already runs';

/** Lock, observe, plan and apply (or print, with `--dry-run`); what `up -d`, `create`, `scale` and watch run. */
export function converge(ctx: ComposeContext, options: UpOptions): Promise<Converged> {
  return ctx.port.lockProject(options.project.name, () => convergeLocked(ctx, options));
}

/**
 * `converge` for a caller that already holds the project lock (`kube play`, which writes the project's files under
 * it first): observe, the image plan, the container plan.
 */
export async function convergeLocked(ctx: ComposeContext, options: UpOptions): Promise<Converged> {
  const { project } = options;
  if (options.dryRun !== true) await ctx.port.repair();
  const before = await ctx.port.observe(project);
  const images = await imagePlan(ctx, options, before);
  if (options.dryRun === true) {
    const containers = planContainers(project, before, containerOptions(options, imagesProduced(images)));
    const built = images.operations.filter((op) => op.kind === OpKind.ImageBuild).map((op) => op.resource);
    const caveat =
      built.length > 0
        ? [
            `${built.map((r) => r.replace(/^service:/, '')).join(', ')}: the containers are compared with the ` +
              'image the build produces only once it is built (a changed image recreates them)',
          ]
        : [];
    const full = sequencePlans({ ...images, warnings: [...images.warnings, ...caveat] }, containers);
    printPlan(ctx, full, options.format);
    return { applied: false, plan: full };
  }
  let observed = before;
  if (images.operations.length > 0) {
    await ctx.interruptible('up', INTERRUPT_HINT, (signal) => applyPlan(ctx, images, signal));
    observed = await ctx.port.observe(project);
  }
  const thePlan = planContainers(project, observed, containerOptions(options));
  if (!planHasChanges(thePlan)) {
    for (const warning of thePlan.warnings) ctx.events.emit({ kind: 'warning', message: warning });
    ctx.stderr.write(`Project ${project.name} is up to date: nothing to do.\n`);
    if (thePlan.operations.length > 0) await applyPlan(ctx, { ...thePlan, warnings: [] });
    return { applied: true, plan: thePlan };
  }
  await ctx.port.preflight(thePlan);
  await applyPlan(ctx, thePlan);
  return { applied: true, plan: thePlan };
}

/** `tsfig up`: converge, then (attached) follow the containers; the exit code of the attached session. */
export async function run(ctx: ComposeContext, options: UpOptions): Promise<ExitCode> {
  // what containers logged before this up (an earlier run of an exited container) is not shown again
  const began = new Date(ctx.clock()).toISOString();
  const converged = await converge(ctx, options);
  if (!converged.applied || options.detach === true || options.wait === true) return ExitCode.ok;
  const during = options.whileAttached?.(options.project);
  try {
    return await attach(ctx, options.project, options.services, { since: began, ...options.attach });
  } finally {
    await during?.stop();
  }
}
