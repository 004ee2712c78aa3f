import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildProgram, permissionDenied } from '../../src/cli/main.js';

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

test('a permission error from the file system is a user error (exit 77, no stack), other errors stay bugs', () => {
  const eacces = Object.assign(new Error("EACCES: permission denied, mkdir '/var/lib/tsfig'"), {
    code: 'EACCES',
    syscall: 'mkdir',
    path: '/var/lib/tsfig',
  });
  assert.equal(permissionDenied(eacces), 'permission denied: mkdir /var/lib/tsfig');
  assert.equal(permissionDenied(Object.assign(new Error('x'), { code: 'EROFS' })), 'read-only file system (EROFS)');
  assert.equal(permissionDenied(Object.assign(new Error('x'), { code: 'ENOENT', path: '/x' })), undefined);
  assert.equal(permissionDenied(new TypeError('x is undefined')), undefined);
});
