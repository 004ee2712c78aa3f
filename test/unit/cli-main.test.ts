import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildProgram } from '../../src/cli/main.js';

test('every command group registers, alone and all together (help loads them all)', async () => {
  const all = await buildProgram([]);
  const names = all.commands.map((command) => command.name());
  for (const name of ['up', 'down', 'ps', 'logs', 'run', 'build', 'pull', 'config', 'container', 'image', 'watch']) {
    assert.ok(names.includes(name), `missing command ${name}`);
  }
  const image = all.commands.find((command) => command.name() === 'image');
  assert.deepEqual(
    ['build', 'import', 'load', 'pull', 'save'].filter((verb) => !image?.commands.some((c) => c.name() === verb)),
    [],
  );
  for (const argv of [['image'], ['container'], ['up'], ['-f', 'x.yml', 'logs'], ['version'], ['commit']]) {
    const program = await buildProgram(argv);
    assert.ok(program.commands.length > 0, argv.join(' '));
  }
});
