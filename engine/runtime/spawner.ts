import { EngineError } from '../errors.js';
import { rootlessNetns } from '../rootless/env.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { runtimeBinary } from './binary.js';

/** How a command ended, with everything it wrote. */
export interface SpawnResult {
  /** Exit code (128 + N when killed by signal N). */
  readonly code: number;
  readonly signal: number;
  /** Non-zero when the command could not be executed (ENOENT: not installed...); code is then 127. */
  readonly errno: number;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
  /** What the command wrote on fd 3, when asked for (`fd3: true`). */
  readonly fd3: Buffer;
}

export interface SpawnOptions {
  readonly input?: string | Buffer;
  /** The command's whole environment; the spawner's (this process's at its start) when absent. */
  readonly env?: NodeJS.ProcessEnv;
  /** Give the command a pipe on fd 3 and return its bytes. */
  readonly fd3?: boolean;
}

interface Pending {
  resolve(result: SpawnResult): void;
  reject(error: Error): void;
}

const ENOENT = 2;

/**
 * Client of `tsfig-runtime spawner` (native/PROTOCOL.md): the engine's short-lived commands (`tsfig-runtime start`,
 * `ip`, `nft`, `umount`, `tsfig-runtime netns`) are forked by that small process instead of this one. Forking Node
 * copies the page tables of its ~100 MB on the main thread, milliseconds per child; `up` of 50 services had ~150.
 * One spawner per process, started on first use; it never keeps the process alive when nothing is pending, and it
 * exits when this process does (EOF on its stdin), after finishing what it runs.
 */
class Spawner {
  /** Whether what it forks runs in the rootless session's network namespace (when there is a session). */
  private readonly inSession: boolean;
  private child: ChildProcess | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private buffer: Buffer = Buffer.alloc(0);
  private broken: Error | undefined;

  constructor(inSession: boolean) {
    this.inSession = inSession;
  }

  run(file: string, args: readonly string[], options: SpawnOptions = {}): Promise<SpawnResult> {
    if (this.broken !== undefined) return Promise.reject(this.broken);
    const child = this.start();
    const id = this.nextId++;
    const strings = [file, ...args, ...envList(options.env)];
    if (strings.some((s) => s.includes('\0'))) {
      return Promise.reject(new Error(`spawner: an argument of ${file} contains a NUL byte`));
    }
    const stringBytes = Buffer.from(strings.map((s) => `${s}\0`).join(''));
    const input = options.input === undefined ? Buffer.alloc(0) : Buffer.from(options.input);
    const envc = options.env === undefined ? 0 : strings.length - 1 - args.length;
    const head = `R ${id} ${options.fd3 === true ? 1 : 0} ${1 + args.length} ${envc} ${stringBytes.length} ${input.length}\n`;
    return new Promise<SpawnResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ref(true);
      child.stdin?.write(Buffer.concat([Buffer.from(head), stringBytes, input]));
    });
  }

  private start(): ChildProcess {
    if (this.child !== undefined) return this.child;
    // Rootless: what it forks (ip, nft, container starts) belongs in the session's network namespace, where the
    // bridges are; this process stays in the host's (engine/rootless/session.ts).
    const netns = this.inSession ? rootlessNetns() : undefined;
    const [file, args] =
      netns === undefined
        ? [runtimeBinary(), ['spawner']]
        : ['nsenter', [`--net=${netns}`, '--', runtimeBinary(), 'spawner']];
    // Its own stderr says why it failed (it writes only before it exits: a bad request, or no protected copy of the
    // runtime could be made, native/src/sealed.c); what it runs has pipes of its own.
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    let said = '';
    child.stderr?.setEncoding('utf8').on('data', (text: string) => (said = (said + text).slice(-2000)));
    child.stdout?.on('data', (chunk: Buffer) => this.receive(chunk));
    child.stdin?.on('error', () => undefined);
    const fail = (error: Error): void => {
      this.broken = error;
      for (const waiting of this.pending.values()) waiting.reject(error);
      this.pending.clear();
    };
    child.on('error', fail);
    child.on('exit', (code, signal) => {
      // Killed from outside: what it was running is lost, but the next command starts a new spawner.
      this.child = undefined;
      this.buffer = Buffer.alloc(0);
      const pending = [...this.pending.values()];
      this.pending.clear();
      if (pending.length === 0) return;
      const settle = (): void => {
        const reason =
          said
            .trim()
            .split('\n')
            .at(-1)
            ?.replace(/^tsfig-runtime( spawner)?: /, '') ?? '';
        const error =
          reason === ''
            ? new Error(`the spawner exited (${signal ?? code ?? '?'}) with commands pending`)
            : new EngineError('runtime', `the runtime helper (tsfig-runtime spawner) failed: ${reason}`, {
                exitCode: 125,
              });
        for (const waiting of pending) waiting.reject(error);
      };
      // what it wrote last may still be in the pipe: wait for its end (nothing else holds it), a moment at most
      if (child.stderr === null || child.stderr.readableEnded) settle();
      else {
        const timer = setTimeout(settle, 500);
        child.stderr.once('end', () => {
          clearTimeout(timer);
          settle();
        });
      }
    });
    this.ref(false);
    if (!this.reapsAtExit) {
      this.reapsAtExit = true;
      process.on('beforeExit', () => this.finish());
    }
    return child;
  }

  private reapsAtExit = false;

  /**
   * When this process is about to end (its event loop is empty): closes the spawner's stdin and waits for its exit,
   * so that it is reaped here. Left running, it outlived this process for a moment and ended as an orphan, a zombie
   * of whatever reaps orphans on the host (one per command; a subreaper that never reaps kept them all).
   */
  private finish(): void {
    const child = this.child;
    if (child === undefined || this.pending.size > 0) return;
    child.ref(); // the exit event keeps the loop alive until it comes; then 'beforeExit' again, with no child
    child.stdin?.end();
  }

  /** Keeps the event loop alive only while answers are awaited. */
  private ref(on: boolean): void {
    const child = this.child;
    if (child === undefined) return;
    const handles = [child, child.stdout, child.stderr, child.stdin] as unknown as ({
      ref(): void;
      unref(): void;
    } | null)[];
    for (const handle of handles) {
      if (handle === null) continue;
      if (on) handle.ref();
      else handle.unref();
    }
  }

  private receive(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const newline = this.buffer.indexOf(10);
      if (newline < 0) return;
      const fields = this.buffer.subarray(0, newline).toString().split(' ');
      const [, id, code, signal, errno, outLength, errLength, fd3Length] = fields.map(Number);
      const total = newline + 1 + (outLength ?? 0) + (errLength ?? 0) + (fd3Length ?? 0);
      if (this.buffer.length < total) return;
      let at = newline + 1;
      const take = (n: number): Buffer => {
        const part = Buffer.from(this.buffer.subarray(at, at + n));
        at += n;
        return part;
      };
      const result: SpawnResult = {
        code: code ?? 1,
        signal: signal ?? 0,
        errno: errno ?? 0,
        stdout: take(outLength ?? 0),
        stderr: take(errLength ?? 0),
        fd3: take(fd3Length ?? 0),
      };
      this.buffer = this.buffer.subarray(total);
      const waiting = this.pending.get(id ?? 0);
      this.pending.delete(id ?? 0);
      if (this.pending.size === 0) this.ref(false);
      waiting?.resolve(result);
    }
  }
}

function envList(env: NodeJS.ProcessEnv | undefined): string[] {
  if (env === undefined) return [];
  return Object.entries(env).flatMap(([key, value]) => (value === undefined ? [] : [`${key}=${value}`]));
}

let shared: Spawner | undefined;

/**
 * Runs a command through the spawner and waits for it to end (exit and pipes closed). Rejects only when the spawner
 * itself fails; a command that cannot be executed resolves with `errno` set (ENOENT when it is not installed).
 */
export function spawnCommand(file: string, args: readonly string[], options: SpawnOptions = {}): Promise<SpawnResult> {
  shared ??= new Spawner(true);
  return shared.run(file, args, options);
}

let here: Spawner | undefined;

/**
 * spawnCommand, but the command stays in this process's network namespace even in a rootless session: a container's
 * monitor (`tsfig-runtime start`), so that it and what it starts later (its exit command, `container cleanup --rm`)
 * run where the CLI runs, and `network_mode: host` is the host's network (as with podman rootless), not the
 * session's. The container itself gets its own network namespace, or joins its sandbox's by path, from there.
 */
export function spawnCommandHere(
  file: string,
  args: readonly string[],
  options: SpawnOptions = {},
): Promise<SpawnResult> {
  if (rootlessNetns() === undefined) return spawnCommand(file, args, options);
  here ??= new Spawner(false);
  return here.run(file, args, options);
}

/** Whether a result means "the command is not installed". */
export function notInstalled(result: SpawnResult): boolean {
  return result.errno === ENOENT;
}
