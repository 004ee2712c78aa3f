// Item 4 of issue #15: another local user must reach nothing a container leaves in the engine's state (a setuid
// shell or a device node planted in a volume, in a layer or in a container's upper dir; CVE-2021-41091). The state
// root, every directory the engine keeps under it and the runtime dir are root only (0700), whatever the umask and
// whichever command created them first. The probes run as a second local uid (setpriv).
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BUSYBOX_TAR, engineEnv, NEEDS_ROOT, removeEngineObjects, runCli } from '../helpers/engine.js';
import { createEngine } from '../../engine/index.js';
import { asProbe } from './helpers.js';

/** Commands that create state, each first on a fresh root in its own run. */
const FIRST_COMMANDS: readonly (readonly string[])[] = [
  ['volume', 'create', 'data'],
  ['network', 'create', 'net'],
  ['image', 'import', BUSYBOX_TAR, 'tsfig/busybox'],
  ['container', 'ls', '-a'],
];

describe('state permissions against other local users', { skip: NEEDS_ROOT }, () => {
  let umask: number;
  const dirs: string[] = [];

  before(() => {
    umask = process.umask(0); // the CLI runs with umask 000: modes must not depend on it
  });

  after(async () => {
    process.umask(umask);
    for (const dir of dirs) {
      const engine = createEngine({ env: engineEnv(dir) });
      await removeEngineObjects(engine).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  });

  /** Directories of the root and the run root down to depth 2 whose mode lets group or other users in. */
  async function openDirs(dir: string): Promise<string[]> {
    const found: string[] = [];
    const walk = async (at: string, depth: number): Promise<void> => {
      const st = statSync(at);
      if (!st.isDirectory()) return;
      if ((st.mode & 0o067) !== 0) found.push(`${at} ${(st.mode & 0o7777).toString(8)}`);
      if (depth === 0) return;
      for (const entry of await readdir(at)) await walk(path.join(at, entry), depth - 1);
    };
    for (const sub of ['root', 'run']) {
      await walk(path.join(dir, sub), sub === 'root' ? 1 : 2).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
    }
    return found;
  }

  for (const first of FIRST_COMMANDS) {
    test(`\`${first.slice(0, 2).join(' ')}\` first, umask 000: root and its directories are 0700`, async () => {
      const dir = await mkdtemp('/tmp/tsfig-sec-');
      dirs.push(dir);
      await chmod(dir, 0o755); // like /var/lib: the parent of the state root is open to everyone
      const env = engineEnv(dir);
      const result = await runCli(first, env);
      assert.equal(result.code, 0, result.stderr);
      for (const command of FIRST_COMMANDS) await runCli(command, env);
      const probe = await runCli(
        [
          'container',
          'run',
          '-d',
          '-v',
          'data:/data',
          'tsfig/busybox',
          'sh',
          '-c',
          'cp /bin/busybox /data/sh; chmod 4755 /data/sh; sleep 600',
        ],
        env,
      );
      assert.equal(probe.code, 0, probe.stderr);
      assert.deepEqual(await openDirs(dir), []);
      assert.equal(statSync(path.join(dir, 'root')).mode & 0o777, 0o700);
    });
  }

  test('a root created wide before tsfig ran is narrowed; the planted setuid shell is out of reach', async () => {
    const dir = await mkdtemp('/tmp/tsfig-sec-');
    dirs.push(dir);
    await chmod(dir, 0o755); // like /var/lib: the parent of the state root is open to everyone
    await mkdir(path.join(dir, 'root', 'volumes'), { recursive: true, mode: 0o755 });
    const env = engineEnv(dir);
    assert.equal((await runCli(['image', 'import', BUSYBOX_TAR, 'tsfig/busybox'], env)).code, 0);
    const run = await runCli(
      [
        'container',
        'run',
        '--rm',
        '-v',
        'data:/data',
        'tsfig/busybox',
        'sh',
        '-c',
        'cp /bin/busybox /data/sh && chmod 4755 /data/sh',
      ],
      env,
    );
    assert.equal(run.code, 0, run.stderr);
    const planted = path.join(dir, 'root', 'volumes', 'data', '_data', 'sh');
    assert.equal(statSync(planted).mode & 0o4000, 0o4000, 'the container planted a setuid binary');
    // the other user can neither run it nor list anything of the state
    const exec = asProbe([planted, '-c', 'id -u']);
    assert.notEqual(exec.code, 0, exec.stdout);
    assert.match(exec.stderr, /Permission denied/);
    for (const target of [path.join(dir, 'root'), path.join(dir, 'root', 'volumes'), path.join(dir, 'run')]) {
      const ls = asProbe(['ls', target]);
      assert.notEqual(ls.code, 0, `${target} is readable by another user: ${ls.stdout}`);
    }
    assert.deepEqual(await openDirs(dir), []);
  });
});
