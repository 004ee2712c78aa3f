/**
 * The CLI as an ordinary user runs it (rootless mode, issue #16), from a root test: a user with a subordinate id
 * range (scripts/rootless-user.sh), a copy of the built CLI that user can read (the checkout may be under a root-only
 * dir), a private HOME and XDG dirs per test (so each test has its own session and state), and a clean-up that ends
 * the session and removes what it made, even after a failure.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { REPO } from './engine.js';

/** The ordinary user of the rootless tests and benchmarks. */
export const ROOTLESS_USER = 'tsfig-rl';

let tree: string | undefined;

/** A readable copy of the built CLI (package.json, bin/, dist/bundle/, the native helper), made once per process. */
export function rootlessTree(): string {
  if (tree !== undefined && existsSync(tree)) return tree;
  const dir = mkdtempSync('/tmp/tsfig-it-rltree-');
  for (const part of ['package.json', 'bin', 'dist/bundle', 'native/build/tsfig-runtime']) {
    cpSync(path.join(REPO, part), path.join(dir, part), { recursive: true });
  }
  execFileSync('chmod', ['-R', 'a+rX', dir]);
  chmodSync(dir, 0o755);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  tree = dir;
  return dir;
}

/** Makes the user (idempotent): exists, has a subordinate uid/gid range. */
export function ensureRootlessUser(name = ROOTLESS_USER): { uid: number; gid: number } {
  execFileSync('bash', [path.join(REPO, 'scripts', 'rootless-user.sh'), name]);
  return {
    uid: Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim()),
  };
}

export interface RootlessResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RootlessUser {
  readonly name: string;
  readonly uid: number;
  /** This test's HOME (state under HOME/.local/share/tsfig) and XDG_RUNTIME_DIR (the session under it/tsfig). */
  readonly home: string;
  readonly runtimeDir: string;
  /** A project dir owned by the user. */
  readonly project: string;
  /** Runs `tsfig args` as the user (cwd: project unless given). */
  tsfig(args: readonly string[], options?: { cwd?: string; env?: Record<string, string> }): Promise<RootlessResult>;
  /** Runs any command as the user, same environment. */
  run(file: string, args: readonly string[], options?: { cwd?: string }): Promise<RootlessResult>;
  /** Ends the session (shutdown --force, then kills what is left of the user's) and removes HOME. */
  cleanup(): Promise<void>;
}

export interface RootlessUserOptions {
  /**
   * Every command starts from a process with this oom_score_adj, set by root so that it is also the floor the user
   * may not go below, as in a systemd user session (user@.service: OOMScoreAdjust=100). @default unchanged
   */
  readonly oomScoreAdj?: number;
}

/** A fresh rootless user environment for one test (the user is shared; HOME and the session are the test's own). */
export function rootlessUser(name = ROOTLESS_USER, options: RootlessUserOptions = {}): RootlessUser {
  const { uid, gid } = ensureRootlessUser(name);
  const home = mkdtempSync('/tmp/tsfig-it-rlhome-');
  const runtimeDir = path.join(home, 'run');
  const project = path.join(home, 'project');
  execFileSync('mkdir', ['-p', runtimeDir, project]);
  execFileSync('chown', ['-R', `${uid}:${gid}`, home]);
  chmodSync(runtimeDir, 0o700);
  chmodSync(home, 0o755);
  const cli = path.join(rootlessTree(), 'bin', 'tsfig.js');
  const oom = options.oomScoreAdj;
  const run = (file: string, args: readonly string[], options: { cwd?: string; env?: Record<string, string> } = {}) =>
    new Promise<RootlessResult>((resolve, reject) => {
      const env = [
        `HOME=${home}`,
        `USER=${name}`,
        `XDG_RUNTIME_DIR=${runtimeDir}`,
        `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`,
        'TSFIG_DNS_FORWARD=0',
        ...Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`),
      ];
      const argv = ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--init-groups', 'env', '-i', ...env, file, ...args];
      const child = spawn(
        oom === undefined ? 'setpriv' : 'sh',
        oom === undefined
          ? argv.slice(1)
          : ['-c', `echo ${oom} > /proc/self/oom_score_adj && exec "$@"`, 'sh', ...argv],
        { cwd: options.cwd ?? project, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.once('error', reject);
      child.once('close', (code) => resolve({ code: code ?? 128, stdout, stderr }));
    });
  return {
    name,
    uid,
    home,
    runtimeDir,
    project,
    tsfig: (args, options) => run(process.execPath, [cli, ...args], options),
    run,
    async cleanup() {
      await run(process.execPath, [cli, 'system', 'shutdown', '--force']).catch(() => undefined);
      // anything of this test's session still alive (found by the HOME in its environment)
      const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
      for (const line of out.split('\n')) {
        const pid = Number(line.trim().split(' ')[0]);
        if (!Number.isInteger(pid) || pid <= 1) continue;
        const environ = (() => {
          try {
            return execFileSync('cat', [`/proc/${pid}/environ`], {
              encoding: 'utf8',
              stdio: ['ignore', 'pipe', 'ignore'],
            });
          } catch {
            return '';
          }
        })();
        if (environ.includes(`XDG_RUNTIME_DIR=${runtimeDir}\0`)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone
          }
        }
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
}
