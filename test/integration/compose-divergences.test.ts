/**
 * Divergences from docker compose found by the conformance run of issue #13, each checked through the CLI on real
 * containers: ps filters, one-offs and ports of exited containers; logs --since/--until and logs -f across a
 * recreate; shm_size; link variables of exposed ports; env_file of services not in play.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { NEEDS_ROOT, eventually, spawnCli, stopChild, suiteEngine, writeProject } from '../helpers/engine.js';

const BUSYBOX = 'tsfig/busybox:latest';

interface PsRow {
  ID: string;
  Name: string;
  State: string;
  Publishers: { PublishedPort: number; TargetPort: number }[];
}

describe('compose divergences (root)', { skip: NEEDS_ROOT }, () => {
  const t = suiteEngine('interfaces');
  let projects = 0;
  const project = (yaml: string) => writeProject(t, `div${++projects}`, yaml);
  const ok = async (dir: string, ...args: string[]) => {
    const result = await t.cli(args, { cwd: dir });
    assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  };
  const psJson = async (dir: string, ...args: string[]): Promise<PsRow[]> =>
    (await ok(dir, 'ps', '--format', 'json', ...args))
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as PsRow);

  test('ps: --services --filter status=running, one-offs in ps -a / -a -q, no ports for an exited container', async () => {
    const dir = await project(`services:
  web:
    image: ${BUSYBOX}
    command: sleep 300
    init: true
    ports: ["127.0.0.1::80"]
  once:
    image: ${BUSYBOX}
    command: "true"
`);
    try {
      await ok(dir, 'up', '-d');
      await ok(dir, 'run', 'once', 'echo', 'hi');
      assert.equal(await ok(dir, 'ps', '--services', '--filter', 'status=running'), 'web\n');
      assert.equal(await ok(dir, 'ps', '--services', '--status', 'running'), 'web\n');
      assert.equal(await ok(dir, 'ps', '--services', '--filter', 'status=exited'), 'once\n');
      const all = await psJson(dir, '-a');
      const oneoff = all.find((row) => /^div\d+-once-run-/.test(row.Name));
      assert.ok(oneoff !== undefined, JSON.stringify(all.map((row) => row.Name)));
      assert.ok((await ok(dir, 'ps', '-a', '-q')).split('\n').includes(oneoff.ID));
      assert.ok(!(await ok(dir, 'ps', '-q')).split('\n').includes(oneoff.ID));
      const unknown = await t.cli(['ps', '--filter', 'label=a=b'], { cwd: dir });
      assert.equal(unknown.code, 64, unknown.stderr);
      assert.match(unknown.stderr, /unknown filter label/);

      const running = (await psJson(dir)).find((row) => row.Name.endsWith('-web-1'));
      assert.equal(running?.Publishers.length, 1);
      await ok(dir, 'stop', '-t', '1', 'web');
      const exited = (await psJson(dir, '-a')).find((row) => row.Name.endsWith('-web-1'));
      assert.equal(exited?.State, 'exited');
      assert.deepEqual(exited?.Publishers, []);
      assert.doesNotMatch(await ok(dir, 'ps', '-a'), /->80\/tcp/);
    } finally {
      await ok(dir, 'down', '-v', '-t', '1');
    }
  });

  test('logs --since/--until take durations and RFC3339 times (docker GetTimestamp)', async () => {
    const dir = await project(`services:
  talk:
    image: ${BUSYBOX}
    command: ["sh", "-c", "echo early; sleep 10; echo late; sleep 300"]
    init: true
`);
    try {
      await ok(dir, 'up', '-d');
      const lines = await eventually(async () => {
        const out = await ok(dir, 'logs', '-t', '--no-log-prefix');
        return /late/.test(out) ? out.trim().split('\n') : undefined;
      }, 60_000);
      const early = Date.parse(lines[0]?.split(' ')[0] ?? '');
      assert.ok(!Number.isNaN(early), lines.join('\n'));
      // A cut 3 s after "early" (7 s before "late"), as a duration before now and as an RFC3339 time.
      const ago = `${Math.round((Date.now() - early) / 1000) - 3}s`;
      assert.equal(await ok(dir, 'logs', '--no-log-prefix', '--until', ago), 'early\n');
      assert.equal(await ok(dir, 'logs', '--no-log-prefix', '--since', ago), 'late\n');
      const cut = new Date(early + 3000).toISOString().replace('Z', '+00:00');
      assert.equal(await ok(dir, 'logs', '--no-log-prefix', '--since', cut), 'late\n');
      assert.equal(await ok(dir, 'logs', '--no-log-prefix', '--since', '1h'), 'early\nlate\n');
      assert.equal(await ok(dir, 'logs', '--no-log-prefix', '--until', '1h'), '');
      const bad = await t.cli(['logs', '--since', 'yesterday'], { cwd: dir });
      assert.equal(bad.code, 64, bad.stderr);
      assert.match(bad.stderr, /--since yesterday/);
    } finally {
      await ok(dir, 'down', '-v', '-t', '1');
    }
  });

  test('logs -f follows the container that up -d recreates, and ends after down', async () => {
    const yaml = (value: string) => `services:
  app:
    image: ${BUSYBOX}
    command: ["sh", "-c", "echo start $$V; sleep 300"]
    init: true
    environment:
      V: ${value}
`;
    const dir = await project(yaml('one'));
    try {
      // nothing to follow yet: ends at once, as compose does
      assert.equal(await ok(dir, 'logs', '-f'), '');
      await ok(dir, 'up', '-d');
      const logs = spawnCli(['logs', '-f'], t.env, { cwd: dir });
      try {
        await eventually(() => (/start one/.test(logs.output()) ? true : undefined), 30_000);
        await writeFile(path.join(dir, 'tsfig.yml'), yaml('two'));
        await ok(dir, 'up', '-d');
        await eventually(() => (/app-1 +\| start two/.test(logs.output()) ? true : undefined), 30_000);
        await ok(dir, 'down', '-t', '1');
        await eventually(() => (logs.child.exitCode !== null ? true : undefined), 30_000);
        assert.equal(logs.child.exitCode, 0, logs.output());
      } finally {
        await stopChild(logs.child);
      }
    } finally {
      await ok(dir, 'down', '-v', '-t', '1');
    }
  });

  test('up -d a works when another service env_file is missing; naming that service is an error naming the file', async () => {
    const dir = await project(`services:
  a:
    image: ${BUSYBOX}
    command: sleep 300
    init: true
    shm_size: 128m
  b:
    image: ${BUSYBOX}
    env_file: missing.env
`);
    try {
      await ok(dir, 'up', '-d', 'a');
      // shm_size sizes /dev/shm (docker's default is 64 MiB)
      const df = await ok(dir, 'exec', '-T', 'a', 'df', '-k', '/dev/shm');
      assert.match(df, /^shm\s+131072\s/m, df);
      const refused = await t.cli(['up', '-d', 'b'], { cwd: dir });
      assert.equal(refused.code, 65, refused.stderr);
      assert.match(refused.stderr, /services\.b\.env_file: file .*missing\.env does not exist/);
    } finally {
      await writeFile(path.join(dir, 'missing.env'), '');
      await ok(dir, 'down', '-v', '-t', '1');
    }
  });
});
