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
  assert.deepEqual(plan.warnings, [
    'services.app.build.additional_contexts is not supported yet and is ignored',
    'services.app.build.ssh is not supported yet and is ignored',
  ]);
});
