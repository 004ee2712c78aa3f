/**
 * `tsfig publish` and `tsfig commit` (src/compose/publish.ts, commit.ts) against the recording engine port: the plan
 * each makes (one `artifact.push`; one `image.commit`), `--dry-run` (the plan, nothing called), the refusals before
 * anything changes (a question answered no, a service without that container), and the exit codes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import * as commit from '../../src/compose/commit.js';
import * as publish from '../../src/compose/publish.js';
import { loadProject } from '../../src/config/load.js';
import type { Project } from '../../src/model/project.js';
import { LineRenderer } from '../../src/ui/progress.js';
import { dependentPair, observedEmpty, observedRunning, runningContainer } from '../helpers/project.js';
import { Buffer, recordingContext } from '../helpers/recording-port.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tsfig-publish-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function publishProject(extra = ''): Project {
  writeFileSync(path.join(dir, 'compose.yaml'), `name: shop\nservices:\n  web:\n    image: reg/web:1\n${extra}`);
  writeFileSync(path.join(dir, 'web.env'), 'TOKEN=not-for-the-plan\n');
  return loadProject({ cwd: dir, env: {} }).project;
}

test('publish: one artifact.push of the project files to the repository (oci:// taken off), exit 0', async () => {
  const p = publishProject();
  const { ctx, port, events } = recordingContext(observedEmpty(p));
  assert.equal(await publish.run(ctx, { project: p, repository: 'oci://reg:5000/shop/app:v1' }), 0);
  assert.deepEqual(port.calls, ['pushArtifact reg:5000/shop/app:v1']);
  const [spec] = port.artifacts;
  assert.equal(spec?.artifactType, 'application/vnd.docker.compose.project');
  assert.equal(spec?.ociVersion, 'auto');
  assert.deepEqual(spec?.annotations, { 'org.opencontainers.image.created': '2026-12-07T00:00:00Z' });
  assert.deepEqual(
    spec?.layers.map((layer) => [layer.mediaType, layer.annotations['com.docker.compose.file']]),
    [['application/vnd.docker.compose.file+yaml', 'compose.yaml']],
  );
  assert.match((await spec?.layers[0]?.data.read('test'))?.toString() ?? '', /image: reg\/web:1/);
  assert.deepEqual(
    events.events.flatMap((e) => (e.kind === 'op.done' ? [[e.op.kind, e.op.target, e.digest]] : [])),
    [['artifact.push', 'reg:5000/shop/app:v1', `sha256:${'2'.repeat(64)}`]],
  );
});

test('publish --dry-run: the plan names the files and their sizes (JSON: digests, never an env file content)', async () => {
  const p = publishProject('    env_file: [web.env]\n');
  const { ctx, port, stdout } = recordingContext(observedEmpty(p));
  const options = { project: p, repository: 'reg/shop:1', withEnv: true, dryRun: true };
  assert.equal(await publish.run(ctx, options), 0);
  assert.deepEqual(port.calls, []);
  assert.match(
    stdout.text,
    /^& push artifact reg\/shop:1 \(tsfig publish: compose\.yaml \(\d+ bytes\), env file [0-9a-f]{64}\.env \(23 bytes\)\)\n\nPlan: 0 to create, 0 to recreate, 0 to remove, 1 to push\.\n$/,
  );
  const json = recordingContext(observedEmpty(p));
  await publish.run(json.ctx, { ...options, format: 'json' });
  assert.doesNotMatch(json.stdout.text, /not-for-the-plan/);
  const plan = JSON.parse(json.stdout.text) as { operations: [{ kind: string; spec: { layers: { data: object }[] } }] };
  assert.equal(plan.operations[0].kind, 'artifact.push');
  assert.match(JSON.stringify(plan.operations[0].spec.layers[1]?.data), /^\{"sha256":"[0-9a-f]{64}"\}$/);
});

test('publish: a question answered no (or no way to ask) refuses with exit 64 and pushes nothing; -y publishes', async () => {
  const p = publishProject('    env_file: [web.env]\n');
  const asked: string[] = [];
  const no = recordingContext(observedEmpty(p));
  const confirm = (question: string) => {
    asked.push(question);
    return Promise.resolve(false);
  };
  await assert.rejects(publish.run(no.ctx, { project: p, repository: 'reg/shop:1', confirm }), (error: unknown) => {
    assert.match(String(error), /publish cancelled: nothing was pushed/);
    assert.equal((error as { kind?: string }).kind, 'usage');
    return true;
  });
  assert.match(asked[0] ?? '', /services web declare env_file/);
  assert.deepEqual(no.port.calls, []);
  const unasked = recordingContext(observedEmpty(p));
  await assert.rejects(publish.run(unasked.ctx, { project: p, repository: 'reg/shop:1' }), /publish cancelled/);
  const yes = recordingContext(observedEmpty(p));
  assert.equal(await publish.run(yes.ctx, { project: p, repository: 'reg/shop:1', yes: true }), 0);
  assert.deepEqual(yes.port.calls, ['pushArtifact reg/shop:1']);
  // a failed push fails the verb (the executor's error)
  const failing = recordingContext(observedEmpty(p));
  failing.port.pushFailures.add('reg/shop:1');
  await assert.rejects(
    publish.run(failing.ctx, { project: p, repository: 'reg/shop:1', yes: true }),
    /HTTP 401 pushing reg\/shop:1/,
  );
});

test("commit: one image.commit of the service's container --index; its id on stdout, compose's words on the sink", async () => {
  const p = dependentPair();
  const app = p.services.app;
  assert.ok(app !== undefined);
  const observed = observedRunning(p);
  const second = runningContainer(p, app, 2);
  const { ctx, port, stdout } = recordingContext({ ...observed, containers: [...observed.containers, second] });
  const lines = new Buffer();
  const plain = { ...ctx, events: new LineRenderer('plain', lines as unknown as NodeJS.WritableStream) };
  const options = { project: p, service: 'app', index: 2, reference: 'snap/app:1', changes: ['CMD ["sh"]'] };
  assert.equal(await commit.run(plain, { ...options, message: 'm', author: 'a' }), 0);
  assert.deepEqual(port.calls, ['commitContainer id-tsfig-app-2']);
  assert.deepEqual(port.commits[0], {
    container: 'id-tsfig-app-2',
    name: 'tsfig-app-2',
    service: 'app',
    reference: 'snap/app:1',
    changes: ['CMD ["sh"]'],
    message: 'm',
    author: 'a',
  });
  assert.equal(stdout.text, `sha256:${'3'.repeat(64)}\n`);
  assert.equal(
    lines.text,
    ` Container tsfig-app-2  Committing\n Container tsfig-app-2  Committed as sha256:${'3'.repeat(64)}\n`,
  );
});

test('commit --dry-run prints the plan; a service without that container is refused (not-found), nothing made', async () => {
  const p = dependentPair();
  const dry = recordingContext(observedRunning(p));
  assert.equal(await commit.run(dry.ctx, { project: p, service: 'db', dryRun: true }), 0);
  assert.deepEqual(dry.port.calls, []);
  assert.equal(
    dry.stdout.text,
    '# commit container tsfig-db-1 (tsfig commit: its changes as an untagged image)\n\n' +
      'Plan: 0 to create, 0 to recreate, 0 to remove, 1 to commit.\n',
  );
  const fresh = recordingContext(observedEmpty(p));
  await assert.rejects(commit.run(fresh.ctx, { project: p, service: 'db' }), (error: unknown) => {
    assert.match(String(error), /service "db" has no container number 1/);
    assert.equal((error as { kind?: string }).kind, 'not-found');
    return true;
  });
  const third = recordingContext(observedRunning(p));
  await assert.rejects(commit.run(third.ctx, { project: p, service: 'db', index: 3 }), /no container number 3/);
  assert.deepEqual([...fresh.port.calls, ...third.port.calls], []);
});
