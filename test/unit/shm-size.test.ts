/** shm_size: from the service to the engine spec, and into runtime.conf (the native helper sizes /dev/shm by it). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runtimeConfEntries } from '../../engine/containers/runtime-config.js';
import type { ContainerRecord } from '../../engine/containers/types.js';
import { renderRuntimeConf } from '../../engine/runtime/conf.js';
import { serviceContainerSpec } from '../../src/planner/container-spec.js';
import { project, service } from '../helpers/project.js';

const record = (shmSize: number | undefined): ContainerRecord => ({
  v: 1,
  id: 'a'.repeat(64),
  name: 'web',
  created: '2026-01-01T00:00:00.000Z',
  imageId: 'sha256:' + 'b'.repeat(64),
  imageRef: 'tsfig/busybox',
  spec: { image: 'tsfig/busybox', ...(shmSize !== undefined ? { shmSize } : {}) },
  process: { argv: ['true'], env: [], cwd: '/', user: '' },
  hostname: 'aaaaaaaaaaaa',
  capabilities: [],
  stopSignal: 15,
  stopTimeout: 10,
  mounts: [],
  labels: {},
});
const lines = (shmSize: number | undefined) =>
  renderRuntimeConf(runtimeConfEntries(record(shmSize), [], { dir: '/c', runDir: '/r', cgroup: 'tsf-x/a' }, 'new'))
    .split('\n')
    .filter((line) => line.startsWith('shm_size'));

test('a service shm_size is the container spec shmSize, without a warning', () => {
  const web = service('web', { shm_size: 128 * 1024 * 1024 });
  const { spec, warnings } = serviceContainerSpec(project([web]), web, 1, { configHash: 'h' });
  assert.equal(spec.container.shmSize, 134_217_728);
  assert.deepEqual(warnings, []);
  const plain = service('plain');
  assert.equal(serviceContainerSpec(project([plain]), plain, 1, { configHash: 'h' }).spec.container.shmSize, undefined);
});

test('runtime.conf carries shm_size in bytes; without it the helper keeps docker default (64 MiB)', () => {
  assert.deepEqual(lines(134_217_728), ['shm_size 134217728']);
  assert.deepEqual(lines(undefined), []);
});
