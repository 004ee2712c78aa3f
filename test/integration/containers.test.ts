import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ContainerSpec } from '../../engine/containers/types.js';
import { EngineError } from '../../engine/errors.js';
import { creatingLockName } from '../../engine/containers/staging.js';
import { acquireLock } from '../../engine/state/lock.js';
import { shortId } from '../../engine/state/ids.js';
import { cgroupFile, eventually, isRoot, leftovers, makeTestEngine, REPO, type TestEngine } from '../helpers/engine.js';

const IMAGE = 'tsfig/busybox:latest';

function randomHex(): string {
  return Array.from({ length: 64 }, () => Math.floor(Math.random() * 16).toString(16)).join('');
}

describe(
  'engine containers (root)',
  { skip: isRoot ? false : 'needs root (run: sudo npm run test:integration)' },
  () => {
    let t: TestEngine;

    before(async () => {
      t = await makeTestEngine();
    });

    after(async () => {
      const marker = t.dir;
      const cgroupParent = t.engine.paths.cgroupParent;
      await t.cleanup();
      assert.deepEqual(
        [...leftovers(marker), ...leftovers(cgroupParent)],
        [],
        'the suite left cgroups, mounts or processes behind',
      );
    });

    /** Creates, starts and waits for a container; returns its exit code and output. */
    async function run(spec: Omit<ContainerSpec, 'image'> & { image?: string }) {
      const record = await t.engine.containers.create({ image: IMAGE, ...spec });
      await t.engine.containers.start(record.id);
      const exitCode = await t.engine.containers.wait(record.id, { timeoutMs: 30_000 });
      let stdout = '';
      let stderr = '';
      for await (const entry of t.engine.containers.logs(record.id)) {
        if (entry.stream === 'stdout') stdout += entry.text;
        else stderr += entry.text;
      }
      const state = await t.engine.containers.state(record);
      await t.engine.containers.remove(record.id);
      return { exitCode, stdout, stderr, state, record };
    }

    async function sh(script: string, spec: Omit<ContainerSpec, 'image' | 'cmd'> = {}) {
      return run({ ...spec, cmd: ['sh', '-c', script] });
    }

    test('the command is PID 1 and the host is not visible', async () => {
      const result = await sh(
        'echo pid=$$; echo procs=$(ls /proc | grep -c "^[0-9]"); echo host=$(hostname); grep -c " /work" /proc/mounts || true',
        { hostname: 'box1' },
      );
      assert.equal(result.exitCode, 0, result.stderr);
      assert.match(result.stdout, /^pid=1$/m);
      const procs = Number(/procs=(\d+)/.exec(result.stdout)?.[1]);
      // sh, the $(...) subshell, ls and grep: nothing of the host's hundreds of processes.
      assert.ok(procs <= 5, `container sees ${procs} processes`);
      assert.match(result.stdout, /^host=box1$/m);
      assert.match(result.stdout, /^0$/m, 'host mounts are visible in the container');
    });

    test("capabilities are docker's default set and seccomp filters", async () => {
      const result = await sh('grep -E "^(CapEff|CapBnd|Seccomp|NoNewPrivs):" /proc/self/status');
      assert.equal(result.exitCode, 0, result.stderr);
      assert.match(result.stdout, /^CapEff:\s+00000000a80425fb$/m);
      assert.match(result.stdout, /^CapBnd:\s+00000000a80425fb$/m);
      assert.match(result.stdout, /^Seccomp:\s+2$/m);
    });

    test('/proc/sys is read-only and masked paths are empty', async () => {
      const result = await sh(
        'echo 1 > /proc/sys/vm/drop_caches && echo wrote-sysctl; echo timer_list=$(cat /proc/timer_list | wc -c); echo firmware=$(ls /sys/firmware | wc -l)',
      );
      assert.doesNotMatch(result.stdout, /wrote-sysctl/);
      assert.match(result.stderr, /Read-only file system/);
      // The host's /proc/timer_list is not empty; the container's is /dev/null.
      assert.ok(readFileSync('/proc/timer_list', 'utf8').length > 0);
      assert.match(result.stdout, /^timer_list=0$/m);
      assert.match(result.stdout, /^firmware=0$/m);
    });

    test('a block device can be made with mknod but not opened', async () => {
      const result = await sh(
        'mknod /tmp/disk b 8 0 && echo made; head -c 1 /tmp/disk > /dev/null && echo opened; true',
      );
      assert.doesNotMatch(result.stdout, /opened/, 'a host disk node could be opened inside the container');
      assert.doesNotMatch(result.stderr + result.stdout, /^$/);
    });

    test('files written in the container land in its upper dir, never in the image', async () => {
      const record = await t.engine.containers.create({ image: IMAGE, cmd: ['sh', '-c', 'echo data > /etc/written'] });
      await t.engine.containers.start(record.id);
      assert.equal(await t.engine.containers.wait(record.id), 0);
      const upper = path.join(t.engine.paths.containers, record.id, 'upper', 'etc', 'written');
      assert.equal(readFileSync(upper, 'utf8'), 'data\n');
      for (const layer of readdirSync(t.engine.paths.layers)) {
        assert.equal(existsSync(path.join(t.engine.paths.layers, layer, 'diff', 'etc', 'written')), false);
      }
      await t.engine.containers.remove(record.id);
    });

    test('a container staged by a creator that died (kill -9 mid-create) is swept; one of a live creator is kept', async () => {
      const { mkdir, rm } = await import('node:fs/promises');
      const stage = async () => {
        const id = randomHex();
        const dir = path.join(t.engine.paths.containers, `${id}.creating`);
        await mkdir(path.join(dir, 'upper'), { recursive: true });
        return { id, dir };
      };
      // A creator holds the container's creating lock while its stage exists; the kernel drops it when it dies.
      const dead = await stage();
      const live = await stage();
      const lock = await acquireLock(creatingLockName(t.engine.paths, live.id));
      try {
        await t.engine.containers.sweepStaged();
      } finally {
        await lock.release();
      }
      assert.equal(existsSync(dead.dir), false, "the dead creator's staged container is still there");
      assert.equal(existsSync(live.dir), true, "a live creator's staged container was swept");
      await rm(live.dir, { recursive: true, force: true });
    });

    test('exit codes pass through, 126 and 127 as docker run', async () => {
      assert.equal((await sh('exit 3')).exitCode, 3);
      // With --init the command is not PID 1, so a signal kills it and the init reports 128+N.
      assert.equal((await sh('kill -9 $$', { init: true })).exitCode, 137);
      const missing = await t.engine.containers.create({ image: IMAGE, cmd: ['/no/such/command'] });
      await assert.rejects(t.engine.containers.start(missing.id), (error: unknown) => {
        assert.ok(error instanceof EngineError);
        assert.equal(error.exitCode, 127);
        return true;
      });
      const notExecutable = await t.engine.containers.create({ image: IMAGE, cmd: ['/etc/passwd'] });
      await assert.rejects(t.engine.containers.start(notExecutable.id), (error: unknown) => {
        assert.ok(error instanceof EngineError);
        assert.equal(error.exitCode, 126);
        return true;
      });
      await t.engine.containers.remove(missing.id);
      await t.engine.containers.remove(notExecutable.id);
    });

    test('memory limit is applied and an OOM kill is reported', async () => {
      const record = await t.engine.containers.create({
        image: IMAGE,
        memory: 32 * 1024 * 1024,
        memorySwap: 32 * 1024 * 1024,
        cmd: ['sh', '-c', 'sleep 0.3; head -c 200m /dev/zero | tail > /dev/null'],
      });
      await t.engine.containers.start(record.id);
      const cgroup = `${t.engine.paths.cgroupParent}/${shortId(record.id)}`;
      assert.equal(cgroupFile('memory', cgroup, 'memory.limit_in_bytes'), String(32 * 1024 * 1024));
      const exitCode = await t.engine.containers.wait(record.id, { timeoutMs: 30_000 });
      const state = await t.engine.containers.state(record);
      assert.equal(exitCode, 137);
      assert.equal(state.oomKilled, true);
      await t.engine.containers.remove(record.id);
    });

    test('pids limit bounds a fork bomb', async () => {
      const record = await t.engine.containers.create({
        image: IMAGE,
        pidsLimit: 16,
        cmd: ['sh', '-c', 'sleep 1; for i in $(seq 40); do echo $i; sleep 30 & done'],
      });
      await t.engine.containers.start(record.id);
      const cgroup = `${t.engine.paths.cgroupParent}/${shortId(record.id)}`;
      assert.equal(cgroupFile('pids', cgroup, 'pids.max'), '16');
      const exitCode = await t.engine.containers.wait(record.id, { timeoutMs: 30_000 });
      let stdout = '';
      let stderr = '';
      for await (const entry of t.engine.containers.logs(record.id)) {
        if (entry.stream === 'stdout') stdout += entry.text;
        else stderr += entry.text;
      }
      const forks = stdout.trim().split('\n').length;
      assert.notEqual(exitCode, 0);
      assert.match(stderr, /can't fork/);
      assert.ok(forks < 40 && forks <= 16, `the shell forked ${forks} times under a limit of 16`);
      await t.engine.containers.remove(record.id, { force: true });
    });

    test('exec runs in the same namespaces as the container', async () => {
      const record = await t.engine.containers.create({ image: IMAGE, cmd: ['sleep', '30'], hostname: 'execbox' });
      await t.engine.containers.start(record.id);
      const state = await t.engine.containers.state(record);
      const result = await t.engine.containers.exec(record.id, {
        argv: [
          'sh',
          '-c',
          'readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt; hostname; cat /proc/1/cmdline | tr "\\0" " "',
        ],
      });
      assert.equal(result.exitCode, 0, result.stderr);
      const lines = result.stdout.trim().split('\n');
      assert.equal(lines[0], readlinkSync(`/proc/${state.pid}/ns/pid`));
      assert.equal(lines[1], readlinkSync(`/proc/${state.pid}/ns/mnt`));
      assert.equal(lines[2], 'execbox');
      assert.match(lines[3] ?? '', /^sleep 30/);
      assert.equal((await t.engine.containers.exec(record.id, { argv: ['sh', '-c', 'exit 7'] })).exitCode, 7);
      await t.engine.containers.remove(record.id, { force: true });
    });

    test('stop honours the grace period, then kills', async () => {
      const polite = await t.engine.containers.create({ image: IMAGE, cmd: ['sleep', '60'], init: true });
      await t.engine.containers.start(polite.id);
      await t.engine.containers.stop(polite.id, 5);
      assert.equal((await t.engine.containers.state(polite)).exitCode, 143);

      const stubborn = await t.engine.containers.create({
        image: IMAGE,
        cmd: ['sh', '-c', 'trap "echo got-term" TERM; while true; do sleep 0.1; done'],
      });
      await t.engine.containers.start(stubborn.id);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const started = Date.now();
      await t.engine.containers.stop(stubborn.id, 1);
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 900, `stopped after ${elapsed} ms, before the 1 s grace period`);
      assert.equal((await t.engine.containers.state(stubborn)).exitCode, 137);
      await t.engine.containers.remove(polite.id);
      await t.engine.containers.remove(stubborn.id);
    });

    test('logs survive the CLI and logs -f from another process follows them', async () => {
      const started = await t.cli([
        'container',
        'run',
        '-d',
        '--name',
        'talker',
        IMAGE,
        'sh',
        '-c',
        'for i in 1 2 3 4 5; do echo line-$i; echo err-$i >&2; sleep 0.2; done',
      ]);
      assert.equal(started.code, 0, started.stderr);
      assert.match(started.stdout, /^[0-9a-f]{64}\n$/);
      const follow = await t.cli(['container', 'logs', '-f', 'talker']);
      assert.equal(follow.code, 0, follow.stderr);
      assert.equal(follow.stdout, 'line-1\nline-2\nline-3\nline-4\nline-5\n');
      assert.equal(follow.stderr, 'err-1\nerr-2\nerr-3\nerr-4\nerr-5\n');
      const tail = await t.cli(['container', 'logs', '--tail', '2', 'talker']);
      assert.equal(tail.stdout, 'line-5\n');
      await t.engine.containers.remove('talker');
    });

    test('a killed monitor leaves state that the next command repairs', async () => {
      const record = await t.engine.containers.create({ image: IMAGE, cmd: ['sleep', '60'] });
      await t.engine.containers.start(record.id);
      const status = JSON.parse(
        readFileSync(path.join(t.engine.paths.containers, record.id, 'status.json'), 'utf8'),
      ) as { monitor: number; pid: number };
      process.kill(status.monitor, 'SIGKILL');
      const state = await eventually(async () => {
        const current = await t.engine.containers.state(record);
        return current.running ? undefined : current;
      });
      assert.equal(state.status, 'exited');
      assert.match(state.error, /monitor died/);
      await eventually(() => (existsSync(`/proc/${status.pid}`) ? undefined : true));
      await t.engine.containers.remove(record.id);
    });

    test('a kill -9 of the CLI mid-start leaves nothing the next command cannot clean', async () => {
      for (const delay of [50, 150, 300]) {
        const child = spawn(
          process.execPath,
          [path.join(REPO, 'bin', 'tsfig.js'), 'container', 'run', '-d', IMAGE, 'sleep', '30'],
          {
            env: t.env,
            stdio: 'ignore',
          },
        );
        // Listen before waiting: a fast CLI may finish before the kill.
        const closed = new Promise((resolve) => child.on('close', resolve));
        await new Promise((resolve) => setTimeout(resolve, delay));
        child.kill('SIGKILL');
        await closed;
      }
      const removed = await t.cli(['container', 'ls', '-a', '-q']);
      for (const id of removed.stdout.split('\n').filter(Boolean)) {
        assert.equal((await t.cli(['container', 'rm', '-f', id])).code, 0);
      }
      assert.deepEqual((await t.engine.containers.list({ all: true })).length, 0);
    });

    test('bad input fails clearly and leaves nothing running', async () => {
      await assert.rejects(
        t.engine.containers.create({ image: 'no/such-image:1', cmd: ['true'] }),
        /no such image|not found/i,
      );
      const unknownUser = await t.engine.containers.create({ image: IMAGE, cmd: ['true'], user: 'nosuchuser' });
      await assert.rejects(t.engine.containers.start(unknownUser.id), /unable to find user nosuchuser/);
      assert.equal((await t.engine.containers.state(unknownUser)).running, false);
      const fileCwd = await t.engine.containers.create({ image: IMAGE, cmd: ['true'], workingDir: '/etc/passwd' });
      await assert.rejects(t.engine.containers.start(fileCwd.id), /\/etc\/passwd/);
      const tooHigh = await t.engine.containers.create({
        image: IMAGE,
        cmd: ['true'],
        ulimits: [{ name: 'nofile', soft: 1_000_000, hard: 1_000_000 }],
      });
      await assert.rejects(t.engine.containers.start(tooHigh.id), /NOFILE|nofile|rlimit/i);
      for (const record of [unknownUser, fileCwd, tooHigh]) await t.engine.containers.remove(record.id);

      const usage = await t.cli(['container', 'run', '--memory', 'lots', IMAGE, 'true']);
      assert.equal(usage.code, 64);
      assert.match(usage.stderr, /^error: --memory: invalid size "lots"$/m);
      assert.doesNotMatch(usage.stderr, /at .*\.js/);
      const failedBeforeStart = await t.cli(['container', 'run', '--rm', '--user', 'nosuchuser', IMAGE, 'true']);
      assert.equal(failedBeforeStart.code, 125, failedBeforeStart.stderr);
      assert.match(failedBeforeStart.stderr, /unable to find user nosuchuser/);
      const notFound = await t.cli(['container', 'run', IMAGE, 'no-such-command']);
      assert.equal(notFound.code, 127);
      assert.match(notFound.stderr, /^error: cannot start container/m);
    });
  },
);
