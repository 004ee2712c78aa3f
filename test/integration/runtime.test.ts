/**
 * native/ runtime: drives `tsfig-runtime start` / `exec` directly with hand-written runtime.conf files over a busybox
 * rootfs and checks real kernel state from inside the container (through its log, exec, or files).
 * Needs root (namespaces, mounts, cgroups); as non-root every test is skipped with the reason.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { makeBusyboxLower } from '../helpers/rootfs.js';
import {
  RUNTIME,
  cgroupDirs,
  ctl,
  destroy,
  exec,
  hardLimit,
  leftoverCgroups,
  OWN_CGROUPS,
  OWN_TMP,
  logText,
  makeContainer,
  processAlive,
  readLog,
  readStatus,
  runToExit,
  start,
  waitExited,
} from '../helpers/runtime-conf.js';
import type { ContainerSpec, TestContainer } from '../helpers/runtime-conf.js';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot
  ? 'requires root (namespaces, mounts, cgroups)'
  : !existsSync(RUNTIME)
    ? `${RUNTIME} is not built (make -C native)`
    : !existsSync('/sys/fs/cgroup/memory/cgroup.procs')
      ? 'requires cgroup v1 hierarchies at /sys/fs/cgroup/<controller>'
      : false;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('tsfig-runtime', { skip }, () => {
  let lower = '';
  let lowerBase = '';

  before(async () => {
    ({ base: lowerBase, lower } = await makeBusyboxLower(`${OWN_TMP}lower-`));
    await mkdir(path.join(lower, 'data', 'sub'), { recursive: true });
    await writeFile(path.join(lower, 'data', 'sub', 'file'), 'from image\n', { mode: 0o640 });
    await symlink('/etc/shadow-on-host', path.join(lower, 'data', 'escape'));
    await writeFile(path.join(lower, 'etc', 'notexec'), 'plain\n', { mode: 0o644 });
    // like images whose /etc/resolv.conf points into /run: a dangling symlink, and one that tries to leave the root
    await symlink('../run/resolv.conf', path.join(lower, 'etc', 'resolv.conf'));
    await symlink('../../../../../../tmp/tsfrt-escape-target', path.join(lower, 'etc', 'escape.conf'));
  });

  after(async () => {
    await rm(lowerBase, { recursive: true, force: true });
    // Nothing may leak: cgroup dirs, monitors, mounts.
    assert.deepEqual(await leftoverCgroups(OWN_CGROUPS), []);
    const ps = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
    assert.deepEqual(
      ps.split('\n').filter((l) => l.includes(OWN_TMP)),
      [],
    );
    const mounts = await readFile('/proc/mounts', 'utf8');
    assert.equal(mounts.includes(OWN_TMP), false, 'no mount of a test dir is left on the host');
  });

  async function container(t: TestContext, spec: ContainerSpec): Promise<TestContainer> {
    const tc = await makeContainer(lower, spec);
    t.after(() => destroy(tc));
    return tc;
  }

  /** Expects a clean start failure and that nothing was left behind. */
  async function expectStartError(tc: TestContainer, step: string, code = 125) {
    const r = await start(tc);
    assert.equal(r.code, code, JSON.stringify(r.messages));
    assert.equal(r.messages.length, 1);
    const m = r.messages[0]!;
    assert.equal(m.type, 'error');
    assert.equal(m.step, step);
    assert.equal(m.code, code);
    await sleep(50);
    for (const dir of cgroupDirs(tc)) assert.equal(existsSync(dir), false, `${dir} removed`);
    assert.equal(existsSync(path.join(tc.runDir, 'ctl')), false, 'ctl socket removed');
    assert.equal(await readStatus(tc), undefined, 'no status for a container that never ran');
    return m;
  }

  test('an unknown runtime.conf key is a parse error naming it', async (t) => {
    const tc = await container(t, { args: ['true'], extra: [['frobnicate', '1']] });
    const m = await expectStartError(tc, 'parse config');
    assert.match(String(m.message), /unknown key `frobnicate`/);
  });

  test('isolation: PID 1, hostname, no host processes or mounts, /proc/sys read-only, masked paths', async (t) => {
    const script = [
      'echo pid=$$',
      'hostname',
      'echo procs=$(ls -d /proc/[0-9]* | wc -l)',
      'grep -c " /work" /proc/mounts || true',
      'echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo sysrw || echo sysro',
      'echo timer_list=$(wc -c < /proc/timer_list)',
      '[ ! -e /proc/kcore ] || echo kcore=$(wc -c < /proc/kcore)',
      'echo acpi=$(ls -A /proc/acpi | wc -l)',
      'echo keys=$(wc -c < /proc/keys)',
      'echo devs=$(ls /dev | tr "\\n" " ")',
      'echo ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | tr "\\n" " ")',
      'grep -E "^(CapEff|CapBnd|CapPrm|CapInh|CapAmb|Seccomp|NoNewPrivs):" /proc/self/status',
      'cat /sys/fs/cgroup/memory/memory.limit_in_bytes >/dev/null && echo cgroupfs=ok',
      'touch /sys/fs/cgroup/x 2>/dev/null && echo cgw || echo cgro',
    ].join('; ');
    const tc = await container(t, { args: ['sh', '-c', script] });
    const { status, output } = await runToExit(tc);
    assert.equal(status.exitCode, 0, output);
    assert.match(output, /^pid=1$/m);
    assert.match(output, /^tsftest$/m);
    const procs = Number(/^procs=(\d+)$/m.exec(output)?.[1]);
    assert.ok(procs >= 1 && procs <= 4, `only the container's processes are visible (${procs})`);
    assert.match(output, /^0$/m, 'host mounts are invisible');
    assert.match(output, /^sysro$/m);
    assert.match(output, /^timer_list=0$/m);
    assert.doesNotMatch(output, /^kcore=[1-9]/m);
    assert.match(output, /^acpi=0$/m);
    assert.match(output, /^keys=0$/m);
    assert.match(output, /^devs=core fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero$/m);
    assert.match(output, /^ifaces=lo$/m);
    assert.match(output, /^CapEff:\s+00000000a80425fb$/m);
    assert.match(output, /^CapBnd:\s+00000000a80425fb$/m);
    assert.match(output, /^CapInh:\s+0000000000000000$/m);
    assert.match(output, /^CapAmb:\s+0000000000000000$/m);
    assert.match(output, /^Seccomp:\s+2$/m);
    assert.match(output, /^NoNewPrivs:\s+0$/m);
    assert.match(output, /^cgroupfs=ok$/m);
    assert.match(output, /^cgro$/m);
  });

  test('no_new_privs and a non-root user: caps dropped by execve, NoNewPrivs 1, groups from /etc/group', async (t) => {
    const tc = await container(t, {
      args: ['sh', '-c', 'id; echo home=$HOME; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status'],
      extra: [
        ['user', 'nobody'],
        ['no_new_privs', true],
        ['group_add', 'daemon'],
      ],
    });
    const { status, output } = await runToExit(tc);
    assert.equal(status.exitCode, 0, output);
    assert.match(output, /^uid=65534\(nobody\) gid=65534\(nogroup\) groups=1\(daemon\),100\(users\)$/m);
    assert.match(output, /^home=\/nonexistent$/m);
    assert.match(output, /^CapEff:\s+0000000000000000$/m);
    assert.match(output, /^NoNewPrivs:\s+1$/m);
    assert.match(output, /^Seccomp:\s+2$/m);
  });

  test('privileged: every capability, no seccomp, no masked or read-only paths', async (t) => {
    const script =
      'grep -E "^(CapEff|Seccomp):" /proc/self/status; echo timer_list=$(wc -c < /proc/timer_list); ' +
      'grep -E " /proc/sys | /sys " /proc/mounts';
    const tc = await container(t, { args: ['sh', '-c', script], extra: [['privileged', true]] });
    const { status, output } = await runToExit(tc);
    assert.equal(status.exitCode, 0, output);
    // all the capabilities the runtime itself holds (the caller's permitted set)
    const all = /^CapPrm:\s+([0-9a-f]+)$/m.exec(await readFile('/proc/self/status', 'utf8'))![1]!;
    assert.match(output, new RegExp(`^CapEff:\\s+${all}$`, 'm'));
    assert.match(output, /^Seccomp:\s+0$/m);
    assert.doesNotMatch(output, /^timer_list=0$/m);
    assert.match(output, /^sysfs \/sys sysfs rw,/m);
    assert.doesNotMatch(output, / \/proc\/sys /);
  });

  test('device cgroup: mknod of a block device works but opening it is denied', async (t) => {
    const tc = await container(t, {
      args: ['sh', '-c', 'mknod /tmp/sda b 8 0 && echo made; head -c1 /tmp/sda; echo rc=$?'],
    });
    const { output } = await runToExit(tc);
    assert.match(output, /^made$/m);
    assert.match(output, /Operation not permitted/);
    assert.match(output, /^rc=1$/m);
  });

  test('writes land in the upper dir, never in the lower dir', async (t) => {
    const tc = await container(t, { args: ['sh', '-c', 'echo new > /newfile && echo changed > /etc/notexec'] });
    const { status } = await runToExit(tc);
    assert.equal(status.exitCode, 0);
    assert.equal(await readFile(path.join(tc.upper, 'newfile'), 'utf8'), 'new\n');
    assert.equal(await readFile(path.join(tc.upper, 'etc', 'notexec'), 'utf8'), 'changed\n');
    assert.equal(existsSync(path.join(lower, 'newfile')), false);
    assert.equal(await readFile(path.join(lower, 'etc', 'notexec'), 'utf8'), 'plain\n');
  });

  test('memory limit: visible in the cgroup, a bigger allocation is OOM-killed and status says so', async (t) => {
    const tc = await container(t, {
      args: [
        'sh',
        '-c',
        'cat /sys/fs/cgroup/memory/memory.limit_in_bytes; exec dd if=/dev/zero of=/dev/null bs=64M count=1',
      ],
      extra: [['memory', 32 * 1024 * 1024]],
    });
    const { status, output } = await runToExit(tc);
    assert.match(output, /^33554432$/m);
    assert.equal(status.oomKilled, true, output);
    assert.equal(status.exitCode, 137);
    assert.equal(status.signal, 9);
  });

  test('pids limit bounds a fork bomb', async (t) => {
    const script =
      // busybox sh exits when fork fails: bomb from a subshell, count from the parent with builtins only
      'cat /sys/fs/cgroup/pids/pids.max; (i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); done) 2>/dev/null; ' +
      'set -- /proc/[0-9]*; echo running=$#';
    const tc = await container(t, { args: ['sh', '-c', script], extra: [['pids', 16]] });
    const { output } = await runToExit(tc);
    assert.match(output, /^16$/m);
    const running = Number(/^running=(\d+)$/m.exec(output)?.[1]);
    assert.ok(running > 1 && running <= 16, output);
  });

  test('exit codes: plain, 127 not found, 126 not executable, 128+N on a signal', async (t) => {
    const plain = await container(t, { args: ['sh', '-c', 'exit 3'] });
    assert.equal((await runToExit(plain)).status.exitCode, 3);

    const missing = await container(t, { args: ['no-such-command'] });
    const m = await expectStartError(missing, 'exec', 127);
    assert.match(String(m.message), /executable file not found in \$PATH/);

    const notExec = await container(t, { args: ['/etc/notexec'] });
    await expectStartError(notExec, 'exec', 126);

    const killed = await container(t, { args: ['sleep', '1000'] });
    assert.equal((await start(killed)).code, 0);
    assert.equal(await ctl(killed, 'kill 9\n'), 'ok\n');
    const st = await waitExited(killed);
    assert.equal(st.exitCode, 137);
    assert.equal(st.signal, 9);
    assert.equal(st.oomKilled, false);
  });

  test('init: a minimal PID 1 reaps zombies and exits with the command`s status', async (t) => {
    const script =
      '(sleep 0.1 &); sleep 0.4; echo zombies=$(ps -o stat | grep -c Z); ps -o pid,args | head -3; kill -TERM $$';
    const tc = await container(t, { args: ['sh', '-c', script], extra: [['init', true]] });
    const { status, output } = await runToExit(tc);
    assert.match(output, /^zombies=0$/m);
    assert.match(output, /^\s*2 sh -c/m, 'the command is PID 2 under the init');
    assert.equal(status.exitCode, 143);
  });

  test('exec runs in the same namespaces and cgroup, with the container`s caps and seccomp', async (t) => {
    const tc = await container(t, { args: ['sleep', '1000'] });
    const r = await start(tc);
    assert.equal(r.code, 0, JSON.stringify(r.messages));
    const started = r.messages[0]!;
    assert.equal(started.type, 'started');
    const pid = Number(started.pid);
    const names = ['mnt', 'pid', 'uts', 'ipc', 'net', 'cgroup'];
    const script =
      names.map((n) => `readlink /proc/self/ns/${n}`).join('; ') +
      '; grep -E "^(CapEff|Seccomp):" /proc/self/status; echo pid=$$; hostname';
    const e = await exec(tc, ['--env', 'X=1'], ['sh', '-c', script]);
    assert.equal(e.code, 0, e.stderr);
    for (const n of names)
      assert.ok(e.stdout.includes(await readlink(`/proc/${pid}/ns/${n}`)), `${n} namespace shared`);
    assert.match(e.stdout, /^CapEff:\s+00000000a80425fb$/m);
    assert.match(e.stdout, /^Seccomp:\s+2$/m);
    assert.match(e.stdout, /^tsftest$/m);
    assert.ok(Number(/^pid=(\d+)$/m.exec(e.stdout)?.[1]) > 1);
    assert.equal((await exec(tc, [], ['sh', '-c', 'exit 7'])).code, 7);
    assert.equal((await exec(tc, [], ['sh', '-c', 'kill -9 $$'])).code, 137);
    const missing = await exec(tc, [], ['nope']);
    assert.equal(missing.code, 127);
    assert.equal(missing.messages[0]?.step, 'exec');
    const tty = await exec(tc, ['--tty'], ['sh', '-c', 'tty; echo cols=$(stty size)']);
    assert.equal(tty.code, 0, tty.stderr);
    assert.match(tty.stdout, /\/dev\/pts\/\d+\r\n/);
    const badUser = await exec(tc, ['--user', 'ghost'], ['true']);
    assert.equal(badUser.code, 125);
    assert.match(String(badUser.messages[0]?.message), /unable to find user ghost: no matching entries in passwd file/);
  });

  test('exec while the container stops: the helper reports the process killed (137), it is not killed itself', async (t) => {
    const tc = await container(t, { args: ['sleep', '1000'] });
    assert.equal((await start(tc)).code, 0);
    const running = exec(tc, [], ['sh', '-c', 'echo started; exec sleep 1000']);
    await sleep(500);
    // stop 0 SIGKILLs the whole cgroup: the helper used to be in it, died with it and reported nothing (no exit code)
    assert.equal(await ctl(tc, 'stop 0\n'), 'ok\n');
    const result = await running;
    assert.equal(result.code, 137, `the helper's own exit: ${String(result.code)} ${result.stderr}`);
    assert.equal(result.stdout, 'started\n');
    await waitExited(tc);
  });

  test('exec --detach: the keeper is a child of the monitor, which reaps it; nothing of the CLI side stays', async (t) => {
    const tc = await container(t, { args: ['sleep', '1000'] });
    const r = await start(tc);
    assert.equal(r.code, 0);
    const monitor = Number(r.messages[0]?.monitor);
    const detached = await exec(tc, ['--detach'], ['sleep', '1000']);
    assert.equal(detached.code, 0, detached.stderr);
    const parentOf = (pid: string) =>
      Number(/^PPid:\s+(\d+)$/m.exec(execFileSync('cat', [`/proc/${pid}/status`], { encoding: 'utf8' }))?.[1]);
    const sleeps = execFileSync('pgrep', ['-f', '^sleep 1000$'], { encoding: 'utf8' }).trim().split('\n');
    const keepers = sleeps.map(parentOf).filter((parent) => parentOf(String(parent)) === monitor);
    assert.equal(keepers.length, 1, `one sleep whose parent is a child of the monitor ${monitor}`);
    assert.deepEqual(
      (await readdir(tc.runDir)).filter((name) => name.startsWith('exec-')),
      [],
      'its argument file is gone',
    );
    const missing = await exec(tc, ['--detach'], ['nope']);
    assert.equal(missing.code, 127);
    assert.match(String(missing.messages[0]?.message), /executable file not found/);
    assert.equal(await ctl(tc, 'stop 0\n'), 'ok\n');
    await waitExited(tc);
    assert.equal(existsSync(`/proc/${keepers[0]}`), false, 'the keeper was reaped before the monitor exited');
  });

  test('stop honours the grace period, then SIGKILLs the whole cgroup', async (t) => {
    const tc = await container(t, { args: ['sleep', '1000'] });
    assert.equal((await start(tc)).code, 0);
    const t0 = Date.now();
    assert.equal(await ctl(tc, 'stop 1\n'), 'ok\n');
    const st = await waitExited(tc);
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 900, `waited the grace period (${elapsed} ms)`);
    assert.ok(elapsed < 5000, `then killed (${elapsed} ms)`);
    assert.equal(st.exitCode, 137);

    const graceful = await container(t, {
      args: ['sh', '-c', 'trap "echo bye; exit 0" TERM; while true; do sleep 0.05; done'],
    });
    assert.equal((await start(graceful)).code, 0);
    await sleep(200);
    assert.equal(await ctl(graceful, 'stop 10\n'), 'ok\n');
    const st2 = await waitExited(graceful, 5000);
    assert.equal(st2.exitCode, 0);
    assert.match(await logText(graceful), /bye/);
  });

  test('unknown user, cwd that is a file, rlimit above the hard limit: clean errors, nothing left', async (t) => {
    const user = await container(t, { args: ['true'], extra: [['user', 'bob']] });
    const m = await expectStartError(user, 'user');
    assert.equal(m.message, 'unable to find user bob: no matching entries in passwd file');

    const cwd = await container(t, { args: ['true'], override: { cwd: '/etc/passwd' } });
    await expectStartError(cwd, 'cwd');

    const quota = await container(t, { args: ['true'], extra: [['cpu_quota', 500]] });
    const m3 = await expectStartError(quota, 'cgroup cpu');
    assert.match(String(m3.message), /cpu\.cfs_quota_us/);

    const hard = await hardLimit('Max open files');
    const rl = await container(t, { args: ['true'], extra: [['rlimit', `NOFILE 1024 ${hard + 1}`]] });
    const m2 = await expectStartError(rl, 'rlimit');
    assert.match(String(m2.message), /NOFILE/);
  });

  test('rlimits, cwd creation, readonly root, sysctls and user mounts', async (t) => {
    const hostDir = await mkdtemp(path.join(tmpdir(), `${OWN_TMP}bind-`));
    t.after(() => rm(hostDir, { recursive: true, force: true }));
    await writeFile(path.join(hostDir, 'hello'), 'from host\n');
    const script = [
      'ulimit -n; ulimit -Hn; pwd',
      'touch /x 2>/dev/null && echo rootrw || echo rootro',
      'cat /data/hello; touch /data/y 2>/dev/null && echo bindrw || echo bindro',
      'touch /scratch/z && echo tmpfsrw',
      'cat /proc/sys/kernel/shmmni',
      'grep -E " /scratch " /proc/mounts',
      'cd /sys/fs/cgroup/cpu && echo cpu=$(cat cpu.cfs_quota_us cpu.cfs_period_us cpu.shares)',
      'echo resolv=$(cat /etc/resolv.conf) escape=$(cat /etc/escape.conf)',
      'echo cpus=$(cat /sys/fs/cgroup/cpuset/cpuset.cpus)',
    ].join('; ');
    const tc = await container(t, {
      args: ['sh', '-c', script],
      override: { cwd: '/work/dir' },
      extra: [
        ['readonly', true],
        ['rlimit', 'NOFILE 123 456'],
        ['cpu_quota', 50000],
        ['cpu_period', 100000],
        ['cpu_shares', 512],
        ['sysctl', 'kernel.shmmni 1234'],
        ['mount', '/data'],
        ['mount.type', 'bind'],
        ['mount.source', hostDir],
        ['mount.options', 'rbind,ro'],
        ['mount', '/scratch'],
        ['mount.type', 'tmpfs'],
        ['mount.options', 'nosuid,nodev,size=1m,mode=0700'],
        ['mount', '/work/dir'],
        ['mount.type', 'tmpfs'],
        ['mount', '/etc/resolv.conf'],
        ['mount.type', 'bind'],
        ['mount.source', path.join(hostDir, 'hello')],
        ['mount', '/etc/escape.conf'],
        ['mount.type', 'bind'],
        ['mount.source', path.join(hostDir, 'hello')],
      ],
    });
    const { status, output } = await runToExit(tc);
    assert.equal(status.exitCode, 0, output);
    assert.match(output, /^123\n456\n\/work\/dir$/m);
    assert.match(output, /^rootro$/m);
    assert.match(output, /^from host\nbindro$/m);
    assert.match(output, /^tmpfsrw$/m);
    assert.match(output, /^1234$/m);
    assert.match(output, /tmpfs \/scratch tmpfs rw,nosuid,nodev,relatime,size=1024k,mode=700/);
    assert.match(output, /^cpu=50000 100000 512$/m);
    const hostCpus = (await readFile('/sys/fs/cgroup/cpuset/cpuset.cpus', 'utf8')).trim();
    assert.match(output, new RegExp(`^cpus=${hostCpus}$`, 'm'));
    assert.deepEqual(await readdir(hostDir), ['hello']);
    assert.match(output, /^resolv=from host escape=from host$/m);
    assert.equal(
      existsSync('/tmp/tsfrt-escape-target'),
      false,
      'a symlinked mount point never leads out of the rootfs',
    );
    assert.equal(await readFile(path.join(tc.upper, 'run', 'resolv.conf'), 'utf8'), '', 'created inside the rootfs');
  });

  test('mount.copy populates an empty volume from the image, keeping symlinks, ownership and modes', async (t) => {
    const vol = await mkdtemp(path.join(tmpdir(), `${OWN_TMP}vol-`));
    t.after(() => rm(vol, { recursive: true, force: true }));
    const tc = await container(t, {
      args: ['sh', '-c', 'cat /data/sub/file; readlink /data/escape; echo more > /data/added'],
      extra: [
        ['mount', '/data'],
        ['mount.type', 'bind'],
        ['mount.source', vol],
        ['mount.copy', true],
      ],
    });
    const { status, output } = await runToExit(tc);
    assert.equal(status.exitCode, 0, output);
    assert.match(output, /^from image\n\/etc\/shadow-on-host$/m);
    assert.equal(await readFile(path.join(vol, 'sub', 'file'), 'utf8'), 'from image\n');
    assert.equal((await lstat(path.join(vol, 'sub', 'file'))).mode & 0o7777, 0o640);
    assert.ok((await lstat(path.join(vol, 'escape'))).isSymbolicLink());
    assert.equal(await readlink(path.join(vol, 'escape')), '/etc/shadow-on-host');
    assert.equal(await readFile(path.join(vol, 'added'), 'utf8'), 'more\n');

    // A volume that already has content is left alone.
    const again = await container(t, {
      args: ['sh', '-c', 'ls /data | wc -l'],
      extra: [
        ['mount', '/data'],
        ['mount.type', 'bind'],
        ['mount.source', vol],
        ['mount.copy', true],
      ],
    });
    await writeFile(path.join(vol, 'sub', 'file'), 'edited\n');
    const second = await runToExit(again);
    assert.match(second.output, /^3$/m);
    assert.equal(await readFile(path.join(vol, 'sub', 'file'), 'utf8'), 'edited\n');
  });

  test('netns: a path joins that namespace', async (t) => {
    const first = await container(t, { args: ['sleep', '1000'] });
    const r = await start(first);
    assert.equal(r.code, 0);
    const netns = `/proc/${Number(r.messages[0]!.pid)}/ns/net`;
    const second = await container(t, { args: ['readlink', '/proc/self/ns/net'], netns });
    const { output } = await runToExit(second);
    assert.equal(output, `${await readlink(netns)}\n`);
  });

  test('overlay options longer than a page are passed relative to the layers` common parent', async (t) => {
    const tc = await container(t, { args: ['sh', '-c', 'cat /layer-marker; echo x > /y'], topLayers: 45 });
    const conf = await readFile(path.join(tc.dir, 'runtime.conf'), 'utf8');
    const lowers = conf.split('\n').filter((l) => l.startsWith('lower '));
    assert.ok(lowers.reduce((n, l) => n + l.length - 5, 0) > 4096, 'the absolute option string exceeds a page');
    const { status, output } = await runToExit(tc);
    assert.equal(status.exitCode, 0, output);
    assert.equal(output, 'top\n');
    assert.equal(await readFile(path.join(tc.upper, 'y'), 'utf8'), 'x\n');
  });

  test('json-file log: streams, partial lines over 16 KiB, rotation', async (t) => {
    const tc = await container(t, {
      args: [
        'sh',
        '-c',
        'echo out; echo err >&2; printf "%020000d" 0; i=0; while [ $i -lt 40 ]; do echo line$i; i=$((i+1)); done',
      ],
      extra: [
        ['log_max_size', 2000],
        ['log_max_files', 3],
      ],
    });
    await runToExit(tc);
    assert.ok(existsSync(`${tc.log}.1`));
    assert.ok(existsSync(`${tc.log}.2`));
    assert.equal(existsSync(`${tc.log}.3`), false);
    const all: { log: string; stream: string; time: string }[] = [];
    for (const f of [`${tc.log}.2`, `${tc.log}.1`, tc.log]) {
      for (const l of (await readFile(f, 'utf8')).split('\n').filter(Boolean))
        all.push(JSON.parse(l) as (typeof all)[0]);
    }
    const last = all.filter((e) => e.stream === 'stdout').at(-1)!;
    assert.equal(last.log, 'line39\n');
    assert.equal(last.stream, 'stdout');
    assert.match(last.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    // the current file holds the newest lines and is not far over the limit
    const current = await readLog(tc);
    assert.ok(current.length > 0);
    assert.ok((await readFile(tc.log, 'utf8')).length < 2000 + 200);

    const escaped = await container(t, {
      args: ['sh', '-c', 'echo "<a&b>"; printf "%s" "$MULTI" | wc -l; printf "\\377\\n"'],
      env: ['PATH=/bin', 'MULTI=one\ntwo\tthree'],
    });
    await runToExit(escaped);
    const raw = await readFile(escaped.log, 'utf8');
    assert.ok(raw.includes('"log":"\\u003ca\\u0026b\\u003e\\n"'), raw);
    assert.ok(raw.includes('"log":"1\\n"'), 'an escaped newline in runtime.conf reaches the environment');
    assert.ok(raw.includes('"log":"\\ufffd\\n"'), 'invalid UTF-8 becomes U+FFFD as in Go');

    const big = await container(t, { args: ['sh', '-c', 'echo out; echo err >&2; printf "%020000d" 0'] });
    await runToExit(big);
    const entries = await readLog(big);
    assert.deepEqual(
      entries.filter((e) => e.stream === 'stdout').map((e) => e.log.length),
      [4, 16384, 20000 - 16384],
    );
    assert.deepEqual(
      entries.filter((e) => e.stream === 'stderr').map((e) => e.log),
      ['err\n'],
    );
  });

  test('tty: the command gets a pty from the container`s devpts; resize works', async (t) => {
    const tc = await container(t, {
      args: ['sh', '-c', 'tty; echo console=$(stat -c %t:%T /dev/console); sleep 0.5; stty size'],
      extra: [['tty', true]],
    });
    assert.equal((await start(tc)).code, 0);
    assert.equal(await ctl(tc, 'resize 33 111\n'), 'ok\n');
    const st = await waitExited(tc);
    assert.equal(st.exitCode, 0);
    const out = await logText(tc);
    assert.match(out, /\/dev\/pts\/0\r\n/);
    assert.match(out, /33 111/);
    assert.match(out, /console=88:0\r\n/, '/dev/console is the pty slave (136:0)');
  });

  test('stdin: bytes on the attach socket reach the container, EOF closes its stdin', async (t) => {
    const tc = await container(t, {
      args: ['sh', '-c', 'while read l; do echo got $l; done; echo eof'],
      extra: [['stdin', true]],
    });
    assert.equal((await start(tc)).code, 0);
    await ctl(tc, 'hello\nworld\n', 'attach');
    const st = await waitExited(tc);
    assert.equal(st.exitCode, 0);
    assert.equal(await logText(tc), 'got hello\ngot world\neof\n');
  });

  test('cgroup v2 values and the eBPF device filter (C unit tests, run on the hybrid cgroup2 hierarchy)', async (t) => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const bin = path.join(await mkdtemp(path.join(tmpdir(), `${OWN_TMP}ctest-`)), 'cgroup2-test');
    t.after(() => rm(path.dirname(bin), { recursive: true, force: true }));
    const objects = ['cgroup2', 'bpfdev', 'cgroup', 'util', 'error'].map((o) =>
      path.join(root, 'native/build', `${o}.o`),
    );
    const source = path.join(root, 'test/native/cgroup2-test.c');
    execFileSync('cc', ['-std=c11', '-D_GNU_SOURCE', '-Wall', '-Wextra', '-Werror', '-o', bin, source, ...objects]);
    const tap = execFileSync(bin, { encoding: 'utf8' });
    t.diagnostic(tap.trim().replace(/\n/g, ' | '));
    assert.doesNotMatch(tap, /^not ok/m);
    assert.match(tap, /^ok 3 - device filter enforced on a cgroup2 dir$/m);
  });

  test('monitor: detached, status running with monitorStart and bootId, RSS under 1 MiB, cleans up', async (t) => {
    const tc = await container(t, { args: ['sleep', '1000'], netns: 'host' });
    const r = await start(tc);
    assert.equal(r.code, 0);
    const st = (await readStatus(tc))!;
    assert.equal(st.state, 'running');
    assert.equal(st.bootId, (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim());
    assert.ok(processAlive(st.monitor, st.monitorStart));
    const monStatus = await readFile(`/proc/${st.monitor}/status`, 'utf8');
    assert.match(monStatus, /^PPid:\s+1$/m, 'the monitor is detached from the caller');
    const sid = async (pid: number | string) =>
      (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')[3];
    assert.notEqual(await sid(st.monitor), await sid('self'), 'the monitor runs in its own session');
    const fds = await readdir(`/proc/${st.monitor}/fd`);
    assert.ok(fds.length <= 8, `monitor holds few fds: ${fds.length}`);
    await sleep(1500);
    const rss = Number(/^VmRSS:\s+(\d+) kB$/m.exec(await readFile(`/proc/${st.monitor}/status`, 'utf8'))?.[1]);
    t.diagnostic(`monitor VmRSS ${rss} kB`);
    assert.ok(rss < 1024, `monitor RSS ${rss} kB`);
    // host netns: /sys is the host's, read-only
    const e = await exec(tc, [], ['sh', '-c', 'touch /sys/kernel/x 2>&1; ls /sys/class/net | grep -c lo']);
    assert.match(e.stdout, /Read-only file system/);
    assert.equal(await ctl(tc, 'bogus\n'), 'error unknown command\n');
    assert.equal(await ctl(tc, 'stop 0\n'), 'ok\n');
    const done = await waitExited(tc);
    assert.equal(done.exitCode, 137);
    for (const dir of cgroupDirs(tc)) assert.equal(existsSync(dir), false);
    assert.equal(existsSync(path.join(tc.runDir, 'ctl')), false);
  });
});
