/** `down`: stop and remove the project's containers, then its networks; `-v` its volumes, `--rmi` its images. */
import { ExitCode } from '../exit-code.js';
import type { Project } from '../model/project.js';
import { imagesToRemove } from '../planner/images.js';
import { planDown } from '../planner/reconcile.js';
import { applyPlan, printPlan } from './apply.js';
import type { ComposeContext } from './context.js';

export interface DownOptions {
  readonly project: Project;
  /** `-v`: named volumes declared in the project and the anonymous volumes of its containers. */
  readonly volumes?: boolean;
  readonly removeOrphans?: boolean;
  /** `-t` in seconds. */
  readonly timeoutSeconds?: number | undefined;
  /** `--rmi local|all`: local = the images built under their default name (no `image:`), all = every service's. */
  readonly rmi?: 'local' | 'all' | undefined;
  readonly dryRun?: boolean;
  readonly format?: 'text' | 'json';
  /** `down SERVICE...`: only these services' containers (compose v2); empty = the whole project. */
  readonly services?: readonly string[];
}

export async function run(ctx: ComposeContext, options: DownOptions): Promise<ExitCode> {
  const { project } = options;
  await ctx.port.lockProject(project.name, async () => {
    if (options.dryRun !== true) await ctx.port.repair();
    const observed = await ctx.port.observe(project);
    // -v: which containers use the volumes, so the plan keeps an anonymous volume another container still uses
    const volumeUsers =
      options.volumes === true ? await ctx.port.volumeUsers(observed.volumes.map((volume) => volume.name)) : undefined;
    const services = options.services ?? [];
    // --rmi of a scoped down: the images of the named services only
    const imagesOf =
      services.length === 0
        ? project
        : { ...project, services: Object.fromEntries(services.map((name) => [name, project.services[name]!])) };
    const thePlan = planDown(project, observed, {
      ...(services.length > 0 ? { services } : {}),
      volumes: options.volumes === true,
      ...(volumeUsers !== undefined ? { volumeUsers } : {}),
      removeOrphans: options.removeOrphans === true,
      ...(options.timeoutSeconds !== undefined ? { timeoutSeconds: options.timeoutSeconds } : {}),
      ...(options.rmi !== undefined ? { images: imagesToRemove(imagesOf, observed, options.rmi) } : {}),
    });
    if (options.dryRun === true) return printPlan(ctx, thePlan, options.format);
    await applyPlan(ctx, thePlan);
  });
  return ExitCode.ok;
}
