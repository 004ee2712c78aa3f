import type { ContainerRecord, ContainerSpec } from '../../engine/containers/types.js';

/** The id of every record containerRecord() makes. */
export const RECORD_ID = 'a'.repeat(64);

/**
 * A container record as the engine writes it (container `web` of image tsfig/busybox running `sleep 1`, no mounts,
 * no capabilities), its spec holding spec's fields: the input of runtime.conf rendering in unit tests.
 */
export function containerRecord(spec: Omit<ContainerSpec, 'image'> = {}): ContainerRecord {
  return {
    v: 1,
    id: RECORD_ID,
    name: 'web',
    created: '2026-01-01T00:00:00.000Z',
    imageId: 'sha256:' + 'b'.repeat(64),
    imageRef: 'tsfig/busybox',
    spec: { image: 'tsfig/busybox', ...spec },
    process: { argv: ['sleep', '1'], env: ['PATH=/bin'], cwd: '/', user: '' },
    hostname: 'aaaaaaaaaaaa',
    capabilities: [],
    stopSignal: 15,
    stopTimeout: 10,
    mounts: [],
    labels: {},
  };
}
