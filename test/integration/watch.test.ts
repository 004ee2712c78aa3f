import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { eventually, makeTestEngine, skipUnlessRoot, spawnCli, stopChild, type TestEngine } from '../helpers/engine.js';

/**
 * A test engine and its project directory te.dir/name; `watch` starts `tsfig watch` there as a child process whose
 * stdout and stderr are collected. After the test its watch processes are stopped, the project is taken down and
 * the engine removed.
 */
async function watchProject(
  t: TestContext,
  name: string,
): Promise<{
  te: TestEngine;
  dir: string;
  watch: (extra?: readonly string[]) => { child: ChildProcess; output: () => string };
}> {
  const te = await makeTestEngine();
  const dir = path.join(te.dir, name);
  const children: ChildProcess[] = [];
  t.after(async () => {
    for (const child of children) await stopChild(child);
    await te.cli(['down', '-t', '1'], { cwd: dir }).catch(() => undefined);
    await te.cleanup();
  });
  const watch = (extra: readonly string[] = []) => {
    const watcher = spawnCli(['--progress', 'plain', 'watch', ...extra], te.env, { cwd: dir });
    children.push(watcher.child);
    return watcher;
  };
  return { te, dir, watch };
}

test('watch syncs saved files into the container, once per burst, and never follows a symlink out of the tree', async (t) => {
  if (skipUnlessRoot(t)) return;
  const { te, dir, watch } = await watchProject(t, 'watchapp');
  await mkdir(path.join(dir, 'src'), { recursive: true });
  await mkdir(path.join(te.dir, 'outside'), { recursive: true });
  await writeFile(path.join(te.dir, 'outside', 'secret.txt'), 'TOP SECRET\n');
  await writeFile(path.join(dir, 'src', 'hello.txt'), 'first\n');
  await writeFile(
    path.join(dir, 'tsfig.yml'),
    `services:
  app:
    image: tsfig/busybox:latest
    command: ["sleep", "600"]
    init: true
    develop:
      watch:
        - path: ./src
          action: sync
          target: /app
          ignore: ["*.tmp"]
`,
  );
  const watcher = watch();
  const output = watcher.output;
  await eventually(() => (output().includes('watch: watching app') ? true : undefined), 90_000).catch(
    (error: unknown) => {
      throw new Error(`watch did not start:\n${output()}`, { cause: error });
    },
  );
  const ps = await te.cli(['ps', '-q'], { cwd: dir });
  const id = ps.stdout.trim();
  assert.notEqual(id, '', ps.stderr);
  const inContainer = async (...argv: string[]) => te.engine.containers.exec(id, { argv });

  // a saved file appears in the container
  await writeFile(path.join(dir, 'src', 'hello.txt'), 'second: quotes \' " and \\ % $x\n\u0000binary\u00ff\n');
  await eventually(async () => {
    const result = await inContainer('cat', '/app/hello.txt');
    return result.stdout.startsWith('second') ? result : undefined;
  }, 30_000).catch((error: unknown) => {
    throw new Error(`hello.txt never arrived:\n${output()}`, { cause: error });
  });
  const copied = await inContainer('od', '-An', '-tx1', '/app/hello.txt');
  const expected = Buffer.from('second: quotes \' " and \\ % $x\n\u0000binary\u00ff\n').toString('hex');
  assert.equal(copied.stdout.replace(/\s+/g, ''), expected, 'the bytes are copied exactly');

  // a burst of 100 writes is one sync action
  const syncs = () =>
    output()
      .split('\n')
      .filter((line) => line.startsWith('watch: sync app')).length;
  await eventually(() => (syncs() >= 1 ? true : undefined), 30_000);
  const before = syncs();
  for (let index = 0; index < 100; index++) writeFileSync(path.join(dir, 'src', 'burst.txt'), `write ${index}\n`);
  await eventually(async () => {
    const result = await inContainer('cat', '/app/burst.txt');
    return result.stdout === 'write 99\n' ? true : undefined;
  }, 30_000);
  // nothing is left to settle: after the debounce window, still exactly one more action
  await new Promise((resolve) => setTimeout(resolve, 2000));
  assert.equal(syncs() - before, 1, `expected one sync for the burst:\n${output()}`);

  // a symlink pointing outside the watched tree is not followed; one inside it is recreated as a link
  await symlink(path.join(te.dir, 'outside', 'secret.txt'), path.join(dir, 'src', 'leak-absolute'));
  await symlink('../../outside/secret.txt', path.join(dir, 'src', 'leak-relative'));
  await symlink('hello.txt', path.join(dir, 'src', 'inner-link'));
  await eventually(async () => {
    const result = await inContainer('readlink', '/app/inner-link');
    return result.stdout.trim() === 'hello.txt' ? true : undefined;
  }, 30_000).catch((error: unknown) => {
    throw new Error(`inner-link never arrived:\n${output()}`, { cause: error });
  });
  await eventually(
    () =>
      /not syncing .*leak-absolute/.test(output()) && /not syncing .*leak-relative/.test(output()) ? true : undefined,
    30_000,
  );
  for (const name of ['leak-absolute', 'leak-relative']) {
    const exists = await inContainer('sh', '-c', `test -e /app/${name} || test -L /app/${name}`);
    assert.notEqual(exists.exitCode, 0, `${name} must not exist in the container`);
  }
  const grep = await inContainer('grep', '-r', 'TOP SECRET', '/app');
  assert.notEqual(grep.exitCode, 0, 'the secret must not be in the container');

  // ignored files are not synced
  await writeFile(path.join(dir, 'src', 'scratch.tmp'), 'x');
  await writeFile(path.join(dir, 'src', 'after.txt'), 'after\n');
  await eventually(
    async () => ((await inContainer('cat', '/app/after.txt')).exitCode === 0 ? true : undefined),
    30_000,
  );
  assert.notEqual((await inContainer('test', '-e', '/app/scratch.tmp')).exitCode, 0);

  // a change to the project file re-plans and applies, as up would
  const yaml = await readFile(path.join(dir, 'tsfig.yml'), 'utf8');
  await writeFile(
    path.join(dir, 'tsfig.yml'),
    yaml.replace('    init: true\n', '    init: true\n    environment:\n      GREETING: hi\n'),
  );
  await eventually(
    () => (output().includes('watch: project file changed: re-planned and applied') ? true : undefined),
    90_000,
  ).catch((error: unknown) => {
    throw new Error(`no re-plan:\n${output()}`, { cause: error });
  });
  const recreated = (await te.cli(['ps', '-q'], { cwd: dir })).stdout.trim();
  assert.notEqual(recreated, id, 'the changed service was recreated');
  const env = await te.engine.containers.exec(recreated, { argv: ['sh', '-c', 'echo "$GREETING"'] });
  assert.equal(env.stdout, 'hi\n');
});

test('an edit to a file the Dockerfile copies rebuilds the image once and recreates the service once', async (t) => {
  if (skipUnlessRoot(t)) return;
  const { te, dir, watch } = await watchProject(t, 'rebuildapp');
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, 'Dockerfile'),
    'FROM tsfig/busybox:latest\nCOPY app.txt /app.txt\nCMD ["sleep", "600"]\n',
  );
  await writeFile(path.join(dir, 'app.txt'), 'version 1\n');
  await writeFile(
    path.join(dir, 'tsfig.yml'),
    `services:
  app:
    build: .
    init: true
    develop:
      watch:
        - path: ./app.txt
          action: rebuild
`,
  );
  const built = await te.cli(['image', 'build', '-t', 'rebuildapp-app', dir], { timeoutMs: 120_000 });
  assert.equal(built.code, 0, built.stderr);
  const watcher = watch();
  const output = watcher.output;
  await eventually(() => (output().includes('watch: watching app') ? true : undefined), 90_000).catch(
    (error: unknown) => {
      throw new Error(`watch did not start:\n${output()}`, { cause: error });
    },
  );
  const containerId = async () => (await te.cli(['ps', '-q'], { cwd: dir })).stdout.trim();
  const first = await containerId();
  assert.notEqual(first, '');
  for (let index = 0; index < 20; index++) writeFileSync(path.join(dir, 'app.txt'), `version 2 (${index})\n`);
  const rebuilt = await eventually(() => (/watch: rebuild app in /.test(output()) ? true : undefined), 120_000).catch(
    (error: unknown) => {
      throw new Error(`no rebuild:\n${output()}`, { cause: error });
    },
  );
  assert.ok(rebuilt);
  const second = await containerId();
  assert.notEqual(second, first, 'the service was recreated');
  const content = await te.engine.containers.exec(second, { argv: ['cat', '/app.txt'] });
  assert.equal(content.stdout, 'version 2 (19)\n');
  // the debounce window has passed: still one rebuild, and the container is the same
  await new Promise((resolve) => setTimeout(resolve, 2000));
  assert.equal(
    output()
      .split('\n')
      .filter((line) => line.startsWith('watch: rebuild app')).length,
    1,
    output(),
  );
  assert.equal(await containerId(), second);
});

test('sync+exec runs its command after the sync; sync+restart restarts the container after the sync', async (t) => {
  if (skipUnlessRoot(t)) return;
  const { te, dir, watch } = await watchProject(t, 'actionsapp');
  await mkdir(path.join(dir, 'src'), { recursive: true });
  await mkdir(path.join(dir, 'conf'), { recursive: true });
  await writeFile(path.join(dir, 'src', 'v.txt'), 'v1\n');
  await writeFile(path.join(dir, 'conf', 'c.txt'), 'c1\n');
  // each start of `reloader` appends a line to /starts (its writable layer outlives a restart)
  await writeFile(
    path.join(dir, 'tsfig.yml'),
    `services:
  runner:
    image: tsfig/busybox:latest
    command: ["sleep", "600"]
    init: true
    develop:
      watch:
        - path: ./src
          action: sync+exec
          target: /app
          exec:
            command: ["sh", "-c", "cat /app/v.txt >> /exec.log"]
  reloader:
    image: tsfig/busybox:latest
    command: ["sh", "-c", "echo started >> /starts; exec sleep 600"]
    init: true
    develop:
      watch:
        - path: ./conf
          action: sync+restart
          target: /conf
`,
  );
  const watcher = watch();
  const output = watcher.output;
  await eventually(() => (output().includes('watch: watching') ? true : undefined), 90_000).catch((error: unknown) => {
    throw new Error(`watch did not start:\n${output()}`, { cause: error });
  });
  const idOf = async (service: string) => (await te.cli(['ps', '-q', service], { cwd: dir })).stdout.trim();
  const runner = await idOf('runner');
  const reloader = await idOf('reloader');
  assert.ok(runner !== '' && reloader !== '', output());
  const inContainer = (id: string, ...argv: string[]) => te.engine.containers.exec(id, { argv });
  const startedAt = async (id: string) =>
    (await te.engine.containers.state(await te.engine.containers.get(id))).startedAt;
  await eventually(
    async () => ((await inContainer(reloader, 'cat', '/starts')).stdout === 'started\n' ? true : undefined),
    30_000,
  );
  const firstStart = await startedAt(reloader);
  assert.equal((await inContainer(runner, 'test', '-e', '/exec.log')).exitCode, 1, 'no exec before a change');

  // sync+exec: the file arrives, then the command sees it
  await writeFile(path.join(dir, 'src', 'v.txt'), 'v2\n');
  await eventually(async () => {
    const log = await inContainer(runner, 'cat', '/exec.log');
    return log.stdout === 'v2\n' ? true : undefined;
  }, 30_000).catch((error: unknown) => {
    throw new Error(`the exec never ran after the sync:\n${output()}`, { cause: error });
  });
  assert.equal((await inContainer(runner, 'cat', '/app/v.txt')).stdout, 'v2\n');
  assert.match(output(), /watch: sync\+exec runner/);
  assert.equal(await idOf('runner'), runner, 'sync+exec recreates nothing');

  // sync+restart: the file arrives and the same container starts again
  await writeFile(path.join(dir, 'conf', 'c.txt'), 'c2\n');
  await eventually(async () => {
    // while it restarts, the container runs no exec
    const starts = await inContainer(reloader, 'cat', '/starts').catch(() => undefined);
    return starts?.stdout === 'started\nstarted\n' ? true : undefined;
  }, 30_000).catch((error: unknown) => {
    throw new Error(`reloader was not restarted:\n${output()}`, { cause: error });
  });
  assert.equal((await inContainer(reloader, 'cat', '/conf/c.txt')).stdout, 'c2\n');
  assert.notEqual(await startedAt(reloader), firstStart, 'StartedAt changed');
  assert.equal(await idOf('reloader'), reloader, 'restarted, not recreated');
  assert.match(output(), /watch: sync\+restart reloader/);
  // the runner was not restarted by the other rule, and its exec ran once
  assert.equal((await inContainer(runner, 'cat', '/exec.log')).stdout, 'v2\n');
});
