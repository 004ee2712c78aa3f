/**
 * Rootless mode (issue #16): tsfig run by an ordinary user (`tsfig-rl`, test/helpers/rootless-cli.ts) through its
 * rootless session (a user namespace mapping the user and its subordinate ids), every command started with an
 * oom_score_adj floor of 100 as in a systemd user session. Where the host has cgroup v1 (or
 * v2 without delegation) containers run without cgroups: limits are ignored with one warning, pause is refused, stats
 * has no CPU or memory figures, top and the kill of every process go through the container's pid namespace.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, promises as fs, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { BUSYBOX_TAR, NEEDS_ROOT } from '../helpers/engine.js';
import { rootlessTree, rootlessUser, type RootlessUser } from '../helpers/rootless-cli.js';

const USER_OOM_SCORE_ADJ = 100;

/** The start of name's range in /etc/subuid or /etc/subgid. */
function subordinateStart(file: string, name: string): number {
  const line = readFileSync(file, 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith(`${name}:`));
  assert.ok(line !== undefined, `${name} has no range in ${file}`);
  return Number(line.split(':')[1]);
}

/** Every host pid of a container process a test saw: the last test checks none is left. */
const seen = new Set<number>();

const NO_CGROUPS = /rootless containers (run without cgroups on this host|on) \(?cgroup v(1|2 without delegation)/;

async function inspect(user: RootlessUser, name: string): Promise<{ Id: string; State: { Status: string } }> {
  const result = await user.tsfig(['container', 'inspect', name]);
  assert.equal(result.code, 0, result.stderr);
  return (JSON.parse(result.stdout) as { Id: string; State: { Status: string } }[])[0]!;
}

/** The container's PID 1 as the host sees it, from its monitor's status.json. */
async function initPid(user: RootlessUser, name: string): Promise<{ pid: number; monitor: number }> {
  const id = (await inspect(user, name)).Id;
  const status = JSON.parse(
    await fs.readFile(path.join(user.home, '.local/share/tsfig/containers', id, 'status.json'), 'utf8'),
  ) as {
    pid: number;
    monitor: number;
  };
  return status;
}

/** Every process in the pid namespace of pid (host pids), with its command line. */
function namespaceMembers(pid: number): Map<number, string> {
  const ns = readlinkSync(`/proc/${pid}/ns/pid`);
  const members = new Map<number, string>();
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (readlinkSync(`/proc/${entry}/ns/pid`) !== ns) continue;
      members.set(Number(entry), readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim());
      seen.add(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return members;
}

function hostIds(pid: number): { uid: number; gid: number; oomScoreAdj: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    uid: Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]),
    gid: Number(/^Gid:\s+(\d+)/m.exec(status)?.[1]),
    oomScoreAdj: Number(readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim()),
  };
}

function gone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') === true;
  } catch {
    return true;
  }
}

async function eventually(check: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return check();
}

const warnings = (stderr: string) => stderr.split('\n').filter((line) => /warn/i.test(line));

describe('rootless: tsfig as an ordinary user (issue #16)', { skip: NEEDS_ROOT }, () => {
  let user: RootlessUser;
  let subuid: number;
  let subgid: number;
  before(async () => {
    user = rootlessUser(undefined, { oomScoreAdj: USER_OOM_SCORE_ADJ });
    subuid = subordinateStart('/etc/subuid', user.name);
    subgid = subordinateStart('/etc/subgid', user.name);
    const imported = await user.tsfig(['image', 'import', BUSYBOX_TAR, 'tsfig/busybox:latest']);
    assert.equal(imported.code, 0, imported.stderr);
  });
  // each test's containers go even when it fails (the last test checks nothing is left)
  afterEach(async () => {
    if (!existsSync(user.home)) return; // cleaned up (the last test)
    const ids = (await user.tsfig(['container', 'ls', '-aq'])).stdout.split('\n').filter(Boolean);
    if (ids.length > 0) await user.tsfig(['container', 'rm', '-f', ...ids]);
  });
  after(async () => {
    await user?.cleanup();
  });

  test('run --rm: output, exit code, the real device nodes, overlay opaque dirs, a tmpfs', async () => {
    const script = [
      'id -u',
      'echo x > /dev/null && stat -c %t:%T /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty',
      'head -c 4 /dev/zero | wc -c',
      // a lower dir removed and made again is empty (overlayfs marks it opaque: userxattr rootless)
      'cp -a /bin /tmp/b && rm -rf /bin && mkdir /bin && /tmp/b/ls -A /bin | /tmp/b/wc -l',
      // a tmpfs (made with fsopen in the session's user namespace)
      'echo t > /scratch/f && /tmp/b/cat /scratch/f',
      'exit 3',
    ].join('\n');
    const result = await user.tsfig([
      'container',
      'run',
      '--rm',
      '--tmpfs',
      '/scratch:size=1m',
      'tsfig/busybox:latest',
      'sh',
      '-c',
      script,
    ]);
    assert.equal(result.stderr, '');
    assert.equal(result.code, 3);
    assert.deepEqual(result.stdout.split('\n'), ['0', '1:3', '1:5', '1:7', '1:8', '1:9', '5:0', '4', '0', 't', '']);
    assert.equal((await user.tsfig(['container', 'ls', '-aq'])).stdout, '');
  });

  test("a container's processes are the user and its subordinate ids on the host, never root", async () => {
    const volume = path.join(user.home, 'volume');
    await fs.mkdir(volume, { mode: 0o777 });
    await fs.chmod(volume, 0o777);
    await fs.chown(volume, user.uid, Number(execFileSync('id', ['-g', user.name], { encoding: 'utf8' }).trim()));
    const run = await user.tsfig([
      ...['container', 'run', '-d', '--name', 'ids', '-v', `${volume}:/v`],
      ...['tsfig/busybox:latest', 'sleep', '1000'],
    ]);
    assert.equal(run.code, 0, run.stderr);
    const exec = await user.tsfig(['container', 'exec', '-d', '-u', '1000:1000', 'ids', 'sleep', '1001']);
    assert.equal(exec.code, 0, exec.stderr);
    const write = await user.tsfig(['container', 'exec', '-u', '1000:1000', 'ids', 'touch', '/v/by-1000']);
    assert.equal(write.code, 0, write.stderr);
    const { pid } = await initPid(user, 'ids');
    // container root is the user, and its oom_score_adj is the session's (it may not go lower)
    const gid = Number(execFileSync('id', ['-g', user.name], { encoding: 'utf8' }).trim());
    assert.deepEqual(hostIds(pid), { uid: user.uid, gid, oomScoreAdj: USER_OOM_SCORE_ADJ });
    const members = namespaceMembers(pid);
    const other = [...members].find(([, cmdline]) => cmdline === 'sleep 1001')?.[0];
    assert.ok(other !== undefined, `sleep 1001 not found among ${JSON.stringify([...members])}`);
    assert.equal(hostIds(other).uid, subuid + 999);
    assert.equal(hostIds(other).gid, subgid + 999);
    const file = await fs.stat(path.join(volume, 'by-1000'));
    assert.deepEqual([file.uid, file.gid], [subuid + 999, subgid + 999]);
    assert.equal((await user.tsfig(['container', 'rm', '-f', 'ids'])).code, 0);
  });

  test('stop kills a background child too: without a cgroup the pid namespace goes with its init', async () => {
    const run = await user.tsfig([
      ...['container', 'run', '-d', '--name', 'bg', 'tsfig/busybox:latest'],
      ...['sh', '-c', 'sleep 1002 & exec sleep 1003'],
    ]);
    assert.equal(run.code, 0, run.stderr);
    const { pid } = await initPid(user, 'bg');
    const members = [...namespaceMembers(pid)];
    assert.deepEqual(members.map(([, cmdline]) => cmdline).sort(), ['sleep 1002', 'sleep 1003']);
    const stop = await user.tsfig(['container', 'stop', '-t', '1', 'bg']);
    assert.equal(stop.code, 0, stop.stderr);
    for (const [member] of members) assert.ok(gone(member), `process ${member} outlived its container`);
    assert.equal((await user.tsfig(['container', 'rm', 'bg'])).code, 0);
  });

  test('a container dies with its monitor (kill -9): nothing else could find its processes', async () => {
    const run = await user.tsfig([
      ...['container', 'run', '-d', '--name', 'orphan', 'tsfig/busybox:latest'],
      ...['sh', '-c', 'sleep 1004 & exec sleep 1005'],
    ]);
    assert.equal(run.code, 0, run.stderr);
    const { pid, monitor } = await initPid(user, 'orphan');
    const members = [...namespaceMembers(pid).keys()];
    assert.equal(members.length, 2);
    process.kill(monitor, 'SIGKILL');
    assert.ok(await eventually(() => members.every(gone)), 'the container outlived its monitor');
    const ls = await user.tsfig(['container', 'ls', '-a']);
    assert.match(ls.stdout, /Exited \(255\).* orphan\n/);
    assert.equal((await user.tsfig(['container', 'rm', 'orphan'])).code, 0);
  });

  test('resource limits: exactly one warning, and the container runs', async () => {
    const result = await user.tsfig([
      ...['container', 'run', '--rm', '-m', '64m', '--cpus', '0.5', '--pids-limit', '10'],
      ...['tsfig/busybox:latest', 'echo', 'ran'],
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'ran\n');
    assert.equal(warnings(result.stderr).length, 1, result.stderr);
    assert.match(result.stderr, /^WARNING: resource limits \(memory, cpus, cpu-shares, pids-limit\) are ignored: /);
    assert.match(result.stderr, NO_CGROUPS);
    // compose: two services with limits, one warning for the command
    const project = user.project;
    const service = (limits: string) =>
      `    image: tsfig/busybox:latest\n    command: sleep 1006\n    network_mode: none\n${limits}`;
    await fs.writeFile(
      path.join(project, 'compose.yaml'),
      `services:\n  a:\n${service('    mem_limit: 64m\n')}  b:\n` +
        service('    deploy:\n      resources:\n        limits:\n          cpus: "0.5"\n          pids: 10\n'),
    );
    const up = await user.tsfig(['--progress', 'plain', 'up', '-d'], { cwd: project });
    assert.equal(up.code, 0, up.stderr);
    assert.equal(warnings(up.stderr + up.stdout).length, 1, up.stderr);
    assert.match(up.stderr + up.stdout, /resource limits .* are ignored/);
    const ps = await user.tsfig(['ps', '--format', 'json'], { cwd: project });
    const services = ps.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { Service: string; State: string });
    assert.deepEqual(services.map(({ Service, State }) => `${Service} ${State}`).sort(), ['a running', 'b running']);
    assert.equal((await user.tsfig(['down', '-t', '1'], { cwd: project })).code, 0);
  });

  test('pause is refused with a clear error and changes nothing; top and stats still work', async () => {
    const run = await user.tsfig([
      ...['container', 'run', '-d', '--name', 'busy', 'tsfig/busybox:latest'],
      ...['sh', '-c', 'sleep 1007 & exec sleep 1008'],
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(namespaceMembers((await initPid(user, 'busy')).pid).size, 2);
    for (const verb of ['pause', 'unpause']) {
      // unpause too: refused for what it is, not as "not paused"
      const refused = await user.tsfig(['container', verb, 'busy']);
      assert.equal(refused.code, 1);
      assert.equal(refused.stdout, '');
      assert.match(refused.stderr, new RegExp(`^error: cannot ${verb} container busy: pause is not supported for `));
      assert.match(refused.stderr, NO_CGROUPS);
      assert.doesNotMatch(refused.stderr, /\n\s+at /);
    }
    assert.equal((await inspect(user, 'busy')).State.Status, 'running');
    const top = await user.tsfig(['container', 'top', 'busy', '-o', 'pid,args']);
    assert.equal(top.code, 0, top.stderr);
    const listed = top.stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/).slice(1).join(' '))
      .sort();
    assert.deepEqual(listed, ['sleep 1007', 'sleep 1008']);
    const stats = await user.tsfig(['container', 'stats', '--no-stream', '--format', 'json', 'busy']);
    assert.equal(stats.code, 0, stats.stderr);
    assert.equal(warnings(stats.stderr).length, 1, stats.stderr);
    assert.match(stats.stderr, /^WARNING: CPU, memory and block I\/O are not available: /);
    const row = JSON.parse(stats.stdout) as Record<string, string>;
    assert.deepEqual(
      [row.CPUPerc, row.MemUsage, row.MemPerc, row.BlockIO, row.PIDs],
      ['--', '-- / --', '--', '--', '2'],
    );
    assert.equal((await user.tsfig(['container', 'rm', '-f', 'busy'])).code, 0);
  });

  test('cp with a running container: its processes are stopped while it copies (no freezer), resumed after', async () => {
    const run = await user.tsfig([
      ...['container', 'run', '-d', '--name', 'cpy', '--health-cmd', 'echo probe >> /tmp/probes'],
      ...['--health-interval', '50ms', 'tsfig/busybox:latest'],
      ...['sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.01; done'],
    ]);
    assert.equal(run.code, 0, run.stderr);
    const { pid } = await initPid(user, 'cpy');
    const out = path.join(user.home, 'passwd-out');
    const copied = await user.tsfig(['container', 'cp', 'cpy:/etc/passwd', out]);
    assert.equal(copied.code, 0, copied.stderr);
    assert.match(await fs.readFile(out, 'utf8'), /^root:/);
    // a tar stream on stdin keeps the copy going until it ends: meanwhile every process is stopped
    const members = () => [...namespaceMembers(pid).keys()];
    const stateOf = (member: number) => {
      try {
        return readFileSync(`/proc/${member}/stat`, 'utf8').split(') ')[1]?.[0];
      } catch {
        return undefined; // gone meanwhile
      }
    };
    const states = () => members().flatMap((member) => stateOf(member) ?? []);
    // a process that had exited before its parent was stopped stays a zombie (Z) until the parent runs again: it does
    // not run either
    const allStopped = () => states().some((state) => state === 'T') && states().every((state) => 'TZ'.includes(state));
    const env = [`HOME=${user.home}`, `USER=${user.name}`, `XDG_RUNTIME_DIR=${user.runtimeDir}`, 'PATH=/usr/bin:/bin'];
    const cli = path.join(rootlessTree(), 'bin', 'tsfig.js');
    const gid = execFileSync('id', ['-g', user.name], { encoding: 'utf8' }).trim();
    const child = spawn(
      'setpriv',
      [
        `--reuid=${user.uid}`,
        `--regid=${gid}`,
        '--init-groups',
        'env',
        '-i',
        ...env,
        process.execPath,
        cli,
        'container',
        'cp',
        '-',
        'cpy:/tmp',
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    child.stdin.write(''); // keep it open
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number>((resolve) => child.once('close', (code) => resolve(code ?? 128)));
    assert.ok(await eventually(allStopped), `not stopped during the copy: ${states().join(',')} ${stderr}`);
    // what joins meanwhile is stopped too (an exec waits for the end of the copy), and no health probe (the image's
    // command) runs
    const probes = () => readFileSync(`/proc/${pid}/root/tmp/probes`, 'utf8').split('\n').length;
    const probed = probes();
    const running = members().length;
    const exec = user.tsfig(['container', 'exec', '-d', 'cpy', 'sh', '-c', 'while :; do :; done']);
    try {
      assert.ok(
        await eventually(() => members().length > running && allStopped()),
        `an exec'd process runs during the copy: ${states().join(',')}`,
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(probes(), probed, 'health probes ran during the copy');
    } finally {
      if (child.exitCode === null)
        child.stdin.end(execFileSync('tar', ['-C', path.dirname(out), '-c', path.basename(out)]));
    }
    assert.equal((await exec).code, 0);
    assert.equal(await exited, 0, stderr);
    assert.ok(await eventually(() => states().every((state) => state !== 'T')), `still stopped: ${states().join(',')}`);
    // `echo $i > /tmp/n` truncates before it writes: a read in between is empty, so read until a number comes
    const counter = async () => {
      for (let attempt = 0; attempt < 20; attempt++) {
        const text = (await user.tsfig(['container', 'exec', 'cpy', 'cat', '/tmp/n'])).stdout.trim();
        if (text !== '') return Number(text);
      }
      return Number.NaN;
    };
    const before = await counter();
    let after = before;
    for (const deadline = Date.now() + 5000; after <= before && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      after = await counter();
    }
    assert.ok(after > before, `the container does not run again after the copy: ${before}, then ${after}`);
    const landed = await user.tsfig(['container', 'exec', 'cpy', 'head', '-1', '/tmp/passwd-out']);
    assert.match(landed.stdout, /^root:/);
  });

  test('an opaque dir of a built layer hides the layers below in a container, an export and a cp', async () => {
    const context = path.join(user.project, 'opaque');
    await fs.mkdir(context);
    await fs.writeFile(
      path.join(context, 'Dockerfile'),
      'FROM tsfig/busybox:latest\nRUN rm -rf /var && mkdir /var && touch /var/new\n',
    );
    const built = await user.tsfig(['image', 'build', '-t', 'opaque', context], { cwd: context });
    assert.equal(built.code, 0, built.stderr);
    // busybox's /var has tmp/; the RUN's layer marks /var opaque (user.overlay.opaque rootless)
    const ls = await user.tsfig(['container', 'run', '--rm', 'opaque', 'ls', '-A', '/var']);
    assert.equal(ls.stdout, 'new\n', ls.stderr);
    const created = await user.tsfig(['container', 'create', '--name', 'opq', 'opaque', 'true']);
    assert.equal(created.code, 0, created.stderr);
    const tar = path.join(user.home, 'opq.tar');
    const exported = await user.tsfig(['container', 'export', '-o', tar, 'opq']);
    assert.equal(exported.code, 0, exported.stderr);
    const entries = (tar_: string) =>
      execFileSync('tar', ['tf', tar_], { encoding: 'utf8' })
        .split('\n')
        .filter((entry) => /^(\.\/)?var\//.test(entry))
        .map((entry) => entry.replace(/^\.\//, ''))
        .sort();
    assert.deepEqual(entries(tar), ['var/', 'var/new']);
    const copied = await user.tsfig(['container', 'cp', 'opq:/var', path.join(user.home, 'var-out')]);
    assert.equal(copied.code, 0, copied.stderr);
    assert.deepEqual(await fs.readdir(path.join(user.home, 'var-out')), ['new']);
  });

  test('nothing is left behind: no mounts in the session, no processes, no dirs', async () => {
    const session = JSON.parse(readFileSync(path.join(user.runtimeDir, 'tsfig', 'holder.json'), 'utf8')) as {
      holderPid: number;
    };
    assert.equal((await user.tsfig(['container', 'ls', '-aq'])).stdout, '');
    const mounts = readFileSync(`/proc/${session.holderPid}/mountinfo`, 'utf8')
      .split('\n')
      .filter((line) => line.includes(user.home));
    assert.deepEqual(mounts, []);
    assert.ok(seen.size >= 8, `the tests saw ${seen.size} container processes`);
    await user.cleanup();
    // the session's processes (found by this test's HOME), every container process seen: gone once reaped
    const ours = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, 'utf8').includes(`HOME=${user.home}\0`);
      } catch {
        return false;
      }
    };
    const left = () =>
      readdirSync('/proc')
        .filter((name) => /^\d+$/.test(name))
        .map(Number)
        .filter((pid) => (seen.has(pid) || ours(pid)) && !gone(pid));
    assert.ok(await eventually(() => left().length === 0), `processes left: ${left().join(' ')}`);
    assert.equal(existsSync(user.home), false);
  });
});
