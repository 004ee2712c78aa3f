/**
 * `tsfig build` (src/compose/build.ts) against the recording engine port: the plan of builds it makes for a fresh
 * project and a changed one, the order (named contexts first), its exit code, a failed build, `--dry-run`; and the
 * lines the CLI prints for the builder's events (src/cli/compose/build.ts), as the verb printed them before it had a
 * plan.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildLine, buildLines } from '../../src/cli/compose/build.js';
import * as build from '../../src/compose/build.js';
import { TsfigError } from '../../src/errors.js';
import type { Project } from '../../src/model/project.js';
import {
  buildOf,
  defaultServiceNetwork,
  observedEmpty,
  observedRunning,
  project,
  service,
} from '../helpers/project.js';
import { Buffer, recordingContext } from '../helpers/recording-port.js';

const net = { default: defaultServiceNetwork() };

/** base (built), app (built FROM base's image, a named context), db (an image, nothing to build). */
function buildProject(args: Record<string, string> = {}): Project {
  return project([
    service('base', { image: undefined, networks: net, build: buildOf('/srv/base') }),
    service('app', {
      image: undefined,
      networks: net,
      build: { ...buildOf('/srv/app'), args, additional_contexts: { base: 'service:base' } },
    }),
    service('db', { networks: net }),
  ]);
}

test('build: a fresh project builds every service with build:, named contexts first, under the lock; exit 0', async () => {
  const p = buildProject();
  const { ctx, port, events } = recordingContext({ ...observedEmpty(p), images: {} });
  assert.equal(await build.run(ctx, { project: p, services: [] }), 0);
  assert.deepEqual(port.calls, ['buildImage tsfig-base', 'buildImage tsfig-app']);
  assert.deepEqual(port.locks, ['tsfig']);
  // a plan like up's: the executor's events, one build after the other
  assert.deepEqual(
    events.events.filter((event) => event.kind === 'op.start').map((event) => `${event.op.kind} ${event.op.target}`),
    ['image.build tsfig-base', 'image.build tsfig-app'],
  );
});

test('build: a changed project (running, images there) builds again with what changed; a named service brings its contexts', async () => {
  const before = buildProject();
  const p = buildProject({ VERSION: '2' });
  const { ctx, port } = recordingContext(observedRunning(before));
  const specs = port.builds;
  assert.equal(await build.run(ctx, { project: p, services: ['app'], noCache: true, buildArgs: ['EXTRA=x'] }), 0);
  assert.deepEqual(port.calls, ['buildImage tsfig-base', 'buildImage tsfig-app']);
  assert.deepEqual(specs[1]?.args, { VERSION: '2', EXTRA: 'x' });
  assert.equal(specs[1]?.noCache, true);
  assert.deepEqual(specs[1]?.contexts, { base: { image: 'tsfig-base' } });
  // a service without build: has nothing to build
  const none = recordingContext(observedRunning(before));
  assert.equal(await build.run(none.ctx, { project: p, services: ['db'] }), 0);
  assert.deepEqual(none.port.calls, []);
});

test('build: a failed build is thrown (main maps it to the exit code) and the builds after it do not run', async () => {
  const p = buildProject();
  const { ctx, port } = recordingContext(observedEmpty(p));
  port.buildImage = (spec) => {
    port.calls.push(`buildImage ${spec.image}`);
    return Promise.reject(new TsfigError('runtime', 'RUN make failed'));
  };
  await assert.rejects(build.run(ctx, { project: p, services: [] }), /RUN make failed/);
  assert.deepEqual(port.calls, ['buildImage tsfig-base']);
});

test('build --dry-run: the builds in the plan text (and JSON); nothing is called', async () => {
  const p = buildProject();
  const { ctx, port, stdout } = recordingContext(observedEmpty(p));
  assert.equal(await build.run(ctx, { project: p, services: [], dryRun: true }), 0);
  assert.deepEqual(port.calls, []);
  assert.deepEqual(port.locks, []);
  assert.match(stdout.text, /\* build image tsfig-base \(tsfig build\)\n\* build image tsfig-app \(tsfig build\)/);
  assert.match(stdout.text, /Plan: 0 to create, 0 to recreate, 0 to remove, 2 to build\./);
  const json = recordingContext(observedEmpty(p));
  await build.run(json.ctx, { project: p, services: ['base'], dryRun: true, format: 'json' });
  const plan = JSON.parse(json.stdout.text) as { operations: { kind: string; dependsOn: number[] }[] };
  assert.deepEqual(
    plan.operations.map((op) => op.kind),
    ['image.build'],
  );
});

test("build's lines on stderr: steps, cache hits, output, warnings and a line per image; -q prints none", () => {
  assert.equal(
    buildLine({ kind: 'build.step', service: 'app', step: 2, total: 3, text: 'RUN make' }),
    '[app] Step 2/3 : RUN make',
  );
  assert.equal(
    buildLine({ kind: 'build.step-done', service: 'app', step: 2, cached: true, durationMs: 1 }),
    '[app]  ---> Using cache',
  );
  assert.equal(
    buildLine({ kind: 'build.step-done', service: 'app', step: 2, cached: false, durationMs: 1 }),
    undefined,
  );
  assert.equal(
    buildLine({ kind: 'build.output', service: 'app', step: 2, stream: 'stdout', text: 'compiled\n' }),
    '[app] compiled',
  );
  assert.equal(buildLine({ kind: 'warning', message: '[app] ARG x unused' }), 'WARN [app] ARG x unused');
  assert.equal(
    buildLine({ kind: 'build.done', service: 'app', image: 'tsfig-app', steps: 3, cachedSteps: 3, durationMs: 1234 }),
    ' Image tsfig-app  Built (1.2s, all steps cached)',
  );
  assert.equal(buildLine({ kind: 'plan.start', project: 'tsfig', total: 1 }), undefined);
  const out = new Buffer();
  buildLines(out, true).emit({ kind: 'warning', message: 'x' });
  assert.equal(out.text, '');
  buildLines(out, false).emit({ kind: 'build.start', service: 'app', image: 'tsfig-app' });
  assert.equal(out.text, '');
});
