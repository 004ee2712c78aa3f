/**
 * `tsfig push` (src/compose/push.ts) against the recording engine port: the plan of pushes it makes (services with
 * image: and build:, their build.tags, each reference once), `--include-deps`, an image not built yet (refused
 * before anything is pushed, or left out with --ignore-push-failures), a failed push with and without
 * `--ignore-push-failures`, `--dry-run`, and the plain and JSON progress lines.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as push from '../../src/compose/push.js';
import type { Project } from '../../src/model/project.js';
import { planPush } from '../../src/planner/images.js';
import { LineRenderer } from '../../src/ui/progress.js';
import { buildOf, defaultServiceNetwork, observedEmpty, project, service } from '../helpers/project.js';
import { Buffer, recordingContext } from '../helpers/recording-port.js';

const net = { default: defaultServiceNetwork() };
const started = { condition: 'service_started', required: true, restart: false } as const;

/** web and worker build reg/app:1 (web also tags reg/app:latest) and depend on api (builds reg/api:1); db is pulled. */
function pushProject(): Project {
  return project([
    service('db', { image: 'pg:16', networks: net }),
    service('api', { image: 'reg/api:1', networks: net, build: buildOf('/srv/api'), depends_on: { db: started } }),
    service('web', {
      image: 'reg/app:1',
      networks: net,
      build: { ...buildOf('/srv/app'), tags: ['reg/app:latest'] },
      depends_on: { api: started },
    }),
    service('worker', { image: 'reg/app:1', networks: net, build: buildOf('/srv/app') }),
    service('local', { image: undefined, networks: net, build: buildOf('/srv/local') }),
  ]);
}

const built = { 'reg/app:1': { id: 'sha256:a' }, 'reg/api:1': { id: 'sha256:b' }, 'pg:16': { id: 'sha256:c' } };

test('push: image: and build: services, their build.tags, each reference once; db and a build-only service are not pushed', async () => {
  const p = pushProject();
  const { ctx, port, stderr } = recordingContext({ ...observedEmpty(p), images: built });
  assert.equal(await push.run(ctx, { project: p, services: [] }), 0);
  assert.deepEqual(port.calls, ['pushImage reg/api:1', 'pushImage reg/app:1', 'pushImage reg/app:latest']);
  assert.deepEqual(port.locks, ['tsfig']);
  assert.equal(stderr.text, '');
  const plan = planPush(p, { ...observedEmpty(p), images: built }, { services: [] });
  assert.deepEqual(
    plan.operations.map((op) => [op.kind, op.spec, op.reason, op.bestEffort]),
    [
      ['image.push', { image: 'reg/api:1', services: ['api'] }, 'image: and build: (api)', undefined],
      ['image.push', { image: 'reg/app:1', services: ['web', 'worker'] }, 'image: and build: (web, worker)', undefined],
      ['image.push', { image: 'reg/app:latest', services: ['web'] }, 'build.tags (web)', undefined],
    ],
  );
});

test('push web pushes its references alone; --include-deps adds api (db has no build:)', async () => {
  const p = pushProject();
  const alone = recordingContext({ ...observedEmpty(p), images: built });
  assert.equal(await push.run(alone.ctx, { project: p, services: ['web'] }), 0);
  assert.deepEqual(alone.port.calls, ['pushImage reg/app:1', 'pushImage reg/app:latest']);
  const deps = recordingContext({ ...observedEmpty(p), images: built });
  assert.equal(await push.run(deps.ctx, { project: p, services: ['web'], includeDeps: true }), 0);
  assert.deepEqual(deps.port.calls, ['pushImage reg/api:1', 'pushImage reg/app:1', 'pushImage reg/app:latest']);
  // nothing to push: no lock, no call
  const none = recordingContext({ ...observedEmpty(p), images: built });
  assert.equal(await push.run(none.ctx, { project: p, services: ['db'] }), 0);
  assert.deepEqual([none.port.calls, none.port.locks], [[], []]);
  assert.throws(() => planPush(p, observedEmpty(p), { services: ['nope'] }), /no such service: nope/);
});

test('push: an image not built yet is refused before anything is pushed; --ignore-push-failures leaves it out', async () => {
  const p = pushProject();
  const missing = { 'reg/app:1': { id: 'sha256:a' } };
  const strict = recordingContext({ ...observedEmpty(p), images: missing });
  await assert.rejects(push.run(strict.ctx, { project: p, services: [] }), (error: unknown) => {
    assert.match(String(error), /image reg\/api:1 of service api is not built yet/);
    assert.match((error as { hint?: string }).hint ?? '', /tsfig build api \(nothing was pushed\)/);
    return true;
  });
  assert.deepEqual([strict.port.calls, strict.port.locks], [[], []]);
  const lenient = recordingContext({ ...observedEmpty(p), images: missing });
  assert.equal(await push.run(lenient.ctx, { project: p, services: [], ignoreFailures: true }), 0);
  assert.deepEqual(lenient.port.calls, ['pushImage reg/app:1', 'pushImage reg/app:latest']);
  assert.deepEqual(lenient.events.ofKind('warning'), [
    { kind: 'warning', message: 'image reg/api:1 of service api is not built yet: not pushed' },
  ]);
});

test('push: a failed push fails the verb (the others are not started); --ignore-push-failures warns and exits 0', async () => {
  const p = pushProject();
  const strict = recordingContext({ ...observedEmpty(p), images: built });
  strict.port.pushFailures.add('reg/api:1');
  await assert.rejects(push.run(strict.ctx, { project: p, services: [] }), /HTTP 401 pushing reg\/api:1/);
  assert.deepEqual(strict.port.calls, ['pushImage reg/api:1'], 'parallel 1: the first failure stops the plan');

  const ignored = recordingContext({ ...observedEmpty(p), images: built });
  ignored.port.pushFailures.add('reg/api:1');
  const out = new Buffer();
  const ctx = { ...ignored.ctx, events: new LineRenderer('plain', out as unknown as NodeJS.WritableStream) };
  assert.equal(await push.run(ctx, { project: p, services: [], ignoreFailures: true }), 0);
  assert.equal(ignored.port.calls.length, 3, 'every push ran');
  assert.equal(
    out.text,
    ' Image reg/api:1  Pushing\n' +
      ' Image reg/api:1  Warning: HTTP 401 pushing reg/api:1\n' +
      ' Image reg/app:1  Pushing\n' +
      ` Image reg/app:1  Pushed sha256:${'1'.repeat(64)}\n` +
      ' Image reg/app:latest  Pushing\n' +
      ` Image reg/app:latest  Pushed sha256:${'1'.repeat(64)}\n`,
  );
  // --progress json: one JSON object per line, nothing else
  const json = recordingContext({ ...observedEmpty(p), images: built });
  const lines = new Buffer();
  const jsonCtx = { ...json.ctx, events: new LineRenderer('json', lines as unknown as NodeJS.WritableStream) };
  assert.equal(await push.run(jsonCtx, { project: p, services: ['api'] }), 0);
  const kinds = lines.text
    .trimEnd()
    .split('\n')
    .map((line) => (JSON.parse(line) as { kind: string }).kind);
  assert.deepEqual(kinds, ['plan.start', 'op.start', 'op.done', 'plan.done']);
});

test('push --dry-run: the pushes in the plan text (and JSON); nothing is called', async () => {
  const p = pushProject();
  const { ctx, port, stdout } = recordingContext({ ...observedEmpty(p), images: built });
  assert.equal(await push.run(ctx, { project: p, services: ['web'], dryRun: true }), 0);
  assert.deepEqual([port.calls, port.locks], [[], []]);
  assert.equal(
    stdout.text,
    '& push image reg/app:1 (image: and build: (web))\n' +
      '& push image reg/app:latest (build.tags (web))\n\n' +
      'Plan: 0 to create, 0 to recreate, 0 to remove, 2 to push.\n',
  );
  const json = recordingContext({ ...observedEmpty(p), images: built });
  await push.run(json.ctx, { project: p, services: ['api'], dryRun: true, format: 'json', ignoreFailures: true });
  const plan = JSON.parse(json.stdout.text) as { operations: { kind: string; bestEffort?: boolean }[] };
  assert.deepEqual(plan.operations, [{ ...plan.operations[0], kind: 'image.push', bestEffort: true }]);
});
