import { EngineError } from '../errors.js';
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
