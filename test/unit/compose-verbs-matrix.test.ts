/**
 * Issue #19's table: every state-changing verb's function against a recording engine port, for a fresh project
 * (nothing created), a running one (as `up` left it) and a changed one (running, then app's environment edited):
 * the engine calls of the plan it applies, in order, and its exit code (or the error main.ts maps to one).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as create from '../../src/compose/create.js';
import * as down from '../../src/compose/down.js';
import * as kill from '../../src/compose/kill.js';
import * as pause from '../../src/compose/pause.js';
import * as restart from '../../src/compose/restart.js';
import * as rm from '../../src/compose/rm.js';
import * as run from '../../src/compose/run.js';
import * as scale from '../../src/compose/scale.js';
import * as start from '../../src/compose/start.js';
import * as stop from '../../src/compose/stop.js';
import * as up from '../../src/compose/up.js';
import type { ComposeContext } from '../../src/compose/context.js';
import { TsfigError } from '../../src/errors.js';
import type { Project } from '../../src/model/project.js';
import type { ObservedState } from '../../src/planner/observed.js';
import { dependentPair, observedEmpty, observedRunning } from '../helpers/project.js';
import { recordingContext } from '../helpers/recording-port.js';

const stack = dependentPair;
const runningState = observedRunning;

const states: Record<'fresh' | 'running' | 'changed', { project: Project; observed: ObservedState }> = {
  fresh: { project: stack(), observed: observedEmpty(stack()) },
  running: { project: stack(), observed: runningState(stack()) },
  // what `up` made, and the project file has changed app's environment since
  changed: { project: stack({ environment: { VALUE: 'two' } }), observed: runningState(stack()) },
};

type Verb = (ctx: ComposeContext, p: Project) => Promise<number>;

const verbs: Record<string, Verb> = {
  'up -d': (ctx, p) => up.run(ctx, { project: p, services: [], plan: {}, detach: true }),
  create: (ctx, p) => create.run(ctx, { project: p, services: [] }),
  down: (ctx, p) => down.run(ctx, { project: p }),
  'run -d app': (ctx, p) => run.run(ctx, { project: p, service: 'app', command: [], detach: true, name: 'one' }),
  'run --rm app': (ctx, p) => run.run(ctx, { project: p, service: 'app', command: [], rm: true, name: 'one' }),
  start: (ctx, p) => start.run(ctx, { project: p, services: [] }),
  stop: (ctx, p) => stop.run(ctx, { project: p, services: [] }),
  restart: (ctx, p) => restart.run(ctx, { project: p, services: [] }),
  kill: (ctx, p) => kill.run(ctx, { project: p, services: [] }),
  'rm -f': (ctx, p) => rm.run(ctx, { project: p, services: [], force: true }),
  'rm -f -s': (ctx, p) => rm.run(ctx, { project: p, services: [], force: true, stop: true }),
  pause: (ctx, p) => pause.run(ctx, { project: p, services: [], paused: true }),
  unpause: (ctx, p) => pause.run(ctx, { project: p, services: [], paused: false }),
  'scale app=2': (ctx, p) => scale.run(ctx, { project: p, scale: { app: 2 } }),
};

const NET = 'createNetwork tsfig_default';
const upFresh = [
  NET,
  'createContainer tsfig-db-1',
  'createContainer tsfig-app-1',
  'startContainer tsfig-db-1',
  'startContainer tsfig-app-1',
];
const recreateApp = ['stopContainer id-tsfig-app-1', 'removeContainer id-tsfig-app-1', 'createContainer tsfig-app-1'];
const downAll = [
  'stopContainer id-tsfig-app-1',
  'removeContainer id-tsfig-app-1',
  'stopContainer id-tsfig-db-1',
  'removeContainer id-tsfig-db-1',
  'removeNetwork tsfig_default',
];
const attachedOneOff = [
  'holdAutoRemove id-one',
  'startContainer id-one',
  'onSignals',
  'followLogs one',
  'waitExit id-one',
  'offSignals',
  'removeContainer id-one',
];
const stops = ['stopContainer id-tsfig-app-1', 'stopContainer id-tsfig-db-1'];
const restarts = [...stops, 'startContainer id-tsfig-db-1', 'startContainer id-tsfig-app-1'];
const kills = ['killContainer id-tsfig-app-1 SIGKILL', 'killContainer id-tsfig-db-1 SIGKILL'];
const pauses = ['pauseContainer id-tsfig-db-1', 'pauseContainer id-tsfig-app-1'];

/** verb → state → the engine calls in order (or the error), and the exit code. */
const expected: Record<string, Record<keyof typeof states, { calls: string[]; code: number } | { error: RegExp }>> = {
  'up -d': {
    fresh: { calls: upFresh, code: 0 },
    running: { calls: [], code: 0 },
    changed: { calls: [...recreateApp, 'startContainer tsfig-app-1'], code: 0 },
  },
  create: {
    fresh: { calls: upFresh.slice(0, 3), code: 0 },
    running: { calls: [], code: 0 },
    changed: { calls: recreateApp, code: 0 },
  },
  down: {
    fresh: { calls: [], code: 0 },
    running: { calls: downAll, code: 0 },
    changed: { calls: downAll, code: 0 },
  },
  'run -d app': {
    fresh: {
      calls: [
        NET,
        'createContainer tsfig-db-1',
        'startContainer tsfig-db-1',
        'createContainer one',
        'startContainer one',
      ],
      code: 0,
    },
    running: { calls: ['createContainer one', 'startContainer one'], code: 0 },
    // dependencies are not recreated (run converges them as up --no-recreate)
    changed: { calls: ['createContainer one', 'startContainer one'], code: 0 },
  },
  'run --rm app': {
    fresh: {
      calls: [NET, 'createContainer tsfig-db-1', 'startContainer tsfig-db-1', 'createContainer one', ...attachedOneOff],
      code: 7,
    },
    running: { calls: ['createContainer one', ...attachedOneOff], code: 7 },
    changed: { calls: ['createContainer one', ...attachedOneOff], code: 7 },
  },
  start: {
    fresh: { error: /no containers to start/ },
    running: { calls: [], code: 0 },
    changed: { calls: [], code: 0 },
  },
  stop: { fresh: { calls: [], code: 0 }, running: { calls: stops, code: 0 }, changed: { calls: stops, code: 0 } },
  restart: {
    fresh: { calls: [], code: 0 },
    running: { calls: restarts, code: 0 },
    changed: { calls: restarts, code: 0 },
  },
  kill: { fresh: { calls: [], code: 0 }, running: { calls: kills, code: 0 }, changed: { calls: kills, code: 0 } },
  'rm -f': { fresh: { calls: [], code: 0 }, running: { calls: [], code: 0 }, changed: { calls: [], code: 0 } },
  'rm -f -s': {
    fresh: { calls: [], code: 0 },
    running: { calls: [...stops, 'removeContainer id-tsfig-app-1', 'removeContainer id-tsfig-db-1'], code: 0 },
    changed: { calls: [...stops, 'removeContainer id-tsfig-app-1', 'removeContainer id-tsfig-db-1'], code: 0 },
  },
  pause: { fresh: { calls: [], code: 0 }, running: { calls: pauses, code: 0 }, changed: { calls: pauses, code: 0 } },
  // nothing is paused in any of the three: nothing to unpause
  unpause: { fresh: { calls: [], code: 0 }, running: { calls: [], code: 0 }, changed: { calls: [], code: 0 } },
  'scale app=2': {
    fresh: {
      calls: [
        NET,
        'createContainer tsfig-db-1',
        'createContainer tsfig-app-1',
        'createContainer tsfig-app-2',
        'startContainer tsfig-db-1',
        'startContainer tsfig-app-1',
        'startContainer tsfig-app-2',
      ],
      code: 0,
    },
    running: { calls: ['createContainer tsfig-app-2', 'startContainer tsfig-app-2'], code: 0 },
    // scale is up --no-recreate: the changed app-1 is kept, app-2 is made from the new configuration
    changed: { calls: ['createContainer tsfig-app-2', 'startContainer tsfig-app-2'], code: 0 },
  },
};

for (const [name, verb] of Object.entries(verbs)) {
  for (const state of ['fresh', 'running', 'changed'] as const) {
    test(`${name}, ${state} project: its plan's engine calls and its exit code`, async () => {
      const { project: p, observed } = states[state];
      const { ctx, port } = recordingContext(observed);
      port.exitCode = 7;
      const want = expected[name]?.[state];
      assert.ok(want !== undefined, `no expectation for ${name} ${state}`);
      if ('error' in want) {
        await assert.rejects(
          verb(ctx, p),
          (error: unknown) => error instanceof TsfigError && want.error.test(error.message),
        );
        assert.deepEqual(port.calls, []);
        return;
      }
      const code = await verb(ctx, p);
      // creates and starts of independent containers overlap: compare them as the executor may order them
      assert.deepEqual(port.calls, want.calls);
      assert.equal(code, want.code);
    });
  }
}
