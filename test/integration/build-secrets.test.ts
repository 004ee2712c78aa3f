/**
 * Build secrets through the CLI on real builds: `tsfig image build --secret` and `RUN --mount=type=secret` (file,
 * target, mode/uid/gid, env, required=false without the secret, a required one missing), and the secret's bytes in
 * nothing the engine keeps: not in a layer blob, an unpacked layer, the image config or history, the build cache, a
 * container record, runtime.conf or the CLI's output; the RUN's container and its root-only copy of the secret go after
 * the build, after a failed step and after an interrupted one.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';
import { constants } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, test, type TestContext } from 'node:test';
import { eventually, makeTestEngine, REPO, skipUnlessRoot, type TestEngine } from '../helpers/engine.js';

const FILE_SECRET = 'file-s3cr3t-7f1d0c2a';
const ENV_SECRET = 'env-s3cr3t-94be61d3';
/** The Dockerfile compares digests: its text (shown in the build's steps and history) must not hold the values. */
const sha = (text: string): string => createHash('sha256').update(text).digest('hex');
const isFileSecret = (file: string): string => `test "$(sha256sum < ${file} | cut -c1-64)" = ${sha(FILE_SECRET)}`;

async function setup(t: TestContext, files: Record<string, string>): Promise<{ te: TestEngine; context: string }> {
  const te = await makeTestEngine();
  t.after(() => te.cleanup());
  const context = path.join(te.dir, 'context');
  for (const [name, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(context, name)), { recursive: true });
    await fs.writeFile(path.join(context, name), content);
  }
  return { te, context };
}

/** Every file under dir (symlinks not followed). */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(full)));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

/** The files of the engine's state and run roots that hold one of the values (gzip blobs looked into). */
async function holders(te: TestEngine, values: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const root of [path.join(te.dir, 'root'), path.join(te.dir, 'run')]) {
    for (const file of await filesUnder(root)) {
      let bytes = await fs.readFile(file).catch(() => Buffer.alloc(0));
      if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = gunzipSync(bytes);
      if (values.some((value) => bytes.includes(value))) found.push(file);
    }
  }
  return found;
}

async function containerDirs(te: TestEngine): Promise<string[]> {
  return fs.readdir(path.join(te.dir, 'root', 'containers')).catch(() => []);
}

const DOCKERFILE = [
  'FROM tsfig/busybox:latest',
  // the default target, mode 0400 root:root, read-only; the test fails if the secret is absent or different
  `RUN --mount=type=secret,id=pw ${isFileSecret('/run/secrets/pw')} && stat -c '%a %u %g' /run/secrets/pw > /mode-default && (echo x > /run/secrets/pw 2>/dev/null && echo writable || echo read-only) > /writable`,
  `RUN --mount=type=secret,id=pw,target=/root/token,mode=0440,uid=1234,gid=5678 ${isFileSecret('/root/token')} && stat -c '%a %u %g' /root/token > /mode-target`,
  // env only: the variable, no file
  `RUN --mount=type=secret,id=tok,env=TOKEN test "$(printf %s "$TOKEN" | sha256sum | cut -c1-64)" = ${sha(ENV_SECRET)} && test ! -e /run/secrets/tok && echo env-ok > /env-ok`,
  'RUN --mount=type=secret,id=absent,required=false test ! -e /run/secrets/absent && echo absent-ok > /absent-ok',
  'RUN env > /env-after',
  'CMD ["sh", "-c", "cat /mode-default /writable /mode-target /env-ok /absent-ok; grep -c TOKEN /env-after; test -e /run/secrets && echo stub-left || echo no-stub; test -e /root/token && echo token-left || echo no-token"]',
  '',
].join('\n');

describe('build secrets (RUN --mount=type=secret, tsfig image build --secret)', () => {
  test('file, target/mode/uid/gid and env secrets are readable in their RUN and in nothing the engine keeps', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { te, context } = await setup(t, { Dockerfile: DOCKERFILE });
    const secretFile = path.join(te.dir, 'pw.txt');
    await fs.writeFile(secretFile, FILE_SECRET, { mode: 0o600 });
    const build = await te.cli(
      [
        'image',
        'build',
        '--secret',
        `id=pw,src=${secretFile}`,
        '--secret',
        'id=tok,env=TOK_VAR',
        '-t',
        'demo/sec',
        '.',
      ],
      { cwd: context, env: { TOK_VAR: ENV_SECRET } },
    );
    assert.equal(build.code, 0, build.stderr);
    assert.ok(!`${build.stdout}${build.stderr}`.includes(FILE_SECRET), 'the output shows no secret');
    assert.ok(!`${build.stdout}${build.stderr}`.includes(ENV_SECRET), 'the output shows no secret');
    const run = await te.cli(['container', 'run', '--rm', 'demo/sec']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      run.stdout,
      '400 0 0\nread-only\n440 1234 5678\nenv-ok\nabsent-ok\n0\nno-stub\nno-token\n',
      'secrets as asked; no variable in later steps, no mount point left in the image',
    );
    // the store (blobs, unpacked layers, configs, build cache), records and runtime files: no copy of either value
    assert.deepEqual(await holders(te, [FILE_SECRET, ENV_SECRET]), []);
    const image = await te.engine.images.resolve('demo/sec');
    assert.ok(!JSON.stringify(image.config).includes(FILE_SECRET));
    assert.deepEqual(await containerDirs(te), [], 'the RUN containers and their copies of the secrets are gone');

    // BuildKit keys the cache on the mount, not the secret's content: another value hits the cache
    await fs.writeFile(secretFile, 'another-value');
    const again = await te.cli(
      [
        'image',
        'build',
        '--secret',
        `id=pw,src=${secretFile}`,
        '--secret',
        'id=tok,env=TOK_VAR',
        '-t',
        'demo/sec',
        '.',
      ],
      { cwd: context, env: { TOK_VAR: 'other' } },
    );
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.trim(), image.id);
  });

  test('a required secret not given fails naming the line, before anything runs; a bad --secret is a usage error', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { te, context } = await setup(t, {
      Dockerfile: [
        'FROM tsfig/busybox:latest',
        'RUN echo first > /first',
        'RUN --mount=type=secret,id=pw,required=true cat /run/secrets/pw',
        '',
      ].join('\n'),
    });
    const imagesBefore = (await te.engine.images.list()).length;
    const missing = await te.cli(['image', 'build', '-t', 'demo/missing', '.'], { cwd: context });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /Dockerfile:3:1: secret pw: not found/);
    assert.match(missing.stderr, /--secret id=pw,src=FILE/);
    assert.doesNotMatch(missing.stderr, /Step 1/, 'nothing ran');
    assert.equal((await te.engine.images.list()).length, imagesBefore);
    assert.deepEqual(await containerDirs(te), []);

    const noFile = await te.cli(['image', 'build', '--secret', 'id=pw,src=/nonexistent/pw', '.'], { cwd: context });
    assert.equal(noFile.code, 64, noFile.stderr);
    assert.match(noFile.stderr, /--secret id=pw: file \/nonexistent\/pw does not exist/);
    const badKey = await te.cli(['image', 'build', '--secret', 'id=pw,path=x', '.'], { cwd: context });
    assert.equal(badKey.code, 64, badKey.stderr);
    assert.match(badKey.stderr, /--secret: unexpected key 'path' in 'path=x'/);
    const unset = await te.cli(['image', 'build', '--secret', 'id=pw,env=NOT_SET_ANYWHERE', '.'], { cwd: context });
    assert.equal(unset.code, 64, unset.stderr);
    assert.match(unset.stderr, /environment variable "NOT_SET_ANYWHERE" is not set/);
    assert.equal((await te.engine.images.list()).length, imagesBefore);
  });

  test('a failing step and an interrupted one leave no container and no copy of the secret', async (t) => {
    if (skipUnlessRoot(t)) return;
    const sleep = `sleep ${700 + Math.floor(Math.random() * 200)}`;
    const { te, context } = await setup(t, {
      'fail/Dockerfile':
        'FROM tsfig/busybox:latest\nRUN --mount=type=secret,id=pw cat /run/secrets/pw > /dev/null && exit 3\n',
      'slow/Dockerfile': `FROM tsfig/busybox:latest\nRUN --mount=type=secret,id=pw cat /run/secrets/pw > /dev/null && ${sleep}\n`,
    });
    const secretFile = path.join(te.dir, 'pw.txt');
    await fs.writeFile(secretFile, FILE_SECRET, { mode: 0o600 });
    const failed = await te.cli(['image', 'build', '--secret', `id=pw,src=${secretFile}`, 'fail'], { cwd: context });
    assert.notEqual(failed.code, 0, failed.stderr);
    assert.match(failed.stderr, /returned a non-zero code: 3/);
    assert.deepEqual(await containerDirs(te), []);
    assert.deepEqual(await holders(te, [FILE_SECRET]), []);

    const child = spawn(
      process.execPath,
      [path.join(REPO, 'bin', 'tsfig.js'), 'image', 'build', '--secret', `id=pw,src=${secretFile}`, 'slow'],
      { env: te.env, cwd: context, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    t.after(() => void child.kill('SIGKILL'));
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number>((resolve) =>
      child.on('close', (code, signal) => resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal]))),
    );
    // while the step runs, its copy of the secret is in the container's root-only dir
    await eventually(() => (stderr.includes('Step 2/2') ? true : undefined), 60_000);
    const filesDir = await eventually(async () => {
      for (const id of await containerDirs(te)) {
        const dir = path.join(te.dir, 'root', 'containers', id, 'files');
        if (!id.endsWith('.creating') && (await fs.stat(path.join(dir, '0')).catch(() => undefined)) !== undefined) {
          return dir;
        }
      }
      return undefined;
    }, 60_000);
    assert.equal((await fs.stat(path.dirname(filesDir))).mode & 0o777, 0o700);
    assert.equal((await fs.stat(filesDir)).mode & 0o777, 0o700);
    // ... and nowhere else (not in the record, not in runtime.conf)
    assert.deepEqual(await holders(te, [FILE_SECRET]), [path.join(filesDir, '0')]);
    child.kill('SIGINT');
    assert.equal(await exited, 130, stderr);
    assert.deepEqual(await containerDirs(te), []);
    assert.deepEqual(await holders(te, [FILE_SECRET]), []);
  });
});
