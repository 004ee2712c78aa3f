/**
 * compose v2 reads the working directory's .env, then the project directory's (when they differ), the second adding
 * only what is not set (e2e TestComposeFileSetByDotEnv, TestComposeFileSetByProjectDirectory, TestNestedDotEnv).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { loadProject } from '../../src/config/load.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tsfig-dotenv-layers-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const write = (file: string, text: string) => {
  mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
  writeFileSync(path.join(dir, file), text);
};

write(
  'dotenv/.env',
  'COMPOSE_FILE="${COMPOSE_FILE:-development/compose.yaml}"\nIMAGE_NAME=test\nCOMPOSE_PROFILES=test',
);
write('dotenv/development/.env', 'IMAGE_NAME="${IMAGE_NAME:-backend}"\nIMAGE_TAG="${IMAGE_TAG:-latest}"\n');
write(
  'dotenv/development/compose.yaml',
  'services:\n  backend:\n    image: $IMAGE_NAME:$IMAGE_TAG\n  test:\n    profiles:\n      - test\n    image: enabled:profile',
);
write('nested/.env', 'ROOT=root\nWIN=root');
write('nested/sub/.env', 'SUB=sub\nWIN=sub\n');
write('nested/compose.yaml', 'services:\n  echo:\n    image: busybox\n    command: echo $ROOT $SUB win=$WIN\n');

const images = (cwd: string, extra: { projectDirectory?: string } = {}) => {
  const { project } = loadProject({ cwd: path.join(dir, cwd), env: {}, ...extra });
  return Object.values(project.services)
    .map((s) => s.image)
    .sort();
};

test('COMPOSE_FILE from the working directory .env, then the project directory .env fills in what is unset', () => {
  assert.deepEqual(images('dotenv'), ['enabled:profile', 'test:latest']);
});

test('--project-directory: that directory .env only', () => {
  assert.deepEqual(images('dotenv', { projectDirectory: 'development' }), ['backend:latest']);
});

test('from a subdirectory: both .env files, the working directory winning', () => {
  const { project } = loadProject({ cwd: path.join(dir, 'nested/sub'), env: {} });
  assert.deepEqual(project.services.echo?.command, ['echo', 'root', 'sub', 'win=sub']);
});

// e2e TestEnvPriority: `run -e NAME` without a value takes NAME from the shell, then the .env/--env-file files
test('the project environment: the shell over the .env values; run -e NAME resolves through it', async () => {
  write('priority/compose.yaml', 'services:\n  app:\n    image: busybox\n');
  write('priority/.env', 'WHEREAMI=Env File\nONLY_FILE=f\n');
  const { environment } = loadProject({ cwd: path.join(dir, 'priority'), env: { WHEREAMI: 'shell' } });
  assert.equal(environment.WHEREAMI, 'shell');
  assert.equal(environment.ONLY_FILE, 'f');
  const { runOptions } = await import('../../src/cli/compose/run.js');
  const { project } = loadProject({ cwd: path.join(dir, 'priority'), env: {} });
  const options = runOptions(
    project,
    'app',
    [],
    { env: ['ONLY_FILE', 'NOWHERE', 'SET=1'], deps: true, TTY: false },
    false,
    environment,
  );
  assert.deepEqual(options.env, ['ONLY_FILE=f', 'SET=1']);
});
