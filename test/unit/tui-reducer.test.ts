import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keyActions } from '../../src/ui/tty/keys.js';
import {
  initialState,
  reduce,
  visibleLogs,
  type ContainerObservation,
  type TuiEvent,
  type TuiState,
} from '../../src/ui/tty/state.js';

const op = (kind: string, service: string, n: number) => ({
  id: 1,
  kind,
  resource: `service:${service}:${n}`,
  target: `demo-${service}-${n}`,
  reason: 'test',
});

function observation(service: string, n: number, extra: Partial<ContainerObservation> = {}): ContainerObservation {
  return {
    id: `id-${service}-${n}`,
    name: `demo-${service}-${n}`,
    service,
    replica: n,
    status: 'running',
    running: true,
    restarts: 0,
    exitCode: 0,
    ports: [],
    startedAt: '2026-01-01T00:00:00Z',
    ...extra,
  };
}

const run = (events: readonly TuiEvent[], state: TuiState = initialState('demo')) => events.reduce(reduce, state);

test('op events create rows whose state follows the op (creating, then running)', () => {
  let state = run([{ kind: 'op.start', op: op('container.create', 'web', 1) }]);
  assert.equal(state.rows.length, 1);
  assert.equal(state.rows[0]?.state, 'creating');
  state = run(
    [
      { kind: 'op.done', op: op('container.create', 'web', 1), containerId: 'abc' },
      { kind: 'op.start', op: op('container.start', 'web', 1) },
    ],
    state,
  );
  assert.equal(state.rows[0]?.state, 'starting');
  assert.equal(state.rows[0]?.id, 'abc');
  state = reduce(state, { kind: 'op.done', op: op('container.start', 'web', 1) });
  assert.equal(state.rows[0]?.state, 'running');
});

test('a failed op marks its row as an error with the message', () => {
  const state = run([
    { kind: 'op.start', op: op('container.start', 'db', 1) },
    {
      kind: 'op.error',
      op: op('container.start', 'db', 1),
      message: 'boom',
      error: new Error('boom'),
      bestEffort: false,
    },
  ]);
  assert.equal(state.rows[0]?.state, 'error');
  assert.equal(state.rows[0]?.message, 'boom');
});

test('observations sort rows by service and replica, keep the selection, and drop removed containers', () => {
  let state = reduce(initialState('demo'), {
    kind: 'observe',
    atMs: 1000,
    containers: [observation('web', 2), observation('db', 1), observation('web', 1)],
  });
  assert.deepEqual(
    state.rows.map((row) => row.name),
    ['demo-db-1', 'demo-web-1', 'demo-web-2'],
  );
  state = reduce(state, { kind: 'select', delta: 2 });
  assert.equal(state.rows[state.selected]?.name, 'demo-web-2');
  state = reduce(state, { kind: 'observe', atMs: 2000, containers: [observation('web', 2), observation('web', 1)] });
  assert.equal(state.rows[state.selected]?.name, 'demo-web-2');
  assert.equal(state.rows.length, 2);
});

test('CPU percent comes from two samples of the same run; memory is passed through', () => {
  let state = reduce(initialState('demo'), {
    kind: 'observe',
    atMs: 1000,
    containers: [observation('web', 1, { cpuUsageNs: 1_000_000_000, memoryBytes: 4096 })],
  });
  assert.equal(state.rows[0]?.cpuPercent, undefined);
  assert.equal(state.rows[0]?.memoryBytes, 4096);
  state = reduce(state, {
    kind: 'observe',
    atMs: 2000,
    containers: [observation('web', 1, { cpuUsageNs: 1_250_000_000, memoryBytes: 8192 })],
  });
  assert.equal(state.rows[0]?.cpuPercent, 25);
  // a restart (new startedAt) starts the sampling again
  state = reduce(state, {
    kind: 'observe',
    atMs: 3000,
    containers: [observation('web', 1, { cpuUsageNs: 10, startedAt: '2026-01-01T00:01:00Z', restarts: 1 })],
  });
  assert.equal(state.rows[0]?.cpuPercent, undefined);
  assert.equal(state.rows[0]?.restarts, 1);
});

test('an exited container shows its exit code and no stats', () => {
  const state = reduce(initialState('demo'), {
    kind: 'observe',
    atMs: 1,
    containers: [observation('job', 1, { status: 'exited', running: false, exitCode: 3, memoryBytes: 5 })],
  });
  assert.equal(state.rows[0]?.state, 'exited');
  assert.equal(state.rows[0]?.exitCode, 3);
  assert.equal(state.rows[0]?.memoryBytes, undefined);
});

test('a running container waiting for its healthcheck spins as waiting', () => {
  const state = reduce(initialState('demo'), {
    kind: 'observe',
    atMs: 1,
    containers: [observation('db', 1, { health: 'starting' })],
  });
  assert.equal(state.rows[0]?.state, 'waiting');
});

test('the log buffer is bounded and keeps the newest lines in order', () => {
  const lines = Array.from({ length: 250 }, (_, index) => ({
    source: 'web-1',
    service: 'web',
    stream: 'stdout' as const,
    text: `line ${index}`,
  }));
  const state = reduce(initialState('demo', { logLimit: 100 }), { kind: 'logs', lines });
  assert.equal(state.logs.length, 100);
  assert.equal(state.logs[0]?.text, 'line 150');
  assert.equal(state.logs.at(-1)?.text, 'line 249');
  assert.equal(state.nextSeq, 250);
});

test('solo and filter choose the visible lines; a shows everything again', () => {
  let state = reduce(initialState('demo'), {
    kind: 'observe',
    atMs: 1,
    containers: [observation('db', 1), observation('web', 1)],
  });
  state = reduce(state, {
    kind: 'logs',
    lines: [
      { source: 'db-1', service: 'db', stream: 'stdout', text: 'db ready' },
      { source: 'web-1', service: 'web', stream: 'stdout', text: 'GET /' },
      { source: 'web-1', service: 'web', stream: 'stderr', text: 'GET /favicon 404' },
    ],
  });
  state = run([{ kind: 'select', delta: 1 }, { kind: 'solo' }], state);
  assert.deepEqual(
    visibleLogs(state, 10).map((line) => line.text),
    ['GET /', 'GET /favicon 404'],
  );
  state = run([{ kind: 'filter.edit', text: '404' }, { kind: 'filter.commit' }], state);
  assert.deepEqual(
    visibleLogs(state, 10).map((line) => line.text),
    ['GET /favicon 404'],
  );
  state = reduce(state, { kind: 'all' });
  assert.equal(visibleLogs(state, 10).length, 3);
  assert.equal(visibleLogs(state, 2)[0]?.text, 'GET /');
});

test('keys map to view changes and controller commands', () => {
  const state = initialState('demo');
  assert.deepEqual(keyActions(state, 'j', {}), [{ kind: 'select', delta: 1 }]);
  assert.deepEqual(keyActions(state, '', { upArrow: true }), [{ kind: 'select', delta: -1 }]);
  assert.deepEqual(keyActions(state, '', { return: true }), [{ kind: 'solo' }]);
  assert.deepEqual(keyActions(state, 'd', {}), [{ kind: 'command', command: 'detach' }]);
  assert.deepEqual(keyActions(state, 'c', { ctrl: true }), [{ kind: 'command', command: 'interrupt' }]);
  assert.deepEqual(keyActions(state, 'q', {}), [{ kind: 'command', command: 'quit' }]);
  assert.deepEqual(keyActions(state, 'x', {}), []);
  // while typing a filter, letters are text, not commands
  const typing = reduce(state, { kind: 'filter.edit', text: 'er' });
  assert.deepEqual(keyActions(typing, 'q', {}), [{ kind: 'filter.edit', text: 'erq' }]);
  assert.deepEqual(keyActions(typing, '', { backspace: true }), [{ kind: 'filter.edit', text: 'e' }]);
  assert.deepEqual(keyActions(typing, '', { return: true }), [{ kind: 'filter.commit' }]);
});

test('stopping reports graceful then forced', () => {
  let state = reduce(initialState('demo'), { kind: 'stopping', force: false });
  assert.equal(state.stopping, 'graceful');
  assert.match(state.status, /press Ctrl\+C again/);
  // the stop plan that Ctrl-C applies does not hide it (tui.test's Ctrl-C test waits for it)
  state = reduce(state, { kind: 'plan.start', project: 'demo', total: 1 });
  assert.match(state.status, /Gracefully stopping/);
  state = reduce(state, { kind: 'plan.done', project: 'demo', ok: true, done: 1, failed: 0, skipped: 0 });
  assert.match(state.status, /Gracefully stopping/);
  state = reduce(state, { kind: 'stopping', force: true });
  assert.equal(state.stopping, 'kill');
});
