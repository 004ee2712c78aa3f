export { ImageStore } from './store.js';
export type { ImageInspect, IsInUse, RemoveOptions } from './store.js';
export type {
  ContainerConfig,
  HistoryEntry,
  ImageConfigFile,
  ImageRecord,
  ImportOptions,
  ImportSource,
  LayerRecord,
  RemoveAction,
} from './types.js';
export {
  familiarReference,
  familiarize,
  formatReference,
  parseReference,
  parseTagReference,
  type ImageReference,
} from './reference.js';
export { applyChanges, CHANGE_INSTRUCTIONS } from './changes.js';
export { chainIds, detectCompression, type Compression } from './layer.js';
export { containerImageUsers } from './users.js';
export { loadImages, saveImages } from './archive.js';
export type { ArchiveFormat } from './archive.js';
export { commitContainer, exportContainer } from './container-archive.js';
