/** `ps`: which containers compose lists for -a, --status and --filter (status=, source=), one-offs included. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { selectPsContainers } from '../../src/cli/compose/ps.js';
import { TsfigError } from '../../src/errors.js';
import { observedUp, project, runningContainer, service, stoppedContainer } from '../helpers/project.js';

const redis = service('redis');
const once = service('once');
const app = service('app', {
  image: undefined,
  build: { context: '/srv/app' } as unknown as NonNullable<ReturnType<typeof service>['build']>,
});
const p = project([redis, once, app]);
const oneoff = stoppedContainer(p, once, 1, 0);
const observed = observedUp(p, [
  runningContainer(p, redis),
  stoppedContainer(p, once),
  runningContainer(p, app),
  { ...oneoff, id: 'id-run', name: 'tsfig-once-run-1a2b', number: 0, oneoff: true },
]);
const names = (
  selection: { all?: boolean; status?: string[]; filters?: string[]; paused?: Set<string> },
  services: string[] = [],
) =>
  selectPsContainers(p, observed, services, {
    all: selection.all ?? false,
    status: selection.status ?? [],
    filters: selection.filters ?? [],
    ...(selection.paused !== undefined ? { paused: selection.paused } : {}),
  }).map((container) => container.name);

test('ps lists running service containers; -a adds stopped ones and the one-offs of run (compose v2)', () => {
  assert.deepEqual(names({}), ['tsfig-app-1', 'tsfig-redis-1']);
  assert.deepEqual(names({ all: true }), ['tsfig-app-1', 'tsfig-once-1', 'tsfig-once-run-1a2b', 'tsfig-redis-1']);
  assert.deepEqual(names({ all: true }, ['once']), ['tsfig-once-1', 'tsfig-once-run-1a2b']);
});

test('ps --filter status=X selects like --status X; stopped (compose v1) is any container not running', () => {
  assert.deepEqual(names({ filters: ['status=running'] }), ['tsfig-app-1', 'tsfig-redis-1']);
  assert.deepEqual(names({ status: ['running'] }), ['tsfig-app-1', 'tsfig-redis-1']);
  assert.deepEqual(names({ filters: ['status=exited'] }), ['tsfig-once-1', 'tsfig-once-run-1a2b']);
  assert.deepEqual(names({ filters: ['status=stopped'] }), ['tsfig-once-1', 'tsfig-once-run-1a2b']);
  assert.deepEqual(names({ filters: ['status=created'] }), []);
  assert.deepEqual(names({ filters: ['status=running', 'status=exited'] }).length, 4);
});

test('ps --filter status=paused lists the frozen containers, which status=running no longer lists (compose v2)', () => {
  const redisId = observed.containers.find((container) => container.name === 'tsfig-redis-1')!.id;
  const paused = new Set([redisId]);
  assert.deepEqual(names({ filters: ['status=paused'], paused }), ['tsfig-redis-1']);
  assert.deepEqual(names({ status: ['running'], paused }), ['tsfig-app-1']);
  assert.deepEqual(names({ filters: ['status=paused'] }), []);
  // a paused container is still up: plain ps lists it
  assert.deepEqual(names({ paused }), ['tsfig-app-1', 'tsfig-redis-1']);
});

test('ps --filter source=image|build keeps the services with an image or a build', () => {
  assert.deepEqual(names({ filters: ['source=build'] }), ['tsfig-app-1']);
  assert.deepEqual(names({ all: true, filters: ['source=image'] }), [
    'tsfig-once-1',
    'tsfig-once-run-1a2b',
    'tsfig-redis-1',
  ]);
  assert.deepEqual(names({ filters: ['source=build', 'status=exited'] }), []);
});

test('ps refuses an unknown filter, a malformed one and an unknown status (usage errors)', () => {
  for (const selection of [
    { filters: ['label=tier=db'] },
    { filters: ['status'] },
    { filters: ['source=registry'] },
    { filters: ['status=sleeping'] },
    { status: ['up'] },
  ]) {
    assert.throws(
      () => names(selection),
      (error: unknown) => error instanceof TsfigError && error.kind === 'usage',
      JSON.stringify(selection),
    );
  }
});
