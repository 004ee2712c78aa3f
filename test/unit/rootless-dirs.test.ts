import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { inRootlessSession, rootlessDirs, rootlessNetns, sessionEnv } from '../../engine/rootless/index.js';

describe('rootless session paths', () => {
  test('XDG dirs when set, ~/.local/share and /tmp/tsfig-<uid> otherwise', () => {
    assert.deepEqual(rootlessDirs({ HOME: '/home/u', XDG_DATA_HOME: '/d', XDG_RUNTIME_DIR: '/run/user/1000' }, 1000), {
      dataRoot: '/d/tsfig',
      runtimeDir: '/run/user/1000/tsfig',
    });
    const plain = rootlessDirs({ HOME: '/home/u' }, 1000);
    assert.equal(plain.dataRoot, '/home/u/.local/share/tsfig');
    assert.match(plain.runtimeDir, /\/tsfig-1000$/);
  });

  test("the session's environment: the user's state root unless TSFIG_ROOT says otherwise, a run root under the session", () => {
    const dirs = { dataRoot: '/home/u/.local/share/tsfig', runtimeDir: '/run/user/1000/tsfig' };
    const session = {
      holderPid: 42,
      holderStart: 1,
      slirp: { pid: 43, start: 2, apiSocket: '/run/user/1000/tsfig/s' },
    };
    const env = sessionEnv(session, dirs, { PATH: '/bin' });
    assert.equal(env.TSFIG_ROOT, dirs.dataRoot);
    assert.match(env.TSFIG_RUN_ROOT ?? '', /^\/run\/user\/1000\/tsfig\/[0-9a-f]{8}$/);
    assert.equal(env.TSFIG_ROOTLESS_PORTS, '/run/user/1000/tsfig/s');
    assert.equal(inRootlessSession(env), true);
    assert.equal(rootlessNetns(env), '/proc/42/ns/net');
    assert.equal(sessionEnv(session, dirs, { TSFIG_ROOT: '/x' }).TSFIG_ROOT, '/x');
    assert.equal(inRootlessSession({}), false);
    assert.equal(rootlessNetns({ TSFIG_ROOTLESS_NETNS: '/proc/1/ns/net' }), undefined);
  });
});
