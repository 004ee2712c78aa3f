import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { enginePaths } from '../../engine/state/paths.js';
import { TEST_DIR_PREFIX, isRoot, processesOf } from '../helpers/engine.js';

// Runs last (file order): the suites before it must have removed every host object they created. Objects of the
// default root (/var/lib/tsfig, a developer's own stacks) are not the tests' and are ignored.
test(
  'the test suite leaves no tsfig cgroups, mounts, netns, interfaces, processes or temp dirs behind',
  { skip: !isRoot },
  async () => {
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
      if (/tsfig-it-|\/run\/tsfig\/(?!\w+\/netns)/.test(line) && !line.includes(own.runRoot))
        found.push(`mount ${line}`);
    }
    if (existsSync('/run/tsfig')) {
      for (const entry of readdirSync('/run/tsfig')) {
        const netns = path.join('/run/tsfig', entry, 'netns');
        if (entry !== own.rootId && existsSync(netns) && readdirSync(netns).length > 0) found.push(`netns ${netns}`);
      }
    }
    // engine/state/lock.ts: a socket left by a process that exited or died (a temporary one, or one that refuses
    // connections); engine/network/registry.ts: a temporary file of a registry write cut short
    const locks = '/run/tsfig/locks';
    for (const entry of existsSync(locks) ? readdirSync(locks) : []) {
      if (entry.startsWith('.t.') || !(await accepts(path.join(locks, entry)))) found.push(`lock ${locks}/${entry}`);
    }
    for (const entry of existsSync('/run/tsfig') ? readdirSync('/run/tsfig') : []) {
      if (entry.endsWith('.tmp')) found.push(`temporary file /run/tsfig/${entry}`);
    }
    const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
    for (const line of links.split('\n')) {
      const name = /^\d+: ([^:@]+)/.exec(line)?.[1];
      if (name !== undefined && name.startsWith('tsf') && !name.startsWith(own.hostPrefix)) found.push(`link ${name}`);
    }
    // A test's detached processes (a container's exit command names its root only in its environment) may still be
    // finishing; once they are gone, no test's temp dir may be left: every test removes its own (issue #20: an exit
    // command that opened the engine after its test had removed the root made the root again).
    const detached = await waitFor(() => processesOf(TEST_DIR_PREFIX), 30_000);
    for (const line of detached) found.push(`process ${line}`);
    for (const entry of readdirSync(path.dirname(TEST_DIR_PREFIX))) {
      const dir = path.join(path.dirname(TEST_DIR_PREFIX), entry);
      if (dir.startsWith(TEST_DIR_PREFIX)) found.push(`dir ${dir} (${readdirSync(dir).join(' ') || 'empty'})`);
    }
    // the host-wide registry of user namespace ranges goes with its last range (engine/containers/userns.ts)
    if (existsSync('/var/lib/tsfig-userns'))
      found.push(
        `userns registry /var/lib/tsfig-userns (${readdirSync('/var/lib/tsfig-userns').join(' ') || 'empty'})`,
      );
    assert.deepEqual(found, []);
  },
);

/** Whether a unix socket file accepts a connection (its process is alive). */
function accepts(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(file);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** Polls list until it is empty or timeoutMs passed; returns its last value. */
async function waitFor(list: () => string[], timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = list();
    if (found.length === 0 || Date.now() > deadline) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
