/**
 * A paused (frozen) container stopped, killed or removed with --force: Docker resumes it so the signal is delivered.
 * Before, SIGKILL stayed pending in the frozen cgroup for ever: the process lingered (state D) after the container
 * was gone and its cgroup could not be removed.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { NEEDS_ROOT, suiteEngine } from '../helpers/engine.js';

const BUSYBOX = 'tsfig/busybox:latest';

describe('paused containers stop, die and go (root)', { skip: NEEDS_ROOT }, () => {
  const t = suiteEngine('root');

  async function cli(...args: string[]): Promise<string> {
    const result = await t.cli(args);
    assert.equal(result.code, 0, `tsfig ${args.join(' ')}: ${result.stderr}`);
    return result.stdout.trim();
  }

  function freezer(id: string): string {
    return path.join('/sys/fs/cgroup/freezer', t.engine.paths.cgroupParent, id.slice(0, 12));
  }

  test('exec into a paused container is refused at once (it hung in state D), and works after unpause', async () => {
    const name = 'paused-exec';
    await cli('container', 'run', '-d', '--name', name, BUSYBOX, 'sleep', '600');
    try {
      await cli('container', 'pause', name);
      const refused = await t.cli(['container', 'exec', name, 'true'], { timeoutMs: 20_000 });
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /container paused-exec is paused/);
      assert.match(refused.stderr, /unpause it first/);
      await cli('container', 'unpause', name);
      assert.equal(await cli('container', 'exec', name, 'echo', 'ok'), 'ok');
    } finally {
      await t.cli(['container', 'rm', '-f', name]);
    }
  });

  for (const [verb, args] of [
    ['rm -f', ['container', 'rm', '-f']],
    ['stop', ['container', 'stop', '-t', '1']],
    ['kill', ['container', 'kill']],
  ] as const) {
    test(`${verb} of a paused container`, async () => {
      const name = `paused-${verb.replace(/\W/g, '')}`;
      const id = await cli('container', 'run', '-d', '--name', name, BUSYBOX, 'sleep', '600');
      await cli('container', 'pause', name);
      const pid = (await t.engine.containers.inspect(name)) as { State?: { Pid?: number } };
      const containerPid = pid.State?.Pid ?? 0;
      assert.ok(containerPid > 0);
      await cli(...args, name);
      if (verb !== 'rm -f') {
        assert.equal((await t.engine.containers.state(await t.engine.containers.get(name))).status, 'exited');
        await cli('container', 'rm', name);
      }
      assert.equal(existsSync(`/proc/${containerPid}`), false, 'the container process is gone');
      assert.equal(existsSync(freezer(id)), false, 'its freezer cgroup is removed');
    });
  }
});
