import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { Command } from 'commander';
import { Builder, BuildStepError, type BuildEvent } from '../../engine/build/builder.js';
import { registerBuildCommand } from '../../src/cli/commands/build.js';
import { makeTestEngine, skipUnlessRoot, type TestEngine } from '../helpers/engine.js';

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

/** Runs the image's default command (or argv) to completion: exit code and output. */
async function run(te: TestEngine, image: string, argv?: string[]): Promise<{ code: number; output: string }> {
  const record = await te.engine.containers.create({ image, ...(argv !== undefined ? { cmd: argv } : {}) });
  try {
    await te.engine.containers.start(record.id);
    const code = await te.engine.containers.wait(record.id, { timeoutMs: 30_000 });
    let output = '';
    for await (const entry of te.engine.containers.logs(record.id)) output += entry.text;
    return { code, output };
  } finally {
    await te.engine.containers.remove(record.id, { force: true });
  }
}

function collect(): { events: BuildEvent[]; onEvent: (event: BuildEvent) => void } {
  const events: BuildEvent[] = [];
  return { events, onEvent: (event) => events.push(event) };
}

/** Step texts with whether each was a cache hit. */
function stepsOf(events: readonly BuildEvent[]): { text: string; cached: boolean }[] {
  const steps: { text: string; cached: boolean }[] = [];
  for (const event of events) {
    if (event.kind === 'step') steps.push({ text: event.text, cached: false });
    const last = steps.at(-1);
    if (event.kind === 'cache-hit' && last !== undefined) last.cached = true;
  }
  return steps;
}

const MULTI_STAGE = `# syntax=docker/dockerfile:1
ARG BASE=tsfig/busybox:latest
FROM \${BASE} AS build
ARG GREETING=hello
RUN mkdir -p /out && echo "$GREETING from the build stage" > /out/message \\
    && echo built
FROM \${BASE}
ARG APP_DIR=/srv/app
ENV APP_HOME=\${APP_DIR} MODE=production
WORKDIR $APP_HOME
COPY --from=build /out/message ./message
COPY --chown=1234:1234 config/ ./config/
RUN echo 'app:x:1234:1234::/home/app:/bin/sh' >> /etc/passwd && mkdir -p /data && chown app /data
USER app
VOLUME /data
EXPOSE 8080
LABEL org.example.mode=\${MODE}
CMD ["sh", "-c", "cat message; id -u; echo $APP_HOME $MODE; cat config/app.conf; stat -c %u config/app.conf"]
`;

describe('image build (engine Builder)', () => {
  test('a multi-stage build with ARG/ENV, USER, WORKDIR and VOLUME runs with its Cmd, env, user and files', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { te, context } = await setup(t, {
      Dockerfile: MULTI_STAGE,
      'config/app.conf': 'port=8080\n',
    });
    const { events, onEvent } = collect();
    const result = await new Builder(te.engine).build(
      { contextDir: context, tags: ['demo/app:1'], buildArgs: { GREETING: 'hi' } },
      onEvent,
    );
    assert.equal(result.steps, 15);
    assert.ok(events.some((event) => event.kind === 'output' && event.text.includes('built')));
    const image = await te.engine.images.resolve('demo/app:1');
    assert.equal(image.id, result.imageId);
    const config = image.config.config ?? {};
    assert.deepEqual(config.Cmd?.slice(0, 2), ['sh', '-c']);
    assert.equal(config.User, 'app');
    assert.equal(config.WorkingDir, '/srv/app');
    assert.deepEqual(config.Volumes, { '/data': {} });
    assert.deepEqual(config.ExposedPorts, { '8080/tcp': {} });
    assert.equal(config.Labels?.['org.example.mode'], 'production');
    assert.ok(config.Env?.includes('APP_HOME=/srv/app'));
    assert.ok(!(config.Env ?? []).some((entry) => entry.startsWith('GREETING=')), 'ARGs are not persisted');
    const history = image.config.history ?? [];
    assert.ok(history.some((entry) => entry.created_by === 'USER app' && entry.empty_layer === true));
    const { code, output } = await run(te, 'demo/app:1');
    assert.equal(code, 0, output);
    assert.equal(output, 'hi from the build stage\n1234\n/srv/app production\nport=8080\n1234\n');
  });

  test('a deletion in a later RUN hides the file (whiteout) and a recreated directory is opaque', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { te, context } = await setup(t, {
      Dockerfile: [
        'FROM tsfig/busybox:latest',
        'RUN echo secret > /secret && mkdir -p /dir && touch /dir/old',
        'RUN rm /secret /bin/ls && rm -rf /dir && mkdir /dir && touch /dir/new',
        '',
      ].join('\n'),
    });
    await new Builder(te.engine).build({ contextDir: context, tags: ['demo/wh'] });
    const { code, output } = await run(te, 'demo/wh', [
      'sh',
      '-c',
      'test ! -e /secret && test ! -e /bin/ls && echo $(cd /dir && echo *)',
    ]);
    assert.equal(code, 0, output);
    assert.equal(output, 'new\n');
    const image = await te.engine.images.resolve('demo/wh');
    const layers = te.engine.images.layerDirs(image);
    const top = layers[0] ?? '';
    const whiteout = await fs.lstat(path.join(top, 'secret'));
    assert.ok(whiteout.isCharacterDevice() && whiteout.rdev === 0, 'the top layer holds a whiteout for /secret');
    for (const stub of ['etc/hosts', 'etc/resolv.conf', 'etc/hostname']) {
      await assert.rejects(fs.lstat(path.join(top, stub)), 'runtime mount stubs are not part of the layer');
    }
  });

  test('a second build is fully cached and gives the same image id; a touched source still hits', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { te, context } = await setup(t, { Dockerfile: MULTI_STAGE, 'config/app.conf': 'port=1\n' });
    const builder = new Builder(te.engine);
    const first = await builder.build({ contextDir: context, tags: ['demo/cache'] });
    const again = collect();
    const second = await builder.build({ contextDir: context, tags: ['demo/cache'] }, again.onEvent);
    assert.equal(second.imageId, first.imageId);
    const steps = stepsOf(again.events).filter((step) => !step.text.startsWith('FROM'));
    assert.ok(steps.length > 0 && steps.every((step) => step.cached), JSON.stringify(steps));
    const future = new Date(Date.now() + 60_000);
    await fs.utimes(path.join(context, 'config/app.conf'), future, future);
    const third = await builder.build({ contextDir: context, tags: ['demo/cache'] });
    assert.equal(third.imageId, first.imageId, 'mtime is not part of the cache key');
    const noCache = collect();
    await builder.build({ contextDir: context, noCache: true }, noCache.onEvent);
    assert.ok(stepsOf(noCache.events).every((step) => !step.cached));
  });

  test('changing one COPY source reruns only from that step', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { te, context } = await setup(t, {
      Dockerfile: [
        'FROM tsfig/busybox:latest',
        'RUN echo first > /first',
        'COPY a.txt /a.txt',
        'RUN cat /a.txt > /copy-a',
        'COPY b.txt /b.txt',
        'RUN cat /b.txt > /copy-b',
        'CMD ["cat", "/copy-a", "/copy-b"]',
        '',
      ].join('\n'),
      'a.txt': 'a1\n',
      'b.txt': 'b1\n',
    });
    const builder = new Builder(te.engine);
    await builder.build({ contextDir: context, tags: ['demo/partial'] });
    await fs.writeFile(path.join(context, 'b.txt'), 'b2\n');
    const { events, onEvent } = collect();
    const rebuilt = await builder.build(
      { contextDir: context, tags: ['demo/partial'], buildArgs: { UNUSED: 'x' } },
      onEvent,
    );
    assert.deepEqual(rebuilt.warnings, ['one or more build-args [UNUSED] were not consumed']);
    assert.deepEqual(
      stepsOf(events).map((step) => `${step.cached ? 'cached' : 'ran'} ${step.text}`),
      [
        'ran FROM tsfig/busybox:latest',
        'cached RUN echo first > /first',
        'cached COPY a.txt /a.txt',
        'cached RUN cat /a.txt > /copy-a',
        'ran COPY b.txt /b.txt',
        'ran RUN cat /b.txt > /copy-b',
        'ran CMD ["cat", "/copy-a", "/copy-b"]',
      ],
    );
    const { output } = await run(te, 'demo/partial');
    assert.equal(output, 'a1\nb2\n');
  });

  test('an unknown instruction fails with Dockerfile:LINE:COL before anything runs', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { te, context } = await setup(t, {
      Dockerfile: 'FROM tsfig/busybox:latest\nRUN echo would run > /x\n  RUNN echo typo\n',
    });
    const { events, onEvent } = collect();
    await assert.rejects(new Builder(te.engine).build({ contextDir: context }, onEvent), (error: Error) => {
      assert.match(error.message, /^Dockerfile:3:3: unknown instruction: RUNN \(did you mean RUN\?\)$/);
      return true;
    });
    assert.deepEqual(events, []);
    assert.deepEqual(await te.engine.containers.list({ all: true }), []);
    assert.equal((await te.engine.images.list()).length, 1, 'only the base image');
  });

  test('a failing RUN names the step and its exit code, shows its last output and leaves no container', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { te, context } = await setup(t, {
      Dockerfile: 'FROM tsfig/busybox:latest\nRUN echo ok\nRUN echo about to fail && echo oops >&2 && exit 3\n',
    });
    await assert.rejects(new Builder(te.engine).build({ contextDir: context }), (error: Error) => {
      assert.ok(error instanceof BuildStepError);
      assert.equal(error.exitCode, 3);
      assert.match(error.message, /step 3\/3 \(RUN echo about to fail && echo oops >&2 && exit 3\)/);
      assert.match(error.message, /non-zero code: 3/);
      assert.deepEqual(error.output, ['about to fail', 'oops']);
      return true;
    });
    assert.deepEqual(await te.engine.containers.list({ all: true }), []);
    await fs.writeFile(path.join(context, 'Dockerfile'), 'FROM tsfig/busybox:latest\nRUN echo ok\nRUN echo fixed\n');
    const { events, onEvent } = collect();
    await new Builder(te.engine).build({ contextDir: context }, onEvent);
    assert.deepEqual(
      stepsOf(events).map((step) => step.cached),
      [false, true, false],
      'the step that finished before the failure is cached',
    );
  });

  test('a missing base image is named with a hint to import it', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { te, context } = await setup(t, { Dockerfile: 'FROM nowhere/missing:1\nRUN true\n' });
    await assert.rejects(new Builder(te.engine).build({ contextDir: context }), (error: Error & { hint?: string }) => {
      assert.match(error.message, /base image "nowhere\/missing:1" not found/);
      assert.match(error.hint ?? '', /tsfig image import/);
      return true;
    });
  });

  test('.dockerignore, globs, --chmod, heredocs, ADD of a local archive and of a loopback URL with --checksum', async (t) => {
    if (skipUnlessRoot(t)) return;
    const payload = Buffer.from('downloaded\n');
    const server = http.createServer((request, response) => {
      if (request.url === '/files/payload.txt') response.end(payload);
      else response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/files/payload.txt`;
    const digest = `sha256:${createHash('sha256').update(payload).digest('hex')}`;
    const { te, context } = await setup(t, {
      '.dockerignore': 'secret*\nlogs\n!logs/keep.log\n',
      'secret.txt': 'no\n',
      'logs/drop.log': 'no\n',
      'logs/keep.log': 'kept\n',
      'src/one.js': '1\n',
      'src/two.js': '2\n',
      'src/three.txt': '3\n',
      'archive/inner/file.txt': 'from the archive\n',
    });
    execFileSync('tar', ['-czf', path.join(context, 'bundle.tar.gz'), '-C', path.join(context, 'archive'), 'inner']);
    await fs.writeFile(
      path.join(context, 'Dockerfile'),
      [
        'FROM tsfig/busybox:latest',
        'ARG NAME=world',
        'COPY . /ctx/',
        'COPY --chmod=0600 src/*.js /js/',
        'ADD bundle.tar.gz /unpacked/',
        `ADD --checksum=${digest} ${url} /downloads/`,
        'COPY <<greeting.txt /heredoc/',
        'hello $NAME',
        'greeting.txt',
        'CMD ["sh", "-c", "cd /ctx && find . -type f | sort; stat -c %a /js/one.js; ls /js; cat /unpacked/inner/file.txt /downloads/payload.txt /heredoc/greeting.txt"]',
        '',
      ].join('\n'),
    );
    await new Builder(te.engine).build({ contextDir: context, tags: ['demo/copy'] });
    const { code, output } = await run(te, 'demo/copy');
    assert.equal(code, 0, output);
    assert.equal(
      output,
      [
        './.dockerignore',
        './Dockerfile',
        './archive/inner/file.txt',
        './bundle.tar.gz',
        './logs/keep.log',
        './src/one.js',
        './src/three.txt',
        './src/two.js',
        '600',
        'one.js',
        'two.js',
        'from the archive',
        'downloaded',
        'hello world',
        '',
      ].join('\n'),
    );
    await fs.writeFile(
      path.join(context, 'Dockerfile'),
      `FROM tsfig/busybox:latest\nADD --checksum=sha256:${'0'.repeat(64)} ${url} /bad\n`,
    );
    await assert.rejects(new Builder(te.engine).build({ contextDir: context }), /checksum mismatch/);
  });

  test('COPY to . lands in WORKDIR; symlinks are copied as links and never followed out of the context', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { te, context } = await setup(t, {
      'app/main.sh': 'echo main\n',
      Dockerfile: [
        'FROM tsfig/busybox:latest',
        'WORKDIR /work',
        'COPY app/main.sh .',
        'COPY app/ ./tree/',
        'CMD ["sh", "-c", "cat /work/main.sh; readlink /work/tree/escape"]',
        '',
      ].join('\n'),
    });
    await fs.symlink('/etc/passwd', path.join(context, 'app', 'escape'));
    await new Builder(te.engine).build({ contextDir: context, tags: ['demo/links'] });
    const { code, output } = await run(te, 'demo/links');
    assert.equal(code, 0, output);
    assert.equal(output, 'echo main\n/etc/passwd\n');
    await fs.writeFile(path.join(context, 'Dockerfile'), 'FROM tsfig/busybox:latest\nCOPY app/escape /stolen\n');
    await assert.rejects(
      new Builder(te.engine).build({ contextDir: context }),
      /"app\/escape" not found in the build context/,
    );
  });

  test('RUN --mount=type=cache keeps its directory between builds and out of the image', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { te, context } = await setup(t, {
      Dockerfile: [
        'FROM tsfig/busybox:latest',
        'RUN --mount=type=cache,target=/cache echo x >> /cache/count && wc -l < /cache/count > /result',
        'CMD ["sh", "-c", "cat /result; test ! -e /cache && echo no-cache-dir"]',
        '',
      ].join('\n'),
    });
    const builder = new Builder(te.engine);
    await builder.build({ contextDir: context, tags: ['demo/cachemount'] });
    assert.equal((await run(te, 'demo/cachemount')).output.replace(/ /g, ''), '1\nno-cache-dir\n');
    await builder.build({ contextDir: context, tags: ['demo/cachemount'], noCache: true });
    assert.equal((await run(te, 'demo/cachemount')).output.replace(/ /g, ''), '2\nno-cache-dir\n');
  });

  test('unsupported features and bad literal flags fail with Dockerfile:LINE:COL before anything runs', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { te, context } = await setup(t, {
      Dockerfile: [
        'FROM tsfig/busybox:latest AS one',
        'RUN echo would run',
        'RUN --mount=type=ssh true',
        'COPY --from=one /etc /etc2',
        'COPY --chmod=u+x a /a',
        '',
      ].join('\n'),
    });
    const { events, onEvent } = collect();
    await assert.rejects(new Builder(te.engine).build({ contextDir: context }, onEvent), (error: Error) => {
      assert.equal(
        error.message,
        [
          'Dockerfile:3:1: RUN --mount=type=ssh is not supported yet (bind, cache, tmpfs and secret are)',
          'Dockerfile:4:1: --from=one names the stage it is in',
          'Dockerfile:5:1: invalid --chmod "u+x": use an octal mode such as 0644',
        ].join('\n'),
      );
      return true;
    });
    assert.deepEqual(events, []);
    assert.deepEqual(await te.engine.containers.list({ all: true }), []);
  });

  test('RUN <<EOF runs a heredoc body; a #! body runs as a script and leaves no file behind', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { te, context } = await setup(t, {
      Dockerfile: [
        'FROM tsfig/busybox:latest',
        'RUN <<EOF',
        'echo one > /one',
        'echo two >> /one',
        'EOF',
        'RUN <<-SCRIPT',
        '\t#!/bin/sh -e',
        '\techo "from $0" > /script-ran',
        '\tSCRIPT',
        'RUN cat <<A > /a && cat <<B > /b',
        'alpha',
        'A',
        'beta',
        'B',
        'CMD ["sh", "-c", "cat /one /a /b; grep -c from /script-ran; ls /tmp | wc -l"]',
        '',
      ].join('\n'),
    });
    await new Builder(te.engine).build({ contextDir: context, tags: ['demo/heredoc'] });
    const { code, output } = await run(te, 'demo/heredoc');
    assert.equal(code, 0, output);
    assert.equal(output.replace(/ +/g, ''), 'one\ntwo\nalpha\nbeta\n1\n0\n');
    assert.deepEqual(
      (await te.engine.images.list()).filter((image) => image.repoTags.length === 0).map((image) => image.id),
      [],
      'no intermediate images are left',
    );
  });

  test('an archive whose symlink leaves the ADD destination is refused', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { te, context } = await setup(t, { 'evil/placeholder': '' });
    await fs.symlink('../../../etc', path.join(context, 'evil', 'up'));
    execFileSync('tar', ['-cf', path.join(context, 'evil.tar'), '-C', path.join(context, 'evil'), 'up']);
    await fs.writeFile(path.join(context, 'Dockerfile'), 'FROM tsfig/busybox:latest\nADD evil.tar /opt/x/\n');
    await assert.rejects(
      new Builder(te.engine).build({ contextDir: context }),
      /invalid symlink "up" -> "..\/..\/..\/etc"/,
    );
  });

  test('tsfig image build prints steps on stderr and the id on stdout; image history lists the steps', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { te, context } = await setup(t, {
      Dockerfile: 'FROM tsfig/busybox:latest\nENV A=1\nRUN echo built\nCMD ["true"]\n',
    });
    let stdout = '';
    let stderr = '';
    const program = new Command().exitOverride();
    registerBuildCommand(program, {
      engine: () => Promise.resolve(te.engine),
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: (text: string) => (stderr += text) },
      cwd: context,
    });
    await program.parseAsync(['node', 'tsfig', 'image', 'build', '-t', 'demo/cli:1', '.']);
    const image = await te.engine.images.resolve('demo/cli:1');
    assert.equal(stdout, `${image.id}\n`);
    assert.match(stderr, /^Step 1\/4 : FROM tsfig\/busybox:latest\n/);
    assert.match(stderr, /Step 3\/4 : RUN echo built\nbuilt\n ---> /);
    assert.match(stderr, /Successfully tagged demo\/cli:1\n$/);
    stdout = '';
    await program.parseAsync(['node', 'tsfig', 'image', 'build', '-q', '-t', 'demo/cli:1', '.']);
    assert.equal(stdout, `${image.id}\n`);
    stdout = '';
    await program.parseAsync(['node', 'tsfig', 'image', 'history', 'demo/cli:1']);
    const lines = stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^IMAGE +CREATED +CREATED BY +SIZE +COMMENT$/);
    assert.match(lines[1] ?? '', new RegExp(`^${image.id.slice(7, 19)} .* CMD \\["true"\\] +0B$`));
    assert.match(lines[2] ?? '', /^<missing> .* RUN \/bin\/sh -c echo built +\S+$/);
    assert.match(lines[3] ?? '', /^<missing> .* ENV A=1 +0B$/);
    assert.equal(lines.length, 5);
  });

  test('metadata instructions write Docker image-config fields without layers', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { te, context } = await setup(t, {
      Dockerfile: [
        'FROM tsfig/busybox:latest',
        'MAINTAINER Jane <jane@example.com>',
        'SHELL ["/bin/sh", "-ec"]',
        'HEALTHCHECK --interval=5s --timeout=2s --start-period=1m --retries=2 CMD wget -q -O- localhost',
        'STOPSIGNAL SIGINT',
        'EXPOSE 80-81/udp 443',
        'LABEL a="b c" x=y',
        'ONBUILD RUN echo later',
        'ENTRYPOINT exec echo',
        '',
      ].join('\n'),
    });
    await new Builder(te.engine).build({ contextDir: context, tags: ['demo/meta'], labels: { extra: '1' } });
    const image = await te.engine.images.resolve('demo/meta');
    const busybox = await te.engine.images.resolve('tsfig/busybox:latest');
    assert.deepEqual(image.diffIds, busybox.diffIds, 'no layer was added');
    const file = image.config as unknown as { author?: string; config: Record<string, unknown> };
    assert.equal(file.author, 'Jane <jane@example.com>');
    const config = file.config;
    assert.deepEqual(config.Shell, ['/bin/sh', '-ec']);
    assert.deepEqual(config.Healthcheck, {
      Test: ['CMD-SHELL', 'wget -q -O- localhost'],
      Interval: 5e9,
      Timeout: 2e9,
      StartPeriod: 60e9,
      Retries: 2,
    });
    assert.equal(config.StopSignal, 'SIGINT');
    assert.deepEqual(config.ExposedPorts, { '80/udp': {}, '81/udp': {}, '443/tcp': {} });
    assert.deepEqual(config.Labels, { a: 'b c', x: 'y', extra: '1' });
    assert.deepEqual(config.OnBuild, ['RUN echo later']);
    assert.deepEqual(config.Entrypoint, ['/bin/sh', '-ec', 'exec echo']);
    assert.equal(config.Cmd, undefined, 'ENTRYPOINT drops the Cmd inherited from the base');
    assert.ok((image.config.history ?? []).slice(1).every((entry) => entry.empty_layer === true));
  });

  test('a missing WORKDIR is created owned by the current USER (BuildKit); an existing one is metadata only', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { te, context } = await setup(t, {
      Dockerfile: [
        'FROM tsfig/busybox:latest',
        'USER 1234',
        'WORKDIR /home/work/dir',
        'RUN touch made-by-user',
        'WORKDIR /tmp',
        'CMD ["stat", "-c", "%u %a %n", "/home/work", "/home/work/dir", "/home/work/dir/made-by-user"]',
        '',
      ].join('\n'),
    });
    await new Builder(te.engine).build({ contextDir: context, tags: ['demo/workdir'] });
    const { code, output } = await run(te, 'demo/workdir');
    assert.equal(code, 0, output);
    assert.equal(output, '1234 755 /home/work\n1234 755 /home/work/dir\n1234 644 /home/work/dir/made-by-user\n');
    const history = (await te.engine.images.resolve('demo/workdir')).config.history ?? [];
    assert.deepEqual(
      history.filter((entry) => entry.created_by?.startsWith('WORKDIR') === true).map((e) => e.empty_layer ?? false),
      [false, true],
    );
  });

  test('aborting a build kills the running step and leaves no container', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { te, context } = await setup(t, { Dockerfile: 'FROM tsfig/busybox:latest\nRUN echo started && sleep 60\n' });
    const controller = new AbortController();
    const started = Date.now();
    const build = new Builder(te.engine).build({ contextDir: context, signal: controller.signal }, (event) => {
      if (event.kind === 'output' && event.text.includes('started')) controller.abort();
    });
    await assert.rejects(build, (error: Error) => error.name === 'AbortError');
    assert.ok(Date.now() - started < 20_000, 'the step was stopped, not waited for');
    assert.deepEqual(await te.engine.containers.list({ all: true }), []);
  });

  test('RUN --mount=type=bind sees the context (minus .dockerignore) read-only, and its content keys the cache', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { te, context } = await setup(t, {
      '.dockerignore': 'secret.txt\n',
      'secret.txt': 'hidden\n',
      'req.txt': 'v1\n',
      Dockerfile: [
        'FROM tsfig/busybox:latest',
        'RUN --mount=type=bind,target=/ctx --mount=type=bind,source=req.txt,target=/req.txt \\',
        '    cat /ctx/req.txt /req.txt > /got && test ! -e /ctx/secret.txt && echo ignored-not-visible >> /got \\',
        '    && (touch /ctx/x 2>/dev/null || echo read-only >> /got)',
        'CMD ["sh", "-c", "cat /got; test ! -e /ctx && test ! -e /req.txt && echo no-stubs"]',
        '',
      ].join('\n'),
    });
    const builder = new Builder(te.engine);
    await builder.build({ contextDir: context, tags: ['demo/bind'] });
    assert.equal((await run(te, 'demo/bind')).output, 'v1\nv1\nignored-not-visible\nread-only\nno-stubs\n');
    const again = collect();
    await builder.build({ contextDir: context, tags: ['demo/bind'] }, again.onEvent);
    assert.deepEqual(
      stepsOf(again.events).map((step) => step.cached),
      [false, true, true],
    );
    await fs.writeFile(path.join(context, 'req.txt'), 'v2\n');
    const changed = collect();
    await builder.build({ contextDir: context, tags: ['demo/bind'] }, changed.onEvent);
    assert.deepEqual(
      stepsOf(changed.events).map((step) => step.cached),
      [false, false, false],
    );
    assert.equal((await run(te, 'demo/bind')).output, 'v2\nv2\nignored-not-visible\nread-only\nno-stubs\n');
  });

  test('--target builds only the stages it needs; ONBUILD triggers run in the child build', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { te, context } = await setup(t, {
      Dockerfile: [
        'FROM tsfig/busybox:latest AS base',
        'ONBUILD RUN echo triggered > /onbuild',
        'FROM tsfig/busybox:latest AS unused',
        'RUN exit 1',
        'FROM tsfig/busybox:latest AS target',
        'RUN echo target > /target',
        '',
      ].join('\n'),
    });
    const builder = new Builder(te.engine);
    const result = await builder.build({ contextDir: context, target: 'target', tags: ['demo/target'] });
    assert.equal(result.steps, 2);
    await builder.build({ contextDir: context, target: 'base', tags: ['demo/base'] });
    await fs.writeFile(path.join(context, 'Dockerfile.child'), 'FROM demo/base\nCMD ["cat", "/onbuild"]\n');
    await builder.build({ contextDir: context, dockerfile: 'Dockerfile.child', tags: ['demo/child'] });
    const { output } = await run(te, 'demo/child');
    assert.equal(output, 'triggered\n');
    const child = await te.engine.images.resolve('demo/child');
    assert.equal((child.config.config as { OnBuild?: unknown } | undefined)?.OnBuild ?? null, null);
  });

  test('named contexts: FROM and COPY --from an image context, COPY --from a directory; a context wins over a stage', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { te, context } = await setup(t, {
      'base/Dockerfile': 'FROM tsfig/busybox:latest\nRUN echo from-base > /base.txt\n',
      'docs/readme.txt': 'from-docs\n',
      'docs/sub/deep.txt': 'deep\n',
      'app/Dockerfile': [
        'FROM tsfig/busybox:latest AS base',
        'RUN echo from-the-stage > /base.txt',
        'FROM base',
        'COPY --from=docs readme.txt sub/deep.txt /docs/',
        'COPY --from=tools /bin/busybox /tools/busybox',
        'CMD ["sh", "-c", "cat /base.txt /docs/readme.txt /docs/deep.txt; stat -c %u /docs/readme.txt; test -x /tools/busybox && echo tools"]',
        '',
      ].join('\n'),
    });
    const builder = new Builder(te.engine);
    await builder.build({ contextDir: path.join(context, 'base'), tags: ['demo/base-ctx'] });
    const contexts = {
      base: { image: 'demo/base-ctx' },
      docs: { dir: path.join(context, 'docs') },
      tools: { image: 'tsfig/busybox:latest' },
    };
    const first = await builder.build({ contextDir: path.join(context, 'app'), tags: ['demo/app-ctx'], contexts });
    assert.equal((await run(te, 'demo/app-ctx')).output, 'from-base\nfrom-docs\ndeep\n0\ntools\n');
    // a changed file of a directory context reruns its COPY; without the context, the stage is used
    await fs.writeFile(path.join(context, 'docs/readme.txt'), 'changed\n');
    const changed = collect();
    const second = await builder.build(
      { contextDir: path.join(context, 'app'), tags: ['demo/app-ctx'], contexts },
      changed.onEvent,
    );
    assert.notEqual(second.imageId, first.imageId);
    assert.ok(stepsOf(changed.events).some((step) => step.text.startsWith('COPY --from=docs') && !step.cached));
    await assert.rejects(
      builder.build({ contextDir: path.join(context, 'app'), contexts: { tools: contexts.tools } }),
      /--from=docs: no stage or image by that name/,
    );
    // FROM a directory context is refused at its line; an image context that is not there is named
    await assert.rejects(
      builder.build({ contextDir: path.join(context, 'app'), contexts: { ...contexts, base: contexts.docs } }),
      /Dockerfile:3.*FROM base: the named context "base" is a directory/s,
    );
    await assert.rejects(
      builder.build({
        contextDir: path.join(context, 'app'),
        contexts: { ...contexts, base: { image: 'demo/absent' } },
      }),
      /base image "demo\/absent" \(the named context "base"\) not found/,
    );
  });
});
