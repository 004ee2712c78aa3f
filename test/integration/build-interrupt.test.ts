/**
 * Interrupting builds and pulls leaves nothing behind: SIGINT / SIGTERM to `tsfig build`, `tsfig image build` and
 * `tsfig up` (plain and TUI) while a RUN step runs kill and remove the step's container and end with 130 / 143;
 * `tsfig image pull` interrupted mid-download deletes its download and adds no image; a CLI killed outright
 * (`kill -9`) during a RUN leaves a container that the next build sweeps (and only that one: a build that still runs
 * keeps its own). Every wait polls with a generous timeout; the long steps sleep for minutes, so an exit within the
 * timeout means the step was stopped, not waited for.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, readdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { constants } from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { eventually, leftovers, makeTestEngine, REPO, skipUnlessRoot, type TestEngine } from '../helpers/engine.js';

/** A CLI started in the background: its process (to signal) and its end. */
interface RunningCli {
  readonly child: ChildProcess;
  stderr(): string;
  /** The exit code, or 128+N when it was killed by signal N. */
  readonly exited: Promise<number>;
}

/** CLIs still running: killed before a test's engine is cleaned up, even when the test failed. */
const running = new Set<ChildProcess>();

function startCli(te: TestEngine, args: readonly string[], cwd: string): RunningCli {
  const child = spawn(process.execPath, [path.join(REPO, 'bin', 'tsfig.js'), ...args], {
    env: te.env,
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.on('close', () => running.delete(child));
  let stderr = '';
  child.stdout?.resume();
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal])));
  });
  return { child, stderr: () => stderr, exited };
}

/** Waits for the CLI to end (generous timeout: the RUN steps sleep far longer); kills it if it does not. */
async function exitOf(cli: RunningCli, timeoutMs = 90_000): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      cli.child.kill('SIGKILL');
      reject(new Error(`the CLI did not end within ${timeoutMs} ms; stderr:\n${cli.stderr()}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([cli.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A unique long sleep for a RUN step, so its process can be looked for on the host. */
function longSleep(): string {
  return `sleep ${600 + Math.floor(Math.random() * 300)}`;
}

/**
 * The running RUN container of a build whose command is `sleep` (the test's unique `sleep N`), once that command runs
 * on the host: an earlier RUN of the same Dockerfile also runs in a container, and interrupting that one instead would
 * test something else (its step is then not cached).
 */
async function runningBuildContainer(te: TestEngine, sleep: string, cli?: RunningCli): Promise<string> {
  return eventually(async () => {
    if (hostProcesses(sleep).length === 0) return undefined;
    const [running] = await te.engine.containers.list({ labels: { 'io.tsfig.build': 'true' } });
    return running?.id;
  }, 90_000).catch((error: unknown) => {
    throw new Error(`no RUN container started; stderr:\n${cli?.stderr() ?? ''}`, { cause: error });
  });
}

function hostProcesses(needle: string): string[] {
  return execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes(needle) && !line.includes('ps -eo'));
}

/**
 * Nothing of the build remains: no container (record or dir), no cgroup, mount or process of the root (monitors,
 * helpers, the step's command), no temp dir.
 */
async function assertNothingLeft(te: TestEngine, sleep: string): Promise<void> {
  assert.deepEqual(await te.engine.containers.list({ all: true }), [], 'no container');
  const containersDir = await fs.readdir(te.engine.paths.containers).catch(() => []);
  assert.deepEqual(containersDir, [], 'no container dir (staged or half-removed)');
  const tmp = await fs.readdir(path.join(te.engine.paths.root, 'tmp')).catch(() => []);
  assert.deepEqual(tmp, [], 'no temp dir');
  await eventually(() => (hostProcesses(sleep).length === 0 ? true : undefined), 30_000).catch(() => {
    assert.deepEqual(hostProcesses(sleep), [], "the step's command is gone");
  });
  assert.deepEqual(leftovers(te.engine.paths.rootId), [], 'no cgroup, mount or process of the root');
  assert.deepEqual(leftovers(te.dir), [], 'no mount or process under the test dir');
}

/**
 * A fresh engine and a project dir with files. Teardown (even after a failure): `first` hooks (a tmux server), the
 * CLIs still running, `down`, then the engine's containers, networks and temp dir.
 */
async function project(
  t: TestContext,
  name: string,
  files: Record<string, string>,
): Promise<{ te: TestEngine; dir: string; first: (hook: () => void) => void }> {
  const te = await makeTestEngine();
  const dir = path.join(te.dir, name);
  const hooks: (() => void)[] = [];
  t.after(async () => {
    for (const hook of hooks) hook();
    await Promise.all(
      [...running].map(async (child) => {
        child.kill('SIGKILL');
        await new Promise((resolve) => child.once('close', resolve));
      }),
    );
    if (files['tsfig.yml'] !== undefined) await te.cli(['down', '-t', '1'], { cwd: dir }).catch(() => undefined);
    await te.cleanup();
  });
  for (const [file, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await fs.writeFile(path.join(dir, file), content);
  }
  await fs.mkdir(dir, { recursive: true });
  return { te, dir, first: (hook) => hooks.push(hook) };
}

const COMPOSE = `services:
  app:
    build: ./app
    command: ["sleep", "600"]
`;

describe('interrupting builds', { concurrency: false }, () => {
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    test(`${signal} to tsfig build during a RUN kills and removes the step's container, exit ${code}`, async (t) => {
      if (skipUnlessRoot(t)) return;
      const sleep = longSleep();
      const { te, dir } = await project(t, `build${code}`, {
        'tsfig.yml': COMPOSE,
        'app/Dockerfile': `FROM tsfig/busybox:latest\nRUN echo step one > /one\nRUN echo started && ${sleep}\n`,
      });
      const cli = startCli(te, ['build'], dir);
      await runningBuildContainer(te, sleep, cli);
      cli.child.kill(signal);
      assert.equal(await exitOf(cli), code, cli.stderr());
      t.diagnostic(cli.stderr());
      assert.match(cli.stderr(), new RegExp(`the build was interrupted \\(${signal}\\)`));
      assert.match(cli.stderr(), /hint: run tsfig build again to finish it/);
      assert.doesNotMatch(cli.stderr(), /internal error|\n\s+at /, 'no stack trace');
      await assertNothingLeft(te, sleep);
      await assert.rejects(te.engine.images.resolve(`build${code}-app`), 'the interrupted build tags nothing');
    });
  }

  test('SIGINT to tsfig image build keeps the completed steps cached and tags nothing', async (t) => {
    if (skipUnlessRoot(t)) return;
    const sleep = longSleep();
    const { te, dir } = await project(t, 'imagebuild', {
      'ctx/Dockerfile': `FROM tsfig/busybox:latest\nRUN echo cached > /cached\nRUN echo started && ${sleep}\n`,
    });
    const cli = startCli(te, ['image', 'build', '-t', 'demo/interrupted', 'ctx'], dir);
    await runningBuildContainer(te, sleep, cli);
    cli.child.kill('SIGINT');
    assert.equal(await exitOf(cli), 130, cli.stderr());
    assert.match(cli.stderr(), /Interrupted \(SIGINT\): stopping the build/);
    assert.match(cli.stderr(), /hint: build again to finish it: the steps that completed are cached/);
    await assertNothingLeft(te, sleep);
    await assert.rejects(te.engine.images.resolve('demo/interrupted'), /no such image|not found/i);
    // the step before the interrupted one is a cache hit now
    await fs.writeFile(path.join(dir, 'ctx', 'Dockerfile'), 'FROM tsfig/busybox:latest\nRUN echo cached > /cached\n');
    const rebuilt = await te.cli(['image', 'build', '-t', 'demo/interrupted', 'ctx'], { cwd: dir });
    assert.equal(rebuilt.code, 0, rebuilt.stderr);
    assert.match(rebuilt.stderr, /Step 2\/2 : RUN echo cached > \/cached\n ---> Using cache/);
  });

  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    test(`${signal} to tsfig up (plain) while it builds: exit ${code}, no build debris, no service container`, async (t) => {
      if (skipUnlessRoot(t)) return;
      const sleep = longSleep();
      const { te, dir } = await project(t, `up${code}`, {
        'tsfig.yml': COMPOSE,
        'app/Dockerfile': `FROM tsfig/busybox:latest\nRUN echo started && ${sleep}\n`,
      });
      const cli = startCli(te, ['--progress', 'plain', 'up'], dir);
      await runningBuildContainer(te, sleep, cli);
      cli.child.kill(signal);
      assert.equal(await exitOf(cli), code, cli.stderr());
      t.diagnostic(cli.stderr());
      assert.match(cli.stderr(), new RegExp(`error: up was interrupted \\(${signal}\\)`));
      assert.match(cli.stderr(), /hint: run tsfig up again to continue/);
      await assertNothingLeft(te, sleep);
      // the project lock was released: another command of the project runs at once
      const ps = await te.cli(['ps', '-a', '-q'], { cwd: dir });
      assert.equal(ps.code, 0, ps.stderr);
      assert.equal(ps.stdout.trim(), '');
    });
  }

  test('kill -9 of the CLI during a RUN: the next build removes the orphaned container; a live build keeps its own', async (t) => {
    if (skipUnlessRoot(t)) return;
    const orphanSleep = longSleep();
    const liveSleep = longSleep();
    const { te, dir } = await project(t, 'sweep', {
      'orphan/Dockerfile': `FROM tsfig/busybox:latest\nRUN echo orphan && ${orphanSleep}\n`,
      'live/Dockerfile': `FROM tsfig/busybox:latest\nRUN echo live && ${liveSleep}\n`,
      'quick/Dockerfile': 'FROM tsfig/busybox:latest\nRUN echo quick > /quick\n',
    });
    const killed = startCli(te, ['image', 'build', 'orphan'], dir);
    const orphan = await runningBuildContainer(te, orphanSleep, killed);
    killed.child.kill('SIGKILL');
    assert.equal(await exitOf(killed), 137);
    // the monitor outlives the CLI: the step keeps running, nobody will remove it
    const state = await te.engine.containers.state(await te.engine.containers.get(orphan));
    assert.equal(state.running, true, 'the orphaned RUN container still runs');
    assert.equal(hostProcesses(orphanSleep).length, 1);

    // a build that still runs in another process
    const live = startCli(te, ['image', 'build', 'live'], dir);
    const liveId = await eventually(async () => {
      const running = await te.engine.containers.list({ labels: { 'io.tsfig.build': 'true' } });
      return running.find((container) => container.id !== orphan)?.id;
    }, 90_000);

    const quick = await te.cli(['image', 'build', '-q', 'quick'], { cwd: dir });
    assert.equal(quick.code, 0, quick.stderr);
    await assert.rejects(te.engine.containers.get(orphan), /no such container/);
    await eventually(() => (hostProcesses(orphanSleep).length === 0 ? true : undefined), 30_000);
    const remaining = await te.engine.containers.list({ all: true });
    assert.deepEqual(
      remaining.map((container) => container.id),
      [liveId],
      "the live build's container is kept",
    );
    assert.equal(hostProcesses(liveSleep).length, 1, "the live build's step still runs");

    live.child.kill('SIGTERM');
    assert.equal(await exitOf(live), 143, live.stderr());
    await assertNothingLeft(te, liveSleep);
  });

  test('tsfig image prune -f also removes the container of a build killed outright, then its image', async (t) => {
    if (skipUnlessRoot(t)) return;
    const sleep = longSleep();
    const { te, dir } = await project(t, 'prune', {
      'ctx/Dockerfile': `FROM tsfig/busybox:latest\nRUN echo started && ${sleep}\n`,
    });
    const killed = startCli(te, ['image', 'build', 'ctx'], dir);
    await runningBuildContainer(te, sleep, killed);
    killed.child.kill('SIGKILL');
    await exitOf(killed);
    const images = (await te.engine.images.list()).length;
    const prune = await te.cli(['image', 'prune', '-f'], { cwd: dir });
    assert.equal(prune.code, 0, prune.stderr);
    assert.match(prune.stderr, /1 container\(s\) of interrupted builds removed/);
    assert.match(prune.stdout, /Deleted: sha256:/, "the RUN's image goes with its container");
    assert.equal((await te.engine.images.list()).length, images - 1);
    await assertNothingLeft(te, sleep);
  });
});

/** A tmux server of the test's own (a socket in its temp dir), so the user's sessions are never touched. */
function tmux(socket: string, ...args: string[]): string {
  return execFileSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' });
}

const quote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;

test('q in the TUI while up builds: the terminal is restored, the RUN container removed, exit 130', async (t) => {
  if (skipUnlessRoot(t)) return;
  const sleep = longSleep();
  const { te, dir, first } = await project(t, 'tuiq', {
    'tsfig.yml': COMPOSE,
    'app/Dockerfile': `FROM tsfig/busybox:latest\nRUN echo started && ${sleep}\n`,
  });
  const socket = path.join(te.dir, 'tmux.sock');
  first(() => {
    try {
      tmux(socket, 'kill-server');
    } catch {
      // not started or gone
    }
  });
  const env = ['TSFIG_ROOT', 'TSFIG_RUN_ROOT', 'TSFIG_DNS_FORWARD', 'TSFIG_REGISTRY_LOOPBACK_ONLY', 'PATH']
    .map((name) => `export ${name}=${quote(te.env[name] ?? '')}`)
    .join('\n');
  const cli = [process.execPath, path.join(REPO, 'bin', 'tsfig.js'), '--progress', 'tty', 'up'].map(quote).join(' ');
  const script = path.join(te.dir, 'run.sh');
  const stty = `echo "STTY:$(stty -a | tr ' ;' '\\n\\n' | grep -Ex -- '-?(icanon|echo|isig)' | tr '\\n' ' ')"`;
  await fs.writeFile(
    script,
    `${env}\nunset CI\ncd ${quote(dir)}\n${cli}\necho "TUI-EXIT:$?"\n${stty}\nexec sleep 3600\n`,
  );
  tmux(socket, 'new-session', '-d', '-s', 'tui', '-x', '120', '-y', '30', `sh ${quote(script)}`);
  const capture = () => tmux(socket, 'capture-pane', '-p', '-t', 'tui');
  await runningBuildContainer(te, sleep);
  await eventually(() => (/Building app/.test(capture()) ? true : undefined), 60_000).catch((error: unknown) => {
    throw new Error(`the TUI never showed the build; screen:\n${capture()}`, { cause: error });
  });
  tmux(socket, 'send-keys', '-t', 'tui', 'q');
  const after = await eventually(() => (/STTY:/.test(capture()) ? capture() : undefined), 90_000).catch(
    (error: unknown) => {
      throw new Error(`the CLI did not end; screen:\n${capture()}`, { cause: error });
    },
  );
  t.diagnostic(after);
  assert.match(after, /TUI-EXIT:130\b/);
  // One account of what happened: the interrupted build's (the TUI's own 'kept' message contradicted it)
  assert.match(after, /error: up was interrupted \(SIGINT\); what it had started was removed/);
  assert.doesNotMatch(after, /is kept/);
  assert.equal(tmux(socket, 'display-message', '-p', '-t', 'tui', '#{alternate_on} #{cursor_flag}').trim(), '0 1');
  const modes = (/STTY:((?:-?(?:icanon|echo|isig) ?)+)/.exec(after)?.[1] ?? '').trim().split(' ').sort();
  assert.deepEqual(modes, ['echo', 'icanon', 'isig'], 'the terminal is out of raw mode');
  tmux(socket, 'kill-server');
  await assertNothingLeft(te, sleep);
});

/**
 * A registry on 127.0.0.1 that serves one image whose only layer stalls half-way: the pull is interrupted while it
 * downloads. The layer's bytes are random (the pull never gets to verify them).
 */
async function stallingRegistry(t: TestContext): Promise<{ domain: string; layerRequests: () => number }> {
  const layer = randomBytes(4 * 1024 * 1024);
  const digest = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [digest(layer)] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: {
        mediaType: 'application/vnd.docker.container.image.v1+json',
        size: config.length,
        digest: digest(config),
      },
      layers: [
        { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: layer.length, digest: digest(layer) },
      ],
    }),
  );
  let layerRequests = 0;
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    if (url === '/v2/' || url === '/v2')
      return void res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
    if (url.includes('/manifests/')) {
      res.writeHead(200, {
        'Content-Type': 'application/vnd.docker.distribution.manifest.v2+json',
        'Docker-Content-Digest': digest(manifest),
        'Content-Length': manifest.length,
      });
      return void res.end(req.method === 'HEAD' ? undefined : manifest);
    }
    if (url.endsWith(digest(config))) return void res.writeHead(200, { 'Content-Length': config.length }).end(config);
    if (url.endsWith(digest(layer))) {
      layerRequests++;
      res.writeHead(200, { 'Content-Length': layer.length, 'Content-Type': 'application/octet-stream' });
      res.write(layer.subarray(0, 1024 * 1024)); // then nothing more: the download stalls
      return;
    }
    res.writeHead(404).end();
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { domain: `127.0.0.1:${(server.address() as AddressInfo).port}`, layerRequests: () => layerRequests };
}

test('SIGINT to tsfig image pull mid-download: exit 130, the download deleted, no image', async (t) => {
  if (skipUnlessRoot(t)) return;
  const { te, dir } = await project(t, 'pull', {});
  const registry = await stallingRegistry(t);
  const reference = `${registry.domain}/slow/image:1`;
  const cli = startCli(te, ['image', 'pull', reference], dir);
  const tmp = path.join(te.engine.paths.root, 'tmp');
  // the download has started once the registry was asked for the layer (a layer is unpacked as it downloads:
  // there is no download file to watch)
  await eventually(() => (registry.layerRequests() > 0 ? true : undefined), 60_000).catch((error: unknown) => {
    throw new Error(`the download never started; stderr:\n${cli.stderr()}`, { cause: error });
  });
  cli.child.kill('SIGINT');
  assert.equal(await exitOf(cli), 130, cli.stderr());
  assert.match(cli.stderr(), /error: the pull of .*slow\/image:1 was interrupted \(SIGINT\)/);
  assert.match(cli.stderr(), /hint: pull again to finish/);
  assert.equal(registry.layerRequests(), 1);
  assert.deepEqual(readdirSync(tmp), [], 'no temp dir');
  await assert.rejects(te.engine.images.resolve(reference));
  assert.deepEqual(leftovers(te.dir), []);
});

test('SIGINT to tsfig pull (a plan of pulls) mid-download: exit 130, the download deleted, no image', async (t) => {
  if (skipUnlessRoot(t)) return;
  const { te, dir } = await project(t, 'compose-pull', {});
  const registry = await stallingRegistry(t);
  const reference = `${registry.domain}/slow/image:1`;
  await fs.writeFile(path.join(dir, 'compose.yaml'), `services:\n  slow:\n    image: ${reference}\n`);
  const cli = startCli(te, ['pull'], dir);
  const tmp = path.join(te.engine.paths.root, 'tmp');
  await eventually(() => (registry.layerRequests() > 0 ? true : undefined), 60_000).catch((error: unknown) => {
    throw new Error(`the download never started; stderr:\n${cli.stderr()}`, { cause: error });
  });
  assert.match(cli.stderr(), / slow Pulling\n/);
  cli.child.kill('SIGINT');
  assert.equal(await exitOf(cli), 130, cli.stderr());
  assert.match(cli.stderr(), /error: the pull was interrupted \(SIGINT\); what it had started was removed\n/);
  assert.match(cli.stderr(), /hint: run tsfig pull again to finish it/);
  assert.equal(registry.layerRequests(), 1);
  assert.deepEqual(readdirSync(tmp), [], 'no temp dir');
  await assert.rejects(te.engine.images.resolve(reference));
  assert.deepEqual(leftovers(te.dir), []);
});
