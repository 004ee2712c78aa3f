import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { LayerView, resolveInRoot } from '../../engine/layers/rootfs.js';

describe('build paths stay inside their root', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'tsfig-root-'));
  mkdirSync(path.join(root, 'usr/lib'), { recursive: true });
  writeFileSync(path.join(root, 'usr/lib/file'), 'x');
  symlinkSync('usr/lib', path.join(root, 'lib'));
  symlinkSync('/usr', path.join(root, 'abs'));
  symlinkSync('../../../../..', path.join(root, 'up'));
  symlinkSync('/etc/passwd', path.join(root, 'passwd'));
  symlinkSync('loop', path.join(root, 'loop'));

  test('relative and absolute symlinks resolve inside the root', async () => {
    assert.equal(await resolveInRoot(root, 'lib/file', true), path.join(root, 'usr/lib/file'));
    assert.equal(await resolveInRoot(root, 'abs/lib/file', true), path.join(root, 'usr/lib/file'));
    assert.equal(await resolveInRoot(root, 'up/usr', true), path.join(root, 'usr'));
    assert.equal(await resolveInRoot(root, '../../etc/passwd', true), path.join(root, 'etc/passwd'));
    assert.equal(await resolveInRoot(root, 'passwd', true), path.join(root, 'etc/passwd'));
    assert.equal(await resolveInRoot(root, 'passwd', false), path.join(root, 'passwd'));
  });

  test('a symlink loop is an error, not a hang', async () => {
    await assert.rejects(resolveInRoot(root, 'loop/x', true), /too many levels of symbolic links/);
  });

  test('a layer view finds the topmost copy and follows links in directories', async () => {
    const upper = mkdtempSync(path.join(tmpdir(), 'tsfig-upper-'));
    try {
      mkdirSync(path.join(upper, 'usr/lib'), { recursive: true });
      writeFileSync(path.join(upper, 'usr/lib/file'), 'upper');
      const view = new LayerView([upper, root]);
      assert.equal((await view.readFile('/lib/file'))?.toString(), 'upper');
      assert.equal((await view.lookup('/usr/lib'))?.stat.isDirectory(), true);
      assert.equal(await view.lookup('/missing'), undefined);
    } finally {
      rmSync(upper, { recursive: true, force: true });
    }
  });

  after(() => rmSync(root, { recursive: true, force: true }));
});
