/**
 * Lifecycle hooks on real containers, through the CLI: post_start (compose 2.30) writing into a bind mount with its
 * user, working_dir and environment, its output in `logs`; pre_stop before the stop signal on `stop` and `down`; a
 * failing post_start failing `up` with the hook and its status named; pre_start (compose 5.3) in a one-off container
 * sharing the service's volumes before the start, and a failing one blocking the start; privileged hooks with every
 * capability (docker exec --privileged).
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { NEEDS_ROOT, eventually, suiteEngine, writeProject } from '../helpers/engine.js';

const BUSYBOX = 'tsfig/busybox:latest';

describe('compose lifecycle hooks (root)', { skip: NEEDS_ROOT }, () => {
  const t = suiteEngine('interfaces');

  /** A project directory with an `out` directory anyone may write (the hooks run as uid 1000 too). */
  async function projectWithOut(name: string, yaml: string): Promise<{ dir: string; out: string }> {
    const dir = await writeProject(t, name, yaml);
    const out = path.join(dir, 'out');
    await mkdir(out, { recursive: true });
    await chmod(out, 0o777);
    return { dir, out };
  }

  const lines = async (file: string) =>
    (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((line) => line !== '');

  test('post_start writes into a bind mount as its user, in its working_dir, with its environment; its output is in logs; pre_stop runs before the stop signal on stop and down', async () => {
    const { dir, out } = await projectWithOut(
      'hooks',
      `services:
  app:
    image: ${BUSYBOX}
    init: true
    command: ["sh", "-c", "trap 'echo TERM >> /out/events; exit 0' TERM; while true; do sleep 0.1; done"]
    stop_grace_period: 5s
    volumes:
      - ./out:/out
    environment:
      GREETING: from-the-service
    post_start:
      - command: ["sh", "-c", "echo post_start uid=$$(id -u) cwd=$$(pwd) greeting=$$GREETING >> /out/events; echo hook-says-hello"]
        user: "1000"
        working_dir: /tmp
        environment:
          GREETING: from-the-hook
    pre_stop:
      - command: ["sh", "-c", "echo pre_stop >> /out/events"]
`,
    );
    const events = path.join(out, 'events');
    try {
      const up = await t.cli(['up', '-d'], { cwd: dir });
      assert.equal(up.code, 0, up.stderr);
      // up returns once the hook has run: the line is there at once
      assert.deepEqual(await lines(events), ['post_start uid=1000 cwd=/tmp greeting=from-the-hook']);
      const logs = await t.cli(['logs', '--no-log-prefix', 'app'], { cwd: dir });
      assert.equal(logs.code, 0, logs.stderr);
      assert.match(logs.stdout, /^hook-says-hello$/m, 'the hook output is in the service logs');

      const stop = await t.cli(['stop'], { cwd: dir });
      assert.equal(stop.code, 0, stop.stderr);
      assert.deepEqual((await lines(events)).slice(1), ['pre_stop', 'TERM'], 'pre_stop ran before the SIGTERM');

      const again = await t.cli(['up', '-d'], { cwd: dir });
      assert.equal(again.code, 0, again.stderr);
      assert.equal((await lines(events)).length, 4, 'the start ran post_start again');
      const down = await t.cli(['down'], { cwd: dir });
      assert.equal(down.code, 0, down.stderr);
      assert.deepEqual((await lines(events)).slice(4), ['pre_stop', 'TERM'], 'down: pre_stop before the SIGTERM');
    } finally {
      await t.cli(['down', '-v', '-t', '0'], { cwd: dir });
    }
  });

  test('a failing post_start fails up with a non-zero exit naming the hook and its exit status', async () => {
    const { dir } = await projectWithOut(
      'hookfail',
      `services:
  app:
    image: ${BUSYBOX}
    init: true
    command: ["sleep", "300"]
    post_start:
      - command: ["sh", "-c", "echo the hook broke >&2; exit 7"]
`,
    );
    try {
      const up = await t.cli(['up', '-d'], { cwd: dir });
      assert.notEqual(up.code, 0, 'up succeeded although the post_start hook failed');
      assert.match(up.stderr, /service "app" post_start hook #1 exited with status 7: the hook broke/);
    } finally {
      await t.cli(['down', '-v', '-t', '0'], { cwd: dir });
    }
  });

  test("pre_start runs in a one-off container sharing the service's volumes before the start; a failing one blocks it", async () => {
    const { dir } = await projectWithOut(
      'prestart',
      `services:
  db:
    image: ${BUSYBOX}
    init: true
    # the service copies what pre_start left in the volume when it starts
    command: ["sh", "-c", "cat /data/migrated > /data/seen 2>&1; exec sleep 300"]
    volumes:
      - data:/data
    pre_start:
      - command: ["sh", "-c", "echo migrated by uid $$(id -u) > /data/migrated"]
      # the second, after the first: its output goes to the service's log
      - command: ["sh", "-c", "echo pre_start uid=$$(id -u) cwd=$$(pwd) mode=$$MODE; test -f migrated"]
        user: "1000"
        working_dir: /data
        environment:
          MODE: migrate
  blocked:
    image: ${BUSYBOX}
    command: ["sleep", "300"]
    profiles: [blocked]
    pre_start:
      - command: ["sh", "-c", "echo not today >&2; exit 5"]
volumes:
  data: {}
`,
    );
    try {
      const up = await t.cli(['up', '-d', 'db'], { cwd: dir });
      assert.equal(up.code, 0, up.stderr);
      const seen = await t.cli(['exec', '-T', 'db', 'cat', '/data/seen'], { cwd: dir });
      assert.equal(seen.code, 0, seen.stderr);
      assert.equal(seen.stdout, 'migrated by uid 0\n', 'pre_start ran before the start, in the volume');
      const logs = await t.cli(['logs', '--no-log-prefix', 'db'], { cwd: dir });
      assert.match(logs.stdout, /^pre_start uid=1000 cwd=\/data mode=migrate$/m, 'user, working_dir, environment');
      const all = await t.cli(['container', 'ls', '-a', '--format', '{{.Names}}'], { cwd: dir });
      assert.doesNotMatch(all.stdout, /pre-start/, 'the pre_start container is removed');

      const blocked = await t.cli(['--profile', 'blocked', 'up', '-d', 'blocked'], { cwd: dir });
      assert.notEqual(blocked.code, 0, 'up succeeded although pre_start failed');
      assert.match(blocked.stderr, /service "blocked" pre_start hook #1 exited with status 5: not today/);
      const ps = await t.cli(['--profile', 'blocked', 'ps', '-a', '--format', 'json', 'blocked'], { cwd: dir });
      const rows = ps.stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { State: string });
      assert.deepEqual(
        rows.map((row) => row.State),
        ['created'],
        'the service was created but never started',
      );
      const after = await t.cli(['container', 'ls', '-a', '--format', '{{.Names}}'], { cwd: dir });
      assert.doesNotMatch(after.stdout, /pre-start/, 'the failed pre_start container is removed too');
    } finally {
      await t.cli(['--profile', 'blocked', 'down', '-v', '-t', '0'], { cwd: dir });
    }
  });

  test('privileged: true gives the hook every capability (docker exec --privileged); without it, the container’s', async () => {
    const { dir, out } = await projectWithOut(
      'hookpriv',
      `services:
  app:
    image: ${BUSYBOX}
    init: true
    command: ["sleep", "300"]
    volumes:
      - ./out:/out
    post_start:
      - command: ["sh", "-c", "grep CapEff /proc/self/status > /out/privileged"]
        privileged: true
      - command: ["sh", "-c", "grep CapEff /proc/self/status > /out/plain"]
      # the container's seccomp profile stays (built for its own capabilities): mount is refused despite CAP_SYS_ADMIN
      - command: ["sh", "-c", "mount -t tmpfs hook /tmp 2>/out/mount-err; echo $$? > /out/mount"]
        privileged: true
`,
    );
    try {
      const up = await t.cli(['up', '-d'], { cwd: dir });
      assert.equal(up.code, 0, up.stderr);
      // the test runs as root with the full set: the privileged hook has the same
      const host = (await readFile('/proc/self/status', 'utf8')).split('\n').find((l) => l.startsWith('CapEff'));
      const privileged = await eventually(async () => (await lines(path.join(out, 'privileged')))[0]);
      const plain = await eventually(async () => (await lines(path.join(out, 'plain')))[0]);
      assert.equal(privileged, host);
      assert.notEqual(plain, host, 'an ordinary hook has the container’s (docker default) capabilities only');
      const mount = await eventually(async () => (await lines(path.join(out, 'mount')))[0]);
      assert.notEqual(mount, '0', 'a privileged hook escaped the container’s seccomp profile (mount succeeded)');
    } finally {
      await t.cli(['down', '-v', '-t', '0'], { cwd: dir });
    }
  });
});
