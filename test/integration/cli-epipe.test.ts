/**
 * A reader that goes away (`tsfig container run ... | head -3`): the CLI ends quietly as a process killed by SIGPIPE
 * would (141), no stack trace, and the --rm container is still removed when it exits.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, eventually, makeTestEngine, skipUnlessRoot } from '../helpers/engine.js';

test('a closed stdout pipe ends the CLI with 141 and no stack trace; the --rm container is removed anyway', async (t) => {
  if (skipUnlessRoot(t)) return;
  const te = await makeTestEngine();
  t.after(() => te.cleanup());
  const cli = [process.execPath, path.join(REPO, 'bin', 'tsfig.js')].map((part) => `'${part}'`).join(' ');
  const script = `${cli} container run --rm tsfig/busybox:latest seq 1 200000 | head -3; echo "status=\${PIPESTATUS[0]}" >&2`;
  const result = spawnSync('bash', ['-c', script], { env: te.env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(result.stdout, '1\n2\n3\n');
  assert.match(result.stderr, /status=141/);
  assert.doesNotMatch(result.stderr, /EPIPE|\n\s+at |internal error/);
  await eventually(
    async () => ((await te.engine.containers.list({ all: true })).length === 0 ? true : undefined),
    30_000,
  );
});
