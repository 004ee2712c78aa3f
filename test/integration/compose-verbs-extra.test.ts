/**
 * Compose v2's `cp`, `stats` and `attach` on real containers, through the CLI: cp into every replica of a service (or
 * one with --index), out of the first one, one-offs with --all, a service without a container named in the error;
 * stats of the project's containers only (--no-stream, json, templates, -a, --no-trunc).
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { NEEDS_ROOT, suiteEngine, writeProject } from '../helpers/engine.js';

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
});
