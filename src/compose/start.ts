/** `start`: the project's stopped containers, dependencies first. */
import { ExitCode } from '../exit-code.js';
import { TsfigError } from '../errors.js';
import type { Project } from '../model/project.js';
import { planStart, selectedContainers } from '../planner/lifecycle.js';
import { servicesInScope } from '../planner/reconcile.js';
import { planAndApply, type VerbPlanOptions } from './apply.js';
import type { ComposeContext } from './context.js';

export interface StartOptions extends VerbPlanOptions {
  readonly project: Project;
  readonly services: readonly string[];
  /** `--wait`: return once the services run, healthy where they have a healthcheck. */
  readonly wait?: boolean;
  /** `--wait-timeout` in seconds; undefined = no limit. */
  readonly waitTimeoutSeconds?: number | undefined;
}

/** The named services and what they depend on (compose v2's start starts the dependency chain), others as given. */
export function startScope(project: Project, services: readonly string[]): string[] {
  const scope = services.flatMap((name) =>
    project.services[name] === undefined ? [name] : [...servicesInScope(project, { services: [name] })],
  );
  return [...new Set(scope)];
}

export async function run(ctx: ComposeContext, options: StartOptions): Promise<ExitCode> {
  await planAndApply(ctx, options.project, options, (observed) => {
    const services = startScope(options.project, options.services);
    if (selectedContainers(options.project, observed, services).length === 0) {
      throw new TsfigError('not-found', 'no containers to start', { hint: 'create them with: tsfig up -d' });
    }
    const { wait, waitTimeoutSeconds } = options;
    return planStart(options.project, observed, {
      services,
      ...(wait === true ? { wait } : {}),
      ...(waitTimeoutSeconds !== undefined ? { waitTimeoutMs: waitTimeoutSeconds * 1000 } : {}),
    });
  });
  return ExitCode.ok;
}
