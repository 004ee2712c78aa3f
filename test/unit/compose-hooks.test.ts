/**
 * Lifecycle hooks (post_start, pre_stop, pre_start) as plan operations: where each verb's plan puts them, against a
 * recording engine port (no root). The real containers are in test/integration/compose-hooks.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as down from '../../src/compose/down.js';
import * as restart from '../../src/compose/restart.js';
import * as start from '../../src/compose/start.js';
import * as stop from '../../src/compose/stop.js';
import * as up from '../../src/compose/up.js';
import type { Project, Service } from '../../src/model/project.js';
import { serviceHooks } from '../../src/planner/hooks.js';
import type { ObservedState } from '../../src/planner/observed.js';
import { OpKind } from '../../src/planner/plan.js';
import { plan } from '../../src/planner/reconcile.js';
import { renderPlanText } from '../../src/planner/render.js';
import {
  defaultServiceNetwork,
  observedEmpty,
  observedUp,
  project,
  runningContainer,
  service,
  stoppedContainer,
} from '../helpers/project.js';
import { recordingContext } from '../helpers/recording-port.js';

const net = { default: defaultServiceNetwork() };

function hooked(other: Record<string, unknown>): Project {
  return project([service('app', { networks: net, other })]);
}

const post = [{ command: 'touch /a' }, { command: ['sh', '-c', 'touch /b'], user: 'nobody', working_dir: '/tmp' }];
const preStop = [{ command: 'echo bye', environment: { WHY: 'stop' } }];

const running = (p: Project): ObservedState =>
  observedUp(
    p,
    Object.values(p.services).map((s) => runningContainer(p, s)),
  );

test('serviceHooks: a string command is split into words (no shell), environment as KEY=VALUE, privileged kept', () => {
  const app = service('app', {
    other: { post_start: [{ command: 'echo "a b" c', environment: { X: '1', Y: null }, privileged: true }] },
  });
  assert.deepEqual(serviceHooks(app, 'post_start'), [
    {
      command: ['echo', 'a b', 'c'],
      user: undefined,
      workingDir: undefined,
      environment: ['X=1'],
      privileged: true,
      image: undefined,
    },
  ]);
  assert.throws(() => serviceHooks(service('b', { other: { pre_stop: [{ command: '' }] } }), 'pre_stop'), {
    message: /services\.b\.pre_stop\[0\]: command is required/,
  });
});

test('up: post_start hooks run after the start, in order, before the dependents start', async () => {
  const p = project([
    service('db', { networks: net, other: { post_start: post } }),
    service('app', {
      networks: net,
      depends_on: { db: { condition: 'service_started', required: true, restart: false } },
    }),
  ]);
  const { ctx, port } = recordingContext(observedEmpty(p));
  assert.equal(await up.run(ctx, { project: p, services: [], plan: {}, detach: true }), 0);
  assert.deepEqual(
    port.calls.filter((call) => !call.startsWith('create')),
    [
      'startContainer tsfig-db-1',
      'runHook post_start tsfig-db-1',
      'runHook post_start tsfig-db-1',
      'startContainer tsfig-app-1',
    ],
  );
  const thePlan = plan(p, observedEmpty(p));
  const hooks = thePlan.operations.filter((op) => op.kind === OpKind.ContainerHook);
  assert.deepEqual(
    hooks.map((op) => op.spec.command),
    [
      ['touch', '/a'],
      ['sh', '-c', 'touch /b'],
    ],
  );
  assert.equal(hooks[1]?.spec.user, 'nobody');
  assert.equal(hooks[1]?.spec.workingDir, '/tmp');
});

test('up: a post_start hook that exits non-zero fails up, naming the hook and its exit status', async () => {
  const p = hooked({ post_start: post });
  const { ctx, port } = recordingContext(observedEmpty(p));
  port.hookExitCodes.set('tsfig-app-1', 3);
  await assert.rejects(up.run(ctx, { project: p, services: [], plan: {}, detach: true }), {
    message: /service "app" post_start hook #1 exited with status 3: hook output/,
  });
  assert.equal(port.calls.filter((call) => call.startsWith('runHook')).length, 1, 'the second hook never runs');
});

test('stop, down, restart and a recreate run pre_stop before the stop; a stopped container gets none', async () => {
  const p = hooked({ pre_stop: preStop, post_start: [post[0]] });
  const s = recordingContext(running(p));
  await stop.run(s.ctx, { project: p, services: [] });
  assert.deepEqual(s.port.calls, ['runHook pre_stop id-tsfig-app-1', 'stopContainer id-tsfig-app-1']);

  const d = recordingContext(running(p));
  await down.run(d.ctx, { project: p });
  assert.deepEqual(d.port.calls.slice(0, 3), [
    'runHook pre_stop id-tsfig-app-1',
    'stopContainer id-tsfig-app-1',
    'removeContainer id-tsfig-app-1',
  ]);

  const r = recordingContext(running(p));
  await restart.run(r.ctx, { project: p, services: [] });
  assert.deepEqual(r.port.calls, [
    'runHook pre_stop id-tsfig-app-1',
    'stopContainer id-tsfig-app-1',
    'startContainer id-tsfig-app-1',
    'runHook post_start id-tsfig-app-1',
  ]);

  const recreated = project([
    service('app', { networks: net, environment: { V: '2' }, other: { pre_stop: preStop, post_start: [post[0]] } }),
  ]);
  const u = recordingContext(running(p));
  await up.run(u.ctx, { project: recreated, services: [], plan: {}, detach: true });
  assert.deepEqual(u.port.calls, [
    'runHook pre_stop id-tsfig-app-1',
    'stopContainer id-tsfig-app-1',
    'removeContainer id-tsfig-app-1',
    'createContainer tsfig-app-1',
    'startContainer tsfig-app-1',
    'runHook post_start tsfig-app-1',
  ]);

  const stopped = observedUp(p, [stoppedContainer(p, p.services.app as Service)]);
  const none = recordingContext(stopped);
  await down.run(none.ctx, { project: p });
  assert.ok(!none.port.calls.some((call) => call.startsWith('runHook')), 'no pre_stop in a stopped container');
  const st = recordingContext(stopped);
  await start.run(st.ctx, { project: p, services: [] });
  assert.deepEqual(st.port.calls, ['startContainer id-tsfig-app-1', 'runHook post_start id-tsfig-app-1']);
});

test('up: pre_start runs once, after the first container exists and before any start; its failure blocks them', async () => {
  const p = project([
    service('app', {
      networks: net,
      deploy: undefined,
      other: { pre_start: [{ command: ['sh', '-c', 'exit 0'], user: '1000', environment: ['MIGRATE=1'] }] },
    }),
  ]);
  const scaled = { scale: { app: 2 } };
  const { ctx, port } = recordingContext(observedEmpty(p));
  assert.equal(await up.run(ctx, { project: p, services: [], plan: scaled, detach: true }), 0);
  assert.deepEqual(
    port.calls.filter((call) => !call.startsWith('createNetwork')),
    [
      'createContainer tsfig-app-1',
      'createContainer tsfig-app-2',
      'runPreStart tsfig-app-1-pre-start-1',
      'startContainer tsfig-app-1',
      'startContainer tsfig-app-2',
    ],
  );
  const op = plan(p, observedEmpty(p)).operations.find((o) => o.kind === OpKind.ContainerPreStart);
  assert.ok(op?.kind === OpKind.ContainerPreStart);
  assert.deepEqual(op.spec.create.volumesFrom, [{ container: 'tsfig-app-1', mode: 'rw' }]);
  assert.equal(op.spec.create.container.user, '1000');
  assert.ok(op.spec.create.container.env?.includes('MIGRATE=1'));
  assert.equal(op.spec.create.container.labels?.['io.tsfig.hook'], 'pre_start');

  const failing = recordingContext(observedEmpty(p));
  failing.port.hookExitCodes.set('tsfig-app-1-pre-start-1', 4);
  await assert.rejects(up.run(failing.ctx, { project: p, services: [], plan: {}, detach: true }), {
    message: /service "app" pre_start hook #1 exited with status 4/,
  });
  assert.ok(!failing.port.calls.some((call) => call.startsWith('startContainer')), 'nothing started');

  const again = recordingContext(running(p));
  await up.run(again.ctx, { project: p, services: [], plan: { forceRecreate: true }, detach: true });
  assert.ok(again.port.calls.includes('runPreStart tsfig-app-1-pre-start-1'), 'a recreate of every replica runs it');
  const upToDate = recordingContext(running(p));
  await up.run(upToDate.ctx, { project: p, services: [], plan: {}, detach: true });
  assert.deepEqual(upToDate.port.calls, [], 'a running service: no pre_start');
});

test('up: a pre_start container a killed command left is removed by the plan (container.remove) before the hook', async () => {
  const p = project([service('app', { networks: net, other: { pre_start: [{ command: ['true'] }] } })]);
  const app = p.services.app as Service;
  const name = 'tsfig-app-1-pre-start-1';
  const hookContainer = (labels: Record<string, string>) =>
    runningContainer(p, app, 1, { id: `id-${name}`, name, oneoff: true, running: false, status: 'created', labels });
  const leftover = hookContainer({
    'io.tsfig.project': 'tsfig',
    'io.tsfig.service': 'app',
    'io.tsfig.oneoff': 'True',
    'io.tsfig.hook': 'pre_start',
  });
  const observed = observedUp(p, [stoppedContainer(p, app), leftover]);
  const op = plan(p, observed).operations.find((o) => o.kind === OpKind.ContainerRemove);
  assert.equal(op?.reason, 'leftover of an interrupted pre_start hook #1');
  const { ctx, port } = recordingContext(observed);
  assert.equal(await up.run(ctx, { project: p, services: [], plan: {}, detach: true }), 0);
  assert.deepEqual(port.calls, [`removeContainer id-${name}`, `runPreStart ${name}`, 'startContainer id-tsfig-app-1']);
  // --dry-run shows both under the start
  const text = renderPlanText(plan(p, observed));
  assert.match(
    text,
    /container\.remove container tsfig-app-1-pre-start-1 \(leftover of an interrupted pre_start hook #1\)/,
  );
  assert.match(text, /container\.pre-start container tsfig-app-1-pre-start-1 \(pre_start hook #1\)/);
  assert.match(text, /Plan: 0 to create, 0 to recreate, 0 to remove, 1 to start\./);

  // a container of that name that is not the hook's own (no io.tsfig.hook label) is left alone: the create fails
  const other = hookContainer({ 'io.tsfig.project': 'tsfig', 'io.tsfig.service': 'app', 'io.tsfig.oneoff': 'True' });
  const kept = plan(p, observedUp(p, [stoppedContainer(p, app), other]));
  assert.ok(!kept.operations.some((o) => o.kind === OpKind.ContainerRemove));
});
