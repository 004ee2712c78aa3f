/**
 * Issue #20: a `kill -9` of the CLI's process group at any moment leaves only states the next command finishes or
 * undoes. The two cases the issue found: a `down` killed while removing containers left `containers/<id>.removing`
 * dirs that kept a named volume "in use" forever; an `up` killed while creating left `<id>.creating` dirs that the
 * final `down -v` did not remove.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { NEEDS_ROOT, REPO, suiteEngine, writeProject } from '../helpers/engine.js';

const BUSYBOX = 'tsfig/busybox:latest';

/** Staged and half-removed container dirs left in the engine's containers/ dir. */
function debris(containers: string): string[] {
  try {
    return readdirSync(containers).filter((entry) => /\.(creating|removing)$/.test(entry));
  } catch {
    return [];
  }
}

/** True when pid has exited (gone, or a zombie its parent has not reaped yet). */
function exitedProcess(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/**
 * Runs the CLI as the leader of its own process group and kills the whole group with SIGKILL as soon as `when()`
 * (polled synchronously, so the kill lands within microseconds) is true; resolves with what `when` saw then, or
 * undefined when the command ended before.
 */
async function killGroupWhen(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  when: () => string | undefined,
  timeoutMs = 30_000,
): Promise<string | undefined> {
  const child = spawn(process.execPath, [path.join(REPO, 'bin', 'tsfig.js'), ...args], {
    env,
    cwd,
    stdio: 'ignore',
    detached: true,
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const pid = child.pid ?? 0;
  const deadline = Date.now() + timeoutMs;
  let seen: string | undefined;
  for (let round = 0; Date.now() < deadline; round++) {
    seen = when();
    if (seen !== undefined || (round % 64 === 0 && exitedProcess(pid))) break;
  }
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
  await exited;
  return seen;
}

describe('kill -9 of the CLI leaves nothing that blocks a later command (root)', { skip: NEEDS_ROOT }, () => {
  const t = suiteEngine('interfaces');

  const services = (count: number) =>
    Array.from(
      { length: count },
      (_, index) => `  s${index}:
    image: ${BUSYBOX}
    init: true
    command: ["sh", "-c", "mkdir -p /junk && cd /junk && i=0; while [ $$i -lt 1500 ]; do : > f$$i; i=$$((i+1)); done; touch /ready; exec sleep 600"]
    volumes: ["keep:/keep"]
`,
    ).join('');

  test('start and rm -f of a container whose monitor was killed -9 do not wait for their own lock', async () => {
    for (const verb of ['start', 'rm']) {
      const name = `monitorless-${verb}`;
      const run = await t.cli(['container', 'run', '-d', '--network', 'none', '--name', name, BUSYBOX, 'sleep', '600']);
      assert.equal(run.code, 0, run.stderr);
      const id = run.stdout.trim();
      const status = JSON.parse(readFileSync(path.join(t.engine.paths.containers, id, 'status.json'), 'utf8')) as {
        monitor: number;
      };
      process.kill(status.monitor, 'SIGKILL');
      for (let tries = 0; !exitedProcess(status.monitor); tries++) {
        assert.ok(tries < 1000, 'the monitor did not die');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // status.json still says running: the first command to read it repairs it under the container's lock, which
      // start and rm hold already (they waited for themselves until the lock's 120 s timeout, then failed)
      const began = Date.now();
      const result = await t.cli(verb === 'rm' ? ['container', 'rm', '-f', name] : ['container', 'start', name]);
      assert.equal(result.code, 0, result.stderr);
      assert.ok(Date.now() - began < 30_000, `${verb} took ${Date.now() - began} ms`);
      if (verb === 'start') {
        const inspect = await t.cli(['container', 'inspect', name]);
        const [state] = JSON.parse(inspect.stdout) as { State: { Status: string } }[];
        assert.equal(state?.State.Status, 'running', inspect.stderr);
        assert.equal((await t.cli(['container', 'rm', '-f', name])).code, 0);
      }
      assert.equal((await t.cli(['container', 'ls', '-a', '-q'])).stdout.trim(), '');
    }
  });

  test('stop and rm -f of a container whose monitor does not answer end: the monitor is killed, not waited for', async () => {
    for (const verb of ['stop', 'rm']) {
      const name = `unanswering-${verb}`;
      const run = await t.cli(['container', 'run', '-d', '--network', 'none', '--name', name, BUSYBOX, 'sleep', '600']);
      assert.equal(run.code, 0, run.stderr);
      const id = run.stdout.trim();
      const status = JSON.parse(readFileSync(path.join(t.engine.paths.containers, id, 'status.json'), 'utf8')) as {
        monitor: number;
        pid: number;
      };
      // a stopped monitor accepts on its control socket (the kernel queues the connection) and never answers
      process.kill(status.monitor, 'SIGSTOP');
      try {
        const began = Date.now();
        // the monitor gets 2 s to answer instead of 10 (TSFIG_MONITOR_TIMEOUT_MS): the same path, a shorter wait
        const result = await t.cli(
          verb === 'rm' ? ['container', 'rm', '-f', name] : ['container', 'stop', '-t', '0', name],
          { env: { TSFIG_MONITOR_TIMEOUT_MS: '2000' } },
        );
        assert.equal(result.code, 0, result.stderr);
        assert.ok(Date.now() - began < 45_000, `${verb} took ${Date.now() - began} ms`);
        assert.ok(exitedProcess(status.monitor), 'the monitor still runs');
        assert.ok(exitedProcess(status.pid), 'the container still runs');
        if (verb === 'stop') {
          const inspect = await t.cli(['container', 'inspect', name]);
          const [state] = JSON.parse(inspect.stdout) as { State: { Status: string } }[];
          assert.equal(state?.State.Status, 'exited', inspect.stderr);
          assert.equal((await t.cli(['container', 'rm', name])).code, 0);
        }
        assert.equal((await t.cli(['container', 'ls', '-a', '-q'])).stdout.trim(), '');
      } finally {
        if (!exitedProcess(status.monitor)) process.kill(status.monitor, 'SIGKILL');
        await t.cli(['container', 'rm', '-f', name]);
      }
    }
  });

  test('a container whose sandbox a killed down removed (or a reboot lost) gets it again when it starts', async () => {
    const dir = await writeProject(
      t,
      'crashsandbox',
      `services:\n  web:\n    image: ${BUSYBOX}\n    init: true\n    command: sleep 600\n  peer:\n    image: ${BUSYBOX}\n    init: true\n    command: sleep 600\n`,
    );
    try {
      assert.equal((await t.cli(['up', '-d'], { cwd: dir })).code, 0);
      assert.equal((await t.cli(['stop', '-t', '0', 'web'], { cwd: dir })).code, 0);
      const id = (await t.cli(['ps', '-a', '-q', 'web'], { cwd: dir })).stdout.trim();
      const [record] = (await t.engine.containers.list({ all: true })).filter((c) => c.id.startsWith(id));
      assert.ok(record !== undefined, `no container ${id}`);
      // What a down killed between the sandbox's removal and the record's leaves (remove(): removeSandbox, then files).
      await t.engine.networks.removeSandbox(record.id);
      assert.equal(await t.engine.networks.hasSandbox(record.id), false);
      const again = await t.cli(['up', '-d'], { cwd: dir });
      assert.equal(again.code, 0, again.stderr);
      assert.equal(await t.engine.networks.hasSandbox(record.id), true);
      // Attached again: an address on eth0, and the other service reaches it by name.
      const addr = await t.cli(['exec', '-T', 'web', 'ip', '-4', '-o', 'addr', 'show', 'eth0'], { cwd: dir });
      assert.match(addr.stdout, /inet \d+\.\d+\.\d+\.\d+/, addr.stderr);
      const ping = await t.cli(['exec', '-T', 'peer', 'ping', '-c', '1', '-W', '2', 'web'], { cwd: dir });
      assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    } finally {
      await t.cli(['down', '-t', '0'], { cwd: dir });
    }
  });

  test('a down killed while removing containers: down -v still removes the named volume', async () => {
    const dir = await writeProject(t, 'crashdown', `services:\n${services(6)}volumes:\n  keep: {}\n`);
    const containers = path.join(t.env.TSFIG_ROOT ?? '', 'containers');
    const up = await t.cli(['up', '-d'], { cwd: dir });
    assert.equal(up.code, 0, up.stderr);
    const token = `token-${Date.now()}`;
    const write = await t.cli(['exec', '-T', 's0', 'sh', '-c', `echo ${token} > /keep/token`], { cwd: dir });
    assert.equal(write.code, 0, write.stderr);
    // Every container has its 1500 files in its upper dir: removing one takes long enough to be caught.
    for (let index = 0; index < 6; index++) {
      for (let tries = 0; ; tries++) {
        const ready = await t.cli(['exec', '-T', `s${index}`, 'test', '-e', '/ready'], { cwd: dir });
        if (ready.code === 0) break;
        assert.ok(tries < 200, `s${index} never got ready`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    const seen = await killGroupWhen(['down', '-t', '0'], t.env, dir, () =>
      debris(containers).find((entry) => entry.endsWith('.removing')),
    );
    assert.ok(seen !== undefined, 'the down ended before a container was half removed');
    assert.ok(
      debris(containers).some((entry) => entry.endsWith('.removing')),
      'the kill left no half-removed dir',
    );

    // The half-removed containers are no users of the volume: its data survives a plain up/down, and down -v removes it.
    const again = await t.cli(['up', '-d'], { cwd: dir });
    assert.equal(again.code, 0, again.stderr);
    const read = await t.cli(['exec', '-T', 's1', 'cat', '/keep/token'], { cwd: dir });
    assert.equal(read.stdout.trim(), token, read.stderr);
    const down = await t.cli(['down', '-v', '-t', '0'], { cwd: dir });
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(debris(containers), []);
    const volumes = await t.cli(['volume', 'ls', '-q']);
    assert.doesNotMatch(volumes.stdout, /crashdown_keep/);
  });

  test('an up killed while creating containers: down -v leaves no staged container', async () => {
    const plain = Array.from(
      { length: 8 },
      (_, index) => `  p${index}:\n    image: ${BUSYBOX}\n    init: true\n    command: sleep 600\n`,
    ).join('');
    const dir = await writeProject(t, 'crashup', `services:\n${plain}${services(1)}volumes:\n  keep: {}\n`);
    const containers = path.join(t.env.TSFIG_ROOT ?? '', 'containers');
    const staged = (): string | undefined => debris(containers).find((entry) => entry.endsWith('.creating'));
    // Killed as soon as a staged dir appears (before its files are all there), twice, then once a record is written.
    const recorded = (): string | undefined =>
      debris(containers).find((entry) => existsSync(path.join(containers, entry, 'container.json')));
    let left = 0;
    for (const when of [staged, staged, recorded]) {
      await killGroupWhen(['up', '-d'], t.env, dir, when);
      left += debris(containers).filter((entry) => entry.endsWith('.creating')).length;
    }
    assert.ok(left > 0, 'no kill left a staged container');
    const down = await t.cli(['down', '-v', '-t', '0'], { cwd: dir });
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(debris(containers), []);
    const volumes = await t.cli(['volume', 'ls', '-q']);
    assert.doesNotMatch(volumes.stdout, /crashup_keep/);
  });
});
