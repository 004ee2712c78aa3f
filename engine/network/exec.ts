import { spawn } from 'node:child_process';
import { EngineError } from '../errors.js';

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command with optional stdin; never throws for a non-zero exit (see run). */
export function execCommand(file: string, args: readonly string[], input?: string): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') {
        reject(
          new EngineError('unsupported', `${file} is not installed`, {
            hint: 'install iproute2, nftables and util-linux',
          }),
        );
      } else reject(error);
    });
    child.on('close', (code) =>
      resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
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

/**
 * Runs a command whose output is not needed: resolves as soon as it exits 0 (without waiting for its pipes to
 * close, which costs milliseconds per process on slow hosts); on failure waits for stderr and throws.
 */
export function runQuiet(file: string, args: readonly string[], input: string, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    const err: Buffer[] = [];
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'ENOENT' ? new EngineError('unsupported', `${file} is not installed`) : error),
    );
    child.on('exit', (code) => {
      if (code === 0) {
        child.stderr.destroy();
        resolve();
        return;
      }
      child.on('close', () => {
        const detail = Buffer.concat(err).toString().trim().split('\n').slice(0, 6).join('; ');
        reject(new EngineError('runtime', `${what}: ${detail || `exit code ${code ?? 'signal'}`}`));
      });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
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
