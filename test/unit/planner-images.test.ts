import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planImages } from '../../src/planner/images.js';
import { OpKind } from '../../src/planner/plan.js';
import { buildOf as build, project, service } from '../helpers/project.js';

const summary = (plan: ReturnType<typeof planImages>) =>
  plan.operations.map(
    (op) => `${op.kind} ${op.resource}${op.dependsOn.length > 0 ? ` after ${op.dependsOn.join(',')}` : ''}`,
  );

// compose's isServiceImageToBuild (e2e TestUpWithBuildDependencies): bar runs the image foo builds
test('an image another service builds is built by it, never pulled', () => {
  const foo = service('foo', { image: 'shared-built', build: build('/srv/app') });
  const bar = service('bar', { image: 'shared-built', depends_on: {} });
  const p = project([foo, bar]);
  const observed = { containers: [], networks: [], volumes: [], images: {} };
  assert.deepEqual(summary(planImages(p, observed, { now: 0 })), [`${OpKind.ImageBuild} service:foo`]);
  // even when only bar is selected, and with --pull always
  assert.deepEqual(summary(planImages(p, observed, { now: 0, services: ['bar'], pull: 'always' })), [
    `${OpKind.ImageBuild} service:foo`,
  ]);
  // present: bar needs nothing, and foo (not selected) is not rebuilt for it
  const present = { ...observed, images: { 'shared-built': { id: 'sha256:1' } } };
  assert.deepEqual(summary(planImages(p, present, { now: 0, services: ['bar'] })), []);
});

test('an image no service builds is still pulled when missing', () => {
  const bar = service('bar', { image: 'elsewhere' });
  const plan = planImages(project([bar]), { containers: [], networks: [], volumes: [], images: {} }, { now: 0 });
  assert.deepEqual(summary(plan), [`${OpKind.ImagePull} image:elsewhere`]);
});

test('build keys the builder does not do yet are warned, one each, for a service that is built', () => {
  const app = service('app', {
    image: undefined,
    build: { ...build('/srv/app'), additional_contexts: { base: 'service:base' }, ssh: ['default'] },
  });
  const plan = planImages(project([app]), { containers: [], networks: [], volumes: [], images: {} }, { now: 0 });
  assert.deepEqual(plan.warnings, ['services.app.build.ssh is not supported yet and is ignored']);
});

// compose e2e TestBuildSubDependencies: additional_contexts service:NAME chains build on demand, dependencies first
test('a build whose named contexts are other services builds those first, transitively, even when not selected', () => {
  const svc = (name: string, contexts: Record<string, string> = {}) =>
    service(name, { image: undefined, build: { ...build(`/srv/${name}`), additional_contexts: contexts } });
  const p = project([
    svc('main', { dep1: 'service:dep1', dep2: 'service:dep2' }),
    svc('dep1', {
      subdep1: 'service:subdep1',
      subdep2: 'service:subdep2',
      tools: 'docker-image://tools:1',
      docs: '/srv/docs',
    }),
    svc('dep2'),
    svc('subdep1'),
    svc('subdep2'),
    svc('other'),
  ]);
  const none = { containers: [], networks: [], volumes: [], images: {} };
  const plan = planImages(p, none, { now: 0, services: ['main'] });
  assert.deepEqual(summary(plan), [
    `${OpKind.ImageBuild} service:subdep1`,
    `${OpKind.ImageBuild} service:subdep2 after 1`,
    `${OpKind.ImageBuild} service:dep1 after 2`,
    `${OpKind.ImageBuild} service:dep2 after 3`,
    `${OpKind.ImageBuild} service:main after 4`,
  ]);
  assert.deepEqual(plan.warnings, []);
  const dep1 = plan.operations.find((op) => op.resource === 'service:dep1');
  assert.ok(dep1?.kind === OpKind.ImageBuild);
  assert.deepEqual(dep1.spec.contexts, {
    subdep1: { image: 'tsfig-subdep1' },
    subdep2: { image: 'tsfig-subdep2' },
    tools: { image: 'tools:1' },
    docs: { dir: '/srv/docs' },
  });
  // present context images are rebuilt with the one selected (the layer cache keeps what did not change), as
  // `compose build main` does; `run` (build: missing) builds none of them
  const images = Object.fromEntries(
    ['main', 'dep1', 'dep2', 'subdep1', 'subdep2'].map((n) => [`tsfig-${n}`, { id: `sha256:${n}` }]),
  );
  assert.equal(planImages(p, { ...none, images }, { now: 0, services: ['main'] }).operations.length, 5);
  assert.deepEqual(summary(planImages(p, { ...none, images }, { now: 0, services: ['main'], build: 'missing' })), []);
});
