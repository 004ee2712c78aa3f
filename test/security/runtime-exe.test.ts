// Item 7 of issue #15 (CVE-2019-5736 class). A container's init is a clone of tsfig-runtime and `exec` forks a
// tsfig-runtime child into the container's pid namespace before it executes the command. A container process with
// CAP_SYS_PTRACE (a common --cap-add, for debuggers) can stop that child, open its /proc/<pid>/exe read-only, and
// write the binary through /proc/self/fd/N as soon as nothing runs it (ETXTBSY was the only guard): here the exec
// helper is a copy of the runtime (as after an upgrade, while the monitors run the old one), and the container
// overwrote it. The runtime now re-executes itself from a sealed memfd before it enters a container (native/src/
// sealed.c): the handle a container can get is that copy, which cannot be written, and the host's file is untouched.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BUSYBOX_TAR, makeTestEngine, NEEDS_ROOT, REPO, type TestEngine } from '../helpers/engine.js';

const WATCHER_SRC = path.join(REPO, 'test', 'security', 'exe-watcher.c');

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

describe('the runtime binary against a hostile container (root)', { skip: NEEDS_ROOT }, () => {
  let t: TestEngine;
  let probeDir: string;
  /** The runtime the engine uses (TSFIG_RUNTIME when set, as the CLI does). */
  const runtime = process.env.TSFIG_RUNTIME ?? path.join(REPO, 'native', 'build', 'tsfig-runtime');

  before(async () => {
    t = await makeTestEngine();
    probeDir = path.join(t.dir, 'probe');
    await mkdir(probeDir);
    execFileSync('cc', ['-O2', '-static', '-o', path.join(probeDir, 'watcher'), WATCHER_SRC]);
  });

  after(async () => {
    await t.cleanup();
  });

  async function logsOf(id: string): Promise<string> {
    return (await t.cli(['container', 'logs', id])).stdout;
  }

  async function until(id: string, pattern: RegExp, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const logs = await logsOf(id);
      if (pattern.test(logs) || Date.now() > deadline) return logs;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  test('a container that catches the exec helper cannot write the runtime binary', async () => {
    const helper = path.join(t.dir, 'upgraded', 'tsfig-runtime');
    await mkdir(path.dirname(helper));
    await copyFile(runtime, helper);
    await chmod(helper, 0o755);
    const [helperBefore, runtimeBefore] = [await sha256(helper), await sha256(runtime)];
    const run = await t.cli([
      'container',
      'run',
      '-d',
      '--cap-add',
      'SYS_PTRACE',
      '-v',
      `${probeDir}:/probe:ro`,
      'tsfig/busybox',
      '/probe/watcher',
    ]);
    assert.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    try {
      assert.match(await until(id, /^watching$/m, 10_000), /^watching$/m);
      // the watcher must stop the helper's child before it executes `true`: a few tries on a busy machine
      let logs = '';
      for (let attempt = 0; attempt < 30 && !/^caught /m.test(logs); attempt++) {
        await t.cli(['container', 'exec', id, 'true'], { env: { TSFIG_RUNTIME: helper } });
        logs = await logsOf(id);
      }
      assert.match(logs, /^caught /m, `the watcher never caught the exec helper:\n${logs}`);
      logs = await until(id, /^(WROTE|write failed: .*)$/m, 20_000);
      assert.equal(await sha256(helper), helperBefore, `the runtime binary exec ran was overwritten:\n${logs}`);
      assert.equal(await sha256(runtime), runtimeBefore);
      assert.match(logs, /^write failed: /m, logs);
      assert.doesNotMatch(logs, /^caught .*upgraded/m, 'the container got a handle to the host binary');
    } finally {
      await t.cli(['container', 'rm', '-f', id]);
    }
  });

  test('an entrypoint `#!/proc/self/exe` gets nothing of the runtime', async () => {
    const rootfs = path.join(t.dir, 'rootfs-exe');
    await mkdir(rootfs);
    execFileSync('tar', ['-xf', BUSYBOX_TAR, '-C', rootfs]);
    await writeFile(path.join(rootfs, 'entry'), '#!/proc/self/exe\n', { mode: 0o755 });
    const tar = path.join(t.dir, 'exe.tar');
    execFileSync('tar', ['--numeric-owner', '-C', rootfs, '-cf', tar, '.']);
    assert.equal((await t.cli(['image', 'import', tar, 'hostile/self-exe'])).code, 0);
    const before = await sha256(runtime);
    const run = await t.cli(['container', 'run', '--rm', 'hostile/self-exe', '/entry']);
    assert.notEqual(run.code, 0, run.stdout);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(await sha256(runtime), before);
  });
});
