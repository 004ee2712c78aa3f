import { createHash } from 'node:crypto';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { EngineError } from '../errors.js';

/**
 * A host-wide exclusive lock held by this process: a listening socket in the abstract unix namespace. The kernel
 * releases it when the process dies, however it dies, so a crash (or `kill -9`) never leaves a stale lock behind.
 * Abstract sockets belong to the network namespace; tsfig always runs in the host's.
 */
export interface Lock {
  readonly name: string;
  release(): Promise<void>;
}

export interface LockOptions {
  /** Give up after this long. @default 120000 */
  timeoutMs?: number;
  signal?: AbortSignal;
}

function socketName(name: string): string {
  const digest = createHash('sha256').update(name).digest('hex').slice(0, 40);
  return `\0tsfig-lock-${digest}`;
}

function tryListen(address: string): Promise<net.Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') resolve(undefined);
      else reject(error);
    });
    server.listen(address, () => resolve(server));
  });
}

/** Acquires the named lock, waiting (with back-off) while another process holds it. */
export async function acquireLock(name: string, options: LockOptions = {}): Promise<Lock> {
  const address = socketName(name);
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  let delay = 2;
  for (;;) {
    options.signal?.throwIfAborted();
    const server = await tryListen(address);
    if (server !== undefined) {
      return {
        name,
        release: () => new Promise<void>((resolve) => server.close(() => resolve())),
      };
    }
    if (Date.now() > deadline) {
      throw new EngineError('conflict', `timed out waiting for lock "${name}"`, {
        hint: 'another tsfig command is still working on the same objects; wait for it or stop it',
      });
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 100);
  }
}

/** Runs fn while holding the named lock. */
export async function withLock<T>(name: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const lock = await acquireLock(name, options);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
