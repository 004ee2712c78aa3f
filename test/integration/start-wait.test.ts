/** `start --wait` (compose 5.0): start returns once the services are running, and healthy where they have a check. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NEEDS_ROOT, suiteEngine, writeProject } from '../helpers/engine.js';

describe('start --wait (root)', { skip: NEEDS_ROOT }, () => {
  const t = suiteEngine('interfaces');

  test('start --wait returns when the healthcheck passes; a container that exits non-zero while waited for fails it', async () => {
    // /ready appears 2 s after each start: the check fails until then
    const dir = await writeProject(
      t,
      'startwait',
      `services:
  app:
    image: tsfig/busybox
    init: true
    command: ["sh", "-c", "rm -f /ready; sleep 2; touch /ready; exec sleep 300"]
    healthcheck:
      test: ["CMD", "test", "-f", "/ready"]
      interval: 300ms
      retries: 50
  broken:
    image: tsfig/busybox
    command: ["sh", "-c", "sleep 1; exit 3"]
    healthcheck:
      test: ["CMD", "false"]
      interval: 300ms
      retries: 50
    profiles: [broken]
`,
    );
    try {
      const up = await t.cli(['up', '-d'], { cwd: dir });
      assert.equal(up.code, 0, up.stderr);
      const stop = await t.cli(['stop', '-t', '1'], { cwd: dir });
      assert.equal(stop.code, 0, stop.stderr);

      const start = await t.cli(['start', '--wait'], { cwd: dir });
      assert.equal(start.code, 0, start.stderr);
      // the container removes /ready when it starts and makes it 2 s later: it is there only if start waited
      const ready = await t.cli(['exec', '-T', 'app', 'test', '-f', '/ready'], { cwd: dir });
      assert.equal(ready.code, 0, 'start --wait returned before the container was healthy');
      const ps = await t.cli(['ps', '--format', 'json'], { cwd: dir });
      const row = JSON.parse(ps.stdout.trim().split('\n')[0] ?? '{}') as { Health: string; State: string };
      assert.equal(row.State, 'running');
      assert.equal(row.Health, 'healthy');

      const created = await t.cli(['--profile', 'broken', 'up', '-d', 'broken'], { cwd: dir });
      assert.equal(created.code, 0, created.stderr);
      const failed = await t.cli(['--profile', 'broken', 'start', '--wait', '--wait-timeout', '30', 'broken'], {
        cwd: dir,
      });
      assert.equal(failed.code, 1, failed.stderr);
      assert.match(failed.stderr, /container startwait-broken-1 exited \(3\)/);
    } finally {
      await t.cli(['--profile', 'broken', 'down', '-t', '1'], { cwd: dir });
    }
  });
});
