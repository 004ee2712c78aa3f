/**
 * What the TUI's keys and Ctrl-C do (src/compose/attach.ts `stackControl`), against the recording engine port: the
 * plans of `stop`, `kill` and `restart`, never a direct engine call.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stackControl } from '../../src/compose/attach.js';
import { dependentPair, observedRunning } from '../helpers/project.js';
import { recordingContext } from '../helpers/recording-port.js';

test('Ctrl-C stops the stack through a stop plan (dependents first), a second one kills it (SIGKILL plan)', async () => {
  const p = dependentPair();
  const { ctx, port, events } = recordingContext(observedRunning(p));
  const control = stackControl(ctx, p, []);
  await control.stopAll(false);
  assert.deepEqual(port.calls, ['stopContainer id-tsfig-app-1', 'stopContainer id-tsfig-db-1']);
  assert.ok(
    events.events.some((event) => event.kind === 'plan.start'),
    'the stops are a plan',
  );
  port.calls.length = 0;
  await control.stopAll(true);
  assert.deepEqual(port.calls.sort(), ['killContainer id-tsfig-app-1 SIGKILL', 'killContainer id-tsfig-db-1 SIGKILL']);
});

test("the TUI's s and r keys: stop or restart one service through stop's and restart's plans", async () => {
  const p = dependentPair();
  const { ctx, port } = recordingContext(observedRunning(p));
  const control = stackControl(ctx, p, []);
  await control.stopService('db');
  assert.deepEqual(port.calls, ['stopContainer id-tsfig-db-1']);
  port.calls.length = 0;
  await control.restartService('app');
  assert.deepEqual(port.calls, ['stopContainer id-tsfig-app-1', 'startContainer id-tsfig-app-1']);
});
