import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { enginePaths } from '../../engine/state/paths.js';
import { isRoot } from '../helpers/engine.js';

// Runs last (file order): the suites before it must have removed every host object they created. Objects of the
// default root (/var/lib/tsfig, a developer's own stacks) are not the tests' and are ignored.
test('the test suite leaves no tsfig cgroups, mounts, netns, interfaces or processes behind', { skip: !isRoot }, () => {
  const own = enginePaths('/var/lib/tsfig', {});
  const found: string[] = [];
  for (const controller of readdirSync('/sys/fs/cgroup')) {
    let entries: string[] = [];
    try {
      entries = readdirSync(path.join('/sys/fs/cgroup', controller));
    } catch {
      continue;
    }
    for (const entry of entries) {
      if (entry.startsWith('tsf') && entry !== own.cgroupParent) found.push(`cgroup ${controller}/${entry}`);
    }
  }
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    if (/tsfig-it-|\/run\/tsfig\/(?!\w+\/netns)/.test(line) && !line.includes(own.runRoot)) found.push(`mount ${line}`);
  }
  if (existsSync('/run/tsfig')) {
    for (const entry of readdirSync('/run/tsfig')) {
      const netns = path.join('/run/tsfig', entry, 'netns');
      if (entry !== own.rootId && existsSync(netns) && readdirSync(netns).length > 0) found.push(`netns ${netns}`);
    }
  }
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  for (const line of links.split('\n')) {
    const name = /^\d+: ([^:@]+)/.exec(line)?.[1];
    if (name !== undefined && name.startsWith('tsf') && !name.startsWith(own.hostPrefix)) found.push(`link ${name}`);
  }
  const ps = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  for (const line of ps.split('\n')) if (line.includes('/tmp/tsfig-it-')) found.push(`process ${line.trim()}`);
  assert.deepEqual(found, []);
});
