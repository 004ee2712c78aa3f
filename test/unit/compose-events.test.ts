import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diffContainers } from '../../src/cli/compose/more-commands.js';
import type { ObservedContainer } from '../../src/planner/observed.js';

function container(id: string, running: boolean): ObservedContainer {
  return {
    id,
    name: `p-web-${id}`,
    project: 'p',
    service: 'web',
    number: 1,
    oneoff: false,
    configHash: undefined,
    running,
    paused: false,
    status: running ? 'running' : 'exited',
    exitCode: 0,
    imageId: 'sha256:abc',
    labels: {},
    created: '',
    mounts: [],
  };
}

test('events: created, started, died and destroyed containers, in that order', () => {
  const before = new Map([
    ['a', container('a', true)],
    ['b', container('b', true)],
    ['c', container('c', false)],
  ]);
  const after = new Map([
    ['a', container('a', false)],
    ['c', container('c', true)],
    ['d', container('d', true)],
  ]);
  const events = diffContainers(before, after, 'T');
  assert.deepEqual(
    events.map((event) => `${event.action} ${event.id}`),
    ['die a', 'start c', 'create d', 'start d', 'destroy b'],
  );
  assert.equal(events[0]?.attributes.name, 'p-web-a');
});
