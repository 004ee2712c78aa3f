/** develop.watch initial_sync: the walk finds included files below directories that are not included themselves. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { walk } from '../../src/watch/sync.js';

test('walk: include **/*.js finds src/a.js although src/ is not included; ignored directories are not entered', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'tsfig-walk-'));
  try {
    await mkdir(path.join(root, 'src', 'deep'), { recursive: true });
    await mkdir(path.join(root, 'node_modules'), { recursive: true });
    await writeFile(path.join(root, 'src', 'a.js'), 'a');
    await writeFile(path.join(root, 'src', 'b.txt'), 'b');
    await writeFile(path.join(root, 'src', 'deep', 'c.js'), 'c');
    await writeFile(path.join(root, 'node_modules', 'x.js'), 'x');
    const keep = (p: string) => p.endsWith('.js');
    const descend = (p: string) => path.basename(p) !== 'node_modules';
    const found = (await walk(root, keep, descend)).map((p) => path.relative(root, p)).sort();
    assert.deepEqual(found, ['src/a.js', 'src/deep/c.js']);
    // without a separate descend predicate, keep decides both (the old behaviour for rules without include)
    const all = (await walk(root, () => true)).map((p) => path.relative(root, p)).sort();
    assert.ok(all.includes('node_modules/x.js') && all.includes('src'));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
