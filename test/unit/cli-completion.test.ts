import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { bashCompletion } from '../../src/cli/commands/completion.js';

test('bash completion completes verbs, group verbs and the project services', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tsfig-completion-'));
  try {
    // A stand-in `tsfig` on PATH answers `config --services` as the real one would for this project.
    writeFileSync(path.join(dir, 'tsfig'), '#!/bin/sh\n[ "$1 $2" = "config --services" ] && printf "db\\nweb\\n"\n', {
      mode: 0o755,
    });
    writeFileSync(path.join(dir, 'completion.bash'), bashCompletion());
    const complete = (...words: string[]) =>
      execFileSync(
        'bash',
        [
          '-c',
          `source completion.bash; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _tsfig; printf '%s\\n' "\${COMPREPLY[@]}"`,
        ],
        { cwd: dir, encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` } },
      )
        .trim()
        .split('\n');
    assert.deepEqual(complete('tsfig', 'do'), ['down']);
    assert.deepEqual(complete('tsfig', 'image', 'pu'), ['pull', 'push']);
    assert.deepEqual(complete('tsfig', '-f', 'x.yml', 'logs', 'w'), ['web']);
    assert.deepEqual(complete('tsfig', 'up', ''), ['db', 'web']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
