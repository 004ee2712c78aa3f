/**
 * `tsfig pull` (src/compose/pull.ts) against the recording engine port: the plan of pulls it makes (one per image,
 * listing its services), `--policy missing`, `--include-deps`, a failed pull with and without
 * `--ignore-pull-failures` (and a service that can be built instead), `--dry-run`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as pull from '../../src/compose/pull.js';
import * as run from '../../src/compose/run.js';
import * as up from '../../src/compose/up.js';
import { TsfigError } from '../../src/errors.js';
import type { Project } from '../../src/model/project.js';
import { planPull } from '../../src/planner/images.js';
import { buildOf, defaultServiceNetwork, observedEmpty, project, service } from '../helpers/project.js';
import { recordingContext } from '../helpers/recording-port.js';

const net = { default: defaultServiceNetwork() };
const started = { condition: 'service_started', required: true, restart: false } as const;

/** web and worker share app:1 and depend on db (pg:16); cache (redis:7); tool builds; local has pull_policy never. */
function pullProject(): Project {
  return project([
    service('db', { image: 'pg:16', networks: net }),
    service('web', { image: 'app:1', networks: net, depends_on: { db: started } }),
    service('worker', { image: 'app:1', networks: net, depends_on: { db: started } }),
    service('cache', { image: 'redis:7', networks: net }),
    service('tool', { image: 'tool:1', networks: net, build: buildOf('/srv/tool') }),
    service('local', { image: 'mine:1', networks: net, pull_policy: 'never' }),
    service('made', { image: 'made:1', networks: net, pull_policy: 'build', build: buildOf('/srv/made') }),
  ]);
}

const pulls = (calls: readonly string[]): string[] => calls.filter((call) => call.startsWith('pullImage'));

test('pull: a fresh project pulls each image once, for the services using it; never/build services are left out', async () => {
  const p = pullProject();
  const { ctx, port, events, stderr } = recordingContext({ ...observedEmpty(p), images: {} });
  assert.equal(await pull.run(ctx, { project: p, services: [] }), 0);
  assert.deepEqual(pulls(port.calls).sort(), [
    'pullImage app:1',
    'pullImage pg:16',
    'pullImage redis:7',
    'pullImage tool:1',
  ]);
  assert.deepEqual(port.locks, ['tsfig']);
  const started = events.events.flatMap((event) =>
    event.kind === 'op.start' ? [`${event.op.kind} ${event.op.target}`] : [],
  );
  assert.equal(started.length, 4);
  const plan = planPull(p, { ...observedEmpty(p), images: {} }, { services: [] });
  const app = plan.operations.find((op) => op.resource === 'image:app:1');
  assert.deepEqual(app?.spec, { image: 'app:1', services: ['web', 'worker'] });
  assert.equal(app?.bestEffort, undefined);
  // tool can be built: its pull is best effort
  assert.equal(plan.operations.find((op) => op.resource === 'image:tool:1')?.bestEffort, true);
  assert.equal(stderr.text, '');
});

test('pull --policy missing pulls only the images not present; nothing to pull calls nothing', async () => {
  const p = pullProject();
  const observed = { ...observedEmpty(p), images: { 'pg:16': { id: 'sha256:1' }, 'app:1': { id: 'sha256:2' } } };
  const { ctx, port } = recordingContext(observed);
  assert.equal(await pull.run(ctx, { project: p, services: [], policy: 'missing' }), 0);
  // tool:1 is missing but can be built: missing leaves it to the build (as compose)
  assert.deepEqual(pulls(port.calls), ['pullImage redis:7']);
  const all = recordingContext(observedEmpty(p));
  assert.equal(await pull.run(all.ctx, { project: p, services: [], policy: 'missing' }), 0);
  assert.deepEqual(all.port.calls, []);
  assert.deepEqual(all.port.locks, []);
  // always (the default) pulls present images again
  const again = recordingContext(observedEmpty(p));
  assert.equal(await pull.run(again.ctx, { project: p, services: ['cache'] }), 0);
  assert.deepEqual(pulls(again.port.calls), ['pullImage redis:7']);
});

test('pull web pulls its image alone; --include-deps adds db', async () => {
  const p = pullProject();
  const alone = recordingContext({ ...observedEmpty(p), images: {} });
  assert.equal(await pull.run(alone.ctx, { project: p, services: ['web'] }), 0);
  assert.deepEqual(pulls(alone.port.calls), ['pullImage app:1']);
  const deps = recordingContext({ ...observedEmpty(p), images: {} });
  assert.equal(await pull.run(deps.ctx, { project: p, services: ['web'], includeDeps: true }), 0);
  assert.deepEqual(pulls(deps.port.calls).sort(), ['pullImage app:1', 'pullImage pg:16']);
  const plan = planPull(p, observedEmpty(p), { services: ['web'], includeDeps: true });
  assert.deepEqual(
    plan.operations.map((op) => op.spec),
    [
      { image: 'pg:16', services: ['db'] },
      { image: 'app:1', services: ['web'] },
    ],
  );
});

test('pull: a failed pull fails the verb; --ignore-pull-failures exits 0; a service with build: gets the WARNING', async () => {
  const p = pullProject();
  const failing = (ctx: ReturnType<typeof recordingContext>) => {
    ctx.port.pullImage = (spec: { image: string }) => {
      ctx.port.calls.push(`pullImage ${spec.image}`);
      return spec.image === 'redis:7' || spec.image === 'tool:1'
        ? Promise.reject(new TsfigError('runtime', `HTTP 404 pulling ${spec.image}`))
        : Promise.resolve();
    };
  };
  const strict = recordingContext({ ...observedEmpty(p), images: {} });
  failing(strict);
  await assert.rejects(pull.run(strict.ctx, { project: p, services: [] }), /HTTP 404 pulling redis:7/);

  // tool alone: its failure is ignored (it can be built), exit 0 and the warning
  const tool = recordingContext({ ...observedEmpty(p), images: {} });
  failing(tool);
  assert.equal(await pull.run(tool.ctx, { project: p, services: ['tool'] }), 0);
  assert.equal(
    tool.stderr.text,
    'WARNING: Some service image(s) must be built from source by running:\n    tsfig build tool\n',
  );

  const ignored = recordingContext({ ...observedEmpty(p), images: {} });
  failing(ignored);
  assert.equal(await pull.run(ignored.ctx, { project: p, services: [], ignoreFailures: true }), 0);
  assert.equal(pulls(ignored.port.calls).length, 4, 'every pull ran');
  assert.match(ignored.stderr.text, /tsfig build tool\n$/);
  const errors = ignored.events.events.flatMap((event) =>
    event.kind === 'op.error' ? [`${event.op.target} ${String(event.bestEffort)}`] : [],
  );
  assert.deepEqual(errors.sort(), ['redis:7 true', 'tool:1 true']);
  // -q: no warning
  const quiet = recordingContext({ ...observedEmpty(p), images: {} });
  failing(quiet);
  assert.equal(await pull.run(quiet.ctx, { project: p, services: ['tool'], quiet: true }), 0);
  assert.equal(quiet.stderr.text, '');
});

test('pull --dry-run: the pulls in the plan text (and JSON); nothing is called', async () => {
  const p = pullProject();
  const { ctx, port, stdout } = recordingContext({ ...observedEmpty(p), images: { 'pg:16': { id: 'sha256:1' } } });
  assert.equal(await pull.run(ctx, { project: p, services: ['web', 'db'], dryRun: true }), 0);
  assert.deepEqual(port.calls, []);
  assert.deepEqual(port.locks, []);
  assert.equal(
    stdout.text,
    'v pull image pg:16 (present, pulled again (--policy always) (db))\n' +
      'v pull image app:1 (not present locally (web))\n\n' +
      'Plan: 0 to create, 0 to recreate, 0 to remove, 2 to pull.\n',
  );
  const json = recordingContext({ ...observedEmpty(p), images: {} });
  await pull.run(json.ctx, { project: p, services: ['tool'], dryRun: true, format: 'json' });
  const plan = JSON.parse(json.stdout.text) as { operations: { kind: string; bestEffort?: boolean }[] };
  assert.deepEqual(plan.operations, [{ ...plan.operations[0], kind: 'image.pull', bestEffort: true }]);
});

test('up and run with pull_policy daily: a present image pulled less than a day ago is not pulled again', async () => {
  const p = project([service('db', { image: 'pg:16', networks: net, pull_policy: 'daily' })]);
  const now = Date.parse('2026-12-07T00:00:00Z'); // the recording context's clock
  const pulledAt = (ms: number | undefined) => {
    const recorded = recordingContext(observedEmpty(p));
    if (ms !== undefined) recorded.port.pulled['pg:16'] = ms;
    return recorded;
  };
  const pullsOf = async (recorded: ReturnType<typeof recordingContext>, verb: 'up' | 'run') => {
    if (verb === 'up') await up.run(recorded.ctx, { project: p, services: [], plan: {}, dryRun: true });
    else await run.run(recorded.ctx, { project: p, service: 'db', command: [], detach: true, dryRun: true });
    return recorded.stdout.text.split('\n').filter((line) => line.startsWith('v pull'));
  };
  for (const verb of ['up', 'run'] as const) {
    const recent = pulledAt(now - 3_600_000);
    assert.deepEqual(await pullsOf(recent, verb), [], `${verb}: pulled an hour ago`);
    assert.deepEqual(recent.port.pulledAsked, ['pg:16']);
    assert.deepEqual(await pullsOf(pulledAt(now - 25 * 3_600_000), verb), [
      'v pull image pg:16 (pull_policy daily (db))',
    ]);
    assert.equal((await pullsOf(pulledAt(undefined), verb)).length, 1, `${verb}: never pulled by tsfig`);
  }
  // a policy without an interval asks nothing
  const plain = recordingContext(observedEmpty(pullProject()));
  await up.run(plain.ctx, { project: pullProject(), services: [], plan: {}, dryRun: true });
  assert.deepEqual(plain.port.pulledAsked, []);
});
