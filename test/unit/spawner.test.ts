import assert from 'node:assert/strict';
import { test } from 'node:test';
import { notInstalled, spawnCommand } from '../../engine/runtime/spawner.js';

// The fork server of engine/runtime/spawner.ts + native/src/spawner.c: what it returns must be what the command did.

test('exit code, stdout, stderr and stdin round-trip', async () => {
  const result = await spawnCommand('sh', ['-c', 'cat; echo err >&2; exit 3'], { input: 'hello\nworld\n' });
  assert.equal(result.code, 3);
  assert.equal(result.signal, 0);
  assert.equal(result.errno, 0);
  assert.equal(result.stdout.toString(), 'hello\nworld\n');
  assert.equal(result.stderr.toString(), 'err\n');
});

test('a command killed by a signal reports 128 + N and the signal', async () => {
  const result = await spawnCommand('sh', ['-c', 'kill -9 $$']);
  assert.equal(result.signal, 9);
  assert.equal(result.code, 137);
});

test('a missing command is ENOENT, not an exit code of the command', async () => {
  const result = await spawnCommand('tsfig-no-such-command', []);
  assert.ok(notInstalled(result));
  assert.equal(result.code, 127);
});

test('fd 3 and a whole environment when asked; only fds 0-3 are inherited', async () => {
  const result = await spawnCommand('sh', ['-c', 'echo "$ONLY" >&3; ls /proc/self/fd | sort -n | tr "\\n" " "'], {
    env: { ONLY: 'this', PATH: process.env.PATH },
    fd3: true,
  });
  assert.equal(result.fd3.toString(), 'this\n');
  // 0-3 and the fd ls uses to read the directory.
  assert.deepEqual(result.stdout.toString().trim().split(' ').map(Number).slice(0, 4), [0, 1, 2, 3]);
  assert.equal(result.stdout.toString().trim().split(' ').length, 5);
  const inherited = await spawnCommand('sh', ['-c', 'echo "${ONLY:-unset}"']);
  assert.equal(inherited.stdout.toString(), 'unset\n');
});

test('many commands at once, large outputs and inputs, each answer to its caller', async () => {
  const big = 'x'.repeat(300_000);
  const results = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      spawnCommand('sh', ['-c', `cat; head -c ${i * 1000} /dev/zero | tr '\\0' y; exit ${i % 7}`], { input: big }),
    ),
  );
  results.forEach((result, i) => {
    assert.equal(result.code, i % 7);
    assert.equal(result.stdout.length, big.length + i * 1000);
  });
});

/** The spawner process of this test process (a child running `tsfig-runtime spawner`). */
async function spawnerPid(): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const children = (await readFile(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8')).trim().split(/\s+/);
  for (const pid of children.map(Number)) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').includes('spawner')) return pid;
  }
  throw new Error('no spawner child');
}

test('Ctrl-C (SIGINT) to the process group does not take the spawner away; a killed one is replaced', async () => {
  await spawnCommand('true', []);
  const pid = await spawnerPid();
  process.kill(pid, 'SIGINT');
  process.kill(pid, 'SIGTERM');
  const after = await spawnCommand('sh', ['-c', 'echo still here']);
  assert.equal(after.stdout.toString(), 'still here\n');
  assert.equal(await spawnerPid(), pid);
  // Its commands get the default dispositions back: a SIGINT ends them.
  const interrupted = await spawnCommand('sh', ['-c', 'kill -INT $$; sleep 5']);
  assert.equal(interrupted.signal, 2);
  process.kill(pid, 'SIGKILL');
  const { access } = await import('node:fs/promises');
  // Reaped (and its exit seen by this process) once /proc no longer has it.
  for (
    let i = 0;
    i < 500 &&
    (await access(`/proc/${pid}`).then(
      () => true,
      () => false,
    ));
    i++
  ) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const replaced = await spawnCommand('sh', ['-c', 'echo new']);
  assert.equal(replaced.stdout.toString(), 'new\n');
  assert.notEqual(await spawnerPid(), pid);
});
