import type { Engine } from '../../../engine/index.js';
import type { ContainerMount } from '../../../engine/containers/index.js';
import {
  parseMountFlag,
  parseTmpfsFlag,
  parseVolumeFlag,
  resolveMounts,
  type MountSpec,
  type VolumesFromSource,
} from '../../../engine/volumes/index.js';
import { TsfigError } from '../../errors.js';

export interface MountFlags {
  readonly volume?: readonly string[];
  readonly mount?: readonly string[];
  readonly tmpfs?: readonly string[];
  readonly volumesFrom?: readonly string[];
}

function parseVolumesFrom(entry: string): { container: string; mode: 'ro' | 'rw' } {
  const [container = '', mode = 'rw', extra] = entry.split(':');
  if (container === '' || extra !== undefined || (mode !== 'ro' && mode !== 'rw')) {
    throw new TsfigError('usage', `--volumes-from: invalid value "${entry}"`, {
      hint: 'use CONTAINER or CONTAINER:ro',
    });
  }
  return { container, mode };
}

/**
 * Turns docker's -v / --mount / --tmpfs / --volumes-from flags into the mounts a container gets: volumes are created
 * as docker creates them, the image's VOLUME paths get anonymous volumes. Notes (options accepted and ignored) go to
 * stderr.
 */
export async function resolveCliMounts(engine: Engine, image: string, flags: MountFlags): Promise<ContainerMount[]> {
  const specs: MountSpec[] = [
    ...(flags.volume ?? []).map((spec) => parseVolumeFlag(spec)),
    ...(flags.mount ?? []).map((spec) => parseMountFlag(spec)),
    ...(flags.tmpfs ?? []).map((spec) => parseTmpfsFlag(spec)),
  ];
  const volumesFrom: VolumesFromSource[] = [];
  for (const entry of flags.volumesFrom ?? []) {
    const { container, mode } = parseVolumesFrom(entry);
    const source = await engine.containers.get(container);
    volumesFrom.push({ mounts: source.mounts.map((mount) => ({ ...mount, copy: mount.copy === true })), mode });
  }
  const imageRecord = await engine.images.resolve(image);
  const imageVolumes = Object.keys(imageRecord.config.config?.Volumes ?? {});
  if (specs.length === 0 && volumesFrom.length === 0 && imageVolumes.length === 0) return [];
  const result = await resolveMounts(specs, { volumes: engine.volumes, imageVolumes, volumesFrom });
  for (const note of result.notes) process.stderr.write(`note: ${note}\n`);
  return result.mounts;
}
