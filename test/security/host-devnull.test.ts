// Found while fixing item 9 of issue #15: a container's stdin without -i was the monitor's stdin, the host's
// /dev/null (and all three fds of `exec -d` were the helper's), so a container's root (CAP_FOWNER, CAP_CHOWN: Docker's
// defaults) could `chmod 0640 /proc/self/fd/0` and take /dev/null away from every other user of the host. The
// container's stdio is now its own /dev/null (the node in its /dev), opened inside it.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, statSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { makeTestEngine, NEEDS_ROOT, type TestEngine } from '../helpers/engine.js';

const ATTACK = 'for fd in 0 1 2; do chmod 0600 /proc/self/fd/$fd; chown 65534:65534 /proc/self/fd/$fd; done; true';

describe("the host's /dev/null is out of a container's reach (root)", { skip: NEEDS_ROOT }, () => {
  let t: TestEngine;
  const original = statSync('/dev/null');

  before(async () => {
    t = await makeTestEngine();
  });

  after(async () => {
    await t.cleanup();
  });

  /** Mode and owner of the host's /dev/null; puts them back when a container changed them. */
  function hostNull(): string {
    const now = statSync('/dev/null');
    if (now.mode !== original.mode || now.uid !== original.uid || now.gid !== original.gid) {
      chmodSync('/dev/null', original.mode & 0o7777);
      chownSync('/dev/null', original.uid, original.gid);
    }
    return `${(now.mode & 0o7777).toString(8)} ${now.uid}:${now.gid}`;
  }

  const expected = `${(original.mode & 0o7777).toString(8)} ${original.uid}:${original.gid}`;

  test('container run (attached, no -i): chmod and chown of its stdin leave the host node alone', async () => {
    const run = await t.cli(['container', 'run', '--rm', 'tsfig/busybox', 'sh', '-c', ATTACK]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(hostNull(), expected);
  });

  test('container run -d, and exec -d into it: the same', async () => {
    const run = await t.cli(['container', 'run', '-d', 'tsfig/busybox', 'sh', '-c', `${ATTACK}; sleep 600`]);
    assert.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    try {
      const exec = await t.cli(['container', 'exec', '-d', id, 'sh', '-c', `${ATTACK}; touch /done`]);
      assert.equal(exec.code, 0, exec.stderr);
      for (let i = 0; i < 50; i++) {
        if ((await t.cli(['container', 'exec', id, 'test', '-e', '/done'])).code === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal((await t.cli(['container', 'exec', id, 'test', '-e', '/done'])).code, 0, 'exec -d ran');
      assert.equal(hostNull(), expected);
      // the container's own /dev/null is what it changed
      const own = await t.cli(['container', 'exec', id, 'stat', '-c', '%a %u', '/dev/null']);
      assert.equal(own.stdout.trim(), '600 65534');
    } finally {
      await t.cli(['container', 'rm', '-f', id]);
    }
  });
});
