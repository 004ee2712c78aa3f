/**
 * Rootless mode's session (issue #16, engine/rootless/session.ts), driven as an ordinary user through the CLI: the
 * namespaces it makes and reuses, what it refuses, how it ends. Containers and published ports rootless are in
 * rootless.test.ts.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { BUSYBOX_TAR, NEEDS_ROOT, eventually } from '../helpers/engine.js';
import { rootlessTree, rootlessUser, type RootlessUser } from '../helpers/rootless-cli.js';

function holder(user: RootlessUser): { holderPid: number; slirp?: { pid: number } } {
  return JSON.parse(readFileSync(path.join(user.runtimeDir, 'tsfig', 'holder.json'), 'utf8')) as {
    holderPid: number;
    slirp?: { pid: number };
  };
}

const alive = (pid: number) =>
  existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));

describe('rootless session', { skip: NEEDS_ROOT, concurrency: false }, () => {
  test('an ordinary user gets rootless mode: its own state, a user namespace with its subordinate range, one session reused', async (t) => {
    const user = rootlessUser();
    t.after(() => user.cleanup());
    const info = await user.tsfig(['info', '--format', 'json']);
    assert.equal(info.code, 0, info.stderr);
    const parsed = JSON.parse(info.stdout) as { mode: string; stateRoot: string; uidMap: string[] };
    assert.equal(parsed.mode, 'rootless');
    assert.equal(parsed.stateRoot, path.join(user.home, '.local', 'share', 'tsfig'));
    assert.equal(parsed.uidMap[0], `0 ${user.uid} 1`, 'uid 0 inside is the user');
    assert.match(parsed.uidMap[1] ?? '', /^1 \d+ 65535$/, 'then its subordinate range');
    const first = holder(user);
    assert.ok(alive(first.holderPid));
    // the holder runs as the user, not root
    assert.match(readFileSync(`/proc/${first.holderPid}/status`, 'utf8'), new RegExp(`^Uid:\\s+${user.uid}\\s`, 'm'));
    const again = await user.tsfig(['info']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^Mode: rootless$/m);
    assert.equal(holder(user).holderPid, first.holderPid, 'the second command joins the same session');
  });

  test('concurrent first commands make one session; a killed holder is replaced by the next command', async (t) => {
    const user = rootlessUser();
    t.after(() => user.cleanup());
    const results = await Promise.all([1, 2, 3].map(() => user.tsfig(['info', '--format', 'json'])));
    for (const result of results) assert.equal(result.code, 0, result.stderr);
    const holders = execFileSync('ps', ['-u', String(user.uid), '-o', 'pid=,args='], { encoding: 'utf8' })
      .split('\n')
      .filter(
        (line) =>
          / sleep infinity$/.test(line.trim()) &&
          readFileSync(`/proc/${line.trim().split(' ')[0]}/environ`, 'utf8').includes(user.runtimeDir),
      );
    assert.equal(holders.length, 1, `one holder, found:\n${holders.join('\n')}`);
    const first = holder(user);
    process.kill(first.holderPid, 'SIGKILL');
    const after = await user.tsfig(['info']);
    assert.equal(after.code, 0, after.stderr);
    assert.notEqual(holder(user).holderPid, first.holderPid);
    assert.ok(alive(holder(user).holderPid));
    if (first.slirp !== undefined) assert.ok(!alive(first.slirp.pid), "the dead session's slirp4netns was stopped");
  });

  test('system shutdown ends the session and leaves no process of it', async (t) => {
    const user = rootlessUser();
    t.after(() => user.cleanup());
    assert.equal((await user.tsfig(['info'])).code, 0);
    const { holderPid, slirp } = holder(user);
    const shutdown = await user.tsfig(['system', 'shutdown']);
    assert.equal(shutdown.code, 0, shutdown.stderr);
    assert.match(shutdown.stdout, /session ended/);
    assert.ok(!alive(holderPid));
    if (slirp !== undefined) assert.ok(!alive(slirp.pid));
    assert.equal(existsSync(path.join(user.runtimeDir, 'tsfig')), false, 'no $XDG_RUNTIME_DIR/tsfig left');
  });

  test('a user without a subordinate range gets one clear error (exit 77) and nothing is created', () => {
    // nobody: no /etc/subuid entry
    const home = '/tmp/tsfig-it-nobody-home';
    rmSync(home, { recursive: true, force: true });
    try {
      const runtime = path.join(home, 'run');
      mkdirSync(home, { mode: 0o755 });
      const out = (() => {
        try {
          execFileSync(
            'setpriv',
            [
              '--reuid=65534',
              '--regid=65534',
              '--clear-groups',
              'env',
              '-i',
              `HOME=${home}`,
              `XDG_RUNTIME_DIR=${runtime}`,
              `PATH=${process.env.PATH ?? ''}`,
              process.execPath,
              path.join(rootlessTree(), 'bin', 'tsfig.js'),
              'image',
              'ls',
            ],
            { cwd: '/', encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
          );
          return { code: 0, stderr: '' };
        } catch (error) {
          const e = error as { status: number; stderr: string };
          return { code: e.status, stderr: e.stderr };
        }
      })();
      assert.equal(out.code, 77, out.stderr);
      assert.match(out.stderr, /^error: rootless mode needs a subordinate id range for nobody in \/etc\/subuid$/m);
      assert.match(out.stderr, /^hint: as root: usermod --add-subuids/m);
      assert.doesNotMatch(out.stderr, /internal error|\n\s+at /);
      assert.equal(existsSync(path.join(runtime, 'tsfig')), false, 'no runtime dir');
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  test("another local user's runtime dir is never used: the session refuses a dir that is not the user's", async (t) => {
    const user = rootlessUser();
    t.after(() => user.cleanup());
    // the attacker (nobody) made the user's session dir first, to hand it a holder.json of its own
    const dir = path.join(user.runtimeDir, 'tsfig');
    execFileSync('chmod', ['0777', user.runtimeDir]);
    execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'mkdir', '-m', '0777', dir]);
    const result = await user.tsfig(['info']);
    assert.equal(result.code, 77, result.stderr);
    assert.match(result.stderr, /is not a directory of yours/);
    assert.equal(existsSync(path.join(dir, 'holder.json')), false);
  });

  test('compose up rootless: names between services, a published port reached from the host, a port below 1024 refused', async (t) => {
    const user = rootlessUser();
    t.after(() => user.cleanup());
    const free = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    writeFileSync(
      path.join(user.project, 'compose.yaml'),
      [
        'services:',
        '  web:',
        '    image: tsfig/busybox:latest',
        "    command: sh -c 'mkdir -p /www && echo hello-rootless > /www/index.html && httpd -f -p 8080 -h /www'",
        `    ports: ["127.0.0.1:${free}:8080"]`,
        '  client:',
        '    image: tsfig/busybox:latest',
        "    command: sh -c 'until wget -qO- http://web:8080/; do sleep 0.2; done; sleep 300'",
        '',
      ].join('\n'),
    );
    execFileSync('chown', [`${user.uid}`, path.join(user.project, 'compose.yaml')]);
    assert.equal((await user.tsfig(['image', 'import', BUSYBOX_TAR, 'tsfig/busybox:latest'])).code, 0);
    const up = await user.tsfig(['--progress', 'plain', 'up', '-d']);
    assert.equal(up.code, 0, up.stderr);
    // from the host (this test runs as root, outside the session) through slirp4netns and the DNAT rule
    const body = await eventually(
      () =>
        new Promise<string | undefined>((resolve) => {
          const socket = net.connect(free, '127.0.0.1');
          let data = '';
          socket.on('data', (chunk) => (data += chunk.toString()));
          socket.on('error', () => resolve(undefined));
          socket.on('end', () => resolve(data.includes('hello-rootless') ? data : undefined));
          socket.on('connect', () => socket.end('GET / HTTP/1.0\r\n\r\n'));
        }),
      30_000,
    );
    assert.match(body, /hello-rootless/);
    // the client found web by its name through the session's resolver
    const logs = await eventually(async () => {
      const result = await user.tsfig(['logs', 'client']);
      return result.stdout.includes('hello-rootless') ? result.stdout : undefined;
    }, 30_000);
    assert.match(logs, /hello-rootless/);
    const down = await user.tsfig(['down', '-t', '0']);
    assert.equal(down.code, 0, down.stderr);
    // the forward went with the container: nothing listens on the host port any more
    const refused = await new Promise<boolean>((resolve) => {
      const socket = net.connect(free, '127.0.0.1');
      socket.on('error', () => resolve(true));
      socket.on('connect', () => {
        socket.destroy();
        resolve(false);
      });
    });
    assert.equal(refused, true, 'the host port is released after down');

    writeFileSync(
      path.join(user.project, 'compose.yaml'),
      'services:\n  low:\n    image: tsfig/busybox:latest\n    command: sleep 100\n    ports: ["127.0.0.1:81:80"]\n',
    );
    const low = await user.tsfig(['up', '-d']);
    assert.equal(low.code, 77, low.stderr);
    assert.match(
      low.stderr,
      /^error: cannot publish host port 81 rootless: ports below \d+ \(sysctl net\.ipv4\.ip_unprivileged_port_start\) need root$/m,
    );
    assert.doesNotMatch(low.stderr, /internal error|\n\s+at /);
    assert.equal((await user.tsfig(['down', '-t', '0'])).code, 0);
  });
});
