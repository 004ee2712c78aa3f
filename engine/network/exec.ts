import { promises as fs } from 'node:fs';
import { EngineError, isErrno } from '../errors.js';
import { rootlessNetns } from '../rootless/env.js';
import { notInstalled, spawnCommand } from '../runtime/spawner.js';

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a command with optional stdin; never throws for a non-zero exit (see run). Forked by the runtime's spawner
 * (engine/runtime/spawner.ts), not by this process.
 */
export async function execCommand(file: string, args: readonly string[], input?: string): Promise<ExecResult> {
  const result = await spawnCommand(file, args, { input: input ?? '' });
  if (notInstalled(result)) {
    throw new EngineError('unsupported', `${file} is not installed`, {
      hint: 'install iproute2, nftables and util-linux',
    });
  }
  return { code: result.code, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

/** Runs a command and throws an EngineError naming what failed when it exits non-zero. */
export async function run(file: string, args: readonly string[], input?: string, what?: string): Promise<string> {
  const result = await execCommand(file, args, input);
  if (result.code !== 0) {
    const detail = result.stderr.trim().split('\n').slice(0, 6).join('; ');
    throw new EngineError('runtime', `${what ?? `${file} ${args.join(' ')}`}: ${detail || `exit code ${result.code}`}`);
  }
  return result.stdout;
}

/** Runs a command whose output is not needed; on failure throws with its stderr. */
export async function runQuiet(file: string, args: readonly string[], input: string, what: string): Promise<void> {
  const result = await execCommand(file, args, input);
  if (result.code === 0) return;
  const detail = result.stderr.trim().split('\n').slice(0, 6).join('; ');
  throw new EngineError('runtime', `${what}: ${detail || `exit code ${result.code}`}`);
}

/** `ip -batch -` with the given lines, in the host's netns or (via nsenter) in the one bind-mounted at netnsPath. */
export async function ipBatch(lines: readonly string[], what: string, netnsPath?: string): Promise<void> {
  if (lines.length === 0) return;
  const input = `${lines.join('\n')}\n`;
  if (netnsPath === undefined) await runQuiet('ip', ['-batch', '-'], input, what);
  else await runQuiet('nsenter', [`--net=${netnsPath}`, 'ip', '-batch', '-'], input, what);
}

export async function ipJson<T>(args: readonly string[]): Promise<T> {
  return JSON.parse((await run('ip', ['-j', ...args])) || '[]') as T;
}

/**
 * Sets a network sysctl (`/proc/sys/net/...`, per network namespace: the writer's) when it is not set already; a
 * file that does not exist (a kernel without IPv6) is left alone. Rootless, through the spawner: this process is in
 * the host's network namespace, the bridges are in the session's.
 */
export async function setNetSysctl(file: string, value: string): Promise<void> {
  if (rootlessNetns() !== undefined) {
    const script = '[ -e "$1" ] || exit 0; [ "$(cat "$1")" = "$2" ] || printf %s "$2" > "$1"';
    await runQuiet('sh', ['-c', script, 'sh', file, value], '', `set ${file}`);
    return;
  }
  const current = await fs.readFile(file, 'utf8').catch((error: unknown) => {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw error;
  });
  if (current === undefined || current.trim() === value) return;
  await fs.writeFile(file, value);
}
