import type { ContainerRecord, ContainerState } from '../../engine/containers/index.js';
import type { Engine } from '../../engine/index.js';
import type { Project } from '../model/project.js';
import { serviceImage } from './container-spec.js';
import { toObservedContainer, type ObservedContainer, type ObservedImage, type ObservedState } from './observed.js';

export const PROJECT_LABEL = 'io.tsfig.project';

/**
 * The project's containers (one-offs included) with the record and state each was observed from: every record and
 * status read once, and the freezer of the running ones (a frozen cgroup is the only trace of a pause). All that
 * `ps` needs of `observe`.
 */
export async function observeContainers(
  engine: Engine,
  projectName: string,
): Promise<{ container: ObservedContainer; record: ContainerRecord; state: ContainerState }[]> {
  const records = await engine.containers.listRecords({ [PROJECT_LABEL]: projectName });
  const paused = await Promise.all(
    records.map(({ record, state }) =>
      state.running ? engine.containers.isPaused(record.id) : Promise.resolve(false),
    ),
  );
  return records.flatMap(({ record, state }, index) => {
    const container = toObservedContainer(record, state, paused[index] === true);
    return container === undefined ? [] : [{ container, record, state }];
  });
}

/**
 * Reads, once, everything the planner compares the project with: the project's containers (one-offs included),
 * the networks and volumes on the host, and which of the services' images are present.
 */
export async function observe(engine: Engine, projectName: string, project?: Project): Promise<ObservedState> {
  const containers = (await observeContainers(engine, projectName)).map(({ container }) => container);
  const networks = (await engine.networks.list()).map((network) => ({ name: network.name, labels: network.labels }));
  const volumes = (await engine.volumes.list()).volumes.map((volume) => ({ name: volume.Name, labels: volume.Labels }));
  const images: Record<string, ObservedImage | undefined> = {};
  // the services' images, and those of disabled services that a service links to (their ports are in its variables)
  const linked = new Set(Object.values(project?.services ?? {}).flatMap((s) => s.links.map((l) => l.split(':')[0])));
  const disabled = Object.values(project?.disabled_services ?? {}).filter((s) => linked.has(s.name));
  for (const service of [...Object.values(project?.services ?? {}), ...disabled]) {
    // A service with only `build:` runs the image its build is tagged with (`<project>-<service>`).
    const reference = project === undefined ? service.image : serviceImage(project, service);
    if (reference === undefined || reference in images) continue;
    images[reference] = await engine.images.resolve(reference).then(
      (image) => ({ id: image.id, exposedPorts: Object.keys(image.config.config?.ExposedPorts ?? {}) }),
      () => undefined,
    );
  }
  return { containers, networks, volumes, images };
}
