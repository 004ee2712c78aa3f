/**
 * Restart policies and healthchecks, enforced by the per-container monitor (native/PROTOCOL.md): first through
 * hand-written runtime.conf files (tsfig-runtime start), then through the engine and the CLI, including after the
 * CLI process that started the container has exited.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, describe, test, type TestContext } from 'node:test';
import { cleanupAndCheck, eventually, isRoot, leftovers, makeTestEngine, type TestEngine } from '../helpers/engine.js';
import {
  cgroupDirs,
  ctl,
  destroy,
  makeContainer,
  processAlive,
  readLog,
  start,
  suiteBusyboxLower,
  waitExited,
  type ConfLine,
  type TestContainer,
} from '../helpers/runtime-conf.js';

const IMAGE = 'tsfig/busybox:latest';
const skip = isRoot ? false : 'needs root (run: sudo npm run test:integration)';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface HealthLogEntry {
  start: string;
  end: string;
  exitCode: number;
  output: string;
}

interface PolicyStatus {
  state: 'running' | 'restarting' | 'exited';
  pid: number;
  monitor: number;
  monitorStart: number;
  exitCode?: number;
  finishedAt?: string;
  restartCount: number;
  health?: { status: 'starting' | 'healthy' | 'unhealthy'; failingStreak: number; log: HealthLogEntry[] };
}

function readPolicyStatus(file: string): PolicyStatus | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as PolicyStatus;
  } catch {
    return undefined;
  }
}

/** Pids in the container's cgroup (the memory hierarchy is enough: every process joins all of them). */
function cgroupPids(tc: TestContainer): number[] {
  const dir = cgroupDirs(tc)[0];
  if (dir === undefined || !existsSync(dir)) return [];
  return readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}

describe('monitor restart policy and healthcheck: runtime.conf (root)', { skip }, () => {
  const rootfs = suiteBusyboxLower('tsfmp-lower-');

  async function started(t: TestContext, args: string[], extra: ConfLine[]): Promise<TestContainer> {
    const tc = await makeContainer(rootfs.lower, { args, extra });
    t.after(() => destroy(tc));
    const result = await start(tc);
    assert.equal(result.code, 0, JSON.stringify(result.messages));
    return tc;
  }

  const status = (tc: TestContainer) => readPolicyStatus(tc.status);

  test('on-failure:3 runs the command 4 times, then stops with restartCount 3', async (t) => {
    const tc = await started(
      t,
      ['sh', '-c', 'echo run; exit 1'],
      [
        ['restart', 'on-failure'],
        ['restart_max', 3],
      ],
    );
    const seen = new Set<string>();
    let final: PolicyStatus | undefined;
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; await sleep(10)) {
      final = status(tc);
      if (final !== undefined) seen.add(final.state);
      if (final?.state === 'exited') break;
    }
    await waitExited(tc);
    final = status(tc);
    assert.equal(final?.state, 'exited');
    assert.equal(final?.restartCount, 3);
    assert.equal(final?.exitCode, 1);
    assert.ok(seen.has('restarting'), `states seen: ${[...seen].join(',')}`);
    const lines = (await readLog(tc)).map((entry) => entry.log);
    assert.deepEqual(lines, ['run\n', 'run\n', 'run\n', 'run\n']);
    // nothing restarts later
    await sleep(1000);
    assert.equal((await readLog(tc)).length, 4);
  });

  test('on-failure does not restart after exit 0; no restart policy field means no restart', async (t) => {
    const ok = await started(t, ['sh', '-c', 'echo once'], [['restart', 'on-failure']]);
    const plain = await started(t, ['sh', '-c', 'echo once; exit 3'], []);
    for (const tc of [ok, plain]) {
      await waitExited(tc);
      await sleep(400);
      assert.equal(status(tc)?.restartCount, 0);
      assert.equal((await readLog(tc)).length, 1);
    }
  });

  test('always restarts a command that exits 0 until stopped, and the stop is not undone', async (t) => {
    const tc = await started(t, ['sh', '-c', 'echo run'], [['restart', 'always']]);
    await eventually(() => ((status(tc)?.restartCount ?? 0) >= 3 ? true : undefined), 10_000);
    assert.equal(await ctl(tc, 'stop 1\n'), 'ok\n');
    const final = await waitExited(tc);
    const count = (final as unknown as PolicyStatus).restartCount;
    const runs = (await readLog(tc)).length;
    assert.ok(runs >= 4, `${runs} runs`);
    await sleep(1500);
    assert.equal(status(tc)?.state, 'exited');
    assert.equal(status(tc)?.restartCount, count);
    assert.equal((await readLog(tc)).length, runs, 'the container ran again after stop');
    assert.deepEqual(cgroupPids(tc), []);
  });

  test('oomKilled describes the last run only; the overlay is the same across restarts', async (t) => {
    const tc = await started(
      t,
      [
        'sh',
        '-c',
        'if [ -e /oomed ]; then echo second; exit 1; fi; touch /oomed; echo first; exec dd if=/dev/zero of=/dev/null bs=64M count=1',
      ],
      [
        ['memory', 32 * 1024 * 1024],
        ['restart', 'on-failure'],
        ['restart_max', 1],
      ],
    );
    let restarting: PolicyStatus | undefined;
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; await sleep(5)) {
      const st = status(tc);
      if (st?.state === 'restarting') restarting ??= st;
      if (st?.state === 'exited') break;
    }
    await waitExited(tc);
    assert.equal(restarting?.exitCode, 137, JSON.stringify(restarting));
    assert.equal((restarting as { oomKilled?: boolean } | undefined)?.oomKilled, true);
    const final = status(tc) as (PolicyStatus & { oomKilled: boolean }) | undefined;
    assert.equal(final?.restartCount, 1);
    assert.equal(final?.exitCode, 1);
    assert.equal(final?.oomKilled, false);
    assert.deepEqual(
      (await readLog(tc)).map((entry) => entry.log),
      ['first\n', 'second\n'],
    );
  });

  test('a restart that cannot start counts as a failed run', async (t) => {
    // the first run removes its own shell from the overlay: the restarts fail with 127 (command not found)
    const tc = await started(
      t,
      ['/bin/sh', '-c', 'echo removing; rm /bin/sh; exit 1'],
      [
        ['restart', 'on-failure'],
        ['restart_max', 2],
      ],
    );
    await eventually(() => (status(tc)?.state === 'exited' ? true : undefined), 10_000);
    await waitExited(tc);
    assert.equal(status(tc)?.restartCount, 2);
    assert.equal(status(tc)?.exitCode, 127);
    assert.deepEqual(
      (await readLog(tc)).map((entry) => entry.log),
      ['removing\n'],
    );
    assert.deepEqual(cgroupPids(tc), []);
  });

  test('restarts with a tty, and with stdin, get fresh stdio each run', async (t) => {
    const tty = await started(
      t,
      ['sh', '-c', 'echo tty=$(tty); exit 1'],
      [
        ['tty', true],
        ['restart', 'on-failure'],
        ['restart_max', 2],
      ],
    );
    const stdin = await started(
      t,
      ['sh', '-c', 'echo in; exit 1'],
      [
        ['stdin', true],
        ['restart', 'on-failure'],
        ['restart_max', 2],
      ],
    );
    for (const tc of [tty, stdin]) {
      await eventually(() => (status(tc)?.state === 'exited' ? true : undefined), 10_000);
      await waitExited(tc);
      assert.equal(status(tc)?.restartCount, 2);
    }
    assert.deepEqual(
      (await readLog(tty)).map((entry) => entry.log),
      ['tty=/dev/pts/0\r\n', 'tty=/dev/pts/0\r\n', 'tty=/dev/pts/0\r\n'],
    );
    assert.deepEqual(
      (await readLog(stdin)).map((entry) => entry.log),
      ['in\n', 'in\n', 'in\n'],
    );
  });

  test('the back-off doubles: 100, 200, 400, 800 ms between runs', async (t) => {
    const tc = await started(t, ['sh', '-c', 'echo run; exit 2'], [['restart', 'always']]);
    // no fd leaks across restarts: the monitor holds as many fds while waiting for restart 2 as for restart 4
    const fds = (restarts: number) =>
      eventually(() => {
        const st = status(tc);
        if (st?.state !== 'restarting' || st.restartCount !== restarts) return undefined;
        return readdirSync(`/proc/${st.monitor}/fd`).length;
      }, 10_000);
    const early = await fds(1);
    assert.equal(await fds(3), early);
    await eventually(() => ((status(tc)?.restartCount ?? 0) >= 4 ? true : undefined), 10_000);
    await ctl(tc, 'kill 9\n');
    await waitExited(tc);
    const times = (await readLog(tc)).map((entry) => Date.parse(entry.time));
    assert.ok(times.length >= 5, `${times.length} runs`);
    const gaps = times.slice(1, 5).map((time, i) => time - (times[i] ?? 0));
    for (const [i, gap] of gaps.entries()) {
      const want = 100 * 2 ** i;
      assert.ok(gap >= want - 5 && gap < want + 400, `gap ${i}: ${gap} ms, want about ${want} ms (${gaps.join(',')})`);
    }
  });

  test('a healthcheck goes starting -> healthy', async (t) => {
    const tc = await started(
      t,
      ['sleep', '1000'],
      [
        ['health_cmd', 'CMD-SHELL'],
        ['health_cmd', 'echo hello from $(hostname); id -u'],
        ['health_interval_ms', 300],
        ['health_timeout_ms', 5000],
      ],
    );
    assert.equal(status(tc)?.health?.status, 'starting');
    const health = await eventually(() => {
      const h = status(tc)?.health;
      return h?.status === 'healthy' ? h : undefined;
    });
    assert.equal(health.failingStreak, 0);
    assert.equal(health.log[0]?.exitCode, 0);
    assert.equal(health.log[0]?.output, 'hello from tsftest\n0\n');
    // the last 5 results are kept
    await eventually(() => ((status(tc)?.health?.log.length ?? 0) >= 5 ? true : undefined), 10_000);
    await sleep(700);
    assert.equal(status(tc)?.health?.log.length, 5);
    // the monitor stays small between probes (sampled just after a result was written)
    const monitor = status(tc)?.monitor ?? 0;
    const samples: number[] = [];
    for (let i = 0; i < 3; i++) {
      const last = status(tc)?.health?.log.at(-1)?.end;
      await eventually(() => (status(tc)?.health?.log.at(-1)?.end !== last ? true : undefined), 5000);
      await sleep(50);
      samples.push(Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${monitor}/status`, 'utf8'))?.[1]));
    }
    t.diagnostic(`monitor VmRSS between probes: ${samples.join(', ')} kB`);
    assert.ok(Math.max(...samples) < 1024, `monitor VmRSS ${samples.join(', ')} kB`);
  });

  test('a failing healthcheck turns unhealthy after `retries` failures, not before', async (t) => {
    const tc = await started(
      t,
      ['sleep', '1000'],
      [
        ['health_cmd', 'CMD'],
        ['health_cmd', 'sh'],
        ['health_cmd', '-c'],
        ['health_cmd', 'echo failing >&2; exit 4'],
        ['health_interval_ms', 200],
        ['health_retries', 3],
      ],
    );
    const observed: string[] = [];
    const health = await eventually(() => {
      const h = status(tc)?.health;
      if (h !== undefined) observed.push(`${h.log.length}:${h.status}:${h.failingStreak}`);
      return h?.status === 'unhealthy' ? h : undefined;
    });
    assert.equal(health.failingStreak, 3);
    assert.deepEqual(
      health.log.map((entry) => [entry.exitCode, entry.output]),
      [
        [4, 'failing\n'],
        [4, 'failing\n'],
        [4, 'failing\n'],
      ],
    );
    for (const entry of observed) {
      const [n, state] = entry.split(':');
      if (Number(n) < 3) assert.equal(state, 'starting', `observed ${observed.join(' ')}`);
    }
  });

  test('failures during the start period do not count; the start interval applies while starting', async (t) => {
    const tc = await started(
      t,
      ['sh', '-c', 'sleep 1.5; touch /tmp/ready; sleep 1000'],
      [
        ['health_cmd', 'CMD'],
        ['health_cmd', 'test'],
        ['health_cmd', '-e'],
        ['health_cmd', '/tmp/ready'],
        ['health_interval_ms', 60_000],
        ['health_start_period_ms', 30_000],
        ['health_start_interval_ms', 200],
        ['health_retries', 1],
      ],
    );
    const health = await eventually(() => {
      const h = status(tc)?.health;
      assert.notEqual(h?.status, 'unhealthy');
      return h?.status === 'healthy' ? h : undefined;
    });
    assert.ok(health.log.length >= 3, `${health.log.length} probes`);
    assert.equal(health.log.at(-1)?.exitCode, 0);
  });

  test('a hanging healthcheck is killed at the timeout, with what it started', async (t) => {
    const tc = await started(
      t,
      ['sleep', '1000'],
      [
        ['health_cmd', 'CMD-SHELL'],
        ['health_cmd', 'sleep 77 & sleep 78'],
        ['health_interval_ms', 400],
        ['health_timeout_ms', 500],
        ['health_retries', 1],
      ],
    );
    const entry = await eventually(() => status(tc)?.health?.log[0], 10_000);
    assert.equal(entry.exitCode, -1);
    assert.equal(entry.output, 'Health check exceeded timeout (500ms)');
    const took = Date.parse(entry.end) - Date.parse(entry.start);
    assert.ok(took >= 450 && took < 2000, `probe took ${took} ms`);
    assert.equal(status(tc)?.health?.status, 'unhealthy');
    const probes = cgroupPids(tc).filter((pid) => /^sleep 7[78]$/.test(cmdline(pid)));
    assert.deepEqual(probes, [], 'the timed-out check left processes');
  });

  test('no healthcheck configured: no health field', async (t) => {
    const tc = await started(t, ['sleep', '1000'], [['health_cmd', 'NONE']]);
    assert.equal(status(tc)?.state, 'running');
    assert.equal(status(tc)?.health, undefined);
    assert.equal(status(tc)?.restartCount, 0);
  });

  test('bad policy values are parse errors', async (t) => {
    for (const extra of [
      [['restart', 'sometimes']],
      [['health_cmd', 'true']],
      [
        ['health_cmd', 'CMD-SHELL'],
        ['health_cmd', 'a'],
        ['health_cmd', 'b'],
      ],
      [['health_retries', -1]],
    ] as ConfLine[][]) {
      const tc = await makeContainer(rootfs.lower, { args: ['true'], extra });
      t.after(() => destroy(tc));
      const result = await start(tc);
      assert.equal(result.code, 125);
      assert.equal(result.messages[0]?.step, 'parse config', JSON.stringify(result.messages));
    }
  });
});

describe('monitor restart policy and healthcheck: engine and CLI (root)', { skip }, () => {
  let t: TestEngine;

  before(async () => {
    t = await makeTestEngine();
  });

  after(() => cleanupAndCheck(t, 'dir'));

  // every test leaves no container behind, also when it fails half-way
  afterEach(async () => {
    for (const summary of await t.engine.containers.list({ all: true })) {
      await t.engine.containers.remove(summary.id, { force: true }).catch(() => undefined);
    }
  });

  function statusFile(id: string): string {
    return path.join(t.engine.paths.containers, id, 'status.json');
  }

  async function logLines(id: string): Promise<string[]> {
    const lines: string[] = [];
    for await (const entry of t.engine.containers.logs(id)) lines.push(entry.text);
    return lines;
  }

  test('on-failure:3 started by a CLI that has exited runs 4 times; inspect shows RestartCount 3', async () => {
    const run = await t.cli([
      'container',
      'run',
      '-d',
      '--name',
      'failing',
      '--restart',
      'on-failure:3',
      IMAGE,
      'sh',
      '-c',
      'echo run; exit 1',
    ]);
    assert.equal(run.code, 0, run.stderr);
    // the CLI process has exited: the monitor alone restarts the container
    const id = run.stdout.trim();
    const inspect = await eventually(async () => {
      const data = (await t.engine.containers.inspect(id)) as {
        State: { Status: string; Restarting: boolean; ExitCode: number };
        RestartCount: number;
        HostConfig: { RestartPolicy: { Name: string; MaximumRetryCount: number } };
      };
      return data.State.Status === 'exited' ? data : undefined;
    }, 15_000);
    assert.equal(inspect.RestartCount, 3);
    assert.equal(inspect.State.ExitCode, 1);
    assert.equal(inspect.State.Restarting, false);
    assert.deepEqual(inspect.HostConfig.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 3 });
    assert.deepEqual(await logLines(id), ['run\n', 'run\n', 'run\n', 'run\n']);
    const conf = await readFile(path.join(t.engine.paths.containers, id, 'runtime.conf'), 'utf8');
    assert.match(conf, /^restart on-failure$/m);
    assert.match(conf, /^restart_max 3$/m);
    await t.engine.containers.remove(id);
  });

  test('health keeps updating and restarts keep happening with no tsfig process alive', async () => {
    const run = await t.cli([
      'container',
      'run',
      '-d',
      '--name',
      'flappy',
      '--restart',
      'always',
      '--health-cmd',
      'test -e /tmp/up',
      '--health-interval',
      '200ms',
      '--health-retries',
      '1',
      IMAGE,
      'sh',
      '-c',
      'touch /tmp/up; echo up; sleep 1.2; exit 5',
    ]);
    assert.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    // only the test runner (not a tsfig CLI) reads the files from here on
    const healthy = await eventually(() => {
      const st = readPolicyStatus(statusFile(id));
      return st?.health?.status === 'healthy' ? st : undefined;
    });
    assert.equal(healthy.state, 'running');
    const later = await eventually(() => {
      const st = readPolicyStatus(statusFile(id));
      return st !== undefined && st.restartCount >= 2 && st.health?.status === 'healthy' ? st : undefined;
    }, 15_000);
    assert.ok((later.health?.log.length ?? 0) >= 2);
    assert.ok((await logLines(id)).length >= 3);
    const state = await t.engine.containers.state(await t.engine.containers.get(id));
    assert.equal(state.running, true);
    assert.ok(state.restartCount >= 2);
    const ls = await t.cli(['container', 'ls', '-a']);
    assert.match(ls.stdout, /flappy/);
    // stop is never undone by `always`
    await t.engine.containers.stop(id, 1);
    const stopped = readPolicyStatus(statusFile(id));
    await sleep(1500);
    assert.equal(readPolicyStatus(statusFile(id))?.state, 'exited');
    assert.equal(readPolicyStatus(statusFile(id))?.restartCount, stopped?.restartCount);
    // docker's: the health of a stopped container is unhealthy
    assert.equal(readPolicyStatus(statusFile(id))?.health?.status, 'unhealthy');
    await t.engine.containers.remove(id);
  });

  test('a healthcheck through the engine: starting -> healthy in state and inspect, (healthy) in ls', async () => {
    const record = await t.engine.containers.create({
      image: IMAGE,
      cmd: ['sleep', '1000'],
      healthcheck: { test: ['CMD', 'true'], intervalMs: 200 },
    });
    await t.engine.containers.start(record.id);
    assert.deepEqual((await t.engine.containers.state(record)).health, { status: 'starting', failingStreak: 0 });
    await eventually(async () =>
      (await t.engine.containers.state(record)).health?.status === 'healthy' ? true : undefined,
    );
    const inspect = (await t.engine.containers.inspect(record.id)) as {
      State: { Health: { Status: string; FailingStreak: number; Log: { ExitCode: number }[] } };
    };
    assert.equal(inspect.State.Health.Status, 'healthy');
    assert.equal(inspect.State.Health.Log[0]?.ExitCode, 0);
    const ls = await t.cli(['container', 'ls']);
    assert.match(ls.stdout, /\(healthy\)/);
    await t.engine.containers.remove(record.id, { force: true });
  });

  test('a killed monitor is repaired by the engine; a restarting container is removed by rm -f', async () => {
    const record = await t.engine.containers.create({
      image: IMAGE,
      cmd: ['sleep', '1000'],
      restart: { name: 'always' },
    });
    await t.engine.containers.start(record.id);
    const status = readPolicyStatus(statusFile(record.id));
    assert.ok(status !== undefined);
    process.kill(status.monitor, 'SIGKILL');
    const state = await eventually(async () => {
      const current = await t.engine.containers.state(record);
      return current.running ? undefined : current;
    });
    assert.equal(state.status, 'exited');
    assert.match(state.error, /monitor died/);
    await eventually(() => (existsSync(`/proc/${status.pid}`) ? undefined : true));
    await t.engine.containers.remove(record.id);

    const flapping = await t.engine.containers.create({
      image: IMAGE,
      cmd: ['sh', '-c', 'exit 1'],
      restart: { name: 'unless-stopped' },
    });
    await t.engine.containers.start(flapping.id);
    // after 4 restarts the back-off is 1.6 s: the container is restarting most of the time
    const restarting = await eventually(() => {
      const st = readPolicyStatus(statusFile(flapping.id));
      return st !== undefined && st.restartCount >= 4 && st.state === 'restarting' ? st : undefined;
    }, 15_000);
    assert.equal((await t.engine.containers.state(flapping)).status, 'restarting');
    assert.equal((await t.engine.containers.state(flapping)).running, true);
    await assert.rejects(t.engine.containers.remove(flapping.id), /running/);
    await t.engine.containers.remove(flapping.id, { force: true });
    assert.equal(processAlive(restarting.monitor, restarting.monitorStart), false);
    assert.equal(existsSync(path.join(t.engine.paths.containers, flapping.id)), false);
    await sleep(2000);
    assert.deepEqual(leftovers(t.engine.paths.cgroupParent), []);
  });

  test('a paused container is not probed; probes resume after unpause', async () => {
    const record = await t.engine.containers.create({
      image: IMAGE,
      cmd: ['sleep', '1000'],
      healthcheck: { test: ['CMD', 'true'], intervalMs: 200, timeoutMs: 1000, retries: 1 },
    });
    await t.engine.containers.start(record.id);
    await eventually(() => (readPolicyStatus(statusFile(record.id))?.health?.status === 'healthy' ? true : undefined));
    await t.engine.containers.freeze(record.id, true);
    await sleep(300);
    const before = readPolicyStatus(statusFile(record.id))?.health?.log.at(-1)?.end;
    await sleep(1500);
    assert.equal(readPolicyStatus(statusFile(record.id))?.health?.log.at(-1)?.end, before, 'probed while paused');
    await t.engine.containers.freeze(record.id, false);
    await eventually(() =>
      readPolicyStatus(statusFile(record.id))?.health?.log.at(-1)?.end !== before ? true : undefined,
    );
    const health = readPolicyStatus(statusFile(record.id))?.health;
    assert.equal(health?.status, 'healthy');
    assert.ok(
      health?.log.every((entry) => entry.exitCode === 0),
      JSON.stringify(health?.log),
    );
    await t.engine.containers.remove(record.id, { force: true });
  });

  test('CLI flags: bad --restart and conflicting health flags are usage errors', async () => {
    const bad = await t.cli(['container', 'run', '-d', '--restart', 'sometimes', IMAGE, 'true']);
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /--restart: invalid restart policy "sometimes"/);
    const conflict = await t.cli(['container', 'create', '--no-healthcheck', '--health-interval', '1s', IMAGE]);
    assert.equal(conflict.code, 64);
    const rm = await t.cli(['container', 'run', '--rm', '--restart', 'always', IMAGE, 'true']);
    assert.equal(rm.code, 64);
    assert.equal((await t.engine.containers.list({ all: true })).length, 0);
  });
});
