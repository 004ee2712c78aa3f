/**
 * `attach` (tsfig attach SERVICE, tsfig container attach CONTAINER): this terminal joins a running container's
 * stdio. Output is the container's log from now on (the monitor writes every line there); input goes to the
 * monitor's attach socket when the container keeps stdin open (`stdin_open`, `-i`); signals are forwarded unless
 * --sig-proxy=false (with a tty they are keys on stdin); the detach keys (ctrl-p,ctrl-q) leave it running. The exit
 * code is the container's when it exits, 0 on a detach.
 */
import net from 'node:net';
import path from 'node:path';
import type { Engine } from '../../engine/index.js';
import type { Command } from 'commander';
import { TsfigError } from '../errors.js';
import { setExitCode } from './exit-codes.js';

export interface AttachSessionOptions {
  /** --no-stdin: do not connect stdin. */
  readonly noStdin?: boolean;
  /** --sig-proxy (default true): forward SIGINT, SIGTERM and SIGHUP to the container (not with a tty). */
  readonly sigProxy?: boolean;
  /** --detach-keys: docker's syntax, `ctrl-p,ctrl-q` by default. */
  readonly detachKeys?: string;
  /** How the container is named in errors. */
  readonly what: string;
}

/** docker's detach-key syntax: comma-separated `ctrl-<a-z|@|[|\\|]|^|_>` or single characters. */
export function parseDetachKeys(spec: string): number[] {
  if (spec === '') throw new TsfigError('usage', '--detach-keys: empty sequence');
  return spec.split(',').map((key) => {
    if (key.length === 1) return key.charCodeAt(0);
    const match = /^ctrl-(.)$/i.exec(key);
    const code = match?.[1]?.toLowerCase().charCodeAt(0);
    if (code !== undefined && code >= 0x61 && code <= 0x7a) return code - 0x60;
    const specials: Record<string, number> = { '@': 0, '[': 27, '\\': 28, ']': 29, '^': 30, _: 31 };
    const special = match?.[1] === undefined ? undefined : specials[match[1]];
    if (special !== undefined) return special;
    throw new TsfigError('usage', `--detach-keys: invalid key "${key}"`, {
      hint: 'a comma-separated list of ctrl-<a-z|@|[|\\|]|^|_> or single characters, e.g. ctrl-p,ctrl-q',
    });
  });
}

/**
 * Scans input for the detach sequence: bytes of a partial match are held back and sent once the match fails, so the
 * container gets everything but the sequence itself.
 */
export function detachScanner(keys: readonly number[]): (chunk: Uint8Array) => { forward: Buffer; detach: boolean } {
  let matched = 0;
  return (chunk) => {
    const out: number[] = [];
    for (const byte of chunk) {
      if (byte === keys[matched]) {
        matched++;
        if (matched === keys.length) return { forward: Buffer.from(out), detach: true };
        continue;
      }
      out.push(...keys.slice(0, matched));
      matched = 0;
      if (byte === keys[0]) matched = 1;
      else out.push(byte);
    }
    return { forward: Buffer.from(out), detach: false };
  };
}

export async function attachSession(engine: Engine, ref: string, options: AttachSessionOptions): Promise<number> {
  const keys = parseDetachKeys(options.detachKeys ?? 'ctrl-p,ctrl-q');
  const record = await engine.containers.get(ref);
  if (!(await engine.containers.state(record)).running) {
    throw new TsfigError('conflict', `${options.what} is not running: you cannot attach to a stopped container`, {
      hint: `start it first`,
    });
  }
  const tty = record.spec.tty === true;
  // the lines from now on: a time bound taken before stdin is connected (a tail of 0 taken later missed the output of
  // a container that answered the first input before the reader had started); the log's times have 9 digits
  const since = new Date().toISOString().replace('Z', '000000Z');
  const detached = new AbortController();
  const cleanups: (() => void)[] = [];
  if (options.sigProxy !== false && !tty) {
    const forward = (signal: NodeJS.Signals) => {
      engine.containers.kill(record.id, signal).catch(() => undefined);
    };
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.on(signal, forward);
      cleanups.push(() => process.off(signal, forward));
    }
  }
  if (options.noStdin !== true && record.spec.openStdin === true) {
    const socket = net.createConnection(
      path.join(
        engine.paths.runContainers,
        record.id.slice(0, 12),
        'attach',
      ) /* the run dir is named by the short id */,
    );
    socket.on('error', () => undefined);
    const raw = tty && process.stdin.isTTY === true;
    if (raw) process.stdin.setRawMode(true);
    const scan = detachScanner(keys);
    const onData = (chunk: Buffer) => {
      const { forward, detach } = scan(chunk);
      if (forward.length > 0) socket.write(forward);
      if (detach) detached.abort();
    };
    // stdin's end is the container's: the monitor closes its stdin when this connection ends
    const onEnd = () => socket.end();
    process.stdin.on('data', onData);
    process.stdin.once('end', onEnd);
    cleanups.push(() => {
      if (raw) process.stdin.setRawMode(false);
      process.stdin.off('data', onData);
      process.stdin.off('end', onEnd);
      process.stdin.pause();
      socket.destroy();
    });
  }
  try {
    for await (const entry of engine.containers.logs(record.id, { follow: true, since, signal: detached.signal })) {
      (entry.stream === 'stderr' ? process.stderr : process.stdout).write(entry.text);
    }
    if (detached.signal.aborted) {
      process.stderr.write('read escape sequence\n');
      return 0;
    }
    return await engine.containers.wait(record.id);
  } finally {
    for (const cleanup of cleanups) cleanup();
  }
}

/** `--sig-proxy`, `--sig-proxy=false`, `--sig-proxy true`. */
export function parseSigProxy(value: string | boolean): boolean {
  if (value === true || value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new TsfigError('usage', `--sig-proxy: expected true or false, got "${String(value)}"`);
}

/** The flags `container attach` and compose's `attach` share (docker's). */
export interface AttachFlags {
  stdin: boolean;
  sigProxy: string | boolean;
  detachKeys: string;
}

/** Adds the shared attach flags to a command. */
export function withAttachFlags(command: Command): Command {
  return command
    .option('--no-stdin', 'do not attach STDIN')
    .option('--sig-proxy [bool]', 'proxy all received signals to the process', 'true')
    .option('--detach-keys <keys>', 'override the key sequence for detaching from a container', 'ctrl-p,ctrl-q');
}

/** The session's options from the shared attach flags. */
export function attachOptionsOf(flags: AttachFlags, what: string): AttachSessionOptions {
  return { noStdin: !flags.stdin, sigProxy: parseSigProxy(flags.sigProxy), detachKeys: flags.detachKeys, what };
}

/** `tsfig container attach CONTAINER`. */
export function registerContainerAttach(group: Command): void {
  withAttachFlags(
    group
      .command('attach')
      .description('attach local standard input, output, and error streams to a running container')
      .argument('<container>'),
  ).action(async (ref: string, flags: AttachFlags, command: Command) => {
    const { openEngine } = await import('./engine.js');
    const code = await attachSession(await openEngine(), ref, attachOptionsOf(flags, `container ${ref}`));
    setExitCode(command, code);
  });
}
