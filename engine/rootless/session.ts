/**
 * Rootless mode: an ordinary user's tsfig runs inside a user namespace of its own (uid 0 there is the user; 1..65535
 * are the user's subordinate ids from /etc/subuid and /etc/subgid, mapped by newuidmap/newgidmap), with a mount
 * namespace and a network namespace of its own, as podman's rootless mode does.
 *
 * One long-lived process per user, the holder (`unshare ... sleep infinity`), keeps the three namespaces alive
 * between commands; its pid and start time are in `<runtime dir>/holder.json`. Each command joins the user and
 * mount namespaces with nsenter and stays in the host's network namespace (so a registry on the host's loopback is
 * reachable and host ports are real host ports); the engine forks what touches networks (ip, nft, the container
 * runtime, the resolver) into the holder's network namespace, which has the projects' bridges. slirp4netns attached
 * to it gives containers the outside world and forwards published host ports into it through its API socket.
 *
 * Where things live: state under `$XDG_DATA_HOME/tsfig` (default `~/.local/share/tsfig`), runtime files under
 * `$XDG_RUNTIME_DIR/tsfig` (default `/tmp/tsfig-<uid>`, made 0700 and refused when it is not the user's).
 */
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs, constants as fsConstants } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { EngineError, isErrno } from '../errors.js';
import { isSameProcess, processStartTime } from '../containers/liveness.js';
import { rootIdOf } from '../state/paths.js';

import { ROOTLESS_ENV, ROOTLESS_NETNS_ENV, ROOTLESS_PORTS_ENV } from './env.js';

export interface RootlessDirs {
  /** State root: `$XDG_DATA_HOME/tsfig` or `~/.local/share/tsfig`. */
  readonly dataRoot: string;
  /** Runtime files of the user's session (holder.json, slirp4netns's socket, the run roots). */
  readonly runtimeDir: string;
}

export interface RootlessSession {
  readonly holderPid: number;
  readonly holderStart: number;
  /** slirp4netns, when it could attach (it needs /dev/net/tun). */
  readonly slirp?: { readonly pid: number; readonly start: number; readonly apiSocket: string } | undefined;
  /** Why slirp4netns is not there: no published ports and no outside network for containers. */
  readonly slirpProblem?: string | undefined;
}

export function rootlessDirs(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.() ?? 0): RootlessDirs {
  const home = env.HOME !== undefined && env.HOME !== '' ? env.HOME : os.homedir();
  const data = env.XDG_DATA_HOME !== undefined && env.XDG_DATA_HOME !== '' ? env.XDG_DATA_HOME : undefined;
  const runtime = env.XDG_RUNTIME_DIR !== undefined && env.XDG_RUNTIME_DIR !== '' ? env.XDG_RUNTIME_DIR : undefined;
  // inside the session uid is 0: the launcher passed the session's dir
  const inside = env.TSFIG_ROOTLESS_RUNTIME !== undefined && env.TSFIG_ROOTLESS_RUNTIME !== '';
  return {
    dataRoot: path.join(data ?? path.join(home, '.local', 'share'), 'tsfig'),
    runtimeDir: inside
      ? (env.TSFIG_ROOTLESS_RUNTIME ?? '')
      : runtime !== undefined
        ? path.join(runtime, 'tsfig')
        : path.join(os.tmpdir(), `tsfig-${uid}`),
  };
}

/** Makes dir (0700) and checks it is this user's and nobody else's: a dir another user made first is refused. */
async function ownDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const stat = await fs.lstat(dir);
  const uid = process.getuid?.() ?? 0;
  if (!stat.isDirectory() || stat.uid !== uid) {
    throw new EngineError('permission', `${dir} is not a directory of yours (uid ${uid})`, {
      hint: 'remove it, or set XDG_RUNTIME_DIR to a directory of yours',
    });
  }
  if ((stat.mode & 0o077) !== 0) await fs.chmod(dir, 0o700);
}

function subordinateRange(file: string, user: string, uid: number): boolean {
  try {
    const text = spawnSync('cat', [file], { encoding: 'utf8' }).stdout ?? '';
    return text.split('\n').some((line) => {
      const [name] = line.split(':');
      return name === user || name === String(uid);
    });
  } catch {
    return false;
  }
}

/** What rootless mode needs of the host, checked before the first holder starts: one error naming what is missing. */
function preflight(): void {
  const uid = process.getuid?.() ?? 0;
  const user = os.userInfo().username;
  const missing: string[] = [];
  for (const tool of ['unshare', 'nsenter', 'newuidmap', 'newgidmap']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) missing.push(tool);
  }
  if (missing.length > 0) {
    throw new EngineError('permission', `rootless mode needs ${missing.join(', ')}, not found`, {
      hint: 'install Debian\'s packages uidmap and util-linux (root: "bash scripts/setup.sh", or apt-get install uidmap)',
    });
  }
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    if (!subordinateRange(file, user, uid)) {
      throw new EngineError('permission', `rootless mode needs a subordinate id range for ${user} in ${file}`, {
        hint: `as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user} (or: bash scripts/setup.sh --user ${user})`,
      });
    }
  }
}

/**
 * A lock between this user's commands: a listening unix socket in the runtime dir (0700, the user's alone). The
 * kernel closes it when its process dies, so a dead holder's file answers ECONNREFUSED and is taken over.
 */
async function withUserLock<T>(file: string, body: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const server = net.createServer();
    const listened = await new Promise<boolean>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'EADDRINUSE') resolve(false);
        else reject(error);
      });
      server.listen(file, () => resolve(true));
    });
    if (listened) {
      try {
        return await body();
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    }
    const alive = await new Promise<boolean>((resolve) => {
      const socket = net.connect(file);
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (!alive) await fs.rm(file, { force: true });
    else if (Date.now() > deadline) throw new EngineError('conflict', `another tsfig command holds ${file}`);
    else await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export async function readSessionFile(file: string): Promise<RootlessSession | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as RootlessSession;
  } catch (error) {
    if (isErrno(error, 'ENOENT') || error instanceof SyntaxError) return undefined;
    throw error;
  }
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new EngineError('internal', `rootless mode: ${what} did not happen in ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Starts the holder: unshare makes the namespaces, newuidmap/newgidmap map the ranges, then it execs sleep. */
async function startHolder(runtimeDir: string): Promise<{ pid: number; start: number }> {
  const log = await fs.open(path.join(runtimeDir, 'holder.log'), 'w');
  try {
    const child = spawn(
      'unshare',
      ['--user', '--map-auto', '--map-root-user', '--mount', '--net', '--propagation', 'slave', 'sleep', 'infinity'],
      { detached: true, stdio: ['ignore', log.fd, log.fd], cwd: '/' },
    );
    child.unref();
    const pid = child.pid;
    if (pid === undefined) throw new EngineError('internal', 'rootless mode: cannot start unshare');
    const exited = new Promise<never>((_resolve, reject) =>
      child.once('exit', () => {
        void fs.readFile(path.join(runtimeDir, 'holder.log'), 'utf8').then((text) =>
          reject(
            new EngineError(
              'permission',
              `rootless mode: cannot make a user namespace: ${text.trim() || 'unshare failed'}`,
              {
                hint: 'check /etc/subuid and /etc/subgid, and that user namespaces are allowed (sysctl user.max_user_namespaces)',
              },
            ),
          ),
        );
      }),
    );
    // once unshare has set up the namespaces and mapped the ids it execs sleep: comm tells
    await Promise.race([
      exited,
      waitFor('the user namespace', async () => {
        const comm = await fs.readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
        return comm.trim() === 'sleep' ? true : undefined;
      }),
    ]);
    child.removeAllListeners('exit');
    const start = await processStartTime(pid);
    if (start === undefined) throw new EngineError('internal', 'rootless mode: the namespace holder died at once');
    // the loopback of the rootless network namespace
    const lo = spawnSync(
      'nsenter',
      [`--target=${pid}`, '--user', '--mount', '--net', 'ip', 'link', 'set', 'lo', 'up'],
      {
        encoding: 'utf8',
      },
    );
    if (lo.status !== 0) throw new EngineError('internal', `rootless mode: cannot bring up lo: ${lo.stderr.trim()}`);
    return { pid, start };
  } finally {
    await log.close();
  }
}

/** Whether this user can open /dev/net/tun (slirp4netns needs it; Debian's udev makes it 0666). */
async function tunUsable(): Promise<string | undefined> {
  try {
    await fs.access('/dev/net/tun', fsConstants.R_OK | fsConstants.W_OK);
    return undefined;
  } catch {
    return "/dev/net/tun is not usable by you (Debian's udev makes it mode 0666; as root: chmod 0666 /dev/net/tun)";
  }
}

/** Attaches slirp4netns (configured tap0 10.0.2.100/24, default route, API socket) to the holder's namespaces. */
async function startSlirp(
  runtimeDir: string,
  holderPid: number,
): Promise<{ slirp?: RootlessSession['slirp']; problem?: string }> {
  if (spawnSync('sh', ['-c', 'command -v slirp4netns']).status !== 0) {
    return { problem: 'slirp4netns is not installed (Debian package slirp4netns)' };
  }
  const tun = await tunUsable();
  if (tun !== undefined) return { problem: tun };
  const apiSocket = path.join(runtimeDir, 'slirp4netns.sock');
  await fs.rm(apiSocket, { force: true });
  const log = await fs.open(path.join(runtimeDir, 'slirp4netns.log'), 'w');
  try {
    const child = spawn(
      'slirp4netns',
      [
        '--configure',
        '--mtu=65520',
        '--disable-host-loopback',
        '--enable-sandbox',
        `--api-socket=${apiSocket}`,
        String(holderPid),
        'tap0',
      ],
      { detached: true, stdio: ['ignore', log.fd, log.fd], cwd: '/' },
    );
    child.unref();
    const pid = child.pid;
    if (pid === undefined) return { problem: 'slirp4netns did not start' };
    let exited = false;
    child.once('exit', () => (exited = true));
    await waitFor('slirp4netns', async () => {
      if (exited) return false;
      return (await fs.stat(apiSocket).catch(() => undefined)) !== undefined ? true : undefined;
    });
    if (exited) {
      const text = await fs.readFile(path.join(runtimeDir, 'slirp4netns.log'), 'utf8').catch(() => '');
      return { problem: `slirp4netns failed: ${text.trim().split('\n').slice(-2).join('; ')}` };
    }
    const start = await processStartTime(pid);
    return start === undefined ? { problem: 'slirp4netns died at once' } : { slirp: { pid, start, apiSocket } };
  } finally {
    await log.close();
  }
}

async function alive(entry: { pid: number; start: number } | undefined): Promise<boolean> {
  return entry !== undefined && (await isSameProcess(entry.pid, entry.start));
}

/**
 * The user's session: the running holder (and slirp4netns), or new ones. A holder that died (reboot, kill) takes
 * its namespaces, mounts and bridges with it; what the state still records is converged by the next commands.
 */
export async function ensureSession(dirs: RootlessDirs = rootlessDirs()): Promise<RootlessSession> {
  // nothing is created for a user rootless mode cannot serve (no subordinate ids, no uidmap): one clear error
  const existing = await fs.lstat(dirs.runtimeDir).catch(() => undefined);
  if (existing === undefined) preflight();
  await ownDir(dirs.runtimeDir);
  const file = path.join(dirs.runtimeDir, 'holder.json');
  const current = await readSessionFile(file);
  if (current !== undefined && (await alive({ pid: current.holderPid, start: current.holderStart }))) {
    if (current.slirp === undefined || (await alive(current.slirp))) return current;
  }
  return withUserLock(path.join(dirs.runtimeDir, 'holder.lock'), async () => {
    const again = await readSessionFile(file);
    let holder: { pid: number; start: number } | undefined =
      again !== undefined ? { pid: again.holderPid, start: again.holderStart } : undefined;
    if (!(await alive(holder))) {
      if (again?.slirp !== undefined && (await alive(again.slirp))) process.kill(again.slirp.pid, 'SIGTERM');
      preflight();
      holder = await startHolder(dirs.runtimeDir);
    } else if (again?.slirp === undefined || (await alive(again.slirp))) {
      return again as RootlessSession;
    }
    const { slirp, problem } = await startSlirp(dirs.runtimeDir, holder!.pid);
    const session: RootlessSession = {
      holderPid: holder!.pid,
      holderStart: holder!.start,
      ...(slirp !== undefined ? { slirp } : {}),
      ...(problem !== undefined ? { slirpProblem: problem } : {}),
    };
    const tmp = `${file}.${process.pid}`;
    await fs.writeFile(tmp, `${JSON.stringify(session)}\n`, { mode: 0o600 });
    await fs.rename(tmp, file);
    return session;
  });
}

/** The environment of a command inside the session (paths default to the user's, TSFIG_* already set win). */
export function sessionEnv(
  session: RootlessSession,
  dirs: RootlessDirs,
  env: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  const root = env.TSFIG_ROOT !== undefined && env.TSFIG_ROOT !== '' ? env.TSFIG_ROOT : dirs.dataRoot;
  return {
    ...env,
    [ROOTLESS_ENV]: '1',
    [ROOTLESS_NETNS_ENV]: `/proc/${session.holderPid}/ns/net`,
    ...(session.slirp !== undefined ? { [ROOTLESS_PORTS_ENV]: session.slirp.apiSocket } : {}),
    TSFIG_ROOT: root,
    TSFIG_RUN_ROOT:
      env.TSFIG_RUN_ROOT !== undefined && env.TSFIG_RUN_ROOT !== ''
        ? env.TSFIG_RUN_ROOT
        : path.join(dirs.runtimeDir, rootIdOf(root)),
    TSFIG_ROOTLESS_RUNTIME: dirs.runtimeDir,
    ...(session.slirpProblem !== undefined ? { TSFIG_ROOTLESS_NO_SLIRP: session.slirpProblem } : {}),
  };
}

/** nsenter's arguments that put a command into the session's user and mount namespaces (host network). */
export function joinArgs(session: RootlessSession, cwd: string): string[] {
  return [`--target=${session.holderPid}`, '--user', '--mount', `--wd=${cwd}`, '--'];
}

/**
 * Ends the session: slirp4netns and the holder (with them the namespaces, and every container still in them), then
 * removes its runtime dir. Returns whether there was one.
 */
export async function stopSession(dirs: RootlessDirs = rootlessDirs()): Promise<boolean> {
  const file = path.join(dirs.runtimeDir, 'holder.json');
  const session = await readSessionFile(file);
  if (session === undefined) return false;
  let stopped = false;
  if (await alive({ pid: session.holderPid, start: session.holderStart })) {
    // what else runs in the session's user namespace (monitors, containers, resolvers), but this command
    const userns = await fs.readlink(`/proc/${session.holderPid}/ns/user`).catch(() => undefined);
    const spared = new Set([process.pid, process.ppid, session.holderPid]);
    for (const entry of await fs.readdir('/proc')) {
      if (!/^\d+$/.test(entry) || spared.has(Number(entry))) continue;
      const ns = await fs.readlink(`/proc/${entry}/ns/user`).catch(() => undefined);
      if (userns !== undefined && ns === userns) {
        try {
          process.kill(Number(entry), 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    }
  }
  for (const entry of [session.slirp, { pid: session.holderPid, start: session.holderStart }]) {
    if (entry === undefined || !(await alive(entry))) continue;
    process.kill(entry.pid, 'SIGKILL');
    stopped = true;
    await waitFor('the end of the session', async () => ((await alive(entry)) ? undefined : true));
  }
  // the session's runtime files (run roots, forwards, locks, logs) end with it; the state root stays
  await fs.rm(dirs.runtimeDir, { recursive: true, force: true });
  return stopped;
}
