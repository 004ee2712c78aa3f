/**
 * Compose v2's `cp`, `stats` and `attach` on real containers, through the CLI: cp into every replica of a service (or
 * one with --index), out of the first one, one-offs with --all, a service without a container named in the error;
 * stats of the project's containers only (--no-stream, json, templates, -a, --no-trunc).
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { NEEDS_ROOT, eventually, spawnCli, stopChild, suiteEngine, writeProject } from '../helpers/engine.js';

const BUSYBOX = 'tsfig/busybox:latest';

describe('compose cp, stats, attach (root)', { skip: NEEDS_ROOT }, () => {
  const t = suiteEngine('interfaces');

  test('cp copies into every replica (or --index N), out of the first, one-offs with --all; a service without a container is named', async () => {
    const dir = await writeProject(
      t,
      'cp',
      `services:
  web:
    image: ${BUSYBOX}
    init: true
    command: ["sleep", "300"]
    scale: 2
  idle:
    image: ${BUSYBOX}
    command: ["sleep", "300"]
`,
    );
    const host = path.join(dir, 'host');
    await mkdir(host, { recursive: true });
    await writeFile(path.join(host, 'greeting.txt'), 'hello from the host\n');
    const cat = async (index: number, file: string) => {
      const exec = await t.cli(['exec', '-T', '--index', String(index), 'web', 'cat', file], { cwd: dir });
      return exec.code === 0 ? exec.stdout : `exit ${exec.code}: ${exec.stderr}`;
    };
    try {
      const up = await t.cli(['up', '-d', 'web'], { cwd: dir });
      assert.equal(up.code, 0, up.stderr);

      // into the service: every replica gets the file
      const to = await t.cli(['cp', path.join(host, 'greeting.txt'), 'web:/tmp/greeting.txt'], { cwd: dir });
      assert.equal(to.code, 0, to.stderr);
      assert.equal(await cat(1, '/tmp/greeting.txt'), 'hello from the host\n');
      assert.equal(await cat(2, '/tmp/greeting.txt'), 'hello from the host\n');

      // --index: that replica only
      await writeFile(path.join(host, 'only2.txt'), 'second replica\n');
      const one = await t.cli(['cp', '--index', '2', path.join(host, 'only2.txt'), 'web:/tmp/'], { cwd: dir });
      assert.equal(one.code, 0, one.stderr);
      assert.equal(await cat(2, '/tmp/only2.txt'), 'second replica\n');
      assert.match(await cat(1, '/tmp/only2.txt'), /^exit [1-9]/, 'replica 1 got the file copied to --index 2');

      // out of the service: the first replica; --index 2 the second
      const written = await t.cli(['exec', '-T', 'web', 'sh', '-c', 'echo from-one > /tmp/who'], { cwd: dir });
      assert.equal(written.code, 0, written.stderr);
      const written2 = await t.cli(['exec', '-T', '--index', '2', 'web', 'sh', '-c', 'echo from-two > /tmp/who'], {
        cwd: dir,
      });
      assert.equal(written2.code, 0, written2.stderr);
      const from = await t.cli(['cp', 'web:/tmp/who', path.join(host, 'who1')], { cwd: dir });
      assert.equal(from.code, 0, from.stderr);
      assert.equal(await readFile(path.join(host, 'who1'), 'utf8'), 'from-one\n');
      const from2 = await t.cli(['cp', '--index', '2', 'web:/tmp/who', path.join(host, 'who2')], { cwd: dir });
      assert.equal(from2.code, 0, from2.stderr);
      assert.equal(await readFile(path.join(host, 'who2'), 'utf8'), 'from-two\n');

      // a directory, out of the container
      const tree = await t.cli(['cp', 'web:/etc', path.join(host, 'etc-copy')], { cwd: dir });
      assert.equal(tree.code, 0, tree.stderr);
      assert.match(await readFile(path.join(host, 'etc-copy', 'hostname'), 'utf8'), /\S/);

      // a service that has no container: an error naming it, nothing written
      const none = await t.cli(['cp', path.join(host, 'greeting.txt'), 'idle:/tmp/x'], { cwd: dir });
      assert.notEqual(none.code, 0);
      assert.match(none.stderr, /no container found for service "idle"/);
      assert.doesNotMatch(none.stderr, /\n\s+at /, 'a stack trace for a user error');
      const unknown = await t.cli(['cp', 'nosuch:/etc/hostname', path.join(host, 'x')], { cwd: dir });
      assert.equal(unknown.code, 64, unknown.stderr);
      assert.match(unknown.stderr, /no such service: nosuch/);
      const missingIndex = await t.cli(['cp', '--index', '3', 'web:/etc/hostname', path.join(host, 'x')], {
        cwd: dir,
      });
      assert.notEqual(missingIndex.code, 0);
      assert.match(missingIndex.stderr, /service "web" has no container with index 3/);

      // one-off containers: only with --all
      const oneoff = await t.cli(['run', '-d', 'idle'], { cwd: dir });
      assert.equal(oneoff.code, 0, oneoff.stderr);
      const withoutAll = await t.cli(['cp', path.join(host, 'greeting.txt'), 'idle:/tmp/g'], { cwd: dir });
      assert.notEqual(withoutAll.code, 0, 'cp without --all reached a one-off container');
      const withAll = await t.cli(['cp', '--all', path.join(host, 'greeting.txt'), 'idle:/tmp/g'], { cwd: dir });
      assert.equal(withAll.code, 0, withAll.stderr);
      const back = await t.cli(['cp', '--all', 'idle:/tmp/g', path.join(host, 'g-back')], { cwd: dir });
      assert.equal(back.code, 0, back.stderr);
      assert.equal(await readFile(path.join(host, 'g-back'), 'utf8'), 'hello from the host\n');
    } finally {
      await t.cli(['down', '-v', '-t', '0', '--remove-orphans'], { cwd: dir });
    }
  });

  test("stats shows the project's containers only: --no-stream, json, templates, -a, --no-trunc; services narrow it", async () => {
    const dir = await writeProject(
      t,
      'stats',
      `services:
  busy:
    image: ${BUSYBOX}
    init: true
    command: ["sh", "-c", "while true; do :; done"]
  calm:
    image: ${BUSYBOX}
    init: true
    command: ["sleep", "300"]
  done:
    image: ${BUSYBOX}
    command: ["true"]
`,
    );
    const other = await writeProject(
      t,
      'stats-other',
      `services:
  stranger:
    image: ${BUSYBOX}
    init: true
    command: ["sleep", "300"]
`,
    );
    try {
      const up = await t.cli(['up', '-d'], { cwd: dir });
      assert.equal(up.code, 0, up.stderr);
      const upOther = await t.cli(['up', '-d'], { cwd: other });
      assert.equal(upOther.code, 0, upOther.stderr);
      await eventually(async () => {
        const ps = await t.cli(['ps', '-a', '--format', 'json'], { cwd: dir });
        return ps.stdout.includes('exited') ? true : undefined;
      });

      const table = await t.cli(['stats', '--no-stream'], { cwd: dir });
      assert.equal(table.code, 0, table.stderr);
      const lines = table.stdout.trimEnd().split('\n');
      assert.match(
        lines[0] ?? '',
        /^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS$/,
      );
      const names = lines
        .slice(1)
        .map((line) => line.split(/\s+/)[1])
        .sort();
      assert.deepEqual(names, ['stats-busy-1', 'stats-calm-1'], 'running containers of this project only');

      const json = await t.cli(['stats', '--no-stream', '--format', 'json'], { cwd: dir });
      assert.equal(json.code, 0, json.stderr);
      const rows = json.stdout
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, string>);
      const busy = rows.find((row) => row.Name === 'stats-busy-1');
      assert.ok(busy !== undefined, json.stdout);
      assert.ok(Number.parseFloat(busy.CPUPerc ?? '') > 10, `a busy loop uses CPU: ${busy.CPUPerc}`);
      assert.equal(busy.ID?.length, 12);
      const calm = rows.find((row) => row.Name === 'stats-calm-1');
      assert.ok(Number.parseFloat(calm?.CPUPerc ?? '100') < 10, `sleep uses no CPU: ${calm?.CPUPerc}`);

      const all = await t.cli(['stats', '-a', '--no-stream', '--no-trunc', '--format', '{{.Name}} {{.ID}}'], {
        cwd: dir,
      });
      assert.equal(all.code, 0, all.stderr);
      const allRows = all.stdout.trimEnd().split('\n').sort();
      assert.deepEqual(
        allRows.map((row) => row.split(' ')[0]),
        ['stats-busy-1', 'stats-calm-1', 'stats-done-1'],
      );
      for (const row of allRows) assert.match(row, / [0-9a-f]{64}$/, '--no-trunc: the whole id');

      const one = await t.cli(['stats', '--no-stream', '--format', 'table {{.Name}}\\t{{.PIDs}}', 'calm'], {
        cwd: dir,
      });
      assert.equal(one.code, 0, one.stderr);
      assert.match(one.stdout, /^NAME\s+PIDS\nstats-calm-1\s+2\n$/);

      const bad = await t.cli(['stats', '--no-stream', '--format', '{{.Nope}}'], { cwd: dir });
      assert.equal(bad.code, 64, bad.stderr);
      assert.match(bad.stderr, /--format: no field "Nope"/);
      const unknown = await t.cli(['stats', '--no-stream', 'nosuch'], { cwd: dir });
      assert.equal(unknown.code, 64, unknown.stderr);
      assert.match(unknown.stderr, /no such service: nosuch/);

      // streaming: a new table each second until interrupted
      const stream = spawnCli(['stats', '--format', '{{.Name}}', 'calm'], t.env, { cwd: dir });
      try {
        await eventually(() => (stream.output().split('stats-calm-1').length > 2 ? true : undefined), 20_000);
      } finally {
        await stopChild(stream.child);
      }
    } finally {
      await t.cli(['down', '-v', '-t', '0'], { cwd: other });
      await t.cli(['down', '-v', '-t', '0'], { cwd: dir });
    }
  });

  test('attach joins a running service: its output from now on, stdin to the container, the exit code; --no-stdin; a stopped one is refused', async () => {
    const dir = await writeProject(
      t,
      'attach',
      `services:
  echo:
    image: ${BUSYBOX}
    stdin_open: true
    command: ["sh", "-c", "echo ready; while read line; do echo got:$$line; done; echo stdin-closed; exit 3"]
  ticker:
    image: ${BUSYBOX}
    init: true
    command: ["sh", "-c", "echo old-line; sleep 1; i=0; while true; do i=$$((i+1)); echo tick-$$i; sleep 0.2; done"]
`,
    );
    try {
      const up = await t.cli(['up', '-d'], { cwd: dir });
      assert.equal(up.code, 0, up.stderr);
      await eventually(async () =>
        (await t.cli(['logs', 'echo'], { cwd: dir })).stdout.includes('ready') ? true : undefined,
      );
      // stdin reaches the container; its end closes the container's stdin; attach returns the container's exit code
      const attached = await t.cli(['attach', 'echo'], { cwd: dir, input: 'hello\nworld\n', timeoutMs: 30_000 });
      assert.equal(attached.code, 3, attached.stderr);
      assert.equal(attached.stdout, 'got:hello\ngot:world\nstdin-closed\n', 'only the output since the attach');

      // --no-stdin: output only (from now on: not the line written before), detached by Ctrl-C with --sig-proxy=false
      const follow = spawnCli(['attach', '--no-stdin', '--sig-proxy=false', 'ticker'], t.env, { cwd: dir });
      try {
        await eventually(() => (/tick-\d+\n.*tick-\d+/s.test(follow.output()) ? true : undefined), 20_000);
      } finally {
        await stopChild(follow.child);
      }
      assert.doesNotMatch(follow.output(), /old-line/, 'attach replayed the log');
      const ps = await t.cli(['ps', '--format', 'json', 'ticker'], { cwd: dir });
      assert.match(ps.stdout, /running/, 'Ctrl-C without --sig-proxy stopped the container');

      const stopped = await t.cli(['attach', 'echo'], { cwd: dir });
      assert.notEqual(stopped.code, 0);
      assert.match(stopped.stderr, /you cannot attach to a stopped container/);
      const unknown = await t.cli(['attach', 'nosuch'], { cwd: dir });
      assert.equal(unknown.code, 64, unknown.stderr);
    } finally {
      await t.cli(['down', '-v', '-t', '0'], { cwd: dir });
    }
  });
});
