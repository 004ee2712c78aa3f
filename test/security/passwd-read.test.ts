// Item 11 of issue #15: the runtime reads the container's /etc/passwd and /etc/group as host root to resolve users
// (start, exec, health checks). A hostile image makes them a FIFO (the read would hang forever), a symlink to
// /dev/zero (endless) or a huge file: they are opened O_NONBLOCK|O_NOFOLLOW inside the container's root, used only
// when regular and at most 1 MiB, and otherwise count as having no entries (numeric users still work).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BUSYBOX_TAR, makeTestEngine, NEEDS_ROOT, type TestEngine } from '../helpers/engine.js';

describe('hostile /etc/passwd and /etc/group', { skip: NEEDS_ROOT }, () => {
  let t: TestEngine;

  before(async () => {
    t = await makeTestEngine();
  });

  after(async () => {
    await t.cleanup();
  });

  /** Imports busybox with /etc/passwd and /etc/group replaced by what make() puts there. */
  async function hostileImage(name: string, make: (file: string) => Promise<void>): Promise<string> {
    const rootfs = path.join(t.dir, `rootfs-${name}`);
    await mkdir(rootfs);
    execFileSync('tar', ['-xf', BUSYBOX_TAR, '-C', rootfs]);
    for (const file of ['etc/passwd', 'etc/group']) {
      await rm(path.join(rootfs, file));
      await make(path.join(rootfs, file));
    }
    const tar = path.join(t.dir, `${name}.tar`);
    execFileSync('tar', ['--numeric-owner', '-C', rootfs, '-cf', tar, '.']);
    await rm(rootfs, { recursive: true });
    const reference = `hostile/${name}`;
    const imported = await t.cli(['image', 'import', tar, reference]);
    assert.equal(imported.code, 0, imported.stderr);
    return reference;
  }

  const cases: [string, (file: string) => Promise<void>][] = [
    ['fifo', (file) => Promise.resolve(void execFileSync('mkfifo', [file]))],
    ['devzero', (file) => symlink('/dev/zero', file)],
    [
      'huge',
      async (file) => {
        await writeFile(file, 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n');
        await truncate(file, 64 * 1024 * 1024);
      },
    ],
  ];

  for (const [name, make] of cases) {
    test(`${name}: start, exec and a health check neither hang nor read it`, async () => {
      const image = await hostileImage(name, make);
      const started = Date.now();
      // a named user cannot be resolved from it: a clear error, quickly
      const named = await t.cli(['container', 'run', '--rm', '--user', 'nobody', image, 'id'], { timeoutMs: 30_000 });
      assert.notEqual(named.code, 0, named.stdout);
      assert.match(named.stderr, /unable to find user nobody/);
      // numeric users need no entry: the container starts, exec and health checks run
      const run = await t.cli(
        [
          'container',
          'run',
          '-d',
          '--name',
          `c-${name}`,
          '--health-cmd',
          'true',
          '--health-interval',
          '1s',
          image,
          'sleep',
          '600',
        ],
        { timeoutMs: 30_000 },
      );
      assert.equal(run.code, 0, run.stderr);
      // (not `id`: it would read the FIFO itself, inside the container, as the image wants)
      const exec = await t.cli(
        ['container', 'exec', '-u', '1000:1000', `c-${name}`, 'grep', '^Uid:', '/proc/self/status'],
        {
          timeoutMs: 30_000,
        },
      );
      assert.equal(exec.code, 0, exec.stderr);
      assert.match(exec.stdout, /^Uid:\s+1000\s/);
      const execNamed = await t.cli(['container', 'exec', '-u', 'nobody', `c-${name}`, 'id'], { timeoutMs: 30_000 });
      assert.notEqual(execNamed.code, 0);
      assert.match(execNamed.stderr, /unable to find user nobody/);
      let health = '';
      for (let i = 0; i < 100 && health !== 'healthy'; i++) {
        const inspect = await t.cli(['container', 'inspect', `c-${name}`]);
        const [state] = JSON.parse(inspect.stdout) as { State: { Health?: { Status: string } } }[];
        health = state?.State.Health?.Status ?? '';
        if (health !== 'healthy') await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.equal(health, 'healthy');
      assert.ok(Date.now() - started < 60_000);
      const removed = await t.cli(['container', 'rm', '-f', `c-${name}`]);
      assert.equal(removed.code, 0, removed.stderr);
    });
  }
});
