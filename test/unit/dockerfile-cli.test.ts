import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildOptionsFromFlags, renderBuildEvent, renderHistory } from '../../src/cli/commands/build.js';

const io = { cwd: '/work/app', env: { FROM_ENV: 'env-value' }, readStdin: () => 'FROM scratch\n' };

describe('tsfig image build: flags and output', () => {
  test('docker build flags map to BuildOptions', () => {
    assert.deepEqual(
      buildOptionsFromFlags(
        '.',
        {
          tag: ['a:1', 'b'],
          file: 'docker/Dockerfile.dev',
          buildArg: ['A=1', 'FROM_ENV', 'UNSET'],
          target: 'dev',
          cache: false,
          label: ['x=y', 'empty'],
          pull: true,
        },
        io,
      ),
      {
        contextDir: '/work/app',
        dockerfile: '/work/app/docker/Dockerfile.dev',
        buildArgs: { A: '1', FROM_ENV: 'env-value' },
        target: 'dev',
        tags: ['a:1', 'b'],
        labels: { x: 'y', empty: '' },
        noCache: true,
        pull: true,
      },
    );
  });

  test('-f - reads the Dockerfile from stdin; defaults keep the cache', () => {
    const options = buildOptionsFromFlags('ctx', { file: '-', cache: true }, io);
    assert.equal(options.dockerfileInline, 'FROM scratch\n');
    assert.equal(options.contextDir, '/work/app/ctx');
    assert.equal(options.noCache, false);
  });

  test('--build-context: a directory relative to the working directory, or docker-image://; remote ones refused', () => {
    const options = buildOptionsFromFlags(
      '.',
      { buildContext: ['docs=../docs', 'base=docker-image://tsfig/busybox:latest'], cache: true },
      io,
    );
    assert.deepEqual(options.contexts, { docs: { dir: '/work/docs' }, base: { image: 'tsfig/busybox:latest' } });
    assert.throws(
      () => buildOptionsFromFlags('.', { buildContext: ['src=https://example.com/x.git'], cache: true }, io),
      /--build-context src: "https:\/\/example.com\/x.git" is not supported/,
    );
    assert.throws(
      () => buildOptionsFromFlags('.', { buildContext: ['docs'], cache: true }, io),
      /invalid --build-context "docs"/,
    );
  });

  test('an empty build-arg name is a usage error', () => {
    assert.throws(() => buildOptionsFromFlags('.', { buildArg: ['=x'], cache: true }, io), /the name is empty/);
  });

  test('steps print as the classic builder does', () => {
    assert.equal(renderBuildEvent({ kind: 'step', step: 3, total: 7, text: 'RUN make' }), 'Step 3/7 : RUN make\n');
    assert.equal(renderBuildEvent({ kind: 'cache-hit', step: 3 }), ' ---> Using cache\n');
    assert.equal(renderBuildEvent({ kind: 'output', step: 3, stream: 'stdout', text: 'partial' }), 'partial\n');
    assert.equal(
      renderBuildEvent({ kind: 'step-done', step: 3, durationMs: 1234, id: 'abcdef012345' }),
      ' ---> abcdef012345 (1.2s)\n',
    );
  });

  test('history renders as docker history', () => {
    assert.equal(
      renderHistory([
        { image: 'abcdef012345', created: '2 minutes ago', createdBy: 'CMD ["sh"]', size: '0B', comment: '' },
        { image: '<missing>', created: '3 days ago', createdBy: '', size: '2.43MB', comment: 'Imported' },
      ]),
      [
        'IMAGE          CREATED         CREATED BY   SIZE     COMMENT',
        'abcdef012345   2 minutes ago   CMD ["sh"]   0B',
        '<missing>      3 days ago                   2.43MB   Imported',
        '',
      ].join('\n'),
    );
  });
});
