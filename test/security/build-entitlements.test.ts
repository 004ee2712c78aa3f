// Item 10 of issue #15 (first half): a Dockerfile from someone else must not put a build step on the host's network
// unless the operator grants it, as BuildKit's `--allow network.host` does.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeTestEngine, NEEDS_ROOT, type TestEngine } from '../helpers/engine.js';

describe('Dockerfile RUN --network=host', { skip: NEEDS_ROOT }, () => {
  let t: TestEngine;
  let dir: string;

  before(async () => {
    t = await makeTestEngine();
    dir = path.join(t.dir, 'ctx');
    await mkdir(dir);
    // the step records the network interfaces it sees: only the host's netns has more than lo
    await writeFile(
      path.join(dir, 'Dockerfile'),
      'FROM tsfig/busybox\nRUN --network=host ls /sys/class/net > /nets\nCMD ["cat", "/nets"]\n',
    );
  });

  after(async () => {
    await t.cleanup();
  });

  test('is refused without --allow network.host, at its line, and builds nothing', async () => {
    const build = await t.cli(['image', 'build', '-t', 'hostile/net', dir]);
    assert.notEqual(build.code, 0, build.stdout);
    assert.match(build.stderr, /Dockerfile:2:\d+: RUN --network=host needs the network\.host entitlement/);
    assert.match(build.stderr, /--allow network\.host/);
    const inspect = await t.cli(['image', 'inspect', 'hostile/net']);
    assert.notEqual(inspect.code, 0, 'no image was tagged');
  });

  test('an unknown entitlement is a usage error', async () => {
    const build = await t.cli(['image', 'build', '--allow', 'security.everything', dir]);
    assert.equal(build.code, 64, build.stderr);
  });

  test('runs on the host network with --allow network.host (control)', async () => {
    const build = await t.cli(['image', 'build', '--allow', 'network.host', '-t', 'granted/net', dir]);
    assert.equal(build.code, 0, build.stderr);
    const run = await t.cli(['container', 'run', '--rm', 'granted/net']);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.stdout.trim().split(/\s+/).length > 1, `the step saw only ${run.stdout}`);
  });
});
