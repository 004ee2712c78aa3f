export {
  VolumeStore,
  parseFilterArgs,
  type CreateVolumeOptions,
  type ListVolumesOptions,
  type ListVolumesResult,
  type PruneVolumesOptions,
  type PruneVolumesResult,
  type RemoveVolumeOptions,
  type UsersOf,
  type VolumeFilters,
  type VolumeInfo,
} from './store.js';
export {
  parseMountFlag,
  parseTmpfsFlag,
  parseVolumeFlag,
  renderMountConf,
  resolveMounts,
  type BindMountSpec,
  type MountSpec,
  type ParseMountOptions,
  type Propagation,
  type ResolveMountsOptions,
  type ResolveMountsResult,
  type ResolvedMount,
  type TmpfsMountSpec,
  type VolumeMountSpec,
  type VolumesFromSource,
} from './mounts.js';
export { ANONYMOUS_LABEL, volumeNameProblem, parseTmpfsOptions } from './options.js';
export { containerRecordUsers, volumeUsers } from './users.js';
export { FileContent } from './files.js';
export type { ContainerFile } from './files.js';
