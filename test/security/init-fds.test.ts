// Item 8 of issue #15. With --init (compose `init: true`), PID 1 is the native helper's minimal init, a fork of the
// container's monitor that never execs: it kept the monitor's fds (its log, control and attach sockets, pipes), host
// objects that are not the container's. It keeps only the container's stdio now.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeTestEngine, NEEDS_ROOT, type TestEngine } from '../helpers/engine.js';

describe('the --init PID 1 holds no host fds (root)', { skip: NEEDS_ROOT }, () => {
  let t: TestEngine;
  before(async () => {
    t = await makeTestEngine();
  });
  after(async () => {
    await t.cleanup();
  });

  for (const detached of [false, true]) {
    test(`container run --init${detached ? ' -d' : ''}: /proc/1/fd is 0 1 2`, async () => {
      const script = 'echo "init: $(ls /proc/1/fd | tr "\\n" " ")"; echo done';
      if (!detached) {
        const run = await t.cli(['container', 'run', '--rm', '--init', 'tsfig/busybox:latest', 'sh', '-c', script]);
        assert.equal(run.code, 0, run.stderr);
        assert.match(run.stdout, /^init: 0 1 2 $/m);
        return;
      }
      const id = (
        await t.cli(['container', 'run', '-d', '--init', 'tsfig/busybox:latest', 'sh', '-c', `${script}; sleep 600`])
      ).stdout.trim();
      try {
        for (let tries = 0; ; tries++) {
          const logs = await t.cli(['container', 'logs', id]);
          if (/^done$/m.test(logs.stdout)) {
            assert.match(logs.stdout, /^init: 0 1 2 $/m);
            break;
          }
          assert.ok(tries < 100, `no output: ${logs.stdout}${logs.stderr}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      } finally {
        await t.cli(['container', 'rm', '-f', id]);
      }
    });
  }
});
