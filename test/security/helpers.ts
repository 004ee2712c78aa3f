/** Shared pieces of the security tests: a tmux terminal of their own, a second local uid, shell quoting. */
import { execFileSync, spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestEngine } from '../helpers/engine.js';

/** The unprivileged local user the "other local user" probes run as (scripts/setup.sh creates it too). */
export const PROBE_USER = 'tsfig-probe';

/** The probe user's uid and gid, creating it (a system user, no home, no login) when missing. */
export function probeUser(): { uid: number; gid: number } {
  if (spawnSync('id', ['-u', PROBE_USER]).status !== 0) {
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', PROBE_USER]);
  }
  const uid = Number(execFileSync('id', ['-u', PROBE_USER], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', PROBE_USER], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/** argv run as the probe user (setpriv: its uid and gid, no supplementary groups); never throws. */
export function asProbe(
  argv: readonly string[],
  options: { input?: string; timeoutMs?: number } = {},
): { code: number; stdout: string; stderr: string } {
  const { uid, gid } = probeUser();
  const result = spawnSync(
    'setpriv',
    // through sh: setpriv's own execvp still resolves the path with root's capabilities; the shell's does not
    [
      `--reuid=${uid}`,
      `--regid=${gid}`,
      '--clear-groups',
      '--inh-caps=-all',
      '--',
      '/bin/sh',
      '-c',
      'exec "$@"',
      'sh',
      ...argv,
    ],
    { encoding: 'utf8', input: options.input ?? '', timeout: options.timeoutMs ?? 30_000 },
  );
  return { code: result.status ?? 128, stdout: result.stdout, stderr: result.stderr };
}

export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

/** A tmux server of its own (`-S` socket) running an interactive bash: the operator's terminal. */
export class Terminal {
  private marks = 0;
  private readonly socket: string;

  constructor(socket: string) {
    this.socket = socket;
  }

  start(env: Readonly<Record<string, string>>, cwd: string): void {
    const exports = Object.entries(env).map(([key, value]) => `${key}=${value}`);
    this.tmux(
      'new-session',
      '-d',
      '-s',
      'op',
      '-x',
      '160',
      '-y',
      '50',
      '-c',
      cwd,
      'env',
      ...exports,
      'bash',
      '--norc',
      '--noprofile',
      '-i',
    );
  }

  stop(): void {
    try {
      this.tmux('kill-server');
    } catch {
      // never started, or already gone
    }
  }

  capture(): string {
    return this.tmux('capture-pane', '-p', '-S', '-2000', '-t', 'op');
  }

  /**
   * Types line into the shell and waits until the shell has run it and then one more line of its own: anything a
   * process typed into the terminal's input queue while line ran has been read and run by the shell by then.
   */
  async run(line: string, timeoutMs = 90_000): Promise<void> {
    const first = ++this.marks;
    const second = ++this.marks;
    this.tmux('send-keys', '-t', 'op', '-l', `${line}; echo MARK-$((${first}*1))-DONE`);
    this.tmux('send-keys', '-t', 'op', 'Enter');
    await this.waitFor(`MARK-${first}-DONE`, timeoutMs);
    this.tmux('send-keys', '-t', 'op', '-l', `echo MARK-$((${second}*1))-DONE`);
    this.tmux('send-keys', '-t', 'op', 'Enter');
    await this.waitFor(`MARK-${second}-DONE`, timeoutMs);
  }

  private async waitFor(text: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (
        this.capture()
          .split('\n')
          .some((row) => row.trim() === text)
      )
        return;
      await sleep(100);
    }
    throw new Error(`the terminal never showed ${text}:\n${this.capture()}`);
  }

  private tmux(...args: string[]): string {
    return execFileSync('tmux', ['-S', this.socket, ...args], { encoding: 'utf8' });
  }
}

/** `tsfig image build -t tag dir` under GNU time: its result and the CLI's peak RSS in KiB. */
export async function buildWithPeakRss(t: TestEngine, dir: string, tag: string, env: Record<string, string> = {}) {
  const result = await t.cli(['image', 'build', '-t', tag, dir], {
    env,
    wrap: ['/usr/bin/time', '-f', 'peak-rss-kib=%M'],
    timeoutMs: 300_000,
  });
  const peak = Number(/peak-rss-kib=(\d+)/.exec(result.stderr)?.[1] ?? NaN);
  return { ...result, peakKiB: peak };
}
