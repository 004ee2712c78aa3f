/** `build.additional_contexts` in the loader: values resolved or refused with the file, line and column. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ConfigError } from '../../src/config/diagnostics.js';
import { loadProject } from '../../src/config/load.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tsfig-contexts-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const sub = path.join(dir, name);
  mkdirSync(sub, { recursive: true });
  writeFileSync(path.join(sub, 'compose.yaml'), text);
  return sub;
}

test('directories resolve against the project directory; service: and docker-image:// are kept; list form too', () => {
  const cwd = write(
    'good',
    `services:
  base:
    build: ./base
  app:
    build:
      context: ./app
      additional_contexts:
        base: service:base
        tools: docker-image://tsfig/busybox:latest
        docs: ../docs
  lister:
    build:
      context: .
      additional_contexts: ["src=./src"]
`,
  );
  const { project } = loadProject({ cwd, env: {} });
  assert.deepEqual(project.services.app?.build?.additional_contexts, {
    base: 'service:base',
    tools: 'docker-image://tsfig/busybox:latest',
    docs: path.join(dir, 'docs'),
  });
  assert.deepEqual(project.services.lister?.build?.additional_contexts, { src: path.join(cwd, 'src') });
});

test('an unknown service, a service of its own, a cycle and remote contexts are refused at their line and column', () => {
  const cwd = write(
    'bad',
    `services:
  a:
    build:
      context: .
      additional_contexts:
        b: service:b
  b:
    build:
      context: .
      additional_contexts:
        a: service:a
  c:
    build:
      context: .
      additional_contexts:
        nope: service:nope
        me: service:c
        git: https://github.com/example/repo.git
        later: target:other
`,
  );
  assert.throws(
    () => loadProject({ cwd, env: {} }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError, String(error));
      const text = error.message;
      assert.match(
        text,
        /compose\.yaml:16:15: .*services\.c\.build\.additional_contexts\.nope: unknown service "nope"/,
      );
      assert.match(text, /compose\.yaml:17:13: .*a service cannot build from its own image/);
      assert.match(text, /compose\.yaml:18:14: .*"https:\/\/github\.com\/example\/repo\.git" is not supported/);
      assert.match(text, /compose\.yaml:19:16: .*"target:other" is not supported/);
      assert.match(text, /dependency cycle: a -> b -> a/);
      return true;
    },
  );
});
