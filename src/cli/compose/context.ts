import type { Command } from 'commander';
import type { Engine } from '../../../engine/index.js';
import type { LoadResult } from '../../config/load.js';
import { TsfigError } from '../../errors.js';
import type { Project } from '../../model/project.js';
import { observe } from '../../planner/observe.js';
import type { ObservedContainer, ObservedState } from '../../planner/observed.js';
import { loadProjectFromOptions, type ProjectOptions } from '../commands/config.js';
import { openEngine } from '../engine.js';

/** What a compose verb works with: the loaded project, the engine, and one observation of the engine's state. */
export interface ComposeContext {
  readonly project: Project;
  readonly load: LoadResult;
  readonly engine: Engine;
  readonly observed: ObservedState;
}

/** The global options (`-f`, `-p`, `--project-directory`, `--env-file`, `--profile`) of a subcommand. */
export function projectOptions(command: Command): ProjectOptions {
  return command.optsWithGlobals<ProjectOptions>();
}

/**
 * Loads the project for the services named on the command line (which enables their profiles). An unknown name is
 * a usage error (exit 64) listing the known services, not a project error: it is checked on a first load without
 * names, whose warnings are not printed twice.
 */
export function loadForServices(command: Command, services: readonly string[]): LoadResult {
  if (services.length > 0) {
    const all = loadProjectFromOptions(projectOptions(command), { warn: () => undefined });
    checkServices(all.project, services);
  }
  return loadProjectFromOptions(projectOptions(command), { services });
}

/** Loads the project (exit 65 when invalid) and opens the engine; services named must exist. */
export async function composeContext(command: Command, services: readonly string[] = []): Promise<ComposeContext> {
  const load = loadForServices(command, services);
  const project = load.project;
  const engine = await openEngine();
  const observed = await observe(engine, project.name, project);
  return { project, load, engine, observed };
}

/** An unknown service on the command line is a usage error that lists the known ones (nothing is changed). A service
 * of a disabled profile is known: naming it enables its profile, as in compose. */
export function checkServices(project: Project, services: readonly string[]): void {
  const known = [...Object.keys(project.services), ...Object.keys(project.disabled_services)];
  for (const service of services) {
    if (known.includes(service) || service in project.disabled_services) continue;
    throw new TsfigError('usage', `no such service: ${service}`, {
      hint: `the project's services are: ${known.sort().join(', ')}`,
    });
  }
}

/** The project's service containers (no one-offs), optionally of some services, ordered by service then number. */
export function serviceContainers(
  observed: ObservedState,
  services: readonly string[] = [],
  options: { includeOneoff?: boolean } = {},
): ObservedContainer[] {
  return observed.containers
    .filter((container) => options.includeOneoff === true || !container.oneoff)
    .filter((container) => services.length === 0 || services.includes(container.service))
    .sort((a, b) => a.service.localeCompare(b.service) || a.number - b.number || a.name.localeCompare(b.name));
}
