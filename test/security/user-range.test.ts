// Item 2 of issue #15: a user id of 4294967295 is (uid_t)-1, which setresuid reads as "unchanged" (the process would
// stay root), and larger ones wrap. Every place a user comes from refuses ids outside 0..2147483647: the CLI's
// --user, a project's `user:`, a Dockerfile's USER, an image's config and an image's own /etc/passwd and /etc/group.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BUSYBOX_TAR, makeTestEngine, NEEDS_ROOT, type TestEngine } from '../helpers/engine.js';

const OUT_OF_RANGE = ['4294967295', '4294967296', '1000:4294967295', '2147483648', '99999999999999999999'];

describe('user and group ids out of range', { skip: NEEDS_ROOT }, () => {
  let t: TestEngine;

  before(async () => {
    t = await makeTestEngine();
    const run = await t.cli(['container', 'run', '-d', '--name', 'box', 'tsfig/busybox', 'sleep', '600']);
    assert.equal(run.code, 0, run.stderr);
  });

  after(async () => {
    await t.cleanup();
  });

  test('container run/create --user and exec -u refuse them; nothing runs as root', async () => {
    for (const user of OUT_OF_RANGE) {
      const run = await t.cli(['container', 'run', '--rm', '--user', user, 'tsfig/busybox', 'id']);
      assert.notEqual(run.code, 0, `run --user ${user} ran: ${run.stdout}`);
      assert.doesNotMatch(run.stdout, /uid=0/);
      assert.match(run.stderr, /out of range \(0 to 2147483647\)/);
      const exec = await t.cli(['container', 'exec', '-u', user, 'box', 'id']);
      assert.notEqual(exec.code, 0, `exec -u ${user} ran: ${exec.stdout}`);
      assert.doesNotMatch(exec.stdout, /uid=0/);
      assert.match(exec.stderr, /out of range/);
    }
    const created = await t.cli(['container', 'ls', '-a', '-q']);
    assert.equal(created.stdout.trim().split('\n').length, 1, `a refused run must create nothing:\n${created.stdout}`);
    // the largest valid id still works
    const ok = await t.cli(['container', 'exec', '-u', '2147483647:2147483647', 'box', 'id']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /uid=2147483647 gid=2147483647/);
  });

  test("a project's user: is refused with its file and line", async () => {
    const dir = path.join(t.dir, 'proj');
    await mkdir(dir, { recursive: true });
    await writeFile(
      path.join(dir, 'tsfig.yml'),
      'services:\n  app:\n    image: tsfig/busybox\n    user: "4294967295"\n    command: ["id"]\n',
    );
    const up = await t.cli(['up', '-d'], { cwd: dir });
    assert.equal(up.code, 65, up.stderr);
    assert.match(up.stderr, /tsfig\.yml:4:\d+/);
    assert.match(up.stderr, /out of range/);
  });

  test('a Dockerfile USER is refused at its line', async () => {
    const dir = path.join(t.dir, 'build');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'Dockerfile'), 'FROM tsfig/busybox\nUSER 4294967295\nCMD ["id"]\n');
    const build = await t.cli(['image', 'build', '-t', 'hostile/user', dir]);
    assert.notEqual(build.code, 0, build.stdout);
    assert.match(build.stderr, /Dockerfile:2/);
    assert.match(build.stderr, /out of range/);
  });

  test('an image whose config says USER 4294967295 does not start as root', async () => {
    const imported = await t.cli(['image', 'import', '-c', 'USER 4294967295', BUSYBOX_TAR, 'hostile/config-user']);
    assert.equal(imported.code, 0, imported.stderr);
    const run = await t.cli(['container', 'run', '--rm', 'hostile/config-user', 'id']);
    assert.notEqual(run.code, 0, run.stdout);
    assert.doesNotMatch(run.stdout, /uid=0/);
    assert.match(run.stderr, /out of range/);
  });

  test("an image's /etc/passwd and /etc/group with ids out of range give no root", async () => {
    const rootfs = path.join(t.dir, 'rootfs');
    await mkdir(rootfs);
    execFileSync('tar', ['-xf', BUSYBOX_TAR, '-C', rootfs]);
    await appendFile(path.join(rootfs, 'etc/passwd'), 'evil:x:4294967295:4294967295:evil:/:/bin/sh\n');
    await appendFile(path.join(rootfs, 'etc/group'), 'evilgrp:x:4294967295:\n');
    const tar = path.join(t.dir, 'hostile.tar');
    execFileSync('tar', ['--numeric-owner', '-C', rootfs, '-cf', tar, '.']);
    const imported = await t.cli(['image', 'import', tar, 'hostile/passwd']);
    assert.equal(imported.code, 0, imported.stderr);
    for (const user of ['evil', '1000:evilgrp']) {
      const run = await t.cli(['container', 'run', '--rm', '--user', user, 'hostile/passwd', 'id']);
      assert.notEqual(run.code, 0, `--user ${user} ran: ${run.stdout}`);
      assert.doesNotMatch(run.stdout, /uid=0|gid=0/);
      assert.match(run.stderr, /unable to find (user|group)/);
    }
  });
});
