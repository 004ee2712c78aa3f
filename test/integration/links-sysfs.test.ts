/**
 * isMountPoint (engine/network/sandboxes.ts): a sandbox is a netns file with its namespace bind-mounted on it, told by one
 * stat instead of reading the mount table at each container start. linksFromSysfs: the repair of the host reads this root's links (name, alias, master)
 * from sysfs instead of starting `ip -j -d link show` on every command (issue 18). It must give what ip gives, and
 * give nothing (so that ip answers) where sysfs shows another network namespace than the process's. The links are
 * the test's own (a bridge and a veth pair with a unique prefix), removed at the end even on failure.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { isMountPoint, linksFromSysfs } from '../../engine/network/sandboxes.js';
import { REPO, skipUnlessRoot } from '../helpers/engine.js';

const prefix = `tsfl${randomBytes(3).toString('hex')}`;
const bridge = `${prefix}b`;
const veth = `${prefix}a`;
const peer = `${prefix}p`;
const isRoot = process.getuid?.() === 0;
const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });

function removeLinks(): void {
  for (const name of [bridge, veth]) spawnSync('ip', ['link', 'del', name], { stdio: 'ignore' });
}

before(() => {
  if (!isRoot) return;
  removeLinks();
  ip('link', 'add', bridge, 'type', 'bridge');
  ip('link', 'set', bridge, 'alias', 'tsfig:links-sysfs test');
  ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', peer);
  ip('link', 'set', veth, 'master', bridge);
  ip('link', 'set', veth, 'alias', 'tsfig:links-sysfs');
});

after(removeLinks);

type Link = { ifname: string; ifalias?: string; master?: string };
const key = (l: Link): string => JSON.stringify([l.ifname, l.ifalias ?? null, l.master ?? null]);

test('the prefixed links from sysfs are those ip lists: names, aliases, masters', (t) => {
  if (skipUnlessRoot(t)) return;
  const fromIp = (JSON.parse(ip('-j', '-d', 'link', 'show')) as Link[])
    .filter((l) => l.ifname.startsWith(prefix))
    .map(key)
    .sort();
  const fromSysfs = (linksFromSysfs(prefix) ?? assert.fail('sysfs not read')).map(key).sort();
  assert.deepEqual(fromSysfs, fromIp);
  assert.deepEqual(
    fromSysfs,
    [
      key({ ifname: veth, ifalias: 'tsfig:links-sysfs', master: bridge }),
      key({ ifname: bridge, ifalias: 'tsfig:links-sysfs test' }),
      key({ ifname: peer }),
    ].sort(),
  );
  // every link of the namespace, not only the prefixed ones
  const all = (JSON.parse(ip('-j', '-d', 'link', 'show')) as Link[]).map(key).sort();
  assert.deepEqual((linksFromSysfs('') ?? []).map(key).sort(), all);
});

test('in another network namespace with the host sysfs still mounted, it answers nothing and ip is asked', (t) => {
  if (skipUnlessRoot(t)) return;
  const script = `import('${path.join(REPO, 'engine/network/sandboxes.ts')}').then((m) => console.log(JSON.stringify(m.linksFromSysfs('') ?? null)))`;
  const result = spawnSync('unshare', ['-n', process.execPath, '--import', 'tsx', '-e', script], {
    cwd: REPO,
    encoding: 'utf8',
  });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout.trim(), 'null');
});

test('isMountPoint: a netns bind-mounted on a file is one; the bare file and a missing one are not', (t) => {
  if (skipUnlessRoot(t)) return;
  const dir = mkdtempSync(path.join(tmpdir(), 'tsfig-it-mountpoint-'));
  const file = path.join(dir, 'netns');
  writeFileSync(file, '');
  try {
    assert.equal(isMountPoint(file), false);
    execFileSync('mount', ['--bind', '/proc/self/ns/net', file]);
    try {
      assert.equal(isMountPoint(file), true);
    } finally {
      execFileSync('umount', [file]);
    }
    assert.equal(isMountPoint(file), false);
    assert.equal(isMountPoint(path.join(dir, 'absent')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
