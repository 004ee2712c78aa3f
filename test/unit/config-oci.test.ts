/** `-f oci://...`: which arguments are published projects, and what `tsfig publish` puts in the artifact. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { publishContent } from '../../src/compose/publish.js';
import { loadProject } from '../../src/config/load.js';
import { ociFileArguments } from '../../src/config/oci.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tsfig-oci-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the oci:// values of -f, --file, --file= and -fVALUE are found; a command argument after -- is not', () => {
  assert.deepEqual(
    ociFileArguments(['-f', 'oci://r/a:1', '--file=oci://r/b', '-foci://r/c', '-f', 'local.yaml', 'up']),
    ['oci://r/a:1', 'oci://r/b', 'oci://r/c'],
  );
  assert.deepEqual(ociFileArguments(['run', 'app', '--', '-f', 'oci://r/x']), []);
});

test('publish: env_file entries and extends parents are renamed by the sha256 of their path; env files only with --with-env', () => {
  writeFileSync(
    path.join(dir, 'compose.yaml'),
    'services:\n  web:\n    image: x\n    env_file: [web.env]\n    volumes: ["./data:/data"]\n  db:\n    extends: { file: base.yaml, service: db }\n',
  );
  writeFileSync(path.join(dir, 'base.yaml'), 'services:\n  db:\n    image: y\n');
  writeFileSync(path.join(dir, 'web.env'), 'A=1\n');
  const { project } = loadProject({ cwd: dir, env: {} });
  const without = publishContent(project, { withEnv: false });
  assert.equal(without.layers.length, 2);
  const text = without.layers[0]?.data.toString('utf8') ?? '';
  assert.doesNotMatch(text, /web\.env|base\.yaml/);
  assert.match(text, /env_file: \[ [0-9a-f]{64}\.env \]/);
  assert.deepEqual(without.envFileServices, ['web']);
  assert.deepEqual(without.bindMounts, [`web: ${path.join(dir, 'data')}:/data`]);
  const withEnv = publishContent(project, { withEnv: true });
  assert.deepEqual(
    withEnv.layers.map((layer) => layer.mediaType),
    [
      'application/vnd.docker.compose.file+yaml',
      'application/vnd.docker.compose.file+yaml',
      'application/vnd.docker.compose.envfile',
    ],
  );
  assert.equal(withEnv.layers[2]?.data.toString('utf8'), 'A=1\n');
});
