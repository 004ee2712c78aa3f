import type { Engine } from '../../engine/index.js';
import type { Project } from '../model/project.js';
import { serviceImage } from './container-spec.js';
import type { ObservedContainer, ObservedState } from './observed.js';

export const PROJECT_LABEL = 'io.tsfig.project';

/**
 * Reads, once, everything the planner compares the project with: the project's containers (one-offs included),
 * the networks and volumes on the host, and which of the services' images are present.
 */
export async function observe(engine: Engine, projectName: string, project?: Project): Promise<ObservedState> {
  const records = await engine.containers.listRecords({ [PROJECT_LABEL]: projectName });
  const containers: ObservedContainer[] = records.map(({ record, state }) => ({
    id: record.id,
    name: record.name,
    project: record.labels[PROJECT_LABEL] ?? projectName,
    service: record.labels['io.tsfig.service'] ?? '',
    number: Number(record.labels['io.tsfig.container-number'] ?? '0') || 0,
    oneoff: record.labels['io.tsfig.oneoff'] === 'True',
    configHash: record.labels['io.tsfig.config-hash'],
    running: state.running,
    status: state.status,
    exitCode: state.exitCode,
    imageId: record.imageId,
    labels: record.labels,
    created: record.created,
    mounts: record.mounts.map((mount) => ({
      destination: mount.destination,
      volumeName: mount.volumeName,
      anonymous: mount.anonymous === true,
    })),
    spec: record.spec,
  }));
  const networks = (await engine.networks.list()).map((network) => ({ name: network.name, labels: network.labels }));
  const volumes = (await engine.volumes.list()).volumes.map((volume) => ({ name: volume.Name, labels: volume.Labels }));
  const images: Record<string, { id: string } | undefined> = {};
  for (const service of Object.values(project?.services ?? {})) {
    // A service with only `build:` runs the image its build is tagged with (`<project>-<service>`).
    const reference = project === undefined ? service.image : serviceImage(project, service);
    if (reference === undefined || reference in images) continue;
    images[reference] = await engine.images.resolve(reference).then(
      (image) => ({ id: image.id }),
      () => undefined,
    );
  }
  return { containers, networks, volumes, images };
}
