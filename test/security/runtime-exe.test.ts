// Item 7 of issue #15 (CVE-2019-5736 class). A container's init is a clone of tsfig-runtime and `exec` forks a
// tsfig-runtime child into the container's pid namespace before it executes the command. A container process with
// CAP_SYS_PTRACE (a common --cap-add, for debuggers) can stop that child, open its /proc/<pid>/exe read-only, and
// write the binary through /proc/self/fd/N as soon as nothing runs it (ETXTBSY was the only guard): here the exec
// helper is a copy of the runtime (as after an upgrade, while the monitors run the old one), and the container
// overwrote it. The runtime now re-executes itself from a sealed memfd before it enters a container (native/src/
// sealed.c): the handle a container can get is that copy, which cannot be written, and the host's file is untouched.
// A host with vm.memfd_noexec = 2 refuses executable memfds: the runtime then runs from a read-only bind of its own
// file, detached from every mount namespace, whose handle cannot be opened for writing either (EROFS). The sysctl is
// per pid namespace: those tests set it in a pid namespace of their own (unshare) and run the CLI there (nsenter).
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  BUSYBOX_TAR,
  eventually,
  makeTestEngine,
  NEEDS_ROOT,
  REPO,
  type CliOptions,
  type TestEngine,
} from '../helpers/engine.js';

const WATCHER_SRC = path.join(REPO, 'test', 'security', 'exe-watcher.c');

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

/** The runtime the engine uses (TSFIG_RUNTIME when set, as the CLI does). */
const RUNTIME = process.env.TSFIG_RUNTIME ?? path.join(REPO, 'native', 'build', 'tsfig-runtime');

/** Compiles the watcher into dir/probe (bound into the attacking container). */
async function watcherDir(t: TestEngine): Promise<string> {
  const probeDir = path.join(t.dir, 'probe');
  await mkdir(probeDir);
  execFileSync('cc', ['-O2', '-static', '-o', path.join(probeDir, 'watcher'), WATCHER_SRC]);
  return probeDir;
}

/**
 * The attack: a container with CAP_SYS_PTRACE catches the exec helper's child (a copy of the runtime, as after an
 * upgrade) and writes the binary through the handle it opened. Returns the container's log; asserts both binaries
 * are unchanged. cli runs the CLI (with extra options: where, which runtime).
 */
async function overwriteAttack(
  t: TestEngine,
  probeDir: string,
  runArgs: readonly string[],
  cliOptions: CliOptions = {},
): Promise<string> {
  const cli = (args: readonly string[], options: CliOptions = {}) =>
    t.cli(args, { ...cliOptions, ...options, env: { ...cliOptions.env, ...options.env } });
  const logsOf = async (id: string): Promise<string> => (await cli(['container', 'logs', id])).stdout;
  const until = async (id: string, pattern: RegExp, timeoutMs: number): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const logs = await logsOf(id);
      if (pattern.test(logs) || Date.now() > deadline) return logs;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const helper = path.join(t.dir, 'upgraded', 'tsfig-runtime');
  await mkdir(path.dirname(helper), { recursive: true });
  await copyFile(RUNTIME, helper);
  await chmod(helper, 0o755);
  const [helperBefore, runtimeBefore] = [await sha256(helper), await sha256(RUNTIME)];
  const run = await cli([
    'container',
    'run',
    '-d',
    ...runArgs,
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
      await cli(['container', 'exec', id, 'true'], { env: { TSFIG_RUNTIME: helper } });
      logs = await logsOf(id);
    }
    assert.match(logs, /^caught /m, `the watcher never caught the exec helper:\n${logs}`);
    logs = await until(id, /^(WROTE|write failed: .*)$/m, 20_000);
    assert.equal(await sha256(helper), helperBefore, `the runtime binary exec ran was overwritten:\n${logs}`);
    assert.equal(await sha256(RUNTIME), runtimeBefore);
    assert.match(logs, /^write failed: /m, logs);
    return logs;
  } finally {
    const rm = await cli(['container', 'rm', '-f', id]);
    assert.equal(rm.code, 0, rm.stderr);
  }
}

describe('the runtime binary against a hostile container (root)', { skip: NEEDS_ROOT }, () => {
  let t: TestEngine;
  let probeDir: string;

  before(async () => {
    t = await makeTestEngine();
    probeDir = await watcherDir(t);
  });

  after(async () => {
    await t.cleanup();
  });

  test('a container that catches the exec helper cannot write the runtime binary', async () => {
    const logs = await overwriteAttack(t, probeDir, []);
    assert.doesNotMatch(logs, /^caught .*upgraded/m, 'the container got a handle to the host binary');
  });

  test('an entrypoint `#!/proc/self/exe` gets nothing of the runtime', async () => {
    const rootfs = path.join(t.dir, 'rootfs-exe');
    await mkdir(rootfs);
    execFileSync('tar', ['-xf', BUSYBOX_TAR, '-C', rootfs]);
    await writeFile(path.join(rootfs, 'entry'), '#!/proc/self/exe\n', { mode: 0o755 });
    const tar = path.join(t.dir, 'exe.tar');
    execFileSync('tar', ['--numeric-owner', '-C', rootfs, '-cf', tar, '.']);
    assert.equal((await t.cli(['image', 'import', tar, 'hostile/self-exe'])).code, 0);
    const before = await sha256(RUNTIME);
    const run = await t.cli(['container', 'run', '--rm', 'hostile/self-exe', '/entry']);
    assert.notEqual(run.code, 0, run.stdout);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(await sha256(RUNTIME), before);
  });
});

const MEMFD_NOEXEC = '/proc/sys/vm/memfd_noexec';

describe('the runtime binary on a host with vm.memfd_noexec = 2 (root)', { skip: NEEDS_ROOT }, () => {
  let t: TestEngine;
  let probeDir: string;
  let holder: ChildProcess;
  /** Runs the CLI in the pid (and /proc) namespace whose memfd_noexec is 2. */
  let inside: CliOptions;
  const hostValue = readFileSync(MEMFD_NOEXEC, 'utf8');

  before(async () => {
    t = await makeTestEngine();
    probeDir = await watcherDir(t);
    // its PID 1 sets the sysctl for its namespace only and reaps what is orphaned there (each `sleep` waits for any
    // child); --kill-child: the namespace, and everything in it, ends with this test
    holder = spawn(
      'unshare',
      [
        '--pid',
        '--fork',
        '--mount-proc',
        '--kill-child',
        '/bin/sh',
        '-c',
        `echo 2 > ${MEMFD_NOEXEC} && cat ${MEMFD_NOEXEC} && while :; do sleep 1; done`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let said = '';
    holder.stdout?.setEncoding('utf8').on('data', (text: string) => (said += text));
    await eventually(() => (said.trim() === '2' ? true : undefined), 10_000);
    const init = await eventually(() => {
      const children = readFileSync(`/proc/${holder.pid}/task/${holder.pid}/children`, 'utf8').trim();
      return children === '' ? undefined : children.split(' ')[0];
    });
    inside = { wrap: ['nsenter', `--target=${init}`, '--pid', '--mount', '--'] };
    assert.equal(readFileSync(MEMFD_NOEXEC, 'utf8'), hostValue, "the host's own value is untouched");
  });

  after(async () => {
    // what a failed test left is removed where its monitors run, before the namespace ends
    const left = (await t.cli(['container', 'ls', '-a', '-q'], inside)).stdout.split('\n').filter(Boolean);
    if (left.length > 0) await t.cli(['container', 'rm', '-f', ...left], inside);
    if (holder.exitCode === null) {
      const ended = new Promise((resolve) => holder.once('exit', resolve));
      holder.kill('SIGKILL');
      await ended;
    }
    await t.cleanup();
    assert.equal(readFileSync(MEMFD_NOEXEC, 'utf8'), hostValue, "the host's own value is untouched");
  });

  test('a container starts, runs from a read-only bind, and its runtime binary cannot be overwritten', async () => {
    const logs = await overwriteAttack(t, probeDir, ['--network', 'none'], inside);
    // the exe it caught was the bind (its path reads "/"), and writing it failed on the read-only mount
    assert.match(logs, /^caught \/$/m, logs);
    assert.match(logs, /^write failed: Read-only file system$/m, logs);
  });

  test('without CAP_SYS_ADMIN for the bind either, the start is refused with both reasons and leaves nothing', async () => {
    const run = await t.cli(['container', 'run', '--rm', '--network', 'none', 'tsfig/busybox', 'echo', 'ran'], {
      wrap: [...(inside.wrap ?? []), 'setpriv', '--bounding-set=-sys_admin', '--'],
    });
    assert.equal(run.code, 125, run.stderr);
    assert.doesNotMatch(run.stdout, /ran/);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    assert.match(run.stderr, /^error: .*sealed memfd copy failed \(memfd_create: Permission denied/m);
    assert.match(run.stderr, /read-only bind of the binary failed \(open_tree: Operation not permitted\)/);
    const left = await t.cli(['container', 'ls', '-a', '-q'], inside);
    assert.equal(left.stdout.trim(), '', 'no container is left');
  });
});
