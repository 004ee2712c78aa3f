import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecordingSink } from '../../src/events/events.js';
import { executePlan } from '../../src/executor/execute.js';
import type { ExecutorPort } from '../../src/executor/port.js';
import { OpKind, type Operation, type Plan } from '../../src/planner/plan.js';
import { plan } from '../../src/planner/reconcile.js';
import { observedEmpty, project, service } from '../helpers/project.js';

/** Yields to the event loop a few times, so that concurrent calls overlap without timers. */
async function ticks(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

interface Call {
  readonly method: string;
  readonly target: string;
}

/** A fake engine that records calls, tracks concurrency and fails where told. */
class RecordingPort implements ExecutorPort {
  readonly calls: Call[] = [];
  readonly finished: string[] = [];
  readonly signals: AbortSignal[] = [];
  running = 0;
  maxRunning = 0;
  /** `method target` → error to throw. */
  readonly failures = new Map<string, Error>();
  /** Exit code returned by waitCompleted, by container. */
  readonly exitCodes = new Map<string, number>();

  private async call(method: string, target: string, signal: AbortSignal): Promise<void> {
    this.calls.push({ method, target });
    this.signals.push(signal);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      await ticks(3);
      const failure = this.failures.get(`${method} ${target}`);
      if (failure !== undefined) throw failure;
      this.finished.push(`${method} ${target}`);
    } finally {
      this.running--;
    }
  }

  createNetwork = (spec: { name: string }, signal: AbortSignal) => this.call('createNetwork', spec.name, signal);
  removeNetwork = (spec: { name: string }, signal: AbortSignal) => this.call('removeNetwork', spec.name, signal);
  createVolume = (spec: { name: string }, signal: AbortSignal) => this.call('createVolume', spec.name, signal);
  removeVolume = (spec: { name: string }, signal: AbortSignal) => this.call('removeVolume', spec.name, signal);
  createContainer = async (spec: { name: string }, signal: AbortSignal) => {
    await this.call('createContainer', spec.name, signal);
    return `id-of-${spec.name}`;
  };
  startContainer = (spec: { container: string }, signal: AbortSignal) =>
    this.call('startContainer', spec.container, signal);
  stopContainer = (spec: { container: string }, signal: AbortSignal) =>
    this.call('stopContainer', spec.container, signal);
  removeContainer = (spec: { container: string }, signal: AbortSignal) =>
    this.call('removeContainer', spec.container, signal);
  runHook = async (spec: { container: string }, signal: AbortSignal) => {
    await this.call('runHook', spec.container, signal);
    return { exitCode: this.exitCodes.get(spec.container) ?? 0, output: 'hook output' };
  };
  runPreStart = async (spec: { create: { name: string } }, signal: AbortSignal) => {
    await this.call('runPreStart', spec.create.name, signal);
    return { exitCode: this.exitCodes.get(spec.create.name) ?? 0, output: 'pre_start output' };
  };
  syncFiles = async (spec: { container: string }, signal: AbortSignal) => {
    await this.call('syncFiles', spec.container, signal);
    return { exitCode: this.exitCodes.get(spec.container) ?? 0, output: 'sync output' };
  };
  execInContainer = async (spec: { container: string }, signal: AbortSignal) => {
    await this.call('execInContainer', spec.container, signal);
    return { exitCode: this.exitCodes.get(spec.container) ?? 0, output: 'exec output' };
  };
  pushImage = async (spec: { image: string }, signal: AbortSignal) => {
    await this.call('pushImage', spec.image, signal);
    return { digest: `sha256:pushed-${spec.image}` };
  };
  pushArtifact = async (spec: { reference: string }, signal: AbortSignal) => {
    await this.call('pushArtifact', spec.reference, signal);
    return { digest: `sha256:published-${spec.reference}` };
  };
  commitContainer = async (spec: { container: string }, signal: AbortSignal) => {
    await this.call('commitContainer', spec.container, signal);
    return `sha256:image-of-${spec.container}`;
  };
  waitHealthy = (spec: { container: string }, signal: AbortSignal) => this.call('waitHealthy', spec.container, signal);
  waitCompleted = async (spec: { container: string }, signal: AbortSignal) => {
    await this.call('waitCompleted', spec.container, signal);
    return this.exitCodes.get(spec.container) ?? 0;
  };
  waitRunning = (spec: { container: string }, signal: AbortSignal) => this.call('waitRunning', spec.container, signal);
  killContainer = (spec: { container: string }, signal: AbortSignal) =>
    this.call('killContainer', spec.container, signal);
  pauseContainer = (spec: { container: string }, paused: boolean, signal: AbortSignal) =>
    this.call(paused ? 'pauseContainer' : 'unpauseContainer', spec.container, signal);
  pullImage = (spec: { image: string }, signal: AbortSignal) => this.call('pullImage', spec.image, signal);
  buildImage = (spec: { image: string }, signal: AbortSignal) => this.call('buildImage', spec.image, signal);
  removeImage = (spec: { image: string }, signal: AbortSignal) => this.call('removeImage', spec.image, signal);
}

const started = { condition: 'service_started', required: true, restart: false } as const;

/** web → api → db, plus a worker depending on db: a small DAG with some parallel branches. */
function stackPlan(): Plan {
  const p = project([
    service('db'),
    service('api', { depends_on: { db: started } }),
    service('web', { depends_on: { api: started } }),
    service('worker', { depends_on: { db: started } }),
  ]);
  return plan(p, observedEmpty(p));
}

/** `count` independent ops, for concurrency checks. */
function wideplan(count: number): Plan {
  const operations: Operation[] = [];
  for (let i = 1; i <= count; i++) {
    operations.push({
      id: i,
      kind: OpKind.VolumeCreate,
      resource: `volume:v${i}`,
      reason: 'new volume',
      dependsOn: [],
      spec: { name: `p_v${i}`, driver: undefined, driverOpts: {}, labels: {} },
    });
  }
  return { version: 1, project: 'p', operations, warnings: [] };
}

test('an op starts only after all of its dependencies have finished', async () => {
  const p = stackPlan();
  const sink = new RecordingSink();
  const result = await executePlan(p, new RecordingPort(), sink, { parallel: 4 });
  assert.equal(result.ok, true);
  assert.equal(result.done.length, p.operations.length);
  const position = (kind: string, id: number) =>
    sink.events.findIndex((e) => e.kind === kind && 'op' in e && e.op.id === id);
  for (const op of p.operations) {
    for (const dep of op.dependsOn) {
      assert.ok(position('op.done', dep) < position('op.start', op.id), `#${op.id} started before #${dep} finished`);
    }
  }
});

test('containers created by the plan are started by name, and their ids are returned', async () => {
  const port = new RecordingPort();
  const result = await executePlan(stackPlan(), port, new RecordingSink());
  assert.equal(result.containerIds['tsfig-web-1'], 'id-of-tsfig-web-1');
  assert.ok(port.calls.some((c) => c.method === 'startContainer' && c.target === 'tsfig-web-1'));
});

test('parallelism is bounded by the parallel option', async () => {
  const bounded = new RecordingPort();
  await executePlan(wideplan(20), bounded, new RecordingSink(), { parallel: 3 });
  assert.equal(bounded.maxRunning, 3);
  assert.equal(bounded.finished.length, 20);

  const serial = new RecordingPort();
  await executePlan(wideplan(5), serial, new RecordingSink(), { parallel: 1 });
  assert.equal(serial.maxRunning, 1);

  const wide = new RecordingPort();
  await executePlan(wideplan(20), wide, new RecordingSink(), { parallel: 10 });
  assert.equal(wide.maxRunning, 10);
});

test('the first failure aborts the plan: later ops never start and are reported as skipped', async () => {
  const port = new RecordingPort();
  const boom = new Error('no space left on device');
  port.failures.set('createContainer tsfig-db-1', boom);
  const sink = new RecordingSink();
  const p = stackPlan();
  const result = await executePlan(p, port, sink, { parallel: 1 });
  assert.equal(result.ok, false);
  assert.equal(result.error, boom);
  assert.deepEqual(
    result.failed.map((f) => [f.resource, f.kind, f.bestEffort]),
    [['service:db:1', 'container.create', false]],
  );
  assert.ok(!port.calls.some((c) => c.method === 'startContainer'), 'nothing was started after the failure');
  assert.ok(result.skipped.length > 0);
  assert.deepEqual(
    sink.ofKind('op.skipped').map((e) => e.op.id),
    result.skipped,
  );
  const error = sink.ofKind('op.error')[0];
  assert.equal(error?.message, 'no space left on device');
  assert.equal(error.op.target, 'tsfig-db-1');
  const done = sink.ofKind('plan.done')[0];
  assert.equal(done?.ok, false);
  assert.ok(
    port.signals.every((s) => s.aborted),
    'ops in flight see the abort',
  );
});

test('a bestEffort failure is reported and the plan goes on', async () => {
  const migrate = service('migrate');
  const web = service('web', {
    depends_on: { migrate: { condition: 'service_completed_successfully', required: false, restart: false } },
  });
  const p = project([web, migrate]);
  const port = new RecordingPort();
  port.exitCodes.set('tsfig-migrate-1', 3);
  const sink = new RecordingSink();
  const result = await executePlan(plan(p, observedEmpty(p)), port, sink);
  assert.equal(result.ok, true);
  assert.deepEqual(
    result.failed.map((f) => [f.kind, f.bestEffort]),
    [['container.wait-completed', true]],
  );
  assert.ok(port.finished.includes('startContainer tsfig-web-1'));
  assert.equal(sink.ofKind('op.error')[0]?.message, "container tsfig-migrate-1 didn't complete successfully: exit 3");
});

test('a required service_completed_successfully dependency that fails stops its dependents', async () => {
  const migrate = service('migrate');
  const web = service('web', {
    depends_on: { migrate: { condition: 'service_completed_successfully', required: true, restart: false } },
  });
  const p = project([web, migrate]);
  const port = new RecordingPort();
  port.exitCodes.set('tsfig-migrate-1', 1);
  const result = await executePlan(plan(p, observedEmpty(p)), port, new RecordingSink());
  assert.equal(result.ok, false);
  assert.ok(!port.calls.some((c) => c.method === 'startContainer' && c.target === 'tsfig-web-1'));
});

test('an unknown op kind is an internal error, not a silent no-op', async () => {
  const bogus = { ...wideplan(1).operations[0], kind: 'image.squash' } as unknown as Operation;
  const p: Plan = { version: 1, project: 'p', operations: [bogus], warnings: [] };
  const result = await executePlan(p, new RecordingPort(), new RecordingSink());
  assert.equal(result.ok, false);
  assert.match(String(result.error), /unknown operation kind "image.squash"/);
});

test('an aborted signal starts nothing and marks the run interrupted', async () => {
  const controller = new AbortController();
  controller.abort();
  const port = new RecordingPort();
  const result = await executePlan(stackPlan(), port, new RecordingSink(), { signal: controller.signal });
  assert.equal(result.interrupted, true);
  assert.equal(result.ok, false);
  assert.deepEqual(port.calls, []);
});

test('an interrupt during the run stops scheduling new ops', async () => {
  const controller = new AbortController();
  const port = new RecordingPort();
  const p = stackPlan();
  const run = executePlan(p, port, new RecordingSink(), { signal: controller.signal, parallel: 1 });
  await ticks(1);
  controller.abort();
  const result = await run;
  assert.equal(result.interrupted, true);
  assert.ok(port.calls.length < p.operations.length);
  assert.equal(result.done.length + result.skipped.length + result.failed.length, p.operations.length);
});

test('plan warnings are left to the caller, so they are shown once', async () => {
  const p = { ...wideplan(1), warnings: ['services.web.ipc is not supported yet and is ignored'] };
  const sink = new RecordingSink();
  await executePlan(p, new RecordingPort(), sink);
  assert.deepEqual(sink.ofKind('warning'), []);
});

test('a plan with a dependency on a later op is refused', async () => {
  const wide = wideplan(2);
  const [first, second] = wide.operations as [Operation, Operation];
  const p: Plan = { ...wide, operations: [{ ...first, dependsOn: [2] }, second] };
  await assert.rejects(
    executePlan(p, new RecordingPort(), new RecordingSink()),
    /depends on #2, which is not before it/,
  );
});

test('a push reports the digest it pushed in op.done, a commit the image it made (result.imageIds)', async () => {
  const ref = { container: 'id-web', name: 'p-web-1' };
  const p: Plan = {
    version: 1,
    project: 'p',
    operations: [
      {
        id: 1,
        kind: OpKind.ImagePush,
        resource: 'image:reg/app:1',
        reason: 'image: and build: (web)',
        dependsOn: [],
        spec: { image: 'reg/app:1', services: ['web'] },
      },
      {
        id: 2,
        kind: OpKind.ImageCommit,
        resource: 'service:web:1',
        reason: 'tsfig commit',
        dependsOn: [],
        spec: { ...ref, service: 'web', reference: 'snap:1', changes: [], message: undefined, author: undefined },
      },
    ],
    warnings: [],
  };
  const sink = new RecordingSink();
  const result = await executePlan(p, new RecordingPort(), sink);
  assert.equal(result.ok, true);
  const done = sink.events.flatMap((e) => (e.kind === 'op.done' ? [[e.op.kind, e.digest, e.imageId]] : []));
  assert.deepEqual(done.sort(), [
    ['image.commit', undefined, 'sha256:image-of-id-web'],
    ['image.push', 'sha256:pushed-reg/app:1', undefined],
  ]);
  assert.deepEqual(result.imageIds, { 'p-web-1': 'sha256:image-of-id-web' });
});
