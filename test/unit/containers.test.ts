import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { capabilityMask, DEFAULT_CAPABILITIES, resolveCapabilities } from '../../engine/containers/capabilities.js';
import { mergeEnv, resolveArgv, resolveProcess } from '../../engine/containers/process.js';
import { runtimeConfEntries } from '../../engine/containers/runtime-config.js';
import { signalNumber } from '../../engine/containers/signals.js';
import type { ContainerRecord } from '../../engine/containers/types.js';
import { EngineError } from '../../engine/errors.js';
import { renderRuntimeConf } from '../../engine/runtime/conf.js';
import { parseRuntimeMessage, runtimeError } from '../../engine/runtime/protocol.js';

describe('capabilities', () => {
  test("docker's default set is CapEff 00000000a80425fb", () => {
    assert.equal(capabilityMask(DEFAULT_CAPABILITIES), '00000000a80425fb');
    assert.equal(capabilityMask(resolveCapabilities()), '00000000a80425fb');
  });

  test('cap-add and cap-drop accept names with or without CAP_ and ALL', () => {
    const set = resolveCapabilities({ capAdd: ['net_admin'], capDrop: ['CAP_MKNOD', 'chown'] });
    assert.ok(set.includes('CAP_NET_ADMIN'));
    assert.ok(!set.includes('CAP_MKNOD'));
    assert.ok(!set.includes('CAP_CHOWN'));
    assert.deepEqual(resolveCapabilities({ capDrop: ['ALL'], capAdd: ['KILL'] }), ['CAP_KILL']);
    assert.equal(resolveCapabilities({ privileged: true }).length, 41);
  });

  test('an unknown capability is a usage error naming the flag', () => {
    assert.throws(
      () => resolveCapabilities({ capAdd: ['NET_ADMNI'] }),
      (error: unknown) =>
        error instanceof EngineError && /--cap-add: unknown capability "NET_ADMNI"/.test(error.message),
    );
  });
});

describe('container process', () => {
  const image = { Entrypoint: ['/entry'], Cmd: ['serve', '--port', '80'], Env: ['PATH=/custom/bin', 'A=1'] };

  test('the image entrypoint and cmd are used by default', () => {
    assert.deepEqual(resolveArgv(image, {}, 'img'), ['/entry', 'serve', '--port', '80']);
  });

  test('a command replaces the image cmd but keeps the entrypoint', () => {
    assert.deepEqual(resolveArgv(image, { cmd: ['sh'] }, 'img'), ['/entry', 'sh']);
  });

  test('an entrypoint replaces the image entrypoint and drops its cmd', () => {
    assert.deepEqual(resolveArgv(image, { entrypoint: ['/bin/echo'] }, 'img'), ['/bin/echo']);
    assert.deepEqual(resolveArgv(image, { entrypoint: [], cmd: ['ls'] }, 'img'), ['ls']);
  });

  test('no command at all is an error naming the image', () => {
    assert.throws(() => resolveArgv({}, {}, 'tsfig/busybox'), /no command specified for image "tsfig\/busybox"/);
  });

  test('env: image values, then caller values by key; PATH and HOSTNAME defaulted', () => {
    assert.deepEqual(mergeEnv(['PATH=/custom/bin', 'A=1'], ['A=2', 'B=3'], 'h1'), [
      'PATH=/custom/bin',
      'HOSTNAME=h1',
      'A=2',
      'B=3',
    ]);
    assert.ok(mergeEnv([], [], 'h').includes('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'));
  });

  test('env: a bare KEY removes the image value (dockerd ReplaceOrAppendEnvValues); PATH and HOSTNAME stay', () => {
    assert.deepEqual(mergeEnv(['EMPTY=not_empty', 'A=1'], ['EMPTY', 'PATH', 'HOSTNAME', 'NEVER'], 'h1'), [
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      'HOSTNAME=h1',
      'A=1',
    ]);
    // a later KEY=VALUE sets it again
    assert.ok(mergeEnv(['A=1'], ['A', 'A=2'], 'h').includes('A=2'));
  });

  test('working directory must be absolute; user comes from the image unless given', () => {
    assert.throws(() => resolveProcess(image, { image: 'x', workingDir: 'rel' }, 'x', 'h'), /not an absolute path/);
    const process = resolveProcess({ ...image, User: 'daemon', WorkingDir: '/srv' }, { image: 'x' }, 'x', 'h');
    assert.equal(process.user, 'daemon');
    assert.equal(process.cwd, '/srv');
  });
});

describe('runtime.conf', () => {
  test('values escape backslash, newline and tab; keys are checked', () => {
    assert.equal(
      renderRuntimeConf([
        ['arg', 'a\\b\nc\td'],
        ['init', true],
        ['pids', 10],
      ]),
      'version 1\narg a\\\\b\\nc\\td\ninit 1\npids 10\n',
    );
    assert.throws(() => renderRuntimeConf([['Bad Key', 'x']]), /invalid runtime.conf key/);
  });

  test('a container record renders to the runtime keys in order', () => {
    const record: ContainerRecord = {
      v: 1,
      id: 'a'.repeat(64),
      name: 'web',
      created: '2026-01-01T00:00:00.000Z',
      imageId: 'sha256:' + 'b'.repeat(64),
      imageRef: 'tsfig/busybox',
      spec: {
        image: 'tsfig/busybox',
        memory: 1048576,
        nanoCpus: 1.5e9,
        ulimits: [{ name: 'nofile', soft: 10, hard: 20 }],
      },
      process: { argv: ['sh', '-c', 'echo hi'], env: ['PATH=/bin'], cwd: '/', user: '' },
      hostname: 'aaaaaaaaaaaa',
      capabilities: ['CAP_KILL'],
      stopSignal: 15,
      stopTimeout: 10,
      mounts: [{ destination: '/data', type: 'bind', source: '/v/_data', options: ['rbind', 'ro'], copy: true }],
      labels: {},
    };
    const text = renderRuntimeConf(
      runtimeConfEntries(record, ['/l/2/diff', '/l/1/diff'], { dir: '/c', runDir: '/r', cgroup: 'tsf-x/aaaa' }, 'new'),
    );
    const lines = text.split('\n');
    assert.equal(lines[0], 'version 1');
    assert.deepEqual(
      lines.filter((line) => line.startsWith('lower ')),
      ['lower /l/2/diff', 'lower /l/1/diff'],
    );
    assert.deepEqual(
      lines.filter((line) => line.startsWith('arg ')),
      ['arg sh', 'arg -c', 'arg echo hi'],
    );
    for (const expected of [
      'mount /etc/hosts',
      'mount /data',
      'mount.options rbind,ro',
      'mount.copy 1',
      'cap CAP_KILL',
      'seccomp default',
      'memory 1048576',
      'cpu_quota 150000',
      'cpu_period 100000',
      'rlimit NOFILE 10 20',
      'cgroup tsf-x/aaaa',
      'netns new',
      'log /c/container-json.log',
      'status /c/status.json',
      'run_dir /r',
    ]) {
      assert.ok(lines.includes(expected), `missing line: ${expected}`);
    }
  });
});

describe('runtime.conf of engine-written files', () => {
  test('a file with env is an env_file entry (path only) replacing that variable; one without a destination is not mounted', () => {
    const record: ContainerRecord = {
      v: 1,
      id: 'a'.repeat(64),
      name: 'run',
      created: '2026-01-01T00:00:00.000Z',
      imageId: 'sha256:' + 'b'.repeat(64),
      imageRef: 'tsfig/busybox',
      spec: {
        image: 'tsfig/busybox',
        files: [
          { destination: '/run/secrets/pw', uid: 0, gid: 0, mode: 0o400, sha256: 'c'.repeat(64) },
          { destination: '', env: 'TOKEN', uid: 0, gid: 0, mode: 0o400, sha256: 'd'.repeat(64) },
        ],
      },
      process: { argv: ['true'], env: ['PATH=/bin', 'TOKEN=from-the-image'], cwd: '/', user: '' },
      hostname: 'aaaaaaaaaaaa',
      capabilities: [],
      stopSignal: 15,
      stopTimeout: 10,
      mounts: [],
      labels: {},
    };
    const lines = renderRuntimeConf(
      runtimeConfEntries(record, ['/l/1/diff'], { dir: '/c', runDir: '/r', cgroup: 'tsf-x/aaaa' }, 'new'),
    ).split('\n');
    assert.deepEqual(
      lines.filter((line) => /^(env|env_file) /.test(line)),
      ['env PATH=/bin', 'env_file TOKEN=/c/files/1'],
    );
    assert.deepEqual(
      lines.filter((line) => line.startsWith('mount.source /c/files/')),
      ['mount.source /c/files/0'],
    );
  });
});

describe('runtime protocol', () => {
  test('messages are parsed and errors keep step, errno and exit code', () => {
    assert.deepEqual(parseRuntimeMessage('{"v":1,"type":"started","pid":5,"monitor":4}'), {
      v: 1,
      type: 'started',
      pid: 5,
      monitor: 4,
    });
    const message = parseRuntimeMessage(
      '{"v":1,"type":"error","step":"exec","errno":2,"message":"exec `nope`: No such file or directory","code":127}',
    );
    assert.equal(message.type, 'error');
    if (message.type !== 'error') return;
    const error = runtimeError(message, 'cannot start container web');
    assert.equal(error.exitCode, 127);
    assert.equal(error.step, 'exec');
    assert.match(error.message, /cannot start container web: exec `nope`/);
  });

  test('a message of another protocol version is refused with a hint', () => {
    assert.throws(() => parseRuntimeMessage('{"v":2,"type":"started"}'), /unexpected message/);
    assert.throws(() => parseRuntimeMessage('garbage'), /unreadable message/);
  });
});

describe('signals', () => {
  test('names, short names and numbers', () => {
    assert.equal(signalNumber('SIGTERM'), 15);
    assert.equal(signalNumber('kill'), 9);
    assert.equal(signalNumber('2'), 2);
    assert.throws(() => signalNumber('SIGNOPE', '--signal'), /--signal: invalid signal "SIGNOPE"/);
  });
});
