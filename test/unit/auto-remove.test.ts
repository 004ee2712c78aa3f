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
import { autoRemoveCommand } from '../../src/cli/cleanup-command.js';
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

  test('the engine refuses autoRemove with a restart policy, or without an absolute autoRemoveCommand', () => {
    const command = ['/usr/bin/node', '/x/bin/tsfig.js', 'container', 'cleanup', '--rm'];
    checkAutoRemove({ image: 'i', autoRemove: true, autoRemoveCommand: command });
    checkAutoRemove({ image: 'i', autoRemove: true, autoRemoveCommand: command, restart: { name: 'no' } });
    checkAutoRemove({ image: 'i', restart: { name: 'always' } });
    assert.throws(
      () =>
        checkAutoRemove({
          image: 'i',
          autoRemove: true,
          autoRemoveCommand: command,
          restart: { name: 'on-failure', maxRetries: 1 },
        }),
      (error: unknown) => isEngineError(error, 'invalid') && /--restart and --rm/.test(error.message),
    );
    for (const autoRemoveCommand of [undefined, [], ['node', 'x']]) {
      assert.throws(
        () => checkAutoRemove({ image: 'i', autoRemove: true, ...(autoRemoveCommand ? { autoRemoveCommand } : {}) }),
        (error: unknown) => isEngineError(error, 'invalid') && /autoRemoveCommand/.test(error.message),
      );
    }
  });

  test("the CLI's autoRemoveCommand runs this installation's CLI; the engine appends the id and its root", () => {
    const command = autoRemoveCommand();
    assert.equal(command[0], process.execPath);
    assert.ok(path.isAbsolute(command[1] ?? '') && existsSync(command[1] ?? ''), command[1]);
    assert.equal(path.basename(command[1] ?? ''), 'tsfig.js');
    assert.deepEqual(command.slice(2), ['container', 'cleanup', '--rm']);
    const paths = enginePaths('/tmp/some-root', { TSFIG_RUN_ROOT: '/tmp/some-run' });
    const made = (spec: { autoRemove?: boolean; autoRemoveCommand?: readonly string[] }) =>
      autoRemoveExitCommand(paths, containerRecord(spec));
    const exit = made({ autoRemove: true, autoRemoveCommand: command });
    assert.deepEqual(exit?.argv, [...command, ID]);
    assert.deepEqual(
      exit?.env.filter((entry) => !entry.startsWith('PATH=')),
      ['TSFIG_ROOT=/tmp/some-root', 'TSFIG_RUN_ROOT=/tmp/some-run'],
    );
    assert.ok(exit?.env.some((entry) => entry.startsWith('PATH=')));
    // no exit command without autoRemove, nor for a record made before the command was recorded
    assert.equal(made({ autoRemoveCommand: command }), undefined);
    assert.equal(made({ autoRemove: true }), undefined);
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
