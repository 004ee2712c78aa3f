/** Auto-removal (`--rm`): CLI flags → ContainerSpec, the restart-policy conflict, the exit command in runtime.conf. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { autoRemoveExitCommand, checkAutoRemove } from '../../engine/containers/cleanup.js';
import { runtimeConfEntries } from '../../engine/containers/runtime-config.js';
import { isEngineError } from '../../engine/errors.js';
import { renderRuntimeConf } from '../../engine/runtime/conf.js';
import { enginePaths } from '../../engine/state/paths.js';
import { specFromFlags } from '../../src/cli/commands/container.js';
import { TsfigError } from '../../src/errors.js';
import { RECORD_ID, containerRecord } from '../helpers/records.js';

const ID = RECORD_ID;
const record = (autoRemove: boolean) => containerRecord({ autoRemove });

describe('auto-remove', () => {
  test('--rm sets autoRemove; with a restart policy other than no it is a usage error', () => {
    assert.equal(specFromFlags('i', [], { rm: true }, []).autoRemove, true);
    assert.equal(specFromFlags('i', [], {}, []).autoRemove, undefined);
    assert.equal(specFromFlags('i', [], { rm: true, restart: 'no' }, []).autoRemove, true);
    for (const restart of ['always', 'on-failure', 'on-failure:2', 'unless-stopped']) {
      assert.throws(
        () => specFromFlags('i', [], { rm: true, restart }, []),
        (error: unknown) =>
          error instanceof TsfigError &&
          error.kind === 'usage' &&
          /conflicting options: --restart and --rm/.test(error.message),
      );
    }
  });

  test('the engine refuses autoRemove with a restart policy', () => {
    checkAutoRemove({ image: 'i', autoRemove: true });
    checkAutoRemove({ image: 'i', autoRemove: true, restart: { name: 'no' } });
    checkAutoRemove({ image: 'i', restart: { name: 'always' } });
    assert.throws(
      () => checkAutoRemove({ image: 'i', autoRemove: true, restart: { name: 'on-failure', maxRetries: 1 } }),
      (error: unknown) => isEngineError(error, 'invalid'),
    );
  });

  test('the exit command runs this installation’s CLI against the same root, with a minimal environment', () => {
    const paths = enginePaths('/tmp/some-root', { TSFIG_RUN_ROOT: '/tmp/some-run' });
    const exit = autoRemoveExitCommand(paths, ID);
    assert.equal(exit.argv[0], process.execPath);
    assert.ok(path.isAbsolute(exit.argv[1] ?? '') && existsSync(exit.argv[1] ?? ''), exit.argv[1]);
    assert.equal(path.basename(exit.argv[1] ?? ''), 'tsfig.js');
    assert.deepEqual(exit.argv.slice(2), ['container', 'cleanup', '--rm', ID]);
    assert.deepEqual(
      exit.env.filter((entry) => !entry.startsWith('PATH=')),
      ['TSFIG_ROOT=/tmp/some-root', 'TSFIG_RUN_ROOT=/tmp/some-run'],
    );
    assert.ok(exit.env.some((entry) => entry.startsWith('PATH=')));
  });

  test('runtime.conf carries exit_cmd and exit_env only when given', () => {
    const dirs = { dir: '/c', runDir: '/r', cgroup: 'tsf-x/aaaa' };
    const lines = (text: string) => text.split('\n').filter((line) => line.startsWith('exit_'));
    assert.deepEqual(lines(renderRuntimeConf(runtimeConfEntries(record(false), ['/l'], dirs, 'new'))), []);
    const exit = { argv: ['/usr/bin/node', '/x/bin/tsfig.js', 'container', 'cleanup', '--rm', ID], env: ['A=b c'] };
    assert.deepEqual(lines(renderRuntimeConf(runtimeConfEntries(record(true), ['/l'], dirs, 'new', exit))), [
      'exit_cmd /usr/bin/node',
      'exit_cmd /x/bin/tsfig.js',
      'exit_cmd container',
      'exit_cmd cleanup',
      'exit_cmd --rm',
      `exit_cmd ${ID}`,
      'exit_env A=b c',
    ]);
  });
});
