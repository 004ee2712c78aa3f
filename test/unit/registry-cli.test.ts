import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PullProgress, progressBar, pullLine, pushLine } from '../../src/cli/commands/registry.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

describe('registry CLI output', () => {
  test("docker's lines", () => {
    assert.equal(pullLine({ type: 'layer', digest: DIGEST, status: 'exists' }), 'abababababab: Already exists');
    assert.equal(pullLine({ type: 'layer', digest: DIGEST, status: 'done' }), 'abababababab: Pull complete');
    assert.equal(pullLine({ type: 'layer', digest: DIGEST, status: 'downloading', current: 1, total: 2 }), undefined);
    assert.equal(
      pushLine({ type: 'layer', digest: DIGEST, status: 'mounted' }),
      'abababababab: Mounted from another repository',
    );
    assert.equal(pushLine({ type: 'layer', digest: DIGEST, status: 'exists' }), 'abababababab: Layer already exists');
  });

  test('progress bar and the in-place renderer', () => {
    assert.equal(progressBar(0, 1000, 10), '[          ]  0.0kB/1.0kB');
    assert.equal(progressBar(5_000_000, 10_000_000, 10), '[====>     ]  5.0MB/10.0MB');
    assert.equal(progressBar(10, 10, 4), '[===>]  0.0kB/0.0kB');
    let out = '';
    const progress = new PullProgress((text) => (out += text));
    progress.update({ type: 'layer', digest: DIGEST, status: 'waiting', total: 10 });
    assert.equal(out, '\x1b[2Kabababababab: Waiting\n');
    out = '';
    progress.update({ type: 'layer', digest: `sha256:${'cd'.repeat(32)}`, status: 'exists' });
    assert.equal(out, '\x1b[1A\x1b[2Kabababababab: Waiting\n\x1b[2Kcdcdcdcdcdcd: Already exists\n');
    out = '';
    progress.update({ type: 'layer', digest: DIGEST, status: 'done' });
    assert.equal(out, '\x1b[2A\x1b[2Kabababababab: Pull complete\n\x1b[2Kcdcdcdcdcdcd: Already exists\n');
  });
});
